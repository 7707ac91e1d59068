//! Errors of the JPEG coefficient decoder: every variant names what failed and where (the
//! byte offset from the start of the file, and the marker or segment concerned).

use thiserror::Error;

/// A JPEG file that cannot be decoded to DCT coefficients.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// The file does not start with SOI (`FF D8`, T.81 B.2.1).
    #[error("not a JPEG file: no SOI marker at offset 0")]
    NotJpeg,
    /// The file ends inside a marker segment, or before EOI.
    #[error("truncated at offset {offset}: {what}")]
    Truncated {
        /// Byte offset where more data was needed.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A marker that is not allowed where it appears (T.81 B.2, B.6).
    #[error("unexpected marker {} at offset {offset}: {what}", marker_name(*marker))]
    UnexpectedMarker {
        /// Byte offset of the marker's `FF`.
        offset: usize,
        /// The marker code (the byte after `FF`).
        marker: u8,
        /// Why it is not allowed.
        what: &'static str,
    },
    /// A field of a marker segment is out of its range (T.81 B.2.2-B.2.4).
    #[error("invalid {} segment at offset {offset}: {what}", marker_name(*marker))]
    BadSegment {
        /// Byte offset of the segment's marker.
        offset: usize,
        /// The marker code.
        marker: u8,
        /// The failing field.
        what: String,
    },
    /// A coding process this decoder does not implement: arithmetic coding (SOF9-SOF15),
    /// lossless (SOF3), hierarchical (SOF5-SOF7, DHP, EXP), 12-bit precision, DNL.
    #[error("unsupported JPEG feature at offset {offset}: {what}")]
    Unsupported {
        /// Byte offset of the marker that asks for it.
        offset: usize,
        /// The feature.
        what: String,
    },
    /// A scan refers to a Huffman or quantisation table that was never defined.
    #[error("scan at offset {offset} uses undefined {kind} table {id}")]
    MissingTable {
        /// Byte offset of the SOS marker.
        offset: usize,
        /// `"DC Huffman"`, `"AC Huffman"` or `"quantisation"`.
        kind: &'static str,
        /// The table slot (0..=3).
        id: u8,
    },
    /// A Huffman code in the entropy-coded data matches no code of its table (T.81 F.2.2.3).
    /// libjpeg warns and decodes symbol 0, as lenient decoding does
    /// ([`crate::jpeg::DecodeOptions::lenient`]).
    #[error("corrupt scan data at offset {offset}: invalid Huffman code")]
    BadHuffmanCode {
        /// Byte offset in the entropy-coded segment.
        offset: usize,
    },
    /// Decoded values that are impossible in a valid scan (a run past the end of the block
    /// or band, T.81 F.2.2.2, G.1.2.2).
    #[error("corrupt scan data at offset {offset}: {what}")]
    BadScanData {
        /// Byte offset in the entropy-coded segment.
        offset: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// The entropy-coded segment ended (a marker or the end of the file) before all of its
    /// MCUs were decoded. libjpeg warns and goes on with zero bits, as lenient decoding does
    /// ([`crate::jpeg::DecodeOptions::lenient`]).
    #[error(
        "truncated scan: entropy-coded data ends at offset {offset} after {mcus} of {total} MCUs"
    )]
    TruncatedScan {
        /// Byte offset of the marker or end of file that ended the data.
        offset: usize,
        /// MCUs decoded completely.
        mcus: u64,
        /// MCUs the scan has.
        total: u64,
    },
    /// The marker after a restart interval is not the expected RSTn (T.81 E.2.4, F.2.1.3).
    /// libjpeg resynchronises, as lenient decoding does.
    #[error("expected RST{expected} at offset {offset}, found {}", found.map(marker_name).unwrap_or_else(|| "end of file".into()))]
    BadRestart {
        /// Byte offset where the marker was looked for.
        offset: usize,
        /// n of the expected RSTn (0..=7).
        expected: u8,
        /// The marker found instead, if any.
        found: Option<u8>,
    },
    /// The image has more 8x8 blocks than the caller's limit (bounds memory).
    #[error("image too large: {blocks} blocks of 8x8 exceed the limit of {limit}")]
    TooLarge {
        /// Blocks the frame needs, all components, padded to whole MCUs.
        blocks: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The frequency tensor asked for is larger than the caller's limit: subsampled
    /// components are repeated over the luma block grid, so the tensor can be far larger
    /// than the coefficients stored ([`crate::jpeg::DecodeOptions::max_tensor_bytes`]).
    #[error(
        "frequency tensor of {channels} channels on a {rows}x{cols} block grid needs {bytes} \
         bytes, more than the limit of {limit}"
    )]
    TensorTooLarge {
        /// Channels asked for.
        channels: usize,
        /// Grid rows (`ceil(height / 8)`).
        rows: usize,
        /// Grid columns (`ceil(width / 8)`).
        cols: usize,
        /// Bytes the int32 tensor would take.
        bytes: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The file has more scans than the caller's limit (bounds decoding time: each
    /// progressive scan may revisit every block).
    #[error("too many scans: more than {limit} (at offset {offset})")]
    TooManyScans {
        /// Byte offset of the SOS marker over the limit.
        offset: usize,
        /// The limit in force.
        limit: u32,
    },
    /// The coefficient buffers could not be allocated.
    #[error("out of memory allocating {bytes} bytes of coefficients")]
    OutOfMemory {
        /// Bytes requested.
        bytes: u64,
    },
}

/// The T.81 Table B.1 name of a marker code, e.g. `SOF2 (FFC2)`.
pub fn marker_name(code: u8) -> String {
    let name = match code {
        0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
            format!("SOF{}", code - 0xC0)
        }
        0xC4 => "DHT".into(),
        0xC8 => "JPG".into(),
        0xCC => "DAC".into(),
        0xD0..=0xD7 => format!("RST{}", code - 0xD0),
        0xD8 => "SOI".into(),
        0xD9 => "EOI".into(),
        0xDA => "SOS".into(),
        0xDB => "DQT".into(),
        0xDC => "DNL".into(),
        0xDD => "DRI".into(),
        0xDE => "DHP".into(),
        0xDF => "EXP".into(),
        0xE0..=0xEF => format!("APP{}", code - 0xE0),
        0xFE => "COM".into(),
        _ => "marker".into(),
    };
    format!("{name} (FF{code:02X})")
}
