use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors reading the vector index.
#[derive(Debug, Error)]
pub enum VectorError {
    /// The index file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Path of the index.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The index is not valid JSON of the expected shape.
    #[error("{path}: {what}")]
    Format {
        /// Path of the index.
        path: String,
        /// Cause.
        what: String,
    },
}

/// What a decoder must do with a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Decode; the latents hash to `latents_sha256` (Annex A) and the reconstruction is
    /// within the tolerance of spec 11.3 of `reference` (a PNG), when one is given.
    Decode {
        /// SHA-256 of the Annex A serialisation of the decoded latents.
        latents_sha256: String,
        /// Reference reconstruction (PNG), relative to the suite directory.
        reference: Option<PathBuf>,
    },
    /// Refuse the stream with the error class of spec 13.
    Fail {
        /// Error class (`truncated`, `corrupt-payload`, ...).
        class: String,
    },
}

/// One conformance vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// Name; must-fail vectors start with `x`.
    pub name: String,
    /// Stream path (absolute, resolved against the suite directory).
    pub stream: PathBuf,
    /// Model file path (absolute).
    pub model: PathBuf,
    /// What the vector exercises.
    pub exercises: String,
    /// Spec sections it covers.
    pub sections: Vec<String>,
    /// Expected result.
    pub expect: Expect,
}

#[derive(Deserialize)]
struct RawIndex {
    vectors: Vec<RawVector>,
}

#[derive(Deserialize)]
struct RawVector {
    name: String,
    stream: String,
    model: String,
    #[serde(default)]
    exercises: String,
    #[serde(default)]
    sections: Vec<String>,
    #[serde(default)]
    latents_sha256: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    error_class: Option<String>,
}

/// Reads `DIR/conformance/vectors.json`; paths in it are relative to `DIR` (the suite root).
pub fn load_index(root: &Path) -> Result<Vec<Vector>, VectorError> {
    let path = root.join("conformance/vectors.json");
    let p = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|source| VectorError::Io {
        path: p.clone(),
        source,
    })?;
    let raw: RawIndex = serde_json::from_slice(&bytes).map_err(|e| VectorError::Format {
        path: p.clone(),
        what: e.to_string(),
    })?;
    raw.vectors
        .into_iter()
        .map(|v| {
            let expect = match (v.latents_sha256, v.error_class) {
                (Some(h), None) => Expect::Decode {
                    latents_sha256: h,
                    reference: v.reference.map(|r| root.join(r)),
                },
                (None, Some(class)) => Expect::Fail { class },
                _ => {
                    return Err(VectorError::Format {
                        path: p.clone(),
                        what: format!(
                            "vector {}: needs exactly one of latents_sha256 and error_class",
                            v.name
                        ),
                    })
                }
            };
            Ok(Vector {
                stream: root.join(&v.stream),
                model: root.join(&v.model),
                name: v.name,
                exercises: v.exercises,
                sections: v.sections,
                expect,
            })
        })
        .collect()
}
