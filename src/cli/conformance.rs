//! `icm conformance`: runs every vector of the suite and prints a table.

use super::args::ConformanceArgs;
use super::error::CliError;
use icm_eval::conformance::{load_index, run_builtin, run_external, FailCheck, Outcome};
use std::path::PathBuf;

/// Runs the suite; fails (exit 1) unless every vector passes.
pub fn run(a: ConformanceArgs) -> Result<(), CliError> {
    let root = a
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let vectors = load_index(&root)?;
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
    let refused_by = |c: FailCheck| {
        outcomes
            .iter()
            .filter(|o| o.passed && o.fail_check == Some(c))
            .count()
    };
    let (class_checked, exit_only) = (
        refused_by(FailCheck::Class),
        refused_by(FailCheck::ExitOnly),
    );
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
                    "fail_check": o.fail_check.map(FailCheck::name),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "passed": passed,
                "failed": failed,
                "class_checked": class_checked,
                "exit_only": exit_only,
                "vectors": list,
            })
        );
    } else {
        if class_checked + exit_only > 0 {
            println!(
                "must-fail: {class_checked} passed with the error class checked, \
                 {exit_only} by exit status only (no `error: CLASS` line on stderr)"
            );
        }
        println!("conformance: {passed} passed, {failed} failed");
    }
    if failed > 0 || outcomes.is_empty() {
        return Err(CliError::Conformance {
            failed,
            total: outcomes.len(),
        });
    }
    Ok(())
}
