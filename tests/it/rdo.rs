//! The encoder's rate-distortion search (`EncodeOptions::effort`, spec 12.6): its streams
//! are ordinary streams, it lowers the model's loss, and it is deterministic.

use crate::common::{root, shared};
use icm::codec::{decode, encode, CodecError, EncodeOptions, RgbImage};
use icm::model::{seeded_model, Model, SMALL_WIDTHS};

fn zoo(q: u8) -> Model {
    Model::from_path(&root().join(format!("models/icm-psnr-q{q}.safetensors"))).expect("zoo model")
}

/// A `w x h` crop of a Kodak picture from (`x0`, `y0`), or `None` without `../shared`.
fn kodak_crop(name: &str, x0: u32, y0: u32, w: u32, h: u32) -> Option<RgbImage> {
    let path = shared(&format!("data/kodak/{name}"))?;
    let full = icm_eval::picture::read_rgb(&path).expect("kodak picture");
    let mut img = RgbImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let src = (((y0 + y) * full.width + x0 + x) * 3) as usize;
            let dst = ((y * w + x) * 3) as usize;
            img.data[dst..dst + 3].copy_from_slice(&full.data[src..src + 3]);
        }
    }
    Some(img)
}

/// `bpp + lambda * MSE` of a stream and its decoded picture (MSE in 8-bit units, so this
/// is the training loss `bpp + lambda * 255^2 * MSE_[0,1]`).
fn loss(img: &RgbImage, bytes: &[u8], model: &Model, lambda: f64) -> (f64, f64, f64) {
    let decoded = decode(bytes, model).expect("decode");
    let pixels = f64::from(img.width) * f64::from(img.height);
    let sse: f64 = decoded
        .image
        .data
        .iter()
        .zip(&img.data)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    let mse = sse / (3.0 * pixels);
    let bpp = bytes.len() as f64 * 8.0 / pixels;
    (
        bpp + lambda * mse,
        bpp,
        10.0 * (255.0f64.powi(2) / mse).log10(),
    )
}

fn with_effort(effort: u8, tile: u32) -> EncodeOptions {
    EncodeOptions {
        tile: (tile, tile),
        effort,
        ..EncodeOptions::default()
    }
}

#[test]
fn effort_lowers_the_models_loss_on_a_photo() {
    // Two tiles, the second padded: 192 x 96 in tiles of 128.
    let Some(img) = kodak_crop("kodim23.png", 300, 200, 192, 96) else {
        return;
    };
    let model = zoo(3);
    let lambda: f64 = model.metadata["lambda"].parse().expect("lambda");
    let at0 = encode(&img, &model, &with_effort(0, 128)).expect("effort 0");
    let at1 = encode(&img, &model, &with_effort(1, 128)).expect("effort 1");
    let (l0, bpp0, psnr0) = loss(&img, &at0, &model, lambda);
    let (l1, bpp1, psnr1) = loss(&img, &at1, &model, lambda);
    println!("effort 0: {bpp0:.4} bpp {psnr0:.3} dB loss {l0:.4}; effort 1: {bpp1:.4} bpp {psnr1:.3} dB loss {l1:.4}");
    assert_ne!(at0, at1);
    // The search's own loss counts ideal bits and unrounded pixels; on the real stream and
    // 8-bit picture it must still be clearly lower.
    assert!(
        l1 < 0.99 * l0,
        "effort 1 loss {l1} not below effort 0's {l0}"
    );
}

#[test]
fn effort_is_deterministic_across_thread_counts() {
    let model = seeded_model(3, SMALL_WIDTHS, "test-seed3", Some(1)).expect("seeded model");
    let img = icm::testimage::synthetic(100, 70, 5);
    let opts = EncodeOptions {
        lambda: Some(0.01),
        ..with_effort(1, 64)
    };
    let streams: Vec<Vec<u8>> = [1, 2, 2]
        .iter()
        .map(|&threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| encode(&img, &model, &opts).expect("encode"))
        })
        .collect();
    assert_eq!(streams[0], streams[1], "1 thread vs 2");
    assert_eq!(streams[1], streams[2], "two runs");
    decode(&streams[0], &model).expect("an ordinary stream");
}

#[test]
fn effort_needs_a_lambda_and_a_known_level() {
    let model = seeded_model(3, SMALL_WIDTHS, "test-seed3", Some(1)).expect("seeded model");
    assert!(!model.metadata.contains_key("lambda"));
    let img = icm::testimage::synthetic(64, 64, 6);
    let err = encode(&img, &model, &with_effort(1, 64)).expect_err("no lambda");
    assert!(matches!(err, CodecError::Input(_)), "{err}");
    assert!(err.to_string().contains("lambda"), "{err}");
    let err = encode(&img, &zoo(1), &with_effort(9, 64)).expect_err("effort 9");
    assert!(err.to_string().contains("effort 9"), "{err}");
    for bad in [0.0, -1.0, f32::NAN] {
        let opts = EncodeOptions {
            lambda: Some(bad),
            ..with_effort(1, 64)
        };
        let err = encode(&img, &model, &opts).expect_err("bad lambda");
        assert!(err.to_string().contains("lambda"), "{err}");
    }
    // Effort 0 ignores lambda entirely.
    let opts = EncodeOptions {
        lambda: Some(f32::NAN),
        ..with_effort(0, 64)
    };
    encode(&img, &model, &opts).expect("effort 0");
}

#[test]
fn effort_works_on_imported_compressai_models() {
    use icm_import::compressai::{self, CompressaiArch, ImportOptions};
    use icm_import::seeded::seeded_state_dict;
    let img = icm::testimage::synthetic(96, 80, 11);
    for arch in [
        CompressaiArch::Bmshj2018Hyperprior,
        CompressaiArch::Mbt2018Mean,
    ] {
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("lambda".to_string(), "0.0130".to_string());
        let (_, model, _) = compressai::import(
            &seeded_state_dict(arch, 16, 24, 2),
            &ImportOptions {
                arch,
                name: "imported".into(),
                quality: Some(3),
                calibration: vec![img.clone()],
                calibration_source: "synthetic".into(),
                f16: false,
                extra,
            },
        )
        .expect("import");
        let at0 = encode(&img, &model, &with_effort(0, 64)).expect("effort 0");
        let at1 = encode(&img, &model, &with_effort(1, 64)).expect("effort 1, lambda from --meta");
        let (l0, _, _) = loss(&img, &at0, &model, 0.0130);
        let (l1, _, _) = loss(&img, &at1, &model, 0.0130);
        // The search keeps effort 0's latents unless its own loss is lower; the stream's
        // loss differs from that only by the rANS coder's rounding.
        assert!(
            l1 <= l0 * 1.002,
            "{arch:?}: effort 1 loss {l1} above effort 0's {l0}"
        );
    }
}

#[test]
fn cli_effort_encodes_reports_progress_and_refuses_bad_values() {
    use crate::common::{fresh_dir, icm, ok};
    let dir = fresh_dir("rdo_cli");
    let png = dir.join("in.png");
    let img = icm::testimage::synthetic(80, 64, 12);
    image::RgbImage::from_raw(img.width, img.height, img.data.clone())
        .expect("buffer")
        .save_with_format(&png, image::ImageFormat::Png)
        .expect("write png");
    let (png_s, out) = (png.to_str().expect("utf-8"), dir.join("out.icm"));
    let out_s = out.to_str().expect("utf-8");
    let seconds = dir.join("0");
    let run = icm(
        &["encode", png_s, "-o", out_s, "-q", "1", "--effort", "1"],
        &[("ICM_PROGRESS_SECONDS", &seconds)],
    );
    ok(&run, "encode --effort 1");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("progress 25/25"), "{stderr}");
    let stream = std::fs::read(&out).expect("stream");
    let decoded = decode(&stream, &zoo(1)).expect("an ordinary stream");
    assert_eq!((decoded.image.width, decoded.image.height), (80, 64));

    for (bad, name) in [
        ("--effort=4", "--effort"),
        ("--lambda=-1", "--lambda"),
        ("--lambda=x", "--lambda"),
    ] {
        let run = icm(&["encode", png_s, "-o", out_s, bad], &[]);
        assert!(!run.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(name), "{bad}: {stderr}");
    }
    // A model without a lambda entry: the error names what to give.
    let seeded = root().join("conformance/models/test-seed1-small.safetensors");
    let run = icm(
        &[
            "encode",
            png_s,
            "-o",
            out_s,
            "--model",
            seeded.to_str().expect("utf-8"),
            "--effort",
            "1",
        ],
        &[],
    );
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--lambda"), "{stderr}");
}
