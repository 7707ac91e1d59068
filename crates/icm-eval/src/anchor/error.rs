use super::AnchorCodec;
use std::path::PathBuf;
use thiserror::Error;

/// Errors of the anchor path: a missing or failing external tool, or a result that does
/// not fit the input.
#[derive(Debug, Error)]
pub enum AnchorError {
    /// No ffmpeg was found.
    #[error(
        "no ffmpeg found: pass --ffmpeg PATH, set ICM_FFMPEG, or run scripts/setup_ffmpeg.sh \
         (installs the PyPI wheel imageio-ffmpeg into {venv})"
    )]
    NoFfmpeg {
        /// The virtual environment searched.
        venv: String,
    },
    /// ffmpeg lacks an encoder or decoder the codec needs.
    #[error("{ffmpeg}: has no {what} (needs an ffmpeg built with it, e.g. imageio-ffmpeg's)")]
    Missing {
        /// The executable.
        ffmpeg: PathBuf,
        /// The missing component.
        what: String,
    },
    /// An external command could not start or failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Last lines of its error output.
        stderr: String,
    },
    /// A rate parameter outside the codec's range.
    #[error("{codec}: {level} is outside {lo}..={hi} (or not an integer where one is needed)")]
    Level {
        /// Codec.
        codec: AnchorCodec,
        /// Rejected value.
        level: f64,
        /// Lowest valid value.
        lo: f64,
        /// Highest valid value.
        hi: f64,
    },
    /// The input image has no pixels.
    #[error("the image is empty")]
    EmptyImage,
    /// The decoder returned a picture of the wrong size.
    #[error("decoded picture has {bytes} bytes, expected {expected}")]
    DecodedSize {
        /// What was expected.
        expected: String,
        /// What came back.
        bytes: usize,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}
