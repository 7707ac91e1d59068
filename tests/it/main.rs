//! The integration tests, in one binary (one link instead of one per file): the CLI end to
//! end, the libraries against their oracles (libjpeg, pycocotools, bjontegaard, the Python
//! reference decoder), determinism, robustness on hostile input, and the task decoders on
//! `../shared`. `common` holds the helpers, among them the one rule for a test that cannot
//! run here (`cannot_run`: skip with a message, fail under `CI=true`).
//!
//! Run one file's tests with a filter, e.g. `cargo test --test it determinism::`.

mod common;

mod anchor;
mod bd_rate;
mod bench_cli;
mod cli_usage;
mod conformance;
mod dct_task;
mod determinism;
mod eval_cli;
mod import_cli;
mod jpeg_dct;
mod jpeg_lenient;
mod latent_task;
mod rdo;
mod reference_py;
mod robustness;
mod roundtrip;
mod steps;
mod task_cli;
mod task_models;
mod task_py;
