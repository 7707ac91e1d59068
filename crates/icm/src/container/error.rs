use thiserror::Error;

/// Errors of the container layer (spec 4-6, 13). Offsets are byte offsets in the stream.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ContainerError {
    /// The stream does not start with the magic bytes (spec 4.1).
    #[error("not an icm stream: bad magic bytes at offset 0")]
    BadMagic,
    /// The major version is not one this decoder implements (spec 14).
    #[error("unsupported major version {major} at offset 4 (this decoder implements 1)")]
    UnsupportedMajor {
        /// Major version found.
        major: u8,
    },
    /// The stream ends inside a structure.
    #[error("truncated stream: {what} at offset {offset} needs {needed} bytes, {available} left")]
    Truncated {
        /// Structure being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that remain.
        available: usize,
    },
    /// A header or chunk field has a value the spec forbids.
    #[error("invalid {field} = {value} at offset {offset}: {reason}")]
    InvalidField {
        /// Field name as in the spec's syntax tables.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Value found.
        value: u64,
        /// The violated rule.
        reason: String,
    },
    /// A required chunk of an unknown type (spec 4.2).
    #[error("unknown required chunk {kind:?} at offset {offset}")]
    UnknownRequiredChunk {
        /// The four type bytes, lossily as text.
        kind: String,
        /// Offset of the chunk.
        offset: usize,
    },
    /// The stream has fewer or more tile chunks than the tiling needs (spec 4.3).
    #[error("tile count mismatch: {found} TILE chunks, the tiling needs {expected}")]
    TileCount {
        /// TILE chunks present.
        found: usize,
        /// Tiles of the tiling.
        expected: usize,
    },
    /// No end chunk (spec 4.4).
    #[error("truncated stream: no IEND chunk before the end of data at offset {offset}")]
    MissingEnd {
        /// End of the data.
        offset: usize,
    },
    /// A tile's checksum differs from its payload's (spec 4.5).
    #[error(
        "tile {tile} is corrupt: its tsum chunk at offset {offset} holds CRC-32C {stored:#010x}, \
         the TILE payload has {computed:#010x}"
    )]
    ChecksumMismatch {
        /// Index of the tile.
        tile: usize,
        /// Offset of the `tsum` chunk.
        offset: usize,
        /// The checksum the stream holds.
        stored: u32,
        /// The checksum of the payload read.
        computed: u32,
    },
    /// Bytes after the end chunk (spec 4.4).
    #[error("{bytes} bytes of trailing data after IEND at offset {offset}")]
    TrailingData {
        /// Where the trailing data starts.
        offset: usize,
        /// How many bytes.
        bytes: usize,
    },
}

impl ContainerError {
    /// The error class of spec 13 as a stable lower-case name (see
    /// [`crate::codec::CodecError::class`], which adds the classes of the later layers).
    pub fn class(&self) -> &'static str {
        match self {
            ContainerError::BadMagic => "bad-magic",
            ContainerError::UnsupportedMajor { .. } => "unsupported-version",
            ContainerError::Truncated { .. } | ContainerError::MissingEnd { .. } => "truncated",
            ContainerError::InvalidField { .. } => "invalid-field",
            ContainerError::UnknownRequiredChunk { .. } => "unknown-required-chunk",
            ContainerError::TileCount { .. } => "tile-count",
            ContainerError::TrailingData { .. } => "trailing-data",
            ContainerError::ChecksumMismatch { .. } => "checksum-mismatch",
        }
    }
}
