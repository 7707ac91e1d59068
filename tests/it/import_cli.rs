//! `icm model import` end to end: a checkpoint written by torch from a real CompressAI model
//! (crates/icm-import/tests/data) becomes a model file that encodes and decodes, and bad
//! input gets a clear error and no output file.

use crate::common::{fresh_dir, icm, ok, root};

#[test]
fn a_compressai_checkpoint_imports_encodes_and_decodes() {
    let dir = fresh_dir("import-cli");
    let ckpt = root().join("crates/icm-import/tests/data/compressai_msh.pt");
    let model = dir.join("msh.safetensors");
    let out = icm(
        &[
            "model",
            "import",
            "--arch",
            "mbt2018-mean",
            ckpt.to_str().unwrap(),
            "-o",
            model.to_str().unwrap(),
            "--name",
            "msh-test",
        ],
        &[],
    );
    let text = ok(&out, "model import");
    assert!(text.contains("mbt2018-mean, N=2, M=3"), "{text}");
    assert!(
        text.contains("CompressAI's CDFs from the checkpoint"),
        "{text}"
    );
    let info = ok(
        &icm(&["model", "info", model.to_str().unwrap()], &[]),
        "model info",
    );
    assert!(info.contains("mbt2018-mean"), "{info}");

    let picture = dir.join("in.png");
    let img = icm::testimage::synthetic(70, 40, 1);
    image::RgbImage::from_raw(70, 40, img.data)
        .unwrap()
        .save(&picture)
        .unwrap();
    let stream = dir.join("x.icm");
    let m = model.to_str().unwrap();
    ok(
        &icm(
            &[
                "encode",
                "--model",
                m,
                picture.to_str().unwrap(),
                "-o",
                stream.to_str().unwrap(),
            ],
            &[],
        ),
        "encode",
    );
    let decoded = dir.join("x.png");
    ok(
        &icm(
            &[
                "decode",
                "--model",
                m,
                stream.to_str().unwrap(),
                "-o",
                decoded.to_str().unwrap(),
            ],
            &[],
        ),
        "decode",
    );
    assert!(decoded.is_file());
}

#[test]
fn bad_checkpoints_are_refused_with_the_reason() {
    let dir = fresh_dir("import-cli-bad");
    let model = dir.join("m.safetensors");
    // Not a checkpoint at all.
    let png = root().join("conformance/reference/v1-1x1.png");
    // The wrong family: a mean-scale checkpoint read as scale-only.
    let msh = root().join("crates/icm-import/tests/data/compressai_msh.pt");
    for (ckpt, arch, want) in [
        (&png, "mbt2018-mean", "reading the checkpoint"),
        (&msh, "bmshj2018-hyperprior", "h_s.4.weight"),
    ] {
        let out = icm(
            &[
                "model",
                "import",
                "--arch",
                arch,
                ckpt.to_str().unwrap(),
                "-o",
                model.to_str().unwrap(),
                "--name",
                "x",
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!model.exists(), "no output after a failed import");
    }
}
