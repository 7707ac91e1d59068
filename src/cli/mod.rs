//! Command-line interface of `icm`.

mod args;
mod commands;
mod error;
mod eval;
mod io;

pub use args::Cli;
pub use commands::run;
