//! `icm_eval::jpeg` (JPEG to DCT coefficients, spec Annex B) against libjpeg, and on hostile input.
//!
//! * `matches_libjpeg_on_oracle_files`: `tests/python/jpeg_oracle.py` writes JPEGs made by
//!   Pillow (libjpeg-turbo: qualities 10..100, 4:4:4/4:2:2/4:2:0, progressive, optimised
//!   tables, restart markers, grayscale, sizes 1x1 to 511x3) and by the libjpeg 6b, 9e,
//!   libjpeg-turbo 2.1 and mozjpeg 4 of the PyPI `jpeglib` (sampling factors up to 4x1,
//!   mixed per component, progressive scripts), and libjpeg's coefficients of each
//!   (`jpeglib.read_dct`); every coefficient and quantisation value must be equal.
//!   Python is `${ICM_VENV:-$HOME/.cache/icm-venv}/bin/python` with
//!   `tests/python/requirements.txt`, installed by `scripts/setup_test_env.sh` (which
//!   `scripts/test.sh` runs before the tests). Without it the test prints why and passes,
//!   except with `CI=true`.
//! * the `icm dct` command on a JPEG made with the `image` crate's encoder;
//! * proptest: random bytes, truncations and mutations of valid JPEGs (the `image` crate's
//!   baseline files and the progressive, restart and grayscale seeds of
//!   `fuzz/corpus/fuzz_jpeg`) never panic, and a cut file is always refused;
//! * inputs that `.ci/fuzz.sh` saved as `fuzz/regressions/fuzz_jpeg-*` are replayed.

use icm_eval::jpeg::channels::{frequency_tensor, TensorLayout};
use icm_eval::jpeg::{decode_coefficients, Coefficients, DecodeOptions, JpegError, Process};
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn decode(bytes: &[u8]) -> Result<Coefficients, JpegError> {
    decode_coefficients(bytes, &DecodeOptions::default())
}

// ------------------------------------------------------------------ Python oracle

#[test]
fn matches_libjpeg_on_oracle_files() {
    let py = match crate::common::python_with("jpeglib, PIL, numpy") {
        Ok(p) => p,
        Err(why) => {
            crate::common::cannot_run(&format!("the jpeglib oracle: {why}"));
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("icm-jpeg-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(&py)
        .arg(root().join("tests/python/jpeg_oracle.py"))
        .arg(&dir)
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "jpeg_oracle.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).expect("cases.json"))
            .expect("json");
    let cases = index["cases"].as_array().expect("cases");
    assert!(cases.len() >= 100, "only {} oracle cases", cases.len());

    let mut failures = Vec::new();
    let (mut progressive, mut coefficients) = (0, 0usize);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let bytes = std::fs::read(dir.join(format!("{name}.jpg"))).expect("jpg");
        let c = match decode(&bytes) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        progressive += usize::from(c.process == Process::Progressive);
        let n = case["components"].as_u64().expect("components") as usize;
        if c.components.len() != n {
            failures.push(format!(
                "{name}: {} components, libjpeg {n}",
                c.components.len()
            ));
            continue;
        }
        let (qshape, qt) = crate::common::read_npy_i16(&dir.join(format!("{name}_qt.npy")));
        assert_eq!(qshape, vec![n, 8, 8]);
        for (i, comp) in c.components.iter().enumerate() {
            let (shape, want) = crate::common::read_npy_i16(&dir.join(format!("{name}_c{i}.npy")));
            if shape != vec![comp.blocks_h, comp.blocks_w, 8, 8] {
                failures.push(format!(
                    "{name} component {i}: {}x{} blocks, libjpeg {shape:?}",
                    comp.blocks_h, comp.blocks_w
                ));
                continue;
            }
            let got: Vec<i64> = comp.coefs.iter().map(|&v| i64::from(v)).collect();
            if let Some(k) = (0..got.len()).find(|&k| got[k] != want[k]) {
                failures.push(format!(
                    "{name} component {i}: block {} coefficient {} is {}, libjpeg {}",
                    k / 64,
                    k % 64,
                    got[k],
                    want[k]
                ));
            }
            let q: Vec<i64> = comp.quant.iter().map(|&v| i64::from(v)).collect();
            if q[..] != qt[i * 64..(i + 1) * 64] {
                failures.push(format!("{name} component {i}: quantisation table differs"));
            }
            coefficients += got.len();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} files differ from libjpeg:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(progressive >= 20, "only {progressive} progressive files");
    println!(
        "{} files ({progressive} progressive), {coefficients} coefficients equal to libjpeg's",
        cases.len()
    );
}

// ------------------------------------------------------------------ JPEGs made here

/// A deterministic RGB picture with edges and texture.
fn picture(w: u32, h: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104729) ^ seed.wrapping_mul(31))
            .wrapping_mul(2654435761)
            >> 27;
        image::Rgb([
            ((x * 255) / w.max(1)) as u8 ^ (n as u8),
            if (x / 5 + y / 3) % 2 == 0 { 220 } else { 30 },
            ((y * 255) / h.max(1)) as u8,
        ])
    })
}

/// A baseline 4:4:4 JPEG from the `image` crate's encoder.
fn jpeg(w: u32, h: u32, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&picture(w, h, 1))
        .expect("encode");
    out
}

#[test]
fn dequantised_tensor_is_coefficients_times_table() {
    let bytes = jpeg(40, 24, 60);
    let c = decode(&bytes).expect("decode");
    assert_eq!((c.width, c.height, c.components.len()), (40, 24, 3));
    let all: Vec<usize> = (0..192).collect();
    let limit = DecodeOptions::default().max_tensor_bytes;
    let (shape, raw) = frequency_tensor(&c, &all, false, TensorLayout::Chw, limit).expect("tensor");
    let (_, deq) = frequency_tensor(&c, &all, true, TensorLayout::Chw, limit).expect("tensor");
    assert_eq!(shape, vec![192, 3, 5]);
    let plane = 15;
    let mut nonzero = 0;
    for ch in 0..192 {
        let q = i32::from(c.components[ch / 64].quant[ch % 64]);
        assert!(q > 0);
        for i in 0..plane {
            assert_eq!(deq[ch * plane + i], raw[ch * plane + i] * q);
            nonzero += usize::from(raw[ch * plane + i] != 0);
        }
    }
    assert!(
        nonzero > 100,
        "a textured picture has many non-zero coefficients"
    );
    // The Y DC plane is the luma blocks' DC.
    let y = &c.components[0];
    for by in 0..3 {
        for bx in 0..5 {
            assert_eq!(raw[by * 5 + bx], i32::from(y.coefs[(by * 5 + bx) * 64]));
        }
    }
    // ComponentCoefficients::dequantised agrees.
    let d = y.dequantised();
    assert_eq!(
        d[64 + 1],
        i32::from(y.coefs[64 + 1]) * i32::from(y.quant[1])
    );
}

fn run_icm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_icm"))
        .args(args)
        .output()
        .expect("run icm")
}

#[test]
fn cli_writes_npy_and_refuses_bad_input() {
    let dir = std::env::temp_dir().join(format!("icm-dct-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let input = dir.join("in.jpg");
    std::fs::write(&input, jpeg(33, 17, 80)).expect("write");
    let out = dir.join("out.npy");
    let o = run_icm(&[
        "dct",
        input.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--channels",
        "24",
        "--layout",
        "hwc",
        "--raw",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let npy = std::fs::read(&out).expect("npy");
    let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + hlen]).expect("header");
    assert!(
        header.contains("'<i2'") && header.contains("(3, 5, 24)"),
        "{header}"
    );
    // First cell, first channel: the Y DC of block (0, 0); then the Cb and Cr DCs at their
    // places in the Annex B.3 list.
    let c = decode(&std::fs::read(&input).expect("read")).expect("decode");
    let v = |i: usize| i16::from_le_bytes([npy[10 + hlen + 2 * i], npy[10 + hlen + 2 * i + 1]]);
    let at = |ch: usize| {
        icm_eval::jpeg::channels::SELECTED_24
            .iter()
            .position(|&x| x == ch)
            .expect("DC channels are in the 24-channel set")
    };
    let (cb, cr) = (at(64), at(128));
    assert_eq!(v(0), c.components[0].coefs[0]);
    assert_eq!(v(cb), c.components[1].coefs[0]);
    assert_eq!(c.components[1].h, 1, "the image crate writes 4:4:4");
    assert_eq!(v(24 + cb), c.components[1].coefs[64]); // cell (0, 1): Cb block (0, 1)
    assert_eq!(v(5 * 24 + cr), c.components[2].coefs[5 * 64]); // cell (1, 0): Cr block (1, 0)

    // A truncated file: one line on stderr, non-zero exit, no output written.
    let bytes = std::fs::read(&input).expect("read");
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out2 = dir.join("cut.npy");
    let o = run_icm(&[
        "dct",
        cut.to_str().expect("utf8"),
        "-o",
        out2.to_str().expect("utf8"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cut.jpg") && err.contains("truncated"),
        "{err}"
    );
    assert!(!out2.exists());
    // A bad channel list.
    let o = run_icm(&[
        "dct",
        input.to_str().expect("utf8"),
        "-o",
        out2.to_str().expect("utf8"),
        "--channels",
        "0,192",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--channels"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The offset of the first marker `FF code` in a file (outside scans, for the ones used).
fn find_marker(bytes: &[u8], code: u8) -> usize {
    bytes
        .windows(2)
        .position(|w| w == [0xFF, code])
        .expect("marker")
}

#[test]
fn unsupported_processes_are_named() {
    let base = jpeg(16, 16, 75);
    let sof = find_marker(&base, 0xC0);
    for (code, what) in [
        (0xC3u8, "lossless"),
        (0xC5, "hierarchical"),
        (0xC9, "arithmetic"),
        (0xCA, "arithmetic"),
    ] {
        let mut b = base.clone();
        b[sof + 1] = code;
        match decode(&b) {
            Err(JpegError::Unsupported { offset, what: w }) => {
                assert_eq!(offset, sof);
                assert!(w.contains(what), "{w}");
            }
            other => panic!("SOF {code:02X}: {other:?}"),
        }
    }
    // 12-bit precision.
    let mut b = base.clone();
    b[sof + 4] = 12;
    assert!(matches!(decode(&b), Err(JpegError::Unsupported { .. })));
    // Height 0 (DNL).
    let mut b = base.clone();
    b[sof + 5] = 0;
    b[sof + 6] = 0;
    assert!(matches!(decode(&b), Err(JpegError::Unsupported { .. })));
}

#[test]
fn typed_errors_for_broken_files() {
    let base = jpeg(64, 64, 90);
    assert_eq!(decode(b"GIF89a"), Err(JpegError::NotJpeg));
    // Cut inside the scan data.
    let sos = find_marker(&base, 0xDA);
    let cut = &base[..sos + 40];
    assert!(
        matches!(decode(cut), Err(JpegError::TruncatedScan { mcus, total, .. }) if mcus < total),
        "{:?}",
        decode(cut)
    );
    // Scan complete but no EOI.
    let no_eoi = &base[..base.len() - 2];
    assert!(matches!(decode(no_eoi), Err(JpegError::Truncated { .. })));
    // Garbage after EOI is ignored.
    let mut tail = base.clone();
    tail.extend_from_slice(b"trailing");
    assert_eq!(decode(&tail), decode(&base));
    // A missing Huffman table: point the scan at slot 3.
    let mut b = base.clone();
    b[sos + 6] = 0x33;
    assert!(matches!(
        decode(&b),
        Err(JpegError::MissingTable { id: 3, .. })
    ));
    // The block limit.
    let small = DecodeOptions {
        max_blocks: 10,
        ..DecodeOptions::default()
    };
    assert!(matches!(
        decode_coefficients(&base, &small),
        Err(JpegError::TooLarge { limit: 10, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&data);
        // With a JPEG start the parser goes further.
        if data.len() >= 2 {
            data[0] = 0xFF;
            data[1] = 0xD8;
        }
        let _ = decode(&data);
    }

    #[test]
    fn cut_files_are_refused(w in 1u32..40, h in 1u32..40, q in 5u8..100, frac in 0.0f64..1.0) {
        let b = jpeg(w, h, q);
        let full = decode(&b).expect("valid file");
        prop_assert_eq!(full.components[0].blocks_w, w.div_ceil(8) as usize);
        let n = ((b.len() - 1) as f64 * frac) as usize;
        prop_assert!(decode(&b[..n]).is_err(), "a file cut at {} of {} decoded", n, b.len());
    }

    #[test]
    fn mutated_files_never_panic(
        seed in 0u32..1000,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
    ) {
        let mut b = jpeg(17 + seed % 20, 9 + seed % 13, (seed % 90 + 5) as u8);
        for (at, v) in edits {
            let i = usize::from(at) % b.len();
            b[i] = v;
        }
        let small = DecodeOptions {
            max_blocks: 1 << 16,
            max_scans: 64,
            ..DecodeOptions::default()
        };
        let _ = decode_coefficients(&b, &small);
    }
}

/// The fuzz target's seed JPEGs (baseline, progressive, restarts, grayscale, mozjpeg).
fn seed_files() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fuzz/corpus/fuzz_jpeg");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus/fuzz_jpeg")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn seed_files_decode_and_every_prefix_is_refused() {
    let seeds = seed_files();
    assert!(seeds.len() >= 5);
    let mut progressive = 0;
    for (name, b) in &seeds {
        let c = decode(b).unwrap_or_else(|e| panic!("{name}: {e}"));
        progressive += usize::from(c.process == Process::Progressive);
        for n in 0..b.len() - 1 {
            assert!(decode(&b[..n]).is_err(), "{name} cut at {n} decoded");
        }
    }
    assert!(progressive >= 3);
}

#[test]
fn scan_limit_and_restart_sequence() {
    let seeds = seed_files();
    let find = |n: &str| &seeds.iter().find(|(name, _)| name == n).expect(n).1;
    let prog = find("prog_420_24x17.jpg");
    let two = DecodeOptions {
        max_scans: 2,
        ..DecodeOptions::default()
    };
    assert!(matches!(
        decode_coefficients(prog, &two),
        Err(JpegError::TooManyScans { limit: 2, .. })
    ));
    // One restart marker per block in a 13x7 4:4:4 file: renumber the first RST0 as RST5.
    let rst = find("rst_444_13x7.jpg");
    let sos = find_marker(rst, 0xDA);
    let at = sos + find_marker(&rst[sos..], 0xD0);
    let mut b = rst.clone();
    b[at + 1] = 0xD5;
    match decode(&b) {
        Err(JpegError::BadRestart {
            offset,
            expected: 0,
            found: Some(0xD5),
        }) => assert_eq!(offset, at),
        other => panic!("{other:?}"),
    }
    assert!(decode(rst).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_seed_files_never_panic(
        pick in any::<usize>(),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
    ) {
        let seeds = seed_files();
        let mut b = seeds[pick % seeds.len()].1.clone();
        for (at, v) in edits {
            let i = usize::from(at) % b.len();
            b[i] = v;
        }
        let small = DecodeOptions {
            max_blocks: 1 << 16,
            max_scans: 64,
            ..DecodeOptions::default()
        };
        if let Ok(c) = decode_coefficients(&b, &small) {
            for comp in &c.components {
                prop_assert_eq!(comp.coefs.len(), comp.blocks_w * comp.blocks_h * 64);
            }
        }
    }
}

#[test]
fn fuzz_regressions_replay() {
    let dir = root().join("fuzz/regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("fuzz_jpeg") {
            let bytes = std::fs::read(e.path()).expect("read");
            let _ = decode_coefficients(
                &bytes,
                &DecodeOptions {
                    max_blocks: 1 << 20,
                    max_scans: 100,
                    ..DecodeOptions::default()
                },
            );
        }
    }
}
