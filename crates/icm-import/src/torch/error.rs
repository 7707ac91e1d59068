//! The error type of the checkpoint reader.

/// Why a checkpoint could not be read.
///
/// Every variant names what was wrong and where: a byte offset in the file, in a pickle
/// stream or in the zip archive, an archive entry, or a storage key. Offsets into a pickle
/// (`offset` of [`TorchError::Pickle`] and [`TorchError::UnknownOpcode`]) count from the
/// start of the stream named by `pickle`: for the zip format that is the `data.pkl` entry,
/// for the legacy format the whole file (its pickles are concatenated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TorchError {
    /// The input is neither a zip archive nor a legacy (pickle-stream) checkpoint.
    #[error("not a PyTorch checkpoint: {0}")]
    NotACheckpoint(&'static str),

    /// A format or feature this reader does not implement (named in the message).
    #[error("unsupported checkpoint: {0}")]
    Unsupported(String),

    /// The checkpoint was written on a big-endian machine; only little-endian data is read.
    #[error("big-endian checkpoint ({0}); only little-endian checkpoints are supported")]
    BigEndian(&'static str),

    /// The zip archive's structure (end of central directory, central directory, local
    /// headers) is malformed at byte `offset` of the file.
    #[error("zip archive, byte {offset}: {what}")]
    Zip {
        /// Byte offset in the file of the malformed record.
        offset: u64,
        /// What is wrong.
        what: String,
    },

    /// One entry of the zip archive cannot be used (compressed, encrypted, out of bounds,
    /// CRC mismatch, ...).
    #[error("zip entry {entry:?}: {what}")]
    ZipEntry {
        /// The entry's full name in the archive.
        entry: String,
        /// What is wrong.
        what: String,
    },

    /// A required zip entry or legacy section is missing.
    #[error("missing {0}")]
    Missing(String),

    /// An opcode byte this reader does not know (nor does pickle protocol 5).
    #[error("{pickle}, byte {offset}: unknown pickle opcode 0x{opcode:02x}")]
    UnknownOpcode {
        /// The pickle stream (an archive entry name or a legacy section).
        pickle: String,
        /// Offset of the opcode byte in that stream.
        offset: usize,
        /// The opcode byte.
        opcode: u8,
    },

    /// A malformed pickle: truncated argument, stack underflow, undefined memo index,
    /// wrong argument types of a known constructor, an exhausted copy budget, ...
    #[error("{pickle}, byte {offset}, opcode 0x{opcode:02x}: {what}")]
    Pickle {
        /// The pickle stream (an archive entry name or a legacy section).
        pickle: String,
        /// Offset of the opcode in that stream.
        offset: usize,
        /// The opcode byte that failed.
        opcode: u8,
        /// What is wrong.
        what: String,
    },

    /// A storage cannot be provided: its data is missing, short, or of an unsupported type.
    #[error("storage {key:?}: {what}")]
    Storage {
        /// The storage key of the persistent id (`data/<key>` in the zip format).
        key: String,
        /// What is wrong.
        what: String,
    },

    /// A tensor's size, stride or storage offset does not fit its storage, or its dtype
    /// is not supported.
    #[error("tensor rebuilt at pickle byte {offset}: {what}")]
    Tensor {
        /// Offset of the `REDUCE` opcode that rebuilt the tensor, in its pickle stream.
        offset: usize,
        /// What is wrong.
        what: String,
    },

    /// The unpickled object would take more memory than the reader allows (see
    /// [`read_checkpoint`](super::read_checkpoint)).
    #[error("the unpickled object exceeds the output limit of {limit} bytes")]
    OutputLimit {
        /// The limit in bytes.
        limit: usize,
    },

    /// The unpickled object nests deeper than the reader allows.
    #[error("the unpickled object nests deeper than {0} levels")]
    TooDeep(usize),

    /// The unpickled object contains itself (a reference cycle), which a tree of
    /// [`Value`](super::Value)s cannot represent.
    #[error("the unpickled object contains itself (pickle memo index cycle at node {0})")]
    Cycle(usize),

    /// The checkpoint holds no state dict: no dict with tensor values was found (see
    /// [`state_dict`](super::state_dict)).
    #[error("no state dict in the checkpoint: {0}")]
    NoStateDict(String),

    /// Two state-dict entries have the same name once the `module.` prefix is removed.
    #[error("state dict entry {0:?} occurs twice (with and without the \"module.\" prefix)")]
    DuplicateName(String),
}
