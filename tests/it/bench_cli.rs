//! `icm bench` end to end on two small synthetic pictures with the small conformance model:
//! every figure present and positive, the decode stages within the decode time, and the
//! usage errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    dir
}

fn bench(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_icm"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run icm")
}

#[test]
fn bench_reports_every_stage() {
    let dir = fresh_dir("bench_cli");
    let images = dir.join("images");
    for (name, w, h, seed) in [("a.png", 130, 70, 1), ("b.png", 64, 200, 2)] {
        let img = icm::testimage::synthetic(w, h, seed);
        image::RgbImage::from_raw(img.width, img.height, img.data)
            .expect("buffer")
            .save(images.join(name))
            .expect("write png");
    }
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/models/test-seed1-small.safetensors");
    let json = dir.join("bench.json");
    let out = bench(&[
        "--dataset".as_ref(),
        images.as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
        "--repeat".as_ref(),
        "2".as_ref(),
        "-o".as_ref(),
        json.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "icm bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("decode (bytes -> RGB)"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("read")).expect("json");
    assert_eq!(doc["repeat"], 2);
    let images = doc["images"].as_array().expect("images");
    assert_eq!(images.len(), 2);
    for im in images {
        assert!(im["symbols"].as_u64().expect("symbols") > 0);
        assert!(im["bytes"].as_u64().expect("bytes") > 0);
        let ms = |k: &str| im[format!("{k}_ms")].as_f64().expect(k);
        for k in ["encode", "decode", "latents", "png", "synthesis"] {
            assert!(ms(k) > 0.0, "{k}: {}", ms(k));
        }
        // The stages are parts of one decode.
        let parts = ms("parse") + ms("z_entropy") + ms("hyper") + ms("y_entropy") + ms("synthesis");
        assert!(
            parts <= ms("decode") * 1.05 + 0.05,
            "{parts} > {}",
            ms("decode")
        );
    }
    assert!(doc["entropy_msym_per_s"].as_f64().expect("rate") > 0.0);
}

#[test]
fn bench_usage_errors() {
    let dir = fresh_dir("bench_cli_errors");
    let empty = dir.join("images");
    let out = bench(&["--dataset".as_ref(), empty.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PNG images"));
    let out = bench(&[
        "--dataset".as_ref(),
        empty.as_os_str(),
        "--repeat".as_ref(),
        "0".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repeat"));
}
