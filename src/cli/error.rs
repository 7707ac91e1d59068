use thiserror::Error;

/// Errors reported by the command line: one line each, naming what and where.
#[derive(Debug, Error)]
pub enum CliError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A picture could not be encoded for writing.
    #[error("{path}: cannot encode image: {source}")]
    Image {
        /// File path.
        path: String,
        /// Cause.
        source: image::ImageError,
    },
    /// A picture file could not be read, or its output format chosen.
    #[error(transparent)]
    Picture(#[from] icm_eval::picture::PictureError),
    /// A stream failed to decode.
    #[error("{path}: {source}")]
    Codec {
        /// File path.
        path: String,
        /// Cause.
        source: icm::codec::CodecError,
    },
    /// A stream's container is malformed.
    #[error("{path}: {source}")]
    Container {
        /// File path.
        path: String,
        /// Cause.
        source: icm::container::ContainerError,
    },
    /// A JPEG file could not be decoded to DCT coefficients.
    #[error("{path}: {source}")]
    Jpeg {
        /// File path.
        path: String,
        /// Cause.
        source: icm_eval::jpeg::JpegError,
    },
    /// A model could not be found or loaded.
    #[error("model: {0}")]
    Model(#[from] icm::model::ModelError),
    /// A task decoder, its runtime or its dataset failed.
    #[error("{0}")]
    Task(#[from] icm_eval::task::TaskError),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// The error class of spec 13 ([`icm::codec::CodecError::class`]) when the error is a
    /// stream's: a codec or container error; `None` for every other error.
    pub fn class(&self) -> Option<&'static str> {
        match self {
            CliError::Codec { source, .. } => Some(source.class()),
            CliError::Container { source, .. } => Some(source.class()),
            _ => None,
        }
    }
}
