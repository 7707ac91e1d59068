//! `icm task-run` / `icm task-eval` end to end: a missing or bad ONNX Runtime is a one-line
//! error naming scripts/setup_onnxruntime.sh (never a panic), and with the runtime and
//! ../shared present, task-eval writes the `icm eval` layout that `icm bd-rate` reads.

use crate::common::{ffmpeg, fresh_dir, onnx_runtime, shared, with_tasks};
use std::path::Path;
use std::process::{Command, Output};

fn write_png(path: &Path) {
    let img = icm::testimage::synthetic(96, 64, 1);
    image::RgbImage::from_raw(img.width, img.height, img.data)
        .expect("buffer")
        .save_with_format(path, image::ImageFormat::Png)
        .expect("png");
}

fn icm(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_icm"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.output().expect("run icm")
}

fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("icm: error: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn missing_or_bad_runtime_is_a_clear_error() {
    if !cfg!(feature = "tasks") {
        return;
    }
    let dir = fresh_dir("task_cli_runtime");
    let png = dir.join("a.png");
    write_png(&png);
    // Any file will do as the model: the runtime is looked for first.
    let model = dir.join("fake.onnx");
    std::fs::write(&model, b"not a model").expect("write");
    let args = [
        "task-run",
        "--task",
        "detection",
        "--task-model",
        model.to_str().expect("utf-8"),
        png.to_str().expect("utf-8"),
    ];
    let nowhere = dir.join("no-venv");
    let out = icm(
        &args,
        &[("ICM_VENV", nowhere.to_str().expect("utf-8"))],
        &["ORT_DYLIB_PATH"],
    );
    assert_clean_error(&out, "scripts/setup_onnxruntime.sh");
    assert_clean_error(&out, "not found");

    let fake_lib = dir.join("libonnxruntime.so.1.32.0");
    std::fs::write(&fake_lib, b"plain text").expect("write");
    let out = icm(
        &args,
        &[("ORT_DYLIB_PATH", fake_lib.to_str().expect("utf-8"))],
        &[],
    );
    assert_clean_error(&out, "not an ELF shared library");

    // A missing task network is named too.
    let out = icm(
        &[
            "task-run",
            "--task",
            "classification",
            "--task-model",
            dir.join("absent.onnx").to_str().expect("utf-8"),
            png.to_str().expect("utf-8"),
        ],
        &[],
        &[],
    );
    assert_clean_error(&out, "task model not found");
}

#[test]
fn task_eval_results_feed_bd_rate() {
    if !with_tasks() {
        return;
    }
    let (Some(coco), Some(_)) = (
        shared("data/coco"),
        shared("models/yolox_nano/yolox_nano.onnx"),
    ) else {
        return;
    };
    if !onnx_runtime() {
        return;
    }
    let dir = fresh_dir("task_cli_eval");
    let json_path = dir.join("det.json");
    let csv_path = dir.join("det.csv");
    let out = icm(
        &[
            "task-eval",
            "--task",
            "detection",
            "--dataset",
            coco.to_str().expect("utf-8"),
            "--codec",
            "icm",
            "--qualities",
            "1,6",
            "--limit",
            "3",
            "-o",
            json_path.to_str().expect("utf-8"),
            "--csv",
            csv_path.to_str().expect("utf-8"),
        ],
        &[],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json")).expect("parse");
    assert_eq!(doc["name"], "icm");
    assert_eq!(doc["task"], "detection");
    assert_eq!(doc["images"], 3);
    let col = |k: &str| -> Vec<f64> {
        doc["results"][k]
            .as_array()
            .unwrap_or_else(|| panic!("results.{k}"))
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let (bpp, map, map50) = (col("bpp"), col("map"), col("map50"));
    assert_eq!(bpp.len(), 2);
    assert!(bpp[0] < bpp[1], "{bpp:?}");
    for (m, m50) in map.iter().zip(&map50) {
        assert!(*m > 0.0 && m <= m50 && *m50 <= 1.0, "{map:?} {map50:?}");
    }
    let csv = std::fs::read_to_string(&csv_path).expect("csv");
    assert!(
        csv.starts_with("codec,label,quality,images,bpp,map,map50,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
    // bd-rate finds the map column in both files (two points: cubic cannot fit, pchip can
    // when mAP grows with rate; either way the column must be found).
    for path in [&json_path, &csv_path] {
        let p = path.to_str().expect("utf-8");
        let out = icm(
            &[
                "bd-rate", "--anchor", p, "--test", p, "--metric", "map", "--json",
            ],
            &[],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("no map") && !stderr.contains("no results.map"),
            "{stderr}"
        );
        if out.status.success() {
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bd json");
            assert!(r["bd_rate_percent"]
                .as_f64()
                .is_some_and(|v| v.abs() < 1e-9));
        }
    }
}

/// A conventional codec (JPEG, fast) through the anchor path feeds task-eval like icm does.
#[test]
fn task_eval_with_a_conventional_codec() {
    if !with_tasks() {
        return;
    }
    let (Some(coco), Some(_)) = (shared("data/coco"), ffmpeg()) else {
        return;
    };
    if !onnx_runtime() {
        return;
    }
    let dir = fresh_dir("task_cli_jpeg");
    let json_path = dir.join("det.json");
    let out = icm(
        &[
            "task-eval",
            "--task",
            "detection",
            "--dataset",
            coco.to_str().expect("utf-8"),
            "--codec",
            "jpeg",
            "--qps",
            "3,31",
            "--limit",
            "2",
            "-o",
            json_path.to_str().expect("utf-8"),
        ],
        &[],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json")).expect("parse");
    assert_eq!(doc["name"], "jpeg");
    let bpp: Vec<f64> = doc["results"]["bpp"]
        .as_array()
        .expect("bpp")
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    // qscale 3 spends more bits than qscale 31.
    assert_eq!(bpp.len(), 2);
    assert!(bpp[0] > bpp[1] && bpp[1] > 0.0, "{bpp:?}");
    // --qualities belongs to icm, --qps to conventional codecs.
    let bad = icm(
        &[
            "task-eval",
            "--task",
            "detection",
            "--dataset",
            "x",
            "--codec",
            "jpeg",
            "--qualities",
            "1",
        ],
        &[],
        &[],
    );
    assert!(!bad.status.success());
}

/// Classification with icm and detection with VVC (the anchor of the task BD-rates), each
/// on 2 pictures at 2 rate points: the accuracy columns and the rates are there and sane.
#[test]
fn task_eval_classification_and_vvc() {
    if !with_tasks() {
        return;
    }
    let (Some(coco), Some(inet), Some(_)) = (
        shared("data/coco"),
        shared("data/imagenet-val-sample"),
        ffmpeg(),
    ) else {
        return;
    };
    if !onnx_runtime() {
        return;
    }
    let dir = fresh_dir("task_cli_cls_vvc");
    let run = |task: &str, ds: &Path, codec: &str, rate: [&str; 2], name: &str| {
        let json_path = dir.join(name);
        let out = icm(
            &[
                "task-eval",
                "--task",
                task,
                "--dataset",
                ds.to_str().expect("utf-8"),
                "--codec",
                codec,
                rate[0],
                rate[1],
                "--limit",
                "2",
                "-o",
                json_path.to_str().expect("utf-8"),
            ],
            &[],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{task} {codec}: {stderr}");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json_path).expect("json")).expect("parse");
        assert_eq!(doc["images"], 2);
        doc
    };
    let col = |doc: &serde_json::Value, k: &str| -> Vec<f64> {
        doc["results"][k]
            .as_array()
            .unwrap_or_else(|| panic!("results.{k}"))
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let cls = run(
        "classification",
        &inet,
        "icm",
        ["--qualities", "1,6"],
        "cls.json",
    );
    let (bpp, top1, top5) = (col(&cls, "bpp"), col(&cls, "top1"), col(&cls, "top5"));
    assert!(bpp.len() == 2 && bpp[0] < bpp[1], "{bpp:?}");
    for (t1, t5) in top1.iter().zip(&top5) {
        // 2 pictures: accuracies are 0, 0.5 or 1, and top-5 includes top-1.
        assert!(
            [0.0, 0.5, 1.0].contains(t1) && t1 <= t5,
            "{top1:?} {top5:?}"
        );
    }
    let det = run(
        "detection",
        &coco,
        "vvc",
        ["--qps", "32,47"],
        "det_vvc.json",
    );
    let (bpp, map) = (col(&det, "bpp"), col(&det, "map"));
    // QP 32 spends more bits than QP 47 and keeps at least as much of the detections.
    assert!(bpp.len() == 2 && bpp[0] > bpp[1] && bpp[1] > 0.0, "{bpp:?}");
    assert!(map.iter().all(|m| (0.0..=1.0).contains(m)), "{map:?}");
    assert_eq!(det["rate_points"][0]["label"], "vvc-qp32");
}
