//! `icm anchor` end to end through a real ffmpeg: VVC at two QPs and JPEG at one level on
//! one small synthetic image, the cache, `--keep`, errors, and `icm plot` of the result.
//!
//! Needs the ffmpeg of the PyPI wheel imageio-ffmpeg (`scripts/setup_ffmpeg.sh`, which
//! `scripts/test.sh` runs), or `ICM_FFMPEG`. Without it the test prints why and passes,
//! except when `CI` is `true`: there a missing ffmpeg is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    dir
}

fn icm(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run icm")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("json")
}

fn column(doc: &serde_json::Value, key: &str) -> Vec<f64> {
    doc["results"][key]
        .as_array()
        .unwrap_or_else(|| panic!("results.{key}"))
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[test]
fn vvc_and_jpeg_anchors_end_to_end() {
    let Some(ff) = crate::common::ffmpeg() else {
        return;
    };
    let dir = fresh_dir("anchor_cli");
    // 98x66: even but not a multiple of 8, so the encoder's own padding is exercised.
    let img = icm::testimage::synthetic(98, 66, 5);
    image::RgbImage::from_raw(img.width, img.height, img.data.clone())
        .expect("buffer")
        .save(dir.join("images/a.png"))
        .expect("png");

    let run = |extra: &[&str]| {
        let mut args = vec![
            "anchor",
            "--codec",
            "vvc",
            "--qps",
            "27,42",
            "--dataset",
            "images",
            "--cache-dir",
            "cache",
            "-o",
            "vvc.json",
        ];
        args.extend_from_slice(extra);
        icm(&args, &dir)
    };
    let out = run(&["--keep", "kept"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "icm anchor failed: {stderr}");
    assert!(
        stderr.contains("0 of 2 codings read from the cache"),
        "{stderr}"
    );
    let first = json(&dir.join("vvc.json"));
    assert_eq!(first["name"], "vvc");
    let bpp = column(&first, "bpp");
    let psnr = column(&first, "psnr-rgb");
    assert_eq!(bpp.len(), 2);
    // QP 27 spends more bits and gives a better picture than QP 42.
    assert!(bpp[0] > bpp[1] && bpp[1] > 0.0, "{bpp:?}");
    assert!(psnr[0] > psnr[1] && psnr[1] > 15.0, "{psnr:?}");
    // The rate is the size of the raw VVC bitstream that was written.
    let stream = std::fs::read(dir.join("kept/a.vvc-qp27.266")).expect("kept bitstream");
    assert!(stream.starts_with(&[0, 0, 0, 1]) || stream.starts_with(&[0, 0, 1]));
    let expect_bpp = stream.len() as f64 * 8.0 / (98.0 * 66.0);
    assert!(
        (bpp[0] - expect_bpp).abs() < 1e-12,
        "{} vs {expect_bpp}",
        bpp[0]
    );
    assert!(dir.join("kept/a.vvc-qp42.png").is_file());
    let settings = first["rate_points"][0]["settings"].as_str().unwrap_or("");
    for s in ["libvvenc", "-qpa 0", "IntraQPOffset=0", "yuv420p10le"] {
        assert!(settings.contains(s), "{settings}");
    }

    // A rerun reads everything from the cache and reports the same figures.
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("2 of 2 codings read from the cache"),
        "{stderr}"
    );
    let second = json(&dir.join("vvc.json"));
    assert_eq!(second["results"]["bpp"], first["results"]["bpp"]);
    assert_eq!(second["results"]["psnr-rgb"], first["results"]["psnr-rgb"]);

    // A user's encoder command (here ffmpeg itself with the same settings) gives the same
    // bitstream as the built-in encoder path.
    let cmd = format!(
        "'{}' -hide_banner -nostdin -loglevel error -y -f rawvideo -pix_fmt yuv420p10le \
         -s {{width}}x{{height}} -i {{in}} -c:v libvvenc -preset medium -qp {{qp}} -qpa 0 \
         -vvenc-params IntraQPOffset=0 -f rawvideo {{out}}",
        ff.display()
    );
    let out = icm(
        &[
            "anchor",
            "--codec",
            "vvc",
            "--qps",
            "27",
            "--dataset",
            "images",
            "--no-cache",
            "--encoder-cmd",
            &cmd,
            "-o",
            "cmd.json",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_cmd = json(&dir.join("cmd.json"));
    assert_eq!(column(&via_cmd, "bpp"), vec![bpp[0]]);
    assert_eq!(column(&via_cmd, "psnr-rgb"), vec![psnr[0]]);

    // An image codec (JPEG) through the same path.
    let out = icm(
        &[
            "anchor",
            "--codec",
            "jpeg",
            "--qps",
            "4",
            "--dataset",
            "images",
            "--no-cache",
            "-o",
            "jpeg.json",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jpeg = json(&dir.join("jpeg.json"));
    assert!(column(&jpeg, "psnr-rgb")[0] > 15.0);

    // And the plot of both.
    let out = icm(&["plot", "vvc.json", "jpeg.json", "-o", "rd.png"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.join("rd.png")).expect("plot");
    assert!(png.starts_with(b"\x89PNG"));
}

#[test]
fn anchor_errors_are_one_line() {
    let dir = fresh_dir("anchor_errors");
    let cases: [(&[&str], &str); 4] = [
        (
            &["anchor", "--codec", "mpeg2", "--dataset", "images"],
            "expected one of",
        ),
        (
            &[
                "anchor",
                "--codec",
                "vvc",
                "--qps",
                "70",
                "--dataset",
                "images",
            ],
            "not a valid qp",
        ),
        (
            &[
                "anchor",
                "--ffmpeg",
                "/nonexistent/ffmpeg",
                "--dataset",
                "images",
            ],
            "/nonexistent/ffmpeg",
        ),
        (
            &[
                "anchor",
                "--codec",
                "jpeg",
                "--encoder-cmd",
                "true",
                "--dataset",
                "images",
            ],
            "replaces only video encoders",
        ),
    ];
    for (args, want) in cases {
        let out = icm(args, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
