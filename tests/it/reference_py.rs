//! Cross-check against the independent Python decoder in `conformance/reference_py/`,
//! written from `spec/icm-v1.md` alone: every vector of `conformance/vectors.json` must
//! decode, in Python, to its recorded `latents_sha256` (Annex A), and every must-fail
//! vector (streams and model files) must be refused with its recorded `error_class`.
//!
//! Needs Python with numpy: the project venv (`${ICM_VENV:-$HOME/.cache/icm-venv}`, which
//! `scripts/test.sh` sets up) or `python3` on the PATH. Without either the test prints why
//! and passes, except when `CI=true`: there it is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The first interpreter that imports numpy: the project venv's (which
/// `scripts/setup_onnxruntime.sh` fills), then `python3` on the PATH; else the reasons.
fn python_with_numpy() -> Result<PathBuf, String> {
    let mut why = Vec::new();
    for py in [crate::common::venv_python(), PathBuf::from("python3")] {
        match crate::common::imports(&py, "numpy") {
            Ok(()) => return Ok(py),
            Err(e) => why.push(e),
        }
    }
    Err(why.join("; "))
}

#[test]
fn python_reference_decoder_matches_vectors() {
    let python = match python_with_numpy() {
        Ok(py) => py,
        Err(why) if crate::common::under_ci() => {
            panic!("CI=true and the Python reference decoder cannot run: {why}")
        }
        Err(why) => {
            println!("skipping the Python reference decoder check: {why}");
            return;
        }
    };

    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("conformance/vectors.json")).expect("vectors.json"),
    )
    .expect("json");
    let vectors = index["vectors"].as_array().expect("vectors");
    assert!(!vectors.is_empty());
    let script = root().join("conformance/reference_py/icm_ref.py");

    let mut failures = Vec::new();
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let stream = root().join(v["stream"].as_str().expect("stream"));
        let model = root().join(v["model"].as_str().expect("model"));
        let want = v["latents_sha256"].as_str();
        let out = Command::new(&python)
            .arg(&script)
            .arg(&stream)
            .arg(&model)
            .output()
            .expect("run the Python reference decoder");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = stdout
            .lines()
            .find_map(|l| l.strip_prefix("latents sha256 "))
            .map(str::trim);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let class = icm_eval::conformance::reported_class(&stderr);
        match (want, out.status.success(), got) {
            // Must-fail vectors: the reference decoder refuses them with the same class
            // (spec 13.1 fixes which one).
            (None, false, _) if class.is_some() && class == v["error_class"].as_str() => {}
            (Some(want), true, Some(h)) if h == want => {}
            _ => failures.push(format!(
                "{name}: expected {}, python printed {:?} (status {}, stderr: {})",
                want.unwrap_or("a refusal"),
                stdout.trim(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "Python reference decoder disagrees:\n{}",
        failures.join("\n")
    );
}
