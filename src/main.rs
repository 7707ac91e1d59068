//! The `icm` command: encode, decode, inspect streams and build model files.

mod cli;

use clap::Parser;

fn main() {
    keep_freed_memory();
    die_quietly_on_closed_pipe();
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        // A stream's error reports its class of spec 13 first, as a line `error: CLASS` (the
        // form `icm conformance --decoder` reads); every other error is one line.
        if let Some(class) = e.class() {
            eprintln!("error: {class}");
        }
        eprintln!("icm: error: {e}");
        std::process::exit(1);
    }
}

/// Tells glibc's allocator to serve large blocks from its heap and to keep freed memory,
/// instead of mapping and unmapping every layer's tensor (tens of MB): a coder allocates
/// blocks of the same sizes over and over (layers, tiles, images of a data set), and every
/// fresh mapping costs a page fault and a zeroed page per 4 KiB touched. Peak memory is
/// unchanged; the memory is returned when the process ends.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// `icm ... | head -1`: when the reader of standard output goes away, end the process as
/// other command-line tools do (SIGPIPE's default action) instead of panicking in
/// `println!` on the EPIPE error Rust's runtime asks for by ignoring SIGPIPE.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
