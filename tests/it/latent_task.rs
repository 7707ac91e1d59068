//! The latent-domain classifier (issue 8): a task decoder on y^ that never runs g_s.
//!
//! * `python_sampling_equals_rust`: y^ sampled at the classifier crop's cells by the
//!   training code (models/training/icm_training/latent/inputs.py, through
//!   tests/python/latent_sampling.py) equals `icm_eval::task::latent::sample_crop` on the same
//!   `icm decode --latents` output, and that output equals what the library decodes;
//! * `python_det_sampling_equals_rust`: the same for the detector's letterbox grid
//!   (models/training/icm_training/latent/inputs.py against
//!   `icm_eval::task::latent_detection::sample_letterbox`);
//! * `shipped_latent_stem`, `shipped_latent_det_stem`: models/tasks/latent_cls_stem.onnx and
//!   latent_det_stem.onnx declare their input, cuts and grid;
//! * `latent_classifier_through_the_cli`: scripts/compose_latent_tasks.py composes the
//!   network into a temporary folder, `icm task-run --input-domain latents` classifies an
//!   .icm stream, and `icm task-eval --codec icm --input-domain latents` scores the same
//!   streams as `--codec icm` (same bitrates, same decode-then-infer accuracy) with fewer
//!   multiply-adds on the latent path;
//! * `latent_detector_through_the_cli`: the same for detection on the COCO subset
//!   (`--task detection`, mAP against decode-then-infer).
//!
//! Python (the project venv with numpy and Pillow; onnx and onnxruntime for the last), ONNX
//! Runtime and ../shared are needed by the first and last; without them those tests print
//! why and pass, except under `CI=true`, where that is a failure.

use crate::common::{cannot_run, fresh_dir, icm, ok, python_with, root};

use icm::codec;
use icm::model::Model;
use icm_eval::task::latent::{sample_crop, GRID};
use icm_eval::task::latent_detection::{self, sample_letterbox};
use icm_eval::task::LatentTensor;
use std::path::Path;
use std::process::Command;

/// Floor of the latent detector's mAP@.5 on the 8 COCO pictures of
/// `latent_detector_through_the_cli`, at qualities 1 and 6. The shipped stem scored 0.19 and
/// 0.17 there when it was shipped; a wrong sampling grid or a broken composition scores
/// about 0.
const MIN_LATENT_MAP50: f64 = 0.05;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn write_png(path: &Path, img: &icm::codec::RgbImage) {
    image::RgbImage::from_raw(img.width, img.height, img.data.clone())
        .expect("buffer")
        .save_with_format(path, image::ImageFormat::Png)
        .expect("png");
}

/// Codes a synthetic `w` x `h` picture at zoo quality `quality`, decodes its latents with
/// the CLI (`icm decode --latents`) and samples them with tests/python/latent_sampling.py
/// (`extra`: its options): the stream, y^, and the Python output's shape and values.
fn code_and_sample(
    py: &Path,
    dir: &Path,
    w: u32,
    h: u32,
    seed: u64,
    quality: &str,
    extra: &[&str],
) -> (std::path::PathBuf, LatentTensor, (Vec<usize>, Vec<f32>)) {
    let name = format!("{w}x{h}");
    let img = icm::testimage::synthetic(w, h, seed);
    let png = dir.join(format!("{name}.png"));
    write_png(&png, &img);
    let stream = dir.join(format!("{name}.icm"));
    let y_npy = dir.join(format!("{name}.y.npy"));
    let out_npy = dir.join(format!("{name}.py.npy"));
    let encode = ["encode", "-q", quality, s(&png), "-o", s(&stream)];
    ok(&icm(&encode, &[]), "encode");
    ok(
        &icm(&["decode", s(&stream), "--latents", s(&y_npy)], &[]),
        "decode",
    );
    let out = Command::new(py)
        .arg(root().join("tests/python/latent_sampling.py"))
        .args(extra)
        .args([s(&y_npy), &w.to_string(), &h.to_string(), s(&out_npy)])
        .output()
        .expect("python");
    ok(&out, "latent_sampling.py");
    let (shape, raw) = crate::common::read_npy_4(&y_npy, "<i4");
    let y = LatentTensor {
        channels: shape[0],
        height: shape[1],
        width: shape[2],
        data: raw.iter().map(|b| i32::from_le_bytes(*b)).collect(),
        image_width: w,
        image_height: h,
    };
    let (pshape, praw) = crate::common::read_npy_4(&out_npy, "<f4");
    let python = praw.iter().map(|b| f32::from_le_bytes(*b)).collect();
    (stream, y, (pshape, python))
}

/// `icm task-eval --task TASK --codec icm --input-domain DOMAIN` on the first 8 pictures of
/// `dataset` at qualities 1 and 6; the JSON results (also written as CSV).
fn eval_both(
    task: &str,
    dataset: &Path,
    dir: &Path,
    env: &[(&str, &Path)],
    domain: &str,
) -> serde_json::Value {
    let json = dir.join(format!("eval-{domain}.json"));
    let csv = dir.join(format!("eval-{domain}.csv"));
    let args = [
        "task-eval",
        "--task",
        task,
        "--dataset",
        s(dataset),
        "--codec",
        "icm",
        "--input-domain",
        domain,
        "--qualities",
        "1,6",
        "--limit",
        "8",
        "-o",
        s(&json),
        "--csv",
        s(&csv),
    ];
    ok(&icm(&args, env), domain);
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse")
}

/// Column `key` of an evaluation's results.
fn col(doc: &serde_json::Value, key: &str) -> Vec<f64> {
    doc["results"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}"))
        .iter()
        .filter_map(|v| v.as_f64())
        .collect()
}

#[test]
fn python_sampling_equals_rust() {
    let py = match python_with("numpy, PIL") {
        Ok(p) => p,
        Err(why) => return cannot_run(&why),
    };
    let dir = fresh_dir("latent_sampling");
    let model = Model::from_path(&root().join("models/icm-psnr-q1.safetensors")).expect("model");
    // Landscape, portrait (not multiples of 64: padded grids) and 256x256 (no resize).
    for (w, h, seed) in [(300u32, 200u32, 1u64), (180, 330, 2), (256, 256, 3)] {
        let name = format!("{w}x{h}");
        let (stream, y, (pshape, python)) = code_and_sample(&py, &dir, w, h, seed, "1", &[]);
        // The CLI's y^ is the library's (what task-eval hands the decoder).
        let bytes = std::fs::read(&stream).expect("stream");
        let parsed = icm::container::parse(&bytes).expect("parse");
        let lib = LatentTensor::from_latents(
            &parsed.header.tiling(),
            &codec::decode_latents(&bytes, &model).expect("latents"),
        );
        assert_eq!(
            (y.channels, y.height, y.width),
            (lib.channels, lib.height, lib.width),
            "{name}"
        );
        assert_eq!(y.data, lib.data, "{name}");
        assert_eq!(
            (lib.height, lib.width),
            (h.div_ceil(64) as usize * 4, w.div_ceil(64) as usize * 4)
        );

        let rust = sample_crop(&y).expect("sample");
        assert_eq!(pshape, vec![y.channels, GRID, GRID], "{name}");
        assert!(python.iter().any(|&v| v != 0.0), "{name}: all zero");
        let worst = rust
            .iter()
            .zip(&python)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "{name}: Rust and Python differ by {worst}");
        if (w, h) == (256, 256) {
            // No resize, crop offset 16: the cells 1..14, unchanged.
            for c in [0, 100, 191] {
                for (i, j) in [(0, 0), (5, 9), (13, 13)] {
                    let want = y.data[(c * y.height + i + 1) * y.width + j + 1] as f32 / 256.0;
                    assert_eq!(rust[(c * GRID + i) * GRID + j], want);
                }
            }
        }
    }
}

#[test]
fn python_det_sampling_equals_rust() {
    let py = match python_with("numpy, PIL") {
        Ok(p) => p,
        Err(why) => return cannot_run(&why),
    };
    let dir = fresh_dir("latent_det_sampling");
    // COCO's 640x480 (scaled by 0.65, padding below), a portrait (padding right), a small
    // picture scaled up, and 416x416 (no resize).
    for (w, h, seed) in [
        (640u32, 480u32, 1u64),
        (200, 330, 2),
        (150, 100, 3),
        (416, 416, 4),
    ] {
        let name = format!("{w}x{h}");
        let (_, y, (pshape, python)) =
            code_and_sample(&py, &dir, w, h, seed, "2", &["--detection"]);
        let (rust, _) = sample_letterbox(&y).expect("sample");
        let g = latent_detection::GRID;
        assert_eq!(pshape, vec![y.channels + 1, g, g], "{name}");
        let worst = rust
            .iter()
            .zip(&python)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "{name}: Rust and Python differ by {worst}");
        // The coverage channel: full cells inside the scaled picture, none beyond it.
        let cov = &rust[y.channels * g * g..];
        let (_, nw, nh) = icm_eval::task::detection::letterbox_geometry(w, h);
        assert_eq!(cov[0], 1.0, "{name}");
        let full = (nw / 16) as usize * (nh / 16) as usize;
        assert_eq!(cov.iter().filter(|&&v| v == 1.0).count(), full, "{name}");
    }
}

/// Reads a stem of models/tasks/, checks what both latent stems declare (a stem-sized file,
/// input `latents` of 192 channels on a `grid` x `grid` grid, a training record with steps)
/// and returns its metadata lookup.
fn shipped_stem(file: &str, max_bytes: usize, grid: usize) -> impl Fn(&str) -> String {
    let path = root().join("models/tasks").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() < max_bytes,
        "{file}: {} bytes: a stem, not a network",
        bytes.len()
    );
    let meta =
        move |k: &str| crate::common::onnx_metadata(&bytes, k).unwrap_or_else(|| panic!("{k}"));
    assert_eq!(meta("icm.input"), "latents");
    assert_eq!(meta("icm.grid"), grid.to_string());
    assert_eq!(meta("icm.latent_channels"), "192");
    let training: serde_json::Value = serde_json::from_str(&meta("icm.training")).expect("json");
    assert!(training["steps"].as_u64().unwrap_or(0) > 0, "{training}");
    meta
}

#[test]
fn shipped_latent_det_stem() {
    let meta = shipped_stem("latent_det_stem.onnx", 8 << 20, latent_detection::GRID);
    assert_eq!(meta("icm.task"), "detection");
    assert_eq!(meta("icm.cuts").split(',').count(), 3);
}

#[test]
fn shipped_latent_stem() {
    let meta = shipped_stem("latent_cls_stem.onnx", 2 << 20, GRID);
    assert!(meta("icm.cut").contains("expanded_conv_6/project"));
}

#[test]
fn latent_classifier_through_the_cli() {
    let Some(crate::common::ComposedClassifier {
        sample,
        dir,
        cache,
        first,
    }) = crate::common::composed_classifier("compose_latent_tasks.py", "latent_task_cli")
    else {
        return;
    };
    let env = [("ICM_TASK_CACHE", cache.as_path())];

    // task-run on an .icm stream of the first picture of labels.csv: y^ only, five sorted
    // probabilities.
    let png = dir.join("first.png");
    let img = icm_eval::picture::read_rgb(&first).expect("image");
    write_png(&png, &img);
    let stream = dir.join("first.icm");
    ok(
        &icm(&["encode", "-q", "4", s(&png), "-o", s(&stream)], &[]),
        "encode",
    );
    let text = ok(
        &icm(
            &[
                "task-run",
                "--task",
                "classification",
                "--input-domain",
                "latents",
                "--json",
                s(&stream),
            ],
            &env,
        ),
        "task-run",
    );
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(doc["input_domain"], "latents");
    let scores: Vec<f64> = doc["top5"]
        .as_array()
        .expect("top5")
        .iter()
        .filter_map(|v| v["score"].as_f64())
        .collect();
    assert_eq!(scores.len(), 5, "{text}");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{text}");
    assert!(
        scores[0] > 0.0 && scores.iter().sum::<f64>() <= 1.0 + 1e-6,
        "{text}"
    );

    // task-eval on 8 pictures at qualities 1 and 6, latents against decode-then-infer, and
    // the plain `--codec icm` run on the same pictures.
    let lat = eval_both("classification", &sample, &dir, &env, "latents");
    let rgb = eval_both("classification", &sample, &dir, &env, "rgb");
    assert_eq!(lat["name"], "icm-latents");
    // The same streams: the same bitrates, and decode-then-infer scores as `--codec icm`.
    assert_eq!(col(&lat, "bpp"), col(&rgb, "bpp"));
    assert_eq!(col(&lat, "rgb_top1"), col(&rgb, "top1"));
    assert_eq!(col(&lat, "rgb_top5"), col(&rgb, "top5"));
    let bpp = col(&lat, "bpp");
    assert!(0.0 < bpp[0] && bpp[0] < bpp[1], "{bpp:?}");
    // The latent path skips g_s: far fewer multiply-adds, less decoding time.
    let (macs, rgb_macs) = (col(&lat, "macs"), col(&lat, "rgb_macs"));
    assert_eq!(macs.len(), 2);
    for k in 0..2 {
        assert!(
            0.0 < macs[k] && 3.0 * macs[k] < rgb_macs[k],
            "{macs:?} {rgb_macs:?}"
        );
    }
    let (dec, rgb_dec) = (col(&lat, "decode_s"), col(&lat, "rgb_decode_s"));
    assert!(
        dec.iter().sum::<f64>() < rgb_dec.iter().sum::<f64>(),
        "{dec:?} {rgb_dec:?}"
    );
    // The shipped stem is weak (when it was shipped: 3 of these 16
    // classifications right at top-1, 5 at top-5, against 12 for decode-then-infer) but far
    // above chance (0.001 a picture; two hits of 16 by chance: about 1e-4): a wrong
    // sampling grid or a broken composition gives none.
    let hits = |key: &str| (col(&lat, key).iter().sum::<f64>() * 8.0).round();
    assert!(hits("top1") >= 2.0, "latent top-1 {:?}", col(&lat, "top1"));
    assert!(hits("top5") >= 3.0, "latent top-5 {:?}", col(&lat, "top5"));
    for key in ["top5", "infer_s", "rgb_infer_s", "task_time", "coding_time"] {
        assert_eq!(col(&lat, key).len(), 2, "{key}");
    }

    // Usage errors: latents need icm streams.
    for (args, want) in [
        (
            vec!["--codec", "jpeg-ijg", "--input-domain", "latents"],
            "--codec icm",
        ),
        (
            vec!["--codec", "none", "--input-domain", "latents"],
            "--codec icm",
        ),
    ] {
        let mut all = vec![
            "task-eval",
            "--task",
            "classification",
            "--dataset",
            s(&sample),
        ];
        all.extend(args);
        let out = icm(&all, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
    let out = icm(
        &[
            "task-run",
            "--task",
            "classification",
            "--input-domain",
            "latents",
            s(&png),
        ],
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(".icm stream"), "{stderr}");
}

#[test]
fn latent_detector_through_the_cli() {
    let coco = root().join("../shared/data/coco");
    if !coco.join("annotations").is_dir() {
        return cannot_run(&format!("{} not present", coco.display()));
    }
    // Composes both latent networks (the classifier's sample is not used here).
    let Some(crate::common::ComposedClassifier { dir, cache, .. }) =
        crate::common::composed_classifier("compose_latent_tasks.py", "latent_det_cli")
    else {
        return;
    };
    let env = [("ICM_TASK_CACHE", cache.as_path())];

    // task-run on an .icm stream of a COCO picture: y^ only, boxes in picture coordinates.
    let png = dir.join("coco.png");
    let img = icm_eval::picture::read_rgb(&coco.join("val2017/000000000139.jpg")).expect("image");
    write_png(&png, &img);
    let stream = dir.join("coco.icm");
    ok(
        &icm(&["encode", "-q", "3", s(&png), "-o", s(&stream)], &[]),
        "encode",
    );
    let text = ok(
        &icm(
            &[
                "task-run",
                "--task",
                "detection",
                "--input-domain",
                "latents",
                "--min-score",
                "0.05",
                "--json",
                s(&stream),
            ],
            &env,
        ),
        "task-run",
    );
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(doc["input_domain"], "latents");
    let dets = doc["detections"].as_array().expect("detections");
    assert!(!dets.is_empty(), "{text}");
    for d in dets {
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .expect("bbox")
            .iter()
            .filter_map(|v| v.as_f64())
            .collect();
        // Inside the picture up to YOLOX's unclipped box edges.
        let (w, h) = (f64::from(img.width), f64::from(img.height));
        assert!(
            b[0] > -0.25 * w
                && b[1] > -0.25 * h
                && b[0] + b[2] < 1.25 * w
                && b[1] + b[3] < 1.25 * h,
            "{d}"
        );
    }

    // task-eval on 8 COCO pictures at qualities 1 and 6, latents against decode-then-infer,
    // and the plain `--codec icm` run on the same pictures.
    let lat = eval_both("detection", &coco, &dir, &env, "latents");
    let rgb = eval_both("detection", &coco, &dir, &env, "rgb");
    assert_eq!(col(&lat, "bpp"), col(&rgb, "bpp"));
    assert_eq!(col(&lat, "rgb_map"), col(&rgb, "map"));
    let (macs, rgb_macs) = (col(&lat, "macs"), col(&lat, "rgb_macs"));
    assert_eq!(macs.len(), 2);
    for k in 0..2 {
        assert!(
            0.0 < macs[k] && 3.0 * macs[k] < rgb_macs[k],
            "{macs:?} {rgb_macs:?}"
        );
    }
    // A wrong grid or a broken composition finds nothing; the shipped stem finds objects.
    let map50 = col(&lat, "map50");
    assert!(
        map50.iter().all(|&m| m > MIN_LATENT_MAP50),
        "latent mAP@.5 {map50:?}"
    );
}
