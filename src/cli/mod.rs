//! Command-line interface of `icm`.

mod anchor;
mod args;
mod bd_rate;
mod bench;
mod commands;
mod conformance;
mod dct;
mod error;
mod eval;
mod io;
mod plot;
mod progress;
mod results;
mod task;
mod task_dct;
mod task_latent;

pub use args::Cli;
pub use commands::run;
