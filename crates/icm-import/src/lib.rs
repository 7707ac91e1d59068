//! Imports models trained elsewhere into icm model files.
//!
//! - [`compressai`]: CompressAI's `bmshj2018-hyperprior` and `mbt2018-mean` (spec 12.5);
//! - [`calibrate`]: the calibration of the integer h_s on pictures (spec 12.2);
//! - [`seeded`]: seeded CompressAI-shaped state dicts for tests and conformance vectors;
//! - [`torch`]: a reader of PyTorch checkpoints (`torch.save`) that interprets only the
//!   data-building subset of pickle: it never runs code from the file.

pub mod calibrate;
pub mod compressai;
mod error;
pub mod seeded;
pub mod torch;

pub use error::ImportError;
