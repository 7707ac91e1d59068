//! `icm eval` end to end: two synthetic PNGs, the small conformance model, JSON and CSV.

use std::path::{Path, PathBuf};
use std::process::Command;

fn write_png(path: &Path, img: &icm::codec::RgbImage) {
    let buf = image::RgbImage::from_raw(img.width, img.height, img.data.clone()).expect("buffer");
    buf.save_with_format(path, image::ImageFormat::Png)
        .expect("write png");
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    dir
}

#[test]
fn eval_writes_compressai_layout() {
    let dir = fresh_dir("eval_cli");
    let images = dir.join("images");
    write_png(
        &images.join("b.png"),
        &icm::testimage::synthetic(200, 192, 2),
    );
    write_png(
        &images.join("a.png"),
        &icm::testimage::synthetic(192, 208, 1),
    );
    std::fs::write(images.join("notes.txt"), "not an image").expect("write");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/models/test-seed1-small.safetensors");
    let json_path = dir.join("results.json");
    let csv_path = dir.join("results.csv");

    let out = Command::new(env!("CARGO_BIN_EXE_icm"))
        .arg("eval")
        .arg("--dataset")
        .arg(&images)
        .arg("--model")
        .arg(&model)
        .arg("-o")
        .arg(&json_path)
        .arg("--csv")
        .arg(&csv_path)
        .output()
        .expect("run icm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "icm eval failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PSNR-RGB"), "{stdout}");

    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("read json")).expect("json");
    assert_eq!(doc["name"], "icm");
    assert!(doc["description"].is_string());
    let results = &doc["results"];
    for key in [
        "bpp",
        "psnr-rgb",
        "ms-ssim",
        "encoding_time",
        "decoding_time",
    ] {
        let column = results[key].as_array().expect(key);
        assert_eq!(column.len(), 1, "{key}: one rate point");
    }
    let bpp = results["bpp"][0].as_f64().expect("bpp");
    let psnr = results["psnr-rgb"][0].as_f64().expect("psnr");
    let ms_ssim = results["ms-ssim"][0].as_f64().expect("ms-ssim");
    assert!(bpp > 0.0, "bpp {bpp}");
    assert!(psnr.is_finite(), "psnr {psnr}");
    assert!((0.0..=1.0).contains(&ms_ssim), "ms-ssim {ms_ssim}");

    let per_image = doc["per_image"].as_array().expect("per_image");
    let names: Vec<&str> = per_image
        .iter()
        .map(|r| r["image"].as_str().expect("image"))
        .collect();
    assert_eq!(names, ["a.png", "b.png"]);
    for r in per_image {
        assert!(r["bpp"].as_f64().expect("bpp") > 0.0);
        assert!(r["psnr-rgb"].as_f64().expect("psnr").is_finite());
        assert!(r["ms-ssim"].as_f64().is_some());
        assert!(r["encoding_time"].as_f64().expect("enc") >= 0.0);
    }
    let mean_bpp = per_image
        .iter()
        .map(|r| r["bpp"].as_f64().unwrap_or(f64::NAN))
        .sum::<f64>()
        / 2.0;
    assert!((mean_bpp - bpp).abs() < 1e-12);

    let csv = std::fs::read_to_string(&csv_path).expect("read csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "model,quality,image,bpp,psnr,ms_ssim,enc_s,dec_s");
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].contains(",a.png,"));
    assert!(lines[3].contains(",mean,"));
    assert!(lines.iter().all(|l| l.split(',').count() == 8));
}

#[test]
fn eval_reports_missing_dataset() {
    let dir = fresh_dir("eval_cli_missing");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/models/test-seed1-small.safetensors");
    let missing = dir.join("no-such-dir");
    let out = Command::new(env!("CARGO_BIN_EXE_icm"))
        .arg("eval")
        .arg("--dataset")
        .arg(&missing)
        .arg("--model")
        .arg(&model)
        .output()
        .expect("run icm");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no-such-dir"), "{stderr}");
}
