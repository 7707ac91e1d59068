//! `icm conformance`: runs every vector of the suite and prints a table.

use super::args::ConformanceArgs;
use super::error::CliError;
use icm_eval::conformance::{load_index, run_suite, FailCheck, SuiteOptions};
use std::path::PathBuf;

/// Runs the suite; fails (exit 1) unless every vector passes.
pub fn run(a: ConformanceArgs) -> Result<(), CliError> {
    let root = a
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let vectors = load_index(&root)?;
    let opts = SuiteOptions {
        decoder: a.decoder.as_deref(),
        latents_only: a.latents_only,
        filter: a.filter.as_deref(),
    };
    let report = run_suite(&vectors, &opts, |o| {
        if !a.json {
            println!(
                "{:<28} {:<50} {}  {}",
                o.name,
                o.check,
                if o.passed { "pass" } else { "FAIL" },
                o.detail
            );
        }
    });
    let (passed, failed) = (report.passed(), report.failed());
    let (class_checked, exit_only) = (
        report.passed_by(FailCheck::Class),
        report.passed_by(FailCheck::ExitOnly),
    );
    if a.json {
        println!("{}", report.to_json());
    } else {
        if class_checked + exit_only > 0 {
            println!(
                "must-fail: {class_checked} passed with the error class checked, \
                 {exit_only} by exit status only (no `error: CLASS` line on stderr)"
            );
        }
        println!("conformance: {passed} passed, {failed} failed");
    }
    if !report.all_passed() {
        return Err(CliError::Conformance {
            failed,
            total: report.outcomes.len(),
        });
    }
    Ok(())
}
