//! The command line as a new user meets it (issue 24): every picture format `icm encode`
//! reads, the output format chosen by extension, values refused rather than silently
//! changed, output paths checked before any work, options offered only where they act, and
//! progress lines when stderr is not a terminal.

use crate::common::{fresh_dir, icm, ok, root};
use std::path::{Path, PathBuf};

fn small_model() -> PathBuf {
    root().join("conformance/models/test-seed1-small.safetensors")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `icm` and returns its output, which must be a failure.
fn fails(args: &[&str]) -> String {
    let out = icm(args, &[]);
    assert!(
        !out.status.success(),
        "icm {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr(&out)
}

fn save(img: &icm::codec::RgbImage, path: &Path, format: image::ImageFormat) {
    image::RgbImage::from_raw(img.width, img.height, img.data.clone())
        .expect("buffer")
        .save_with_format(path, format)
        .expect("save");
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A fresh folder `name` holding `in.png`, a synthetic `w x h` picture.
fn picture(name: &str, w: u32, h: u32) -> (PathBuf, PathBuf) {
    let dir = fresh_dir(name);
    let input = dir.join("in.png");
    save(
        &icm::testimage::synthetic(w, h, 1),
        &input,
        image::ImageFormat::Png,
    );
    (dir, input)
}

/// Decodes `stream` to `out` with the small conformance model; must succeed.
fn decode_small(stream: &Path, out: &Path, what: &str) {
    let model = small_model();
    ok(
        &icm(
            &["decode", p(stream), "-o", p(out), "--model", p(&model)],
            &[],
        ),
        what,
    );
}

/// Encodes `input` to `stream` with the small conformance model; must succeed.
fn encode_small(input: &Path, stream: &Path) {
    let model = small_model();
    ok(
        &icm(
            &["encode", p(input), "-o", p(stream), "--model", p(&model)],
            &[],
        ),
        "encode",
    );
}

#[test]
fn encode_reads_jpeg_webp_tiff_and_16_bit_png() {
    let dir = fresh_dir("cli_usage_formats");
    let img = icm::testimage::synthetic(70, 50, 3);
    let model = small_model();
    let mut inputs = Vec::new();
    for (name, format) in [
        ("in.jpg", image::ImageFormat::Jpeg),
        ("in.webp", image::ImageFormat::WebP),
        ("in.tiff", image::ImageFormat::Tiff),
        ("in.bmp", image::ImageFormat::Bmp),
    ] {
        let path = dir.join(name);
        save(&img, &path, format);
        inputs.push(path);
    }
    // 16-bit PNG with v * 257: reduced to exactly the 8-bit picture
    let wide: Vec<u16> = img.data.iter().map(|&v| u16::from(v) * 257).collect();
    let png16 = dir.join("in16.png");
    image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(img.width, img.height, wide)
        .expect("buffer")
        .save(&png16)
        .expect("save");
    let png8 = dir.join("in8.png");
    save(&img, &png8, image::ImageFormat::Png);
    inputs.push(png16.clone());
    for input in &inputs {
        let stream = input.with_extension("icm");
        let out = icm(
            &["encode", p(input), "-o", p(&stream), "--model", p(&model)],
            &[],
        );
        ok(&out, &format!("encode {}", input.display()));
        assert!(std::fs::metadata(&stream).expect("stream").len() > 0);
    }
    let s8 = png8.with_extension("8.icm");
    ok(
        &icm(
            &["encode", p(&png8), "-o", p(&s8), "--model", p(&model)],
            &[],
        ),
        "encode 8-bit png",
    );
    assert_eq!(
        std::fs::read(&s8).expect("8-bit stream"),
        std::fs::read(png16.with_extension("icm")).expect("16-bit stream"),
        "a 16-bit PNG of v * 257 must code as the 8-bit picture"
    );
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a picture").expect("write");
    let e = fails(&["encode", p(&text), "-o", p(&dir.join("x.icm"))]);
    assert!(e.contains("notes.txt") && e.contains("WebP"), "{e}");
}

#[test]
fn decode_writes_the_format_of_the_extension() {
    let (dir, input) = picture("cli_usage_decode", 40, 30);
    let stream = dir.join("in.icm");
    let model = small_model();
    encode_small(&input, &stream);
    for (name, format) in [
        ("out.png", image::ImageFormat::Png),
        ("out.ppm", image::ImageFormat::Pnm),
        ("out.JPG", image::ImageFormat::Jpeg),
    ] {
        let out = dir.join(name);
        decode_small(&stream, &out, name);
        let bytes = std::fs::read(&out).expect("output");
        assert_eq!(
            image::guess_format(&bytes).expect("format"),
            format,
            "{name}"
        );
        if format == image::ImageFormat::Pnm {
            assert!(bytes.starts_with(b"P6\n"), "binary PPM, not PAM");
        }
    }
    let e = fails(&[
        "decode",
        p(&stream),
        "-o",
        p(&dir.join("out.gif")),
        "--model",
        p(&model),
    ]);
    assert!(e.contains("out.gif") && e.contains(".png"), "{e}");
    assert!(!dir.join("out.gif").exists());
}

#[test]
fn silent_coercions_are_refused() {
    let (dir, input) = picture("cli_usage_refused", 40, 30);
    let out = dir.join("o.icm");
    for tile in ["100x100", "32", "4096", "0", "64x96"] {
        let e = fails(&["encode", p(&input), "-o", p(&out), "--tile", tile]);
        assert!(
            e.contains("--tile") && e.contains("multiples of 64"),
            "{tile}: {e}"
        );
    }
    let e = fails(&[
        "encode",
        p(&input),
        "-o",
        p(&out),
        "--model",
        p(&small_model()),
        "--quality",
        "2",
    ]);
    assert!(e.contains("--quality") && e.contains("--model"), "{e}");
    assert!(!out.exists());
    // 128x64 is a valid tile
    ok(
        &icm(
            &[
                "encode",
                p(&input),
                "-o",
                p(&out),
                "--model",
                p(&small_model()),
                "--tile",
                "128x64",
            ],
            &[],
        ),
        "--tile 128x64",
    );
}

#[test]
fn output_paths_are_checked_before_any_work() {
    let dir = fresh_dir("cli_usage_outputs");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    save(
        &icm::testimage::synthetic(64, 64, 1),
        &images.join("a.png"),
        image::ImageFormat::Png,
    );
    let model = small_model();
    let missing = dir.join("no-such-folder/e.json");
    let out = icm(
        &[
            "eval",
            "--dataset",
            p(&images),
            "--model",
            p(&model),
            "-o",
            p(&missing),
        ],
        &[],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("no-such-folder"), "{e}");
    // nothing was evaluated: no table on stdout
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let e = fails(&[
        "eval",
        "--dataset",
        p(&images),
        "--model",
        p(&model),
        "--csv",
        p(&images),
    ]);
    assert!(e.contains("is a folder"), "{e}");
    let e = fails(&[
        "encode",
        p(&images.join("a.png")),
        "-o",
        p(&dir.join("nowhere/a.icm")),
    ]);
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn options_are_offered_only_where_they_act() {
    for args in [
        ["bd-rate", "--threads", "2"],
        ["plot", "--threads", "2"],
        ["dct", "--model-dir", "x"],
        ["plot", "--model-dir", "x"],
    ] {
        let e = fails(&args);
        assert!(e.contains("unexpected argument"), "{args:?}: {e}");
    }
    let help = ok(&icm(&["decode", "--help"], &[]), "decode --help");
    assert!(
        help.contains("--threads") && help.contains("--model-dir"),
        "{help}"
    );
    for n in ["0", "257", "100000"] {
        let e = fails(&["decode", "x.icm", "--hash", "--threads", n]);
        assert!(e.contains("--threads"), "{n}: {e}");
    }
}

#[test]
fn progress_is_reported_in_lines_when_stderr_is_not_a_terminal() {
    let dir = fresh_dir("cli_usage_progress");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    for (i, name) in ["a.png", "b.png"].iter().enumerate() {
        save(
            &icm::testimage::synthetic(64, 64, i as u64),
            &images.join(name),
            image::ImageFormat::Png,
        );
    }
    let model = small_model();
    let args = ["eval", "--dataset", p(&images), "--model", p(&model)];
    // every item with a zero interval
    let out = icm(&args, &[("ICM_PROGRESS_SECONDS", Path::new("0"))]);
    ok(&out, "eval");
    let e = stderr(&out);
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("icm: progress"))
        .collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].contains("1/2") && lines[1].contains("2/2 (100 %)"),
        "{e}"
    );
    // with the default interval: the closing line only
    let out = icm(&args, &[]);
    ok(&out, "eval");
    let e = stderr(&out);
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("icm: progress"))
        .collect();
    assert_eq!(lines, vec![lines[0]], "{e}");
    assert!(lines[0].contains("2/2"), "{e}");
}

/// Issue 20 item 4: an output never destroys an input, a FIFO or device output is written
/// through (not replaced by a regular file), a symbolic link keeps pointing at its file.
#[test]
fn outputs_never_replace_inputs_or_special_files() {
    use std::os::unix::fs::FileTypeExt;
    let dir = fresh_dir("cli_usage_special_outputs");
    let input = dir.join("in.ppm");
    save(
        &icm::testimage::synthetic(40, 30, 2),
        &input,
        image::ImageFormat::Pnm,
    );
    let before = std::fs::read(&input).expect("input");
    let model = small_model();
    let e = fails(&["encode", p(&input), "-o", p(&input), "--model", p(&model)]);
    assert!(e.contains("is also the input"), "{e}");
    assert_eq!(std::fs::read(&input).expect("input"), before);
    let stream = dir.join("s.icm");
    encode_small(&input, &stream);
    let coded = std::fs::read(&stream).expect("stream");
    let e = fails(&[
        "decode",
        p(&stream),
        "--latents-raw",
        p(&stream),
        "--model",
        p(&model),
    ]);
    assert!(e.contains("is also the input"), "{e}");
    assert_eq!(std::fs::read(&stream).expect("stream"), coded);
    let e = fails(&[
        "decode",
        p(&stream),
        "-o",
        p(&dir.join("x.png")),
        "--latents-raw",
        p(&dir.join("./x.png")),
        "--model",
        p(&model),
    ]);
    assert!(e.contains("same file"), "{e}");

    // a symbolic link to a regular file: the file gets the picture, the link stays a link
    let target = dir.join("target.ppm");
    std::fs::write(&target, b"old").expect("target");
    let link = dir.join("link.ppm");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    decode_small(&stream, &link, "decode to a link");
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert!(std::fs::read(&target).expect("target").starts_with(b"P6\n"));

    // a FIFO: written through while a reader drains it, and still a FIFO afterwards
    let fifo = dir.join("pipe.png");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        crate::common::cannot_run("mkfifo failed");
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).expect("read fifo"))
    };
    decode_small(&stream, &fifo, "decode to a FIFO");
    // checked before joining: had the FIFO been replaced, the reader would wait forever
    assert!(std::fs::metadata(&fifo)
        .expect("fifo")
        .file_type()
        .is_fifo());
    let got = reader.join().expect("reader");
    assert_eq!(
        image::guess_format(&got).expect("png"),
        image::ImageFormat::Png
    );
}

/// A run killed while writing (SIGKILL cannot be caught) leaves `.NAME.PID.tmp`; the next
/// write of NAME removes it when that PID no longer runs, and keeps a running one's.
#[test]
fn temporaries_of_killed_runs_are_removed() {
    let (dir, input) = picture("cli_usage_stale_tmp", 40, 30);
    let stream = dir.join("out.icm");
    let name = "out.icm";
    // A PID that ran and is gone: a child that exited and was reaped.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait");
    let stale = dir.join(format!(".{name}.{dead}.tmp"));
    let live = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let other = dir.join(format!(".other.{dead}.tmp"));
    for f in [&stale, &live, &other] {
        std::fs::write(f, b"half").expect("write");
    }
    encode_small(&input, &stream);
    assert!(!stale.exists(), "a dead run's temporary is left");
    assert!(live.exists(), "a running process's temporary was removed");
    assert!(other.exists(), "another output's temporary was removed");
    assert!(std::fs::metadata(&stream).expect("stream").len() > 0);
}

/// `icm decode -o X.png|.ppm` writes the picture band by band as it is decoded (issue 20):
/// the same file as the whole-picture decode gives, with several bands (tile rows) and any
/// thread count; a stream that fails in a later tile leaves no output and no temporary.
#[test]
fn decode_streams_png_and_ppm_band_by_band() {
    let (dir, input) = picture("cli_usage_stream_decode", 200, 140);
    let model = small_model();
    let stream = dir.join("a.icm");
    ok(
        &icm(
            &[
                "encode",
                p(&input),
                "-o",
                p(&stream),
                "--model",
                p(&model),
                "--tile",
                "64",
            ],
            &[],
        ),
        "encode with 12 tiles",
    );
    let m = icm::model::Model::from_path(&model).expect("model");
    let whole = icm::codec::decode(&std::fs::read(&stream).expect("stream"), &m).expect("decode");
    for (ext, format) in [
        ("png", icm_eval::picture::OutputFormat::Png),
        ("ppm", icm_eval::picture::OutputFormat::Ppm),
    ] {
        let out = dir.join(format!("b.{ext}"));
        for threads in ["1", "4"] {
            ok(
                &icm(
                    &[
                        "decode",
                        p(&stream),
                        "-o",
                        p(&out),
                        "--model",
                        p(&model),
                        "--threads",
                        threads,
                    ],
                    &[],
                ),
                "decode",
            );
            let want = format.encode(&whole.image).expect("encode whole");
            assert!(
                std::fs::read(&out).expect("output") == want,
                "{ext}, {threads} threads"
            );
            let got = icm_eval::picture::read_rgb(&out).expect("read back");
            assert!(got == whole.image, "{ext}, {threads} threads");
        }
    }
    // Corrupt the last tile: the error comes after the first bands were written.
    let mut bytes = std::fs::read(&stream).expect("stream");
    let n = bytes.len();
    bytes[n - 40] ^= 0x10;
    let bad = dir.join("bad.icm");
    std::fs::write(&bad, &bytes).expect("write");
    let out = dir.join("c.png");
    let run = icm(
        &["decode", p(&bad), "-o", p(&out), "--model", p(&model)],
        &[],
    );
    assert!(!run.status.success());
    assert!(!out.exists(), "a failed decode left its output");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
}

/// `icm conformance | head -1`: a reader that goes away ends icm quietly (SIGPIPE), not in a
/// panic of `println!`.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_icm"))
        .arg("conformance")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn icm");
    // Close the read end before icm writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
    }
}
