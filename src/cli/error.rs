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
    /// A conventional codec cannot be set up or run.
    #[error("{0}")]
    Anchor(#[from] icm_eval::anchor::AnchorError),
    /// A conventional codec failed on a picture.
    #[error("{what}: {source}")]
    AnchorCoding {
        /// Picture and rate point.
        what: String,
        /// Cause.
        source: icm_eval::anchor::AnchorError,
    },
    /// Bjøntegaard deltas cannot be computed.
    #[error("{what}: {source}")]
    BdRate {
        /// The file or comparison.
        what: String,
        /// Cause.
        source: icm_eval::bdrate::BdError,
    },
    /// A results file cannot be read.
    #[error("{0}")]
    Results(#[from] icm_eval::results::ResultsError),
    /// A folder holds nothing to evaluate, or a file nothing to read.
    #[error("{path}: {why}")]
    Dataset {
        /// Folder or file.
        path: String,
        /// What is missing.
        why: String,
    },
    /// A decoder-only model was given to a command that encodes.
    #[error("{path}: model {model} has no encoder transforms (decoder-only)")]
    DecoderOnly {
        /// Model file.
        path: String,
        /// Model name.
        model: String,
    },
    /// A picture of an evaluation cannot be measured (decoded size, metric).
    #[error(transparent)]
    Rd(#[from] icm_eval::rd::RdError),
    /// The conformance index cannot be read.
    #[error("{0}")]
    Vectors(#[from] icm_eval::conformance::VectorError),
    /// Conformance vectors failed (each was reported above).
    #[error("conformance: {failed} of {total} vectors failed")]
    Conformance {
        /// Vectors that failed.
        failed: usize,
        /// Vectors run.
        total: usize,
    },
    /// A plot cannot be drawn or rendered.
    #[error("{path}: {why}")]
    Plot {
        /// Output file.
        path: String,
        /// Cause.
        why: String,
    },
    /// A checkpoint could not be imported.
    #[error("{path}: {source}")]
    Import {
        /// Checkpoint path.
        path: String,
        /// Cause.
        source: icm_import::ImportError,
    },
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
}

impl From<icm_eval::task::job::JobError> for CliError {
    fn from(e: icm_eval::task::job::JobError) -> Self {
        use icm_eval::task::job::JobError;
        match e {
            JobError::Usage(m) => CliError::Usage(m),
            JobError::Task(e) => CliError::Task(e),
            JobError::Model(e) => CliError::Model(e),
            JobError::Anchor(e) => CliError::Anchor(e),
            JobError::Cache { path, source } => CliError::Io { path, source },
            JobError::AnchorCoding { what, source } => CliError::AnchorCoding { what, source },
            JobError::Rd(e) => CliError::Rd(e),
            JobError::Codec { what, source } => CliError::Codec { path: what, source },
            JobError::DecoderOnly { path, model } => CliError::DecoderOnly { path, model },
            e @ JobError::Lookup(_) => CliError::Usage(e.to_string()),
        }
    }
}

impl CliError {
    /// The error class of spec 13 ([`icm::codec::CodecError::class`]) when the error is a
    /// stream's: a codec or container error; `None` for every other error.
    pub fn class(&self) -> Option<&'static str> {
        match self {
            CliError::Codec { source, .. } => Some(source.class()),
            CliError::Container { source, .. } => Some(source.class()),
            CliError::Model(source) => source.class(),
            _ => None,
        }
    }
}
