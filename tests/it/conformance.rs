//! The conformance suite passes with the built-in decoder and with the `icm` binary run as
//! a third-party decoder, and the runner reports decoders that are wrong as failing.

use icm_eval::conformance::{
    load_index, reported_class, run_builtin, run_external, Expect, FailCheck, Vector,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn suite() -> Vec<Vector> {
    load_index(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("conformance/vectors.json loads")
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("icm-conf-test-{name}-{}", std::process::id()))
}

fn icm_decoder() -> String {
    format!(
        "'{}' decode {{in}} --model {{model}} --latents-raw {{out_latents}} -o {{out_image}}",
        env!("CARGO_BIN_EXE_icm")
    )
}

#[test]
fn builtin_decoder_passes_every_vector() {
    let vectors = suite();
    assert!(vectors.len() >= 40);
    assert!(vectors
        .iter()
        .any(|v| matches!(v.expect, Expect::Fail { .. })));
    for v in &vectors {
        let o = run_builtin(v);
        assert!(o.passed, "{}: {}", o.name, o.detail);
        let must_fail = matches!(v.expect, Expect::Fail { .. });
        assert_eq!(
            o.fail_check,
            must_fail.then_some(FailCheck::Class),
            "{}",
            o.name
        );
    }
}

/// The expected class of every must-fail vector, by name.
fn must_fail() -> Vec<(String, String)> {
    suite()
        .into_iter()
        .filter_map(|v| match v.expect {
            Expect::Fail { class } => Some((v.name, class)),
            Expect::Decode { .. } => None,
        })
        .collect()
}

/// `icm conformance --decoder TEMPLATE --filter x- --json`: the exit status and the report.
fn conformance_json(template: &str) -> (bool, Value) {
    let out = crate::common::icm(
        &[
            "conformance",
            "--decoder",
            template,
            "--filter",
            "x-",
            "--json",
        ],
        &[],
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn vector<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report"))
}

#[test]
fn reported_class_is_the_first_error_line() {
    assert_eq!(
        reported_class("decoding a.icm\nerror: truncated \nerror: bad-magic\n"),
        Some("truncated")
    );
    assert_eq!(reported_class("icm: error: truncated stream\n"), None);
    assert_eq!(reported_class("Error: truncated\n"), None);
    assert_eq!(reported_class(""), None);
}

#[test]
fn decoder_without_a_class_passes_must_fail_vectors_by_exit_only() {
    let expected = must_fail();
    assert!(expected.len() >= 20);
    let (ok, report) = conformance_json("false");
    assert!(ok, "{report}");
    assert_eq!(report["passed"], expected.len(), "{report}");
    assert_eq!(report["exit_only"], expected.len(), "{report}");
    assert_eq!(report["class_checked"], 0, "{report}");
    for (name, _) in &expected {
        let o = vector(&report, name);
        assert_eq!(o["fail_check"], "exit-only", "{o}");
        assert!(
            o["detail"].as_str().expect("detail").contains("exit only"),
            "{o}"
        );
    }
    // The table says so too, and keeps its last line.
    let out = crate::common::icm(
        &["conformance", "--decoder", "false", "--filter", "x-"],
        &[],
    );
    let stdout = crate::common::ok(&out, "icm conformance --decoder false");
    let n = expected.len();
    assert!(
        stdout.contains(&format!(
            "must-fail: 0 passed with the error class checked, {n} by exit status only"
        )),
        "{stdout}"
    );
    assert_eq!(
        stdout.trim_end().lines().last(),
        Some(format!("conformance: {n} passed, 0 failed").as_str())
    );
}

#[test]
fn decoder_reporting_the_wrong_class_fails() {
    let dir = crate::common::fresh_dir("conformance-bad-magic-decoder");
    // Refuses every stream as bad-magic; only the first `error: ` line counts.
    let script = dir.join("decoder.sh");
    std::fs::write(
        &script,
        "echo \"fake: cannot decode $1\" >&2\necho 'error: bad-magic' >&2\necho 'error: truncated' >&2\nexit 1\n",
    )
    .expect("script");
    let template = format!("sh '{}' {{in}}", script.display());
    let (ok, report) = conformance_json(&template);
    assert!(!ok, "{report}");
    let expected = must_fail();
    let right = expected.iter().filter(|(_, c)| c == "bad-magic").count();
    assert!(right >= 1, "no bad-magic vector");
    assert_eq!(report["passed"], right, "{report}");
    assert_eq!(report["failed"], expected.len() - right, "{report}");
    assert_eq!(report["exit_only"], 0, "{report}");
    for (name, class) in &expected {
        let o = vector(&report, name);
        assert_eq!(o["fail_check"], "class", "{o}");
        assert_eq!(o["passed"], class == "bad-magic", "{o}");
        if class != "bad-magic" {
            let detail = o["detail"].as_str().expect("detail");
            assert!(
                detail.contains("bad-magic") && detail.contains(class.as_str()),
                "{o}"
            );
        }
    }
    // Filtered to the one vector it gets right, the run passes.
    let out = crate::common::icm(
        &[
            "conformance",
            "--decoder",
            &template,
            "--filter",
            "x-bad-magic",
        ],
        &[],
    );
    let stdout = crate::common::ok(&out, "x-bad-magic only");
    assert!(
        stdout.contains("must-fail: 1 passed with the error class checked, 0 by exit"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("conformance: 1 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn icm_decoder_reports_the_class_of_every_must_fail_vector() {
    let expected = must_fail();
    let (ok, report) = conformance_json(&icm_decoder());
    assert!(ok, "{report}");
    assert_eq!(report["class_checked"], expected.len(), "{report}");
    assert_eq!(report["exit_only"], 0, "{report}");
    for (name, class) in &expected {
        let o = vector(&report, name);
        assert_eq!(o["fail_check"], "class", "{o}");
        assert!(
            o["detail"]
                .as_str()
                .expect("detail")
                .ends_with(class.as_str()),
            "{o}"
        );
    }
}

#[test]
fn icm_binary_as_external_decoder_passes() {
    let dir = scratch("ok");
    for v in suite().iter().filter(|v| {
        v.name.contains("17x33") || v.name.starts_with("x-trunc") || v.name == "v1-zoo-q2"
    }) {
        let o = run_external(v, &icm_decoder(), &dir, false);
        assert!(o.passed, "{}: {}", o.name, o.detail);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decoder_that_changes_one_latent_fails() {
    let dir = scratch("flip");
    // Decode correctly, then overwrite the first byte of the latents file.
    let template = format!(
        "{} && printf 'X' | dd of={{out_latents}} bs=1 seek=0 conv=notrunc 2>/dev/null",
        icm_decoder()
    );
    let v = suite()
        .into_iter()
        .find(|v| v.name == "v1-17x33")
        .expect("vector");
    let o = run_external(&v, &template, &dir, false);
    assert!(!o.passed, "a flipped latent must fail: {}", o.detail);
    assert!(o.detail.contains("latents sha256"), "{}", o.detail);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decoder_that_accepts_must_fail_streams_fails() {
    let dir = scratch("accept");
    let v = suite()
        .into_iter()
        .find(|v| v.name == "x-corrupt-y")
        .expect("vector");
    let o = run_external(&v, "true", &dir, false);
    assert!(
        !o.passed,
        "accepting a must-fail stream must fail: {}",
        o.detail
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reconstruction_outside_tolerance_fails() {
    let dir = scratch("recon");
    std::fs::create_dir_all(&dir).expect("dir");
    // Correct latents, but a black image of the right size as the reconstruction.
    let black = dir.join("black.png");
    image::RgbImage::new(17, 33).save(&black).expect("png");
    let template = format!(
        "'{}' decode {{in}} --model {{model}} --latents-raw {{out_latents}} && cp '{}' {{out_image}}",
        env!("CARGO_BIN_EXE_icm"),
        black.display()
    );
    let v = suite()
        .into_iter()
        .find(|v| v.name == "v1-17x33")
        .expect("vector");
    let o = run_external(&v, &template, &dir, false);
    assert!(!o.passed, "{}", o.detail);
    assert!(o.detail.contains("out of tolerance"), "{}", o.detail);
    // The same decoder passes when only the latents are checked.
    assert!(run_external(&v, &template, &dir, true).passed);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tolerance_rule_of_spec_11_3() {
    use icm_eval::conformance::within_tolerance;
    let a = vec![100u8; 3000];
    let mut b = a.clone();
    assert!(within_tolerance(&a, &b).0);
    b[0] = 102;
    assert!(within_tolerance(&a, &b).0);
    b[0] = 103;
    assert!(
        !within_tolerance(&a, &b).0,
        "a difference of 3 is out of tolerance"
    );
    let c: Vec<u8> = a
        .iter()
        .enumerate()
        .map(|(i, &v)| if i % 2 == 0 { v + 2 } else { v })
        .collect();
    assert!(!within_tolerance(&a, &c).0, "PSNR below 50 dB");
}
