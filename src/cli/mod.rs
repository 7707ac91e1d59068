//! Command-line interface of `icm`.

mod anchor;
mod args;
mod bd_rate;
mod bench;
mod commands;
mod conformance;
mod dct;
mod encode;
mod error;
mod eval;
mod import;
mod io;
mod plot;
mod progress;
mod results;
mod roi;
mod task_eval;
mod task_run;

pub use args::Cli;
pub use commands::run;
