use thiserror::Error;

/// Errors of the model layer (spec 7): reading, validating and building model files.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The file is not a safetensors file.
    #[error("model file is not valid safetensors: {0}")]
    Safetensors(String),
    /// A required tensor is missing.
    #[error("model file has no tensor {0:?}")]
    MissingTensor(String),
    /// A tensor has the wrong type or shape.
    #[error("tensor {name:?}: {what}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A metadata entry is missing or malformed.
    #[error("model metadata {key:?}: {what}")]
    BadMetadata {
        /// Key.
        key: String,
        /// What is wrong.
        what: String,
    },
    /// The integer hyper-synthesis violates spec 9.5.
    #[error(transparent)]
    Hyper(#[from] crate::hyper::HyperError),
    /// An entropy table violates spec 7.4.
    #[error(transparent)]
    Entropy(#[from] crate::entropy::EntropyError),
    /// A float transform's layers do not chain (spec 7.5, 11.1).
    #[error("transform {name}: {source}")]
    TransformLayers {
        /// Transform name (g_a, h_a, g_s).
        name: &'static str,
        /// The layer that does not fit.
        source: crate::transform::TransformError,
    },
    /// A float transform does not end at the channels the model needs.
    #[error("transform {name}: {what}")]
    Transform {
        /// Transform name (g_a, h_a, g_s).
        name: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A model name read from a stream is not a plain name, so it is not looked up.
    #[error(
        "the stream names its model {name:?}, which is not a plain name (1-64 letters, digits, \
         '.', '_' or '-', not starting with '.'): it selects no file; give the model file with \
         --model PATH"
    )]
    UnsafeName {
        /// The name as read (shown escaped).
        name: String,
    },
    /// A model file failed to load: which file, and why.
    #[error("{path}: {source}")]
    InFile {
        /// The model file.
        path: String,
        /// What was wrong with it.
        source: Box<ModelError>,
    },
    /// No model with this name was found.
    #[error("no model named {name:?} in {searched}")]
    NotFound {
        /// Requested name.
        name: String,
        /// Where it was searched.
        searched: String,
    },
    /// Reading a file failed.
    #[error("cannot read model {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl ModelError {
    /// The error class of spec 13 when the file itself fails 7.5 (`invalid-model`); `None`
    /// when the model could not be found or read.
    pub fn class(&self) -> Option<&'static str> {
        match self {
            ModelError::InFile { source, .. } => source.class(),
            ModelError::UnsafeName { .. } | ModelError::NotFound { .. } | ModelError::Io { .. } => {
                None
            }
            _ => Some("invalid-model"),
        }
    }
}
