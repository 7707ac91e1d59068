use crate::container::ContainerError;
use crate::entropy::EntropyError;
use crate::hyper::HyperError;
use thiserror::Error;

/// Errors of the decoding process and the encoder (spec 13).
#[derive(Debug, Error)]
pub enum CodecError {
    /// The container is malformed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The stream names another model than the one given (spec 7.1).
    #[error("stream needs model {stream_name:?} (sha256 {stream_sha}), got {model_name:?} (sha256 {model_sha})")]
    ModelMismatch {
        /// Name in the header.
        stream_name: String,
        /// SHA-256 in the header.
        stream_sha: String,
        /// Name of the loaded model.
        model_name: String,
        /// SHA-256 of the loaded model.
        model_sha: String,
    },
    /// An ANS payload is malformed (spec 8).
    #[error("tile {tile} ({payload} payload, chunk at offset {offset}): {source}")]
    Entropy {
        /// Tile index.
        tile: usize,
        /// "z", "y" or "step map index" (spec 8.6-8.8).
        payload: &'static str,
        /// Offset of the TILE chunk (of the STEP chunk for its index payload).
        offset: usize,
        /// Cause.
        source: EntropyError,
    },
    /// The hyper-synthesis rejected its input.
    #[error(transparent)]
    Hyper(#[from] HyperError),
    /// A float transform failed (shape mismatch).
    #[error("{stage}: {source}")]
    Transform {
        /// g_a, h_a or g_s.
        stage: &'static str,
        /// Cause.
        source: crate::transform::TransformError,
    },
    /// The stream needs more than a limit of [`super::DecodeLimits`] allows (checked
    /// against the header before any work).
    #[error("the stream needs {needed} {what}, more than the limit of {limit}")]
    LimitExceeded {
        /// What is limited: pixels or memory.
        what: &'static str,
        /// What the stream needs.
        needed: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The sink of [`super::decode_stream_rows`] failed to take a band of the picture.
    #[error("writing the decoded picture: {0}")]
    Sink(std::io::Error),
    /// The model has no analysis transforms (decoder-only file).
    #[error("model {0:?} has no encoder transforms (g_a, h_a)")]
    NoEncoder(String),
    /// The input image or options are not encodable.
    #[error("cannot encode: {0}")]
    Input(String),
}

impl CodecError {
    /// The error class of spec 13 (table 13-1) as a stable lower-case name; conformance
    /// records name the class a must-fail stream has to produce.
    pub fn class(&self) -> &'static str {
        match self {
            CodecError::Container(e) => e.class(),
            CodecError::ModelMismatch { .. } => "model-mismatch",
            CodecError::Entropy { .. } => "corrupt-payload",
            CodecError::Hyper(_) => "invalid-model",
            CodecError::LimitExceeded { .. } => "limit",
            CodecError::Transform { .. }
            | CodecError::NoEncoder(_)
            | CodecError::Input(_)
            | CodecError::Sink(_) => "other",
        }
    }
}
