//! The errors of the extension and their Python exceptions.
//!
//! Every failure is first a [`Failure`]: a kind (an error class of spec 13 as the Rust
//! libraries' `class()` methods give it, or `io`, `model`, `usage`, `bd-rate`), the Rust
//! error's message, and the field, offset, tile and path the Rust error names. It becomes a
//! Python exception only once the GIL is held again ([`Failure::into_py_err`]), through
//! `icm._errors._make`, which holds the one table from kinds to exception classes.

use icm::codec::CodecError;
use icm::container::ContainerError;
use icm::model::ModelError;
use icm_eval::bdrate::BdError;
use icm_eval::conformance::VectorError;
use icm_eval::results::ResultsError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// An error of the extension, made without the GIL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// An error class of spec 13 (`truncated`, ...), another class of the codec (`limit`,
    /// `other`), or `io`, `model`, `usage`, `bd-rate`.
    pub kind: &'static str,
    /// The Rust error's message.
    pub message: String,
    /// The syntax element, tensor or metadata key at fault.
    pub field: Option<String>,
    /// Byte offset in the stream.
    pub offset: Option<u64>,
    /// Tile index.
    pub tile: Option<u64>,
    /// The file at fault.
    pub path: Option<String>,
}

/// The result type of the extension's work done without the GIL.
pub type Result<T> = std::result::Result<T, Failure>;

impl Failure {
    /// A failure of `kind` with `message` and nothing else named.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            offset: None,
            tile: None,
            path: None,
        }
    }

    /// An invalid argument (`UsageError`).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }

    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn offset(mut self, offset: usize) -> Self {
        self.offset = Some(offset as u64);
        self
    }

    fn tile(mut self, tile: usize) -> Self {
        self.tile = Some(tile as u64);
        self
    }

    fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The Python exception (`icm.Error` or a subclass) of this failure.
    pub fn into_py_err(self, py: Python<'_>) -> PyErr {
        let made = py.import("icm._errors").and_then(|m| {
            m.getattr("_make")?.call1((
                self.kind,
                self.message.as_str(),
                self.field.as_deref(),
                self.offset,
                self.tile,
                self.path.as_deref(),
            ))
        });
        match made {
            Ok(exc) => PyErr::from_value(exc),
            // icm._errors is part of the package; reached only if it was removed
            Err(e) => PyRuntimeError::new_err(format!("{} ({e})", self.message)),
        }
    }
}

impl From<ContainerError> for Failure {
    fn from(e: ContainerError) -> Self {
        let f = Failure::new(e.class(), e.to_string());
        match e {
            ContainerError::BadMagic => f.field("magic").offset(0),
            ContainerError::UnsupportedMajor { .. } => f.field("major_version").offset(4),
            ContainerError::Truncated { what, offset, .. } => f.field(what).offset(offset),
            ContainerError::InvalidField { field, offset, .. } => f.field(field).offset(offset),
            ContainerError::UnknownRequiredChunk { offset, .. } => {
                f.field("chunk_type").offset(offset)
            }
            ContainerError::TileCount { .. } => f,
            ContainerError::MissingEnd { offset } => f.offset(offset),
            ContainerError::ChecksumMismatch { tile, offset, .. } => {
                f.field("tsum").offset(offset).tile(tile)
            }
            ContainerError::TrailingData { offset, .. } => f.offset(offset),
            // a later kind of error: its class, and whatever its message says
            #[allow(unreachable_patterns)]
            _ => f,
        }
    }
}

impl From<CodecError> for Failure {
    fn from(e: CodecError) -> Self {
        let message = e.to_string();
        let f = Failure::new(e.class(), message.clone());
        match e {
            CodecError::Container(c) => c.into(),
            CodecError::ModelMismatch {
                stream_name,
                model_name,
                ..
            } => f.field(if stream_name == model_name {
                "model_sha256"
            } else {
                "model_name"
            }),
            CodecError::Entropy {
                tile,
                payload,
                offset,
                ..
            } => f
                .field(format!("{payload}_payload"))
                .offset(offset)
                .tile(tile),
            CodecError::LimitExceeded { what, .. } => f.field(what),
            CodecError::Input(_) => Failure::usage(message),
            CodecError::NoEncoder(_) => Failure::new("model", message),
            // h_s rejecting its model (invalid-model), a transform's shapes, ...: the class
            _ => f,
        }
    }
}

impl From<ModelError> for Failure {
    fn from(e: ModelError) -> Self {
        let message = e.to_string();
        let kind = match (&e, e.class()) {
            (_, Some(class)) => class,
            (ModelError::Io { .. }, None) => "io",
            (_, None) => "model",
        };
        let mut f = Failure::new(kind, message);
        // the innermost error names the field; the outer one the file
        let mut e = &e;
        while let ModelError::InFile { path, source } = e {
            f.path.get_or_insert_with(|| path.clone());
            e = source;
        }
        match e {
            ModelError::MissingTensor(name) => f.field(name.as_str()),
            ModelError::BadTensor { name, .. } => f.field(name.as_str()),
            ModelError::BadMetadata { key, .. } => f.field(key.as_str()),
            ModelError::Transform { name, .. } | ModelError::TransformLayers { name, .. } => {
                f.field(*name)
            }
            ModelError::UnsafeName { .. } => f.field("model_name"),
            ModelError::Io { path, .. } => {
                let path = path.clone();
                f.path(path)
            }
            _ => f,
        }
    }
}

impl From<BdError> for Failure {
    fn from(e: BdError) -> Self {
        Failure::new("bd-rate", e.to_string())
    }
}

impl From<ResultsError> for Failure {
    fn from(e: ResultsError) -> Self {
        let message = e.to_string();
        match e {
            ResultsError::Io { path, .. } => Failure::new("io", message).path(path),
            ResultsError::Json { path, .. }
            | ResultsError::Csv { path, .. }
            | ResultsError::Content { path, .. } => Failure::new("bd-rate", message).path(path),
        }
    }
}

impl From<VectorError> for Failure {
    fn from(e: VectorError) -> Self {
        let message = e.to_string();
        match e {
            VectorError::Io { path, .. } | VectorError::Format { path, .. } => {
                Failure::new("io", message).path(path)
            }
        }
    }
}

/// Converts the failures of work done without the GIL into Python exceptions.
pub trait IntoPyResult<T> {
    /// `Ok` as it is, a [`Failure`] as its exception.
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|f| f.into_py_err(py))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_errors_name_their_field_and_offset() {
        let f: Failure = ContainerError::InvalidField {
            field: "width",
            offset: 8,
            value: 0,
            reason: "must be positive".into(),
        }
        .into();
        assert_eq!(f.kind, "invalid-field");
        assert_eq!(f.field.as_deref(), Some("width"));
        assert_eq!(f.offset, Some(8));
        let f: Failure = CodecError::Container(ContainerError::BadMagic).into();
        assert_eq!((f.kind, f.offset), ("bad-magic", Some(0)));
    }

    #[test]
    fn model_errors_name_the_file_and_the_tensor() {
        let f: Failure = ModelError::InFile {
            path: "m.safetensors".into(),
            source: Box::new(ModelError::MissingTensor("g_s.0.weight".into())),
        }
        .into();
        assert_eq!(f.kind, "invalid-model");
        assert_eq!(f.path.as_deref(), Some("m.safetensors"));
        assert_eq!(f.field.as_deref(), Some("g_s.0.weight"));
        let f: Failure = ModelError::NotFound {
            name: "x".into(),
            searched: "/nowhere".into(),
        }
        .into();
        assert_eq!(f.kind, "model");
    }
}
