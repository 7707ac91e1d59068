//! Progress of the long commands (`eval`, `anchor`, `task-eval`, `bench`, `encode --effort`):
//! a bar on a
//! terminal, and plain lines when stderr is a file or a pipe (batch jobs), at most one every
//! `$ICM_PROGRESS_SECONDS` seconds (default 30) and one when the work is done.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds between two progress lines when stderr is not a terminal.
const DEFAULT_LINE_SECONDS: u64 = 30;

/// A progress display over `total` items.
pub struct Progress {
    bar: ProgressBar,
    /// Plain-line state when stderr is not a terminal: (last line written, message).
    lines: Option<Mutex<(Instant, String)>>,
    start: Instant,
    every: Duration,
}

impl Progress {
    /// A bar when stderr is a terminal, progress lines otherwise.
    pub fn new(total: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} eta {eta} {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let every = std::env::var("ICM_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_LINE_SECONDS);
        let start = Instant::now();
        Self {
            bar,
            lines: (!terminal).then(|| Mutex::new((start, String::new()))),
            start,
            every: Duration::from_secs(every),
        }
    }

    /// What is being worked on now.
    pub fn set_message(&self, msg: String) {
        if let Some(lines) = &self.lines {
            if let Ok(mut l) = lines.lock() {
                l.1.clone_from(&msg);
            }
        }
        self.bar.set_message(msg);
    }

    /// `n` more items done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        let Some(lines) = &self.lines else { return };
        let Ok(mut l) = lines.lock() else { return };
        let done = self.bar.position();
        let total = self.bar.length().unwrap_or(0);
        if done < total && l.0.elapsed() < self.every {
            return;
        }
        l.0 = Instant::now();
        let secs = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 && done < total {
            format!(", eta {}", hms(secs / done as f64 * (total - done) as f64))
        } else {
            String::new()
        };
        eprintln!(
            "icm: progress {done}/{total} ({:.0} %), {} elapsed{eta}{}",
            100.0 * done as f64 / total.max(1) as f64,
            hms(secs),
            if l.1.is_empty() {
                String::new()
            } else {
                format!(": {}", l.1)
            }
        );
    }

    /// Sets the number of items when it is known only once the work has started.
    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar.
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

fn hms(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
