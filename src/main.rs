//! The `icm` command: encode, decode, inspect streams and build model files.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("icm: error: {e}");
        std::process::exit(1);
    }
}
