//! Lenient JPEG decoding (`DecodeOptions::lenient`, `icm dct --lenient`) against libjpeg on
//! corrupt and truncated files.
//!
//! * `lenient_matches_libjpeg_on_damaged_files`: `tests/python/jpeg_lenient_oracle.py` makes
//!   about 200 damaged JPEGs from Kodak crops (`../shared/data/kodak`): baseline and
//!   progressive, with and without restart intervals, cut at several offsets and after
//!   whole scans, with flipped bytes, invalid Huffman codes, stray markers, renumbered and
//!   missing restart markers; and libjpeg's coefficients of each (`jpeglib.read_dct`,
//!   libjpeg 6b). On every file libjpeg reads, lenient decoding must give the same
//!   coefficients and quantisation tables; strict decoding must refuse the file exactly when
//!   lenient decoding had something to repair, and agree with it otherwise. Extra folders
//!   of JPEGs (other decoders' test suites) are compared too when
//!   `ICM_JPEG_LENIENT_EXTRA` names them (`:`-separated); `ICM_JPEG_LENIENT_LIBJPEG` picks
//!   another libjpeg of jpeglib (e.g. `turbo210`).
//! * Without Python: a cut file decodes leniently with a warning at the cut; the repair of
//!   a truncated scan is checked block by block; the CLI's `--lenient`.

use icm_eval::jpeg::{
    decode_coefficients, Coefficients, DecodeOptions, JpegError, JpegWarning, Process, WarningKind,
};
use std::path::Path;
use std::process::Command;

use crate::common::{cannot_run, fresh_dir, python_with, root, shared};

fn strict(b: &[u8]) -> Result<Coefficients, JpegError> {
    decode_coefficients(b, &DecodeOptions::default())
}

fn lenient(b: &[u8]) -> Result<Coefficients, JpegError> {
    decode_coefficients(
        b,
        &DecodeOptions {
            lenient: true,
            ..DecodeOptions::default()
        },
    )
}

/// Warnings that stand for a defect strict decoding refuses.
fn repairs(w: &[JpegWarning]) -> usize {
    w.iter().filter(|w| w.kind.strict_refuses()).count()
}

/// Differences between our coefficients and libjpeg's files `<name>_c<i>.npy`, and
/// whether our quantisation tables equal the ones in `_qt.npy`. (jpeglib reports the tables
/// defined at the end of the file, ours are the ones in force at each component's first
/// scan: they differ where a DQT after the first scan redefines a table.)
fn compare(dir: &Path, name: &str, n: usize, c: &Coefficients) -> (Option<String>, bool) {
    if c.components.len() != n {
        let d = format!("{} components, libjpeg {n}", c.components.len());
        return (Some(d), false);
    }
    let mut same_tables = true;
    let (_, qt) = crate::common::read_npy_i16(&dir.join(format!("{name}_qt.npy")));
    for (i, comp) in c.components.iter().enumerate() {
        let (shape, want) = crate::common::read_npy_i16(&dir.join(format!("{name}_c{i}.npy")));
        if shape != vec![comp.blocks_h, comp.blocks_w, 8, 8] {
            let d = format!(
                "component {i}: {}x{} blocks, libjpeg {shape:?}",
                comp.blocks_h, comp.blocks_w
            );
            return (Some(d), false);
        }
        let got: Vec<i64> = comp.coefs.iter().map(|&v| i64::from(v)).collect();
        if let Some(k) = (0..got.len()).find(|&k| got[k] != want[k]) {
            let diff = (0..got.len()).filter(|&k| got[k] != want[k]).count();
            let d = format!(
                "component {i}: block {} coefficient {} is {}, libjpeg {} ({diff} differ)",
                k / 64,
                k % 64,
                got[k],
                want[k]
            );
            return (Some(d), false);
        }
        let q: Vec<i64> = comp.quant.iter().map(|&v| i64::from(v)).collect();
        same_tables &= q[..] == qt[i * 64..(i + 1) * 64];
    }
    (None, same_tables)
}

#[test]
fn lenient_matches_libjpeg_on_damaged_files() {
    let py = match python_with("jpeglib, PIL, numpy") {
        Ok(p) => p,
        Err(why) => {
            cannot_run(&format!("the jpeglib oracle: {why}"));
            return;
        }
    };
    let Some(kodak) = shared("data/kodak") else {
        return;
    };
    let dir = fresh_dir("jpeg_lenient");
    let mut cmd = Command::new(&py);
    cmd.arg(root().join("tests/python/jpeg_lenient_oracle.py"));
    if let Ok(v) = std::env::var("ICM_JPEG_LENIENT_LIBJPEG") {
        cmd.args(["--libjpeg", &v]);
    }
    cmd.arg(&dir).arg(&kodak);
    let extra = std::env::var("ICM_JPEG_LENIENT_EXTRA").unwrap_or_default();
    cmd.args(extra.split(':').filter(|s| !s.is_empty()));
    let out = cmd.output().expect("run the oracle");
    assert!(
        out.status.success(),
        "jpeg_lenient_oracle.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).expect("cases.json"))
            .expect("json");
    let cases = index["cases"].as_array().expect("cases");

    let mut failures = Vec::new();
    let (mut compared, mut repaired, mut progressive) = (0, 0, 0);
    let mut kinds = std::collections::BTreeMap::<&'static str, usize>::new();
    let mut refused_by_libjpeg = 0;
    let mut other_tables = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let defect = case["defect"].as_str().expect("defect");
        let bytes = std::fs::read(dir.join(format!("{name}.jpg"))).expect("jpg");
        let len = lenient(&bytes);
        let st = strict(&bytes);
        if !case["libjpeg"].as_bool().expect("libjpeg") {
            // libjpeg refuses it (e.g. a cut inside a Huffman table): no coefficients to
            // compare; decoding must only not panic.
            refused_by_libjpeg += 1;
            continue;
        }
        let c = match len {
            Ok(c) => c,
            Err(JpegError::Unsupported { .. }) if defect == "extra" => continue,
            Err(e) => {
                failures.push(format!("{name}: lenient decoding refused it: {e}"));
                continue;
            }
        };
        let n = case["components"].as_u64().expect("components") as usize;
        let (diff, same_tables) = compare(&dir, name, n, &c);
        if let Some(d) = diff {
            failures.push(format!("{name}: {d}"));
            continue;
        }
        if !same_tables {
            // The files made here define their tables once; others may redefine them.
            if defect == "extra" {
                other_tables.push(name.to_string());
            } else {
                failures.push(format!("{name}: quantisation tables differ"));
            }
        }
        compared += 1;
        progressive += usize::from(c.process == Process::Progressive);
        for w in &c.warnings {
            let k = match w.kind {
                WarningKind::PrematureEnd { .. } => "premature end",
                WarningKind::BadHuffmanCode => "bad Huffman code",
                WarningKind::CorruptData { .. } => "corrupt data",
                WarningKind::RefinementSize => "refinement size",
                WarningKind::BadRestart { .. } => "bad restart",
                WarningKind::ExtraneousData { .. } => "extraneous data",
                WarningKind::MissingEoi => "missing EOI",
                WarningKind::NotSequential { .. } => "not sequential",
                WarningKind::IgnoredDnl => "DNL",
                WarningKind::Tolerated { .. } => "tolerated",
                WarningKind::Omitted { .. } => "omitted",
            };
            *kinds.entry(k).or_default() += 1;
        }
        // Strict decoding refuses exactly the files lenient decoding repaired.
        let r = repairs(&c.warnings);
        repaired += usize::from(r > 0);
        match (&st, r) {
            (Ok(s), 0) => {
                if s.components != c.components {
                    failures.push(format!("{name}: strict and lenient coefficients differ"));
                }
            }
            (Err(_), 0) => failures.push(format!(
                "{name}: strict refused it ({}) but lenient decoding repaired nothing",
                st.as_ref().err().map(|e| e.to_string()).unwrap_or_default()
            )),
            (Ok(_), _) => failures.push(format!(
                "{name}: strict decoding accepted it, lenient warned: {:?}",
                c.warnings
            )),
            (Err(_), _) => {}
        }
        // The typed errors of strict decoding for the defects made here.
        let want: Option<fn(&JpegError) -> bool> =
            if defect.starts_with("cut_") || defect.starts_with("scans_") {
                // (cut just before a restart marker: the marker is missing)
                Some(|e| {
                    matches!(
                        e,
                        JpegError::TruncatedScan { .. }
                            | JpegError::Truncated { .. }
                            | JpegError::BadRestart { found: None, .. }
                    )
                })
            } else if defect == "no_eoi" {
                Some(|e| matches!(e, JpegError::Truncated { .. }))
            } else if defect.starts_with("rst_plus") || defect.starts_with("rst_interval") {
                Some(|e| {
                    matches!(
                        e,
                        JpegError::BadRestart { .. }
                            | JpegError::TruncatedScan { .. }
                            | JpegError::BadScanData { .. }
                            | JpegError::BadHuffmanCode { .. }
                    )
                })
            } else {
                None
            };
        if let (Some(want), Err(e)) = (want, &st) {
            if !want(e) {
                failures.push(format!("{name}: strict error {e:?}"));
            }
        } else if want.is_some() && st.is_ok() {
            failures.push(format!("{name}: strict decoding accepted a {defect} file"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!(
        "{compared} files equal to libjpeg {} ({progressive} progressive, {repaired} repaired, \
         {refused_by_libjpeg} refused by libjpeg), warnings: {kinds:?}; quantisation tables \
         redefined after the first scan: {other_tables:?}",
        index["libjpeg"]
    );
    assert!(compared >= 150, "only {compared} files compared");
    assert!(repaired >= 100, "only {repaired} files needed repairs");
    assert!(progressive >= 60, "only {progressive} progressive files");
    for k in [
        "premature end",
        "bad Huffman code",
        "bad restart",
        "missing EOI",
        "not sequential",
        "DNL",
    ] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k} warning");
    }
}

// ------------------------------------------------------------------ without Python

/// The fuzz target's seed files (made by libjpeg-turbo and mozjpeg).
fn seed(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fuzz/corpus/fuzz_jpeg").join(name)).expect(name)
}

/// Offset of the data of the first scan: after the SOS segment.
fn first_scan_data(b: &[u8]) -> usize {
    let sos = b.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
    sos + 2 + usize::from(u16::from_be_bytes([b[sos + 2], b[sos + 3]]))
}

/// An offset in the middle of the last scan's data (which ends at EOI).
fn inside_last_scan(b: &[u8]) -> usize {
    let sos = b.windows(2).rposition(|w| w == [0xFF, 0xDA]).expect("SOS");
    let start = sos + 2 + usize::from(u16::from_be_bytes([b[sos + 2], b[sos + 3]]));
    (start + b.len() - 2) / 2
}

#[test]
fn a_cut_file_decodes_leniently_with_a_warning_at_the_cut() {
    for name in [
        "base_420_16x16.jpg",
        "rst_444_13x7.jpg",
        "prog_420_24x17.jpg",
    ] {
        let b = seed(name);
        let full = strict(&b).expect("valid");
        assert!(full.warnings.is_empty());
        assert_eq!(lenient(&b).expect("valid"), full, "{name}");
        let start = first_scan_data(&b);
        for cut in [start, start + 3, inside_last_scan(&b), b.len() - 2] {
            let part = &b[..cut];
            let e = strict(part).expect_err("strict refuses a cut file");
            assert!(
                matches!(
                    e,
                    JpegError::TruncatedScan { .. } | JpegError::Truncated { .. }
                ),
                "{name} cut at {cut}: {e:?}"
            );
            let c = lenient(part).unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
            assert_eq!(c.components.len(), full.components.len());
            for (a, f) in c.components.iter().zip(&full.components) {
                assert_eq!((a.blocks_w, a.blocks_h), (f.blocks_w, f.blocks_h));
                assert_eq!(a.coefs.len(), f.coefs.len());
            }
            // The last warning is the missing EOI at the end of the file; a cut inside
            // the scan data is reported at the cut with its scan and MCU.
            let last = c.warnings.last().expect("warnings");
            assert_eq!(
                (&last.kind, last.offset),
                (&WarningKind::MissingEoi, cut),
                "{name}: {:?}",
                c.warnings
            );
            if cut < b.len() - 2 {
                let w = c
                    .warnings
                    .iter()
                    .find(|w| matches!(w.kind, WarningKind::PrematureEnd { marker: None, .. }))
                    .unwrap_or_else(|| panic!("{name} cut at {cut}: {:?}", c.warnings));
                assert_eq!(w.offset, cut);
                assert!(w.scan >= 1 && w.mcu.is_some());
                assert!(
                    w.to_string().contains(&format!("at byte {cut} (scan ")),
                    "{w}"
                );
            }
        }
    }
}

/// A baseline grayscale 16x8 file cut in its second block: the first block is decoded as
/// in the full file, the second from the bits left and then zero bits, as libjpeg does.
#[test]
fn a_truncated_block_is_finished_with_zero_bits() {
    // Hand-made: DC table with code '0' -> 0, '10' -> 1, '110' -> 2; AC table with
    // '0' -> EOB, '10' -> 0x01 (run 0, size 1), '110' -> 0x11 (run 1, size 1).
    let mut b = vec![0xFF, 0xD8];
    b.extend([0xFF, 0xDB, 0, 67, 0]);
    b.extend([1u8; 64]);
    b.extend([0xFF, 0xC0, 0, 11, 8, 0, 8, 0, 16, 1, 1, 0x11, 0]);
    let dht = |class: u8, vals: [u8; 3]| {
        let mut d = vec![0xFF, 0xC4, 0, 22, class << 4];
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[1] = 1;
        counts[2] = 1;
        d.extend(counts);
        d.extend(vals);
        d
    };
    b.extend(dht(0, [0, 1, 2]));
    b.extend(dht(1, [0x00, 0x01, 0x11]));
    b.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
    // Block 0: DC '110' + bits '11' (diff 3), AC '10' + '1' (+1 at k=1), '110' + '0' (run
    // 1, -1 at k=3), EOB '0'. Block 1: DC '10' + '0' (diff -1), then the data ends.
    // bits: 110 11 10 1 | 110 0 0 | 10 0 -> 1101 1101 1100 0100 + padding ones
    let data = [0b1101_1101u8, 0b1100_0100];
    let full_data = [0b1101_1101u8, 0b1100_0100, 0b0111_1111];
    let mut full = b.clone();
    full.extend(full_data);
    full.extend([0xFF, 0xD9]);
    let whole = strict(&full).expect("the whole file");
    let y = &whole.components[0];
    assert_eq!((y.coefs[0], y.coefs[1], y.coefs[16]), (3, 1, -1));
    assert_eq!(y.coefs[64], 2);
    b.extend(data);
    b.extend([0xFF, 0xD9]);
    // Block 1's AC data is missing: strict refuses, lenient reads zero bits for it: the
    // AC code '0' is EOB, so block 1 is DC 3 - 1 = 2 and nothing else.
    assert!(matches!(
        strict(&b),
        Err(JpegError::TruncatedScan {
            mcus: 1,
            total: 2,
            ..
        })
    ));
    let c = lenient(&b).expect("lenient");
    assert_eq!(c.components[0].coefs, y.coefs);
    let eoi = b.len() - 2;
    assert_eq!(
        c.warnings,
        vec![JpegWarning {
            kind: WarningKind::PrematureEnd {
                marker: Some(0xD9),
                mcus_left: 0
            },
            offset: eoi,
            scan: 1,
            mcu: Some(1),
        }]
    );
}

#[test]
fn restart_markers_are_resynchronised_as_libjpeg_does() {
    // 13x7 4:4:4 with one restart marker per MCU (2 MCUs): RST0 between them.
    let b = seed("rst_444_13x7.jpg");
    let full = strict(&b).expect("valid");
    let start = first_scan_data(&b);
    let rst = start
        + b[start..]
            .windows(2)
            .position(|w| w == [0xFF, 0xD0])
            .expect("RST0");
    // RST2 instead of RST0 (two ahead): libjpeg leaves it for a later interval, so MCU 1
    // is decoded from zero bits (a pending marker supplies no data).
    let mut x = b.clone();
    x[rst + 1] = 0xD2;
    assert!(matches!(
        strict(&x),
        Err(JpegError::BadRestart {
            expected: 0,
            found: Some(0xD2),
            ..
        })
    ));
    let c = lenient(&x).expect("lenient");
    assert_eq!(
        c.warnings[0],
        JpegWarning {
            kind: WarningKind::BadRestart {
                expected: 0,
                found: Some(0xD2)
            },
            offset: rst,
            scan: 1,
            mcu: Some(1),
        }
    );
    assert!(matches!(
        c.warnings[1].kind,
        WarningKind::PrematureEnd { .. }
    ));
    // MCU 0 as in the full file; MCU 1 differs (decoded from zeros, with DC prediction 0).
    for (a, f) in c.components.iter().zip(&full.components) {
        assert_eq!(a.coefs[..64], f.coefs[..64]);
    }
    assert_ne!(c.components[0].coefs[64..], full.components[0].coefs[64..]);
    // RST4 (far off): libjpeg discards it and decodes on: the same coefficients.
    x[rst + 1] = 0xD4;
    let c = lenient(&x).expect("lenient");
    assert_eq!(c.components, full.components);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[test]
fn cli_lenient_warns_and_writes() {
    let b = seed("prog_420_24x17.jpg");
    let dir = fresh_dir("jpeg_lenient_cli");
    let cut = dir.join("cut.jpg");
    let at = inside_last_scan(&b);
    std::fs::write(&cut, &b[..at]).expect("write");
    let out = dir.join("cut.npy");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["dct", cut.to_str().expect("utf8"), "-o"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(out.to_str().expect("utf8").into());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        crate::common::icm(&a, &[])
    };
    // Strict: refused, nothing written.
    let o = run(args(&[]));
    assert!(!o.status.success());
    assert!(!out.exists());
    // Lenient: written, warnings on stderr naming the place.
    let o = run(args(&["--lenient", "--raw"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(out.exists());
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(lines.iter().all(|l| l.starts_with("warning: ")), "{err}");
    assert!(
        err.contains(&format!("at byte {at} (scan ")) && err.contains("MCU "),
        "{err}"
    );
    assert!(err.contains("without an EOI"), "{err}");
    // The tensor holds the lenient coefficients: its first value is the Y DC of block 0.
    let c = lenient(&b[..at]).expect("lenient");
    let (descr, shape, data) = crate::common::read_npy(&out);
    assert_eq!(descr, "<i2");
    assert_eq!(shape, vec![192, 3, 3]);
    assert_eq!(
        i16::from_le_bytes([data[0], data[1]]),
        c.components[0].coefs[0]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 512,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Damaged seed files: lenient decoding never panics, respects the limits, and strict
    /// decoding accepts exactly the files it decodes without repairs, with the same result.
    #[test]
    fn lenient_and_strict_agree_on_damaged_files(
        pick in 0usize..6,
        edits in proptest::collection::vec((proptest::prelude::any::<u16>(), proptest::prelude::any::<u8>()), 0..5),
        cut in 0.0f64..1.2,
    ) {
        let names = [
            "base_420_16x16.jpg",
            "gray_prog_9x7.jpg",
            "mozjpeg_prog_16x8.jpg",
            "prog_420_24x17.jpg",
            "prog_rst_422_20x9.jpg",
            "rst_444_13x7.jpg",
        ];
        let mut b = seed(names[pick]);
        for (at, v) in edits {
            let i = usize::from(at) % b.len();
            b[i] = v;
        }
        if cut < 1.0 {
            b.truncate((b.len() as f64 * cut) as usize);
        }
        let small = DecodeOptions {
            max_blocks: 1 << 16,
            max_scans: 64,
            ..DecodeOptions::default()
        };
        let len = decode_coefficients(&b, &DecodeOptions { lenient: true, ..small });
        let st = decode_coefficients(&b, &small);
        if let Ok(c) = &len {
            for comp in &c.components {
                proptest::prop_assert_eq!(comp.coefs.len(), comp.blocks_w * comp.blocks_h * 64);
            }
            proptest::prop_assert!(c.warnings.len() <= icm_eval::jpeg::MAX_WARNINGS + 1);
            match &st {
                Ok(s) => {
                    proptest::prop_assert_eq!(repairs(&c.warnings), 0, "{:?}", c.warnings);
                    proptest::prop_assert_eq!(&s.components, &c.components);
                }
                Err(e) => proptest::prop_assert!(
                    repairs(&c.warnings) > 0,
                    "strict refused ({}) what lenient decoded without repairs",
                    e
                ),
            }
        } else {
            proptest::prop_assert!(st.is_err(), "strict decoded what lenient refused");
        }
    }
}
