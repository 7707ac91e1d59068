//! Errors of the importers.

use thiserror::Error;

/// Why a checkpoint could not be imported.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The checkpoint file could not be read as a PyTorch checkpoint.
    #[error("reading the checkpoint: {0}")]
    Torch(#[from] crate::torch::TorchError),
    /// A tensor the architecture needs is not in the checkpoint.
    #[error("the checkpoint has no tensor `{name}` (is it a {arch} checkpoint?)")]
    Missing {
        /// Tensor name in the state dict.
        name: String,
        /// The architecture asked for.
        arch: &'static str,
    },
    /// A tensor has another shape, dtype or value range than the architecture needs.
    #[error("tensor `{name}`: {what}")]
    BadTensor {
        /// Tensor name in the state dict.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Building the model file failed (spec 7.5, 12.2).
    #[error(transparent)]
    Model(#[from] icm::model::ModelError),
    /// Running the float transforms on the calibration pictures failed.
    #[error("calibration: {0}")]
    Calibration(String),
}
