use thiserror::Error;

/// Errors of the entropy-decoding layer (spec 8.6, 13).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EntropyError {
    /// A payload's byte length is not a multiple of the 4-byte ANS word (spec 8.2).
    #[error("ANS payload of {len} bytes is not a whole number of 32-bit words")]
    PartialWord {
        /// Payload length in bytes.
        len: usize,
    },
    /// The last word of a non-empty payload is zero (spec 8.2).
    #[error("ANS payload ends in a zero word")]
    TrailingZeroWord,
    /// After the last symbol the decoder was not back in its initial state (spec 8.4).
    #[error("ANS payload is corrupt: {words_left} words unread and final state {state:#x} (expected 0 and 0)")]
    NotExhausted {
        /// Words that were never read.
        words_left: usize,
        /// Coder state after the last symbol.
        state: u64,
    },
    /// An escaped value announced more magnitude bits than allowed (spec 8.5).
    #[error("escape length {bits} exceeds the limit of {max} bits")]
    EscapeTooLong {
        /// Decoded bit count.
        bits: u32,
        /// Allowed maximum.
        max: u32,
    },
    /// A frequency table does not satisfy spec 7.4.
    #[error("invalid frequency table: {0}")]
    BadTable(String),
    /// The encoder was asked to code a symbol outside a table (encoder bug or bad input).
    #[error("symbol {symbol} is outside a table of {size} symbols")]
    SymbolOutOfRange {
        /// Symbol index.
        symbol: u32,
        /// Table size.
        size: usize,
    },
}
