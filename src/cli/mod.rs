//! Command-line interface of `icm`.

mod args;
mod bd_rate;
mod commands;
mod conformance;
mod error;
mod eval;
mod io;
mod task;

pub use args::Cli;
pub use commands::run;
