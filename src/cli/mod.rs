//! Command-line interface of `icm`.

mod args;
mod bd_rate;
mod commands;
mod conformance;
mod dct;
mod error;
mod eval;
mod io;

pub use args::Cli;
pub use commands::run;
