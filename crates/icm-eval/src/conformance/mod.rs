//! Conformance vectors and the runner that checks a decoder against them (spec 11.3,
//! 13, Annex A).
//!
//! `conformance/vectors.json` lists every vector: its stream, its model, what it exercises,
//! and the expected result: the SHA-256 of the decoded latents and a reference
//! reconstruction with the tolerance of spec 11.3, or the error class of spec 13 that a
//! decoder must report.

mod runner;
mod suite;
mod vector;

pub use runner::{reported_class, run_builtin, run_external, within_tolerance, FailCheck, Outcome};
pub use suite::{run_suite, Report, SuiteOptions};
pub use vector::{load_index, Expect, Vector, VectorError};
