//! The conformance suite passes with the built-in decoder and with the `icm` binary run as
//! a third-party decoder, and the runner reports decoders that are wrong as failing.

use icm::conformance::{load_index, run_builtin, run_external, Expect, Vector};
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
    use icm::conformance::within_tolerance;
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
