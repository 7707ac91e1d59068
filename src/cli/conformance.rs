//! `icm conformance`: runs every vector of the suite and prints a table.

use super::args::ConformanceArgs;
use super::error::CliError;
use icm::conformance::{load_index, run_builtin, run_external, Outcome};
use std::path::PathBuf;

/// Runs the suite; fails (exit 1) unless every vector passes.
pub fn run(a: ConformanceArgs) -> Result<(), CliError> {
    let root = a
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let vectors = load_index(&root).map_err(|e| CliError::Usage(e.to_string()))?;
    let scratch = std::env::temp_dir().join(format!("icm-conformance-{}", std::process::id()));
    let mut outcomes: Vec<Outcome> = Vec::new();
    for v in vectors
        .iter()
        .filter(|v| a.filter.as_deref().is_none_or(|f| v.name.contains(f)))
    {
        let o = match &a.decoder {
            Some(t) => run_external(v, t, &scratch, a.latents_only),
            None => run_builtin(v),
        };
        if !a.json {
            println!(
                "{:<28} {:<50} {}  {}",
                o.name,
                o.check,
                if o.passed { "pass" } else { "FAIL" },
                o.detail
            );
        }
        outcomes.push(o);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    if a.json {
        let list: Vec<_> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name,
                    "check": o.check,
                    "passed": o.passed,
                    "detail": o.detail,
                    "latents_sha256": o.latents_sha256,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"passed": passed, "failed": failed, "vectors": list})
        );
    } else {
        println!("conformance: {passed} passed, {failed} failed");
    }
    if failed > 0 || outcomes.is_empty() {
        return Err(CliError::Usage(format!(
            "conformance: {failed} of {} vectors failed",
            outcomes.len()
        )));
    }
    Ok(())
}
