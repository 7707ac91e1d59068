//! Bjøntegaard delta: agreement with the PyPI package `bjontegaard` on the vectors of
//! tests/data/bjontegaard_vectors.json (made by make_bjontegaard_vectors.py), and
//! `icm bd-rate` end to end on small CSV and eval-JSON files.

use icm_eval::bdrate::{bd_metric, bd_rate, BdError, Curve, Method};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const REL: f64 = 1e-6;
const ABS: f64 = 1e-9;

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bjontegaard_vectors.json");
    let bytes = std::fs::read(&path).expect("read vectors");
    serde_json::from_slice(&bytes).expect("parse vectors")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn curve(v: &Value) -> Curve {
    Curve::new(&floats(&v["bpp"]), &floats(&v["quality"])).expect("valid curve")
}

/// Relative error, or the absolute error where the reference is near zero.
fn error(got: f64, want: f64) -> f64 {
    let abs = (got - want).abs();
    if abs <= ABS {
        0.0
    } else {
        abs / want.abs().max(f64::MIN_POSITIVE)
    }
}

#[test]
fn agrees_with_bjontegaard_package() {
    let doc = vectors();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 220, "{} cases", cases.len());
    let mut checked = 0;
    let mut rejected = 0;
    let mut worst: Vec<(f64, String)> = Vec::new();
    for case in cases {
        let id = &case["id"];
        let anchor = curve(&case["anchor"]);
        let test = curve(&case["test"]);
        for method in [Method::Pchip, Method::Akima, Method::Cubic] {
            let expected = &case["expected"][method.name()];
            let results = [
                ("bd_rate", bd_rate(&anchor, &test, method)),
                ("bd_metric", bd_metric(&anchor, &test, method)),
            ];
            for (key, got) in results {
                let what = format!("case {id} {method} {key}");
                match (expected.get(key).and_then(Value::as_f64), got) {
                    (Some(want), Ok(got)) => {
                        let e = error(got, want);
                        assert!(
                            e <= REL,
                            "{what}: {got} vs bjontegaard {want} (error {e:e})"
                        );
                        worst.push(((got - want).abs() / want.abs(), what));
                        checked += 1;
                    }
                    // bjontegaard: NaN where the curves do not overlap, ValueError (from
                    // scipy) where quality does not increase with rate.
                    (None, Err(e)) if !expected.is_null() => {
                        let why = expected[format!("{key}_error")].as_str().unwrap_or("");
                        match e {
                            BdError::NoOverlap { .. } => assert!(why.starts_with("NaN"), "{what}"),
                            BdError::NotMonotone { .. } => {
                                assert!(why.starts_with("ValueError"), "{what}")
                            }
                            e => panic!("{what}: {e}; bjontegaard: {why}"),
                        }
                        rejected += 1;
                    }
                    // null method: fewer than 4 points for cubic.
                    (None, Err(BdError::TooFewPoints { .. })) if expected.is_null() => {}
                    (want, got) => panic!("{what}: expected {want:?}, got {got:?}"),
                }
            }
        }
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    for method in ["pchip", "akima", "cubic"] {
        let max = worst
            .iter()
            .filter(|(_, w)| w.contains(method))
            .map(|(e, _)| *e)
            .fold(0.0, f64::max);
        eprintln!("{method}: largest relative difference {max:e}");
    }
    eprintln!(
        "{checked} figures checked, {rejected} rejections; largest: {:?}",
        &worst[..3]
    );
    assert!(checked >= 1000, "{checked} figures checked");
    assert!(rejected >= 20, "{rejected} rejections checked");
}

#[test]
fn cubic_close_to_exact_arithmetic() {
    // The Rust cubic fit (centred, QR) against 50-digit mpmath figures.
    let doc = vectors();
    for case in doc["cases"].as_array().expect("cases") {
        let Some(mp) = case.get("cubic_mp") else {
            continue;
        };
        let anchor = curve(&case["anchor"]);
        let test = curve(&case["test"]);
        if let Some(want) = mp["bd_rate"].as_f64() {
            let got = bd_rate(&anchor, &test, Method::Cubic).expect("bd_rate");
            assert!(
                error(got, want) <= 1e-9,
                "case {}: {got} vs {want}",
                case["id"]
            );
        }
        if let Some(want) = mp["bd_metric"].as_f64() {
            let got = bd_metric(&anchor, &test, Method::Cubic).expect("bd_metric");
            assert!(
                error(got, want) <= 1e-9,
                "case {}: {got} vs {want}",
                case["id"]
            );
        }
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn icm(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_icm"))
        .arg("bd-rate")
        .args(args)
        .output()
        .expect("run icm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_on_csv_and_json() {
    let doc = vectors();
    let case = &doc["cases"][0];
    let dir = fresh_dir("bd_rate_cli");
    // CSV: extra columns, shuffled rows (as stored), a monotone `ms_ssim` column, CRLF.
    let write_csv = |name: &str, c: &Value| -> PathBuf {
        let (r, q) = (floats(&c["bpp"]), floats(&c["quality"]));
        let mut s = String::from("name,psnr,\"bpp\",ms_ssim\r\n");
        for (i, (r, q)) in r.iter().zip(&q).enumerate() {
            let ms_ssim = 1.0 - 10f64.powf(-q / 10.0);
            s += &format!("\"p,{i}\",{q},{r},{ms_ssim}\r\n");
        }
        let path = dir.join(name);
        std::fs::write(&path, s).expect("write csv");
        path
    };
    let a = write_csv("anchor.csv", &case["anchor"]);
    let t = write_csv("test.csv", &case["test"]);
    let want = &case["expected"]["pchip"];

    let (ok, out, err) = icm(&[
        "--anchor".as_ref(),
        a.as_os_str(),
        "--test".as_ref(),
        t.as_os_str(),
    ]);
    assert!(ok, "{err}");
    let want_rate = want["bd_rate"].as_f64().expect("rate");
    let want_metric = want["bd_metric"].as_f64().expect("metric");
    assert_eq!(
        out,
        format!("BD-rate: {want_rate:.6} %\nBD-psnr: {want_metric:.4}\n")
    );

    // --json and another method.
    let (ok, out, err) = icm(&[
        "--anchor".as_ref(),
        a.as_os_str(),
        "--test".as_ref(),
        t.as_os_str(),
        "--method".as_ref(),
        "akima".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json output");
    let want = &case["expected"]["akima"];
    assert_eq!(v["method"], "akima");
    assert_eq!(v["metric"], "psnr");
    let got = v["bd_rate_percent"].as_f64().expect("rate");
    assert!(error(got, want["bd_rate"].as_f64().expect("rate")) <= REL);
    let got = v["bd_metric"].as_f64().expect("metric");
    assert!(error(got, want["bd_metric"].as_f64().expect("metric")) <= REL);

    // Eval-JSON anchor against itself as CSV: zero. `psnr` reads `psnr-rgb`.
    let (r, q) = (
        floats(&case["anchor"]["bpp"]),
        floats(&case["anchor"]["quality"]),
    );
    let j = dir.join("anchor.json");
    let eval = serde_json::json!({"name": "icm", "results": {"bpp": r, "psnr-rgb": q}});
    std::fs::write(&j, eval.to_string()).expect("write json");
    let (ok, out, err) = icm(&[
        "--anchor".as_ref(),
        j.as_os_str(),
        "--test".as_ref(),
        a.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(v["bd_rate_percent"].as_f64(), Some(0.0), "{out}");
    assert_eq!(v["bd_metric"].as_f64(), Some(0.0), "{out}");

    // Another metric column.
    let (ok, out, err) = icm(&[
        "--anchor".as_ref(),
        a.as_os_str(),
        "--test".as_ref(),
        t.as_os_str(),
        "--metric".as_ref(),
        "ms_ssim".as_ref(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("BD-ms_ssim: "), "{out}");
}

#[test]
fn cli_errors_are_clear() {
    let dir = fresh_dir("bd_rate_cli_errors");
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let good = write("good.csv", "bpp,psnr\n0.1,30\n0.2,32\n0.4,34\n0.8,36\n");
    let high = write("high.csv", "bpp,psnr\n0.1,40\n0.2,42\n0.4,44\n0.8,46\n");
    let three = write("three.csv", "bpp,psnr\n0.1,30\n0.2,32\n0.4,34\n");
    let dup = write("dup.csv", "bpp,psnr\n0.1,30\n0.1,32\n0.4,34\n");
    let nan = write("nan.csv", "bpp,psnr\n0.1,30\n0.2,NaN\n0.4,34\n");
    let nocol = write("nocol.csv", "rate,psnr\n0.1,30\n0.2,32\n");
    let cases: [(&Path, &Path, &[&str], &str); 6] = [
        (&good, &high, &[], "do not overlap in quality"),
        (&good, &three, &["--method", "cubic"], "needs at least 4"),
        (&good, &dup, &[], "same rate"),
        (&good, &nan, &[], "not finite"),
        (&good, &nocol, &[], "no bpp column"),
        (&good, &good, &["--metric", "vmaf"], "no vmaf column"),
    ];
    for (a, t, extra, msg) in cases {
        let mut args = vec![
            "--anchor".as_ref(),
            a.as_os_str(),
            "--test".as_ref(),
            t.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let (ok, out, err) = icm(&args);
        assert!(!ok, "expected failure: {out}");
        assert!(err.contains(msg), "{msg:?} not in {err:?}");
    }
}

/// A non-monotone test curve: pchip refuses it and names `--envelope`; with `--envelope`
/// the dominated point is left out (and listed), and the result equals the BD-rate of the
/// curve without that point.
#[test]
fn cli_envelope_for_non_monotone_curves() {
    let dir = fresh_dir("bd_rate_envelope");
    let write = |name: &str, rows: &[(f64, f64)]| -> PathBuf {
        let mut s = String::from("bpp,map\n");
        for (r, q) in rows {
            s += &format!("{r},{q}\n");
        }
        let path = dir.join(name);
        std::fs::write(&path, s).expect("write csv");
        path
    };
    let anchor = write(
        "anchor.csv",
        &[(0.1, 0.20), (0.2, 0.24), (0.4, 0.27), (0.8, 0.285)],
    );
    let bumpy = write(
        "bumpy.csv",
        &[
            (0.08, 0.21),
            (0.15, 0.255),
            (0.3, 0.25),
            (0.5, 0.28),
            (0.9, 0.29),
        ],
    );
    let clean = write(
        "clean.csv",
        &[(0.08, 0.21), (0.15, 0.255), (0.5, 0.28), (0.9, 0.29)],
    );
    let args = |t: &PathBuf, extra: &[&str]| {
        let mut v: Vec<std::ffi::OsString> = vec![
            "--anchor".into(),
            anchor.clone().into(),
            "--test".into(),
            t.clone().into(),
            "--metric".into(),
            "map".into(),
        ];
        v.extend(extra.iter().map(|s| s.into()));
        v
    };
    let run = |v: Vec<std::ffi::OsString>| {
        let refs: Vec<&std::ffi::OsStr> = v.iter().map(|s| s.as_os_str()).collect();
        icm(&refs)
    };
    let (ok, _, err) = run(args(&bumpy, &[]));
    assert!(!ok && err.contains("--envelope"), "{err}");
    let (ok, out, err) = run(args(&bumpy, &["--envelope", "--json"]));
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["envelope_dropped"]["test"],
        serde_json::json!([[0.3, 0.25]])
    );
    assert_eq!(v["envelope_dropped"]["anchor"], serde_json::json!([]));
    let (ok, out2, err) = run(args(&clean, &["--json"]));
    assert!(ok, "{err}");
    let w: Value = serde_json::from_str(&out2).expect("json");
    assert_eq!(v["bd_rate_percent"], w["bd_rate_percent"]);
    assert!(v["bd_rate_percent"].as_f64().expect("rate") < 0.0);
}
