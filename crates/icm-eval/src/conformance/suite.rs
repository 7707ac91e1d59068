//! The whole suite: every vector (or those a filter selects) through the built-in decoder or
//! a decoder command, and the report `icm conformance` prints and the Python package's
//! `icm.conformance` returns.

use super::{run_builtin, run_external, FailCheck, Outcome, Vector};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the suite is run.
#[derive(Debug, Clone, Copy, Default)]
pub struct SuiteOptions<'a> {
    /// A decoder command template ([`run_external`]); `None`: the built-in decoder.
    pub decoder: Option<&'a str>,
    /// With a decoder command: check the latents only, not the reconstruction.
    pub latents_only: bool,
    /// Only the vectors whose name contains this.
    pub filter: Option<&'a str>,
}

/// The outcomes of a run of the suite, in the order of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One per vector run.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Vectors passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed).count()
    }

    /// Vectors failed.
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }

    /// Must-fail vectors passed that were judged by `check`: with the error class compared
    /// ([`FailCheck::Class`]) or by the exit status only ([`FailCheck::ExitOnly`]).
    pub fn passed_by(&self, check: FailCheck) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.passed && o.fail_check == Some(check))
            .count()
    }

    /// Whether every vector run passed, and at least one ran.
    pub fn all_passed(&self) -> bool {
        !self.outcomes.is_empty() && self.failed() == 0
    }

    /// The document of `icm conformance --json`: `passed`, `failed`, `class_checked`,
    /// `exit_only` and `vectors` (`name`, `check`, `passed`, `detail`, `latents_sha256`,
    /// `fail_check` of each).
    pub fn to_json(&self) -> Value {
        let vectors: Vec<Value> = self
            .outcomes
            .iter()
            .map(|o| {
                json!({
                    "name": o.name,
                    "check": o.check,
                    "passed": o.passed,
                    "detail": o.detail,
                    "latents_sha256": o.latents_sha256,
                    "fail_check": o.fail_check.map(FailCheck::name),
                })
            })
            .collect();
        json!({
            "passed": self.passed(),
            "failed": self.failed(),
            "class_checked": self.passed_by(FailCheck::Class),
            "exit_only": self.passed_by(FailCheck::ExitOnly),
            "vectors": vectors,
        })
    }
}

/// Runs `vectors` as `opts` says, calling `each` with every outcome as it comes (for a
/// progress table). A decoder command writes into a scratch folder of its own under the
/// system's temporary folder, removed at the end.
pub fn run_suite(
    vectors: &[Vector],
    opts: &SuiteOptions<'_>,
    mut each: impl FnMut(&Outcome),
) -> Report {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "icm-conformance-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut outcomes = Vec::new();
    for v in vectors
        .iter()
        .filter(|v| opts.filter.is_none_or(|f| v.name.contains(f)))
    {
        let o = match opts.decoder {
            Some(t) => run_external(v, t, &scratch, opts.latents_only),
            None => run_builtin(v),
        };
        each(&o);
        outcomes.push(o);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Report { outcomes }
}
