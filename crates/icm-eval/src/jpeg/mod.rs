//! JPEG to DCT coefficients, without pixel decoding (spec Annex B, informative).
//!
//! [`decode_coefficients`] parses a JPEG file (ITU-T T.81 | ISO/IEC 10918-1) and
//! entropy-decodes its scans into the quantised DCT coefficients, exactly as libjpeg's
//! `jpeg_read_coefficients` stores them (and the PyPI `jpeglib.read_dct` returns them):
//! per component, on the component's own block grid, each 8x8 block in natural (row-major)
//! order. [`channels`] arranges them as frequency channels on the luma block grid.
//!
//! Supported: baseline (SOF0) and extended sequential (SOF1) Huffman, progressive Huffman
//! (SOF2) with spectral selection and successive approximation, restart intervals, 1 to 4
//! components with sampling factors 1 to 4 (grayscale, 4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1,
//! ...), any size from 1x1 to 65535x65535. Refused with [`JpegError::Unsupported`]:
//! arithmetic coding (SOF9-SOF15), lossless (SOF3), hierarchical (SOF5-SOF7, DHP, EXP),
//! 12-bit samples, a height given by DNL.
//!
//! Hostile input is safe: no panics, memory bounded by [`DecodeOptions::max_blocks`] and
//! allocated fallibly, decoding time bounded by [`DecodeOptions::max_scans`] times the
//! block count. Bytes after EOI are ignored. Tables missing from a file are not replaced
//! by the standard ones of T.81 Annex K.
//!
//! Where libjpeg warns and carries on, this decoder by default returns an error: a scan
//! whose data ends early (libjpeg fills zeros) is [`JpegError::TruncatedScan`], a wrong
//! restart marker is [`JpegError::BadRestart`] (libjpeg resynchronises), an invalid
//! Huffman code is [`JpegError::BadHuffmanCode`], a file without EOI is
//! [`JpegError::Truncated`]. With [`DecodeOptions::lenient`] it recovers as libjpeg (6b,
//! the PyPI `jpeglib`'s default) does, so that the coefficients equal the ones
//! `jpeg_read_coefficients` returns, and lists what it repaired, and where, in
//! [`Coefficients::warnings`]: missing entropy-coded data is decoded from zero bits for
//! the MCU that needs it and leaves the rest of its segment unchanged (zero, or what
//! earlier progressive scans set), restart markers are resynchronised as
//! `jpeg_resync_to_restart` does, an invalid code is symbol 0, a run past the end of a
//! block is stored where libjpeg stores it, a missing EOI ends the file. Headers that
//! libjpeg refuses are refused in both modes.

mod bitreader;
pub mod channels;
mod decoder;
mod error;
mod huffman;
mod layout;
mod markers;
mod progressive;
mod restart;
mod sequential;
mod warning;
mod zigzag;

pub use error::{marker_name, JpegError};
pub use markers::Process;
pub use warning::{JpegWarning, WarningKind, MAX_WARNINGS};
pub use zigzag::NATURAL;

/// Limits on the work a file may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Most 8x8 blocks of coefficient storage, all components together, padded to whole
    /// MCUs (128 bytes each). Default 2^24: 2 GiB of coefficients, about 700 megapixels at
    /// 4:2:0 or 350 at 4:4:4, so that a hostile header of a few bytes cannot ask for more;
    /// raise it (up to 2^28, the full 65535x65535 4:4:4 range) for larger trusted files.
    pub max_blocks: u64,
    /// Most scans (SOS markers). Each progressive scan may visit every block, so this bounds
    /// the decoding time. Default 1000 (encoders use at most a few dozen).
    pub max_scans: u32,
    /// Most bytes of a frequency tensor ([`channels::frequency_tensor`]), checked before it
    /// is allocated. Default 2^30 (1 GiB: all 192 channels of about 90 megapixels).
    pub max_tensor_bytes: u64,
    /// Recover from corrupt or truncated entropy-coded data as libjpeg does, with
    /// [`Coefficients::warnings`] saying what was repaired and where, instead of returning
    /// an error (see the module documentation). Default false: such files are refused.
    /// The limits above apply in both modes.
    pub lenient: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_blocks: 1 << 24,
            max_scans: 1000,
            max_tensor_bytes: 1 << 30,
            lenient: false,
        }
    }
}

/// The quantised coefficients of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentCoefficients {
    /// Component identifier in the frame header.
    pub id: u8,
    /// Horizontal sampling factor.
    pub h: u8,
    /// Vertical sampling factor.
    pub v: u8,
    /// Quantisation table selector Tq.
    pub quant_table: u8,
    /// The quantisation table in force at the component's first scan, natural order.
    pub quant: [u16; 64],
    /// Blocks per row: ceil(ceil(width * h / Hmax) / 8).
    pub blocks_w: usize,
    /// Block rows: ceil(ceil(height * v / Vmax) / 8).
    pub blocks_h: usize,
    /// `blocks_h * blocks_w` blocks in raster order, 64 coefficients each in natural order:
    /// coefficient (u, v) of block (by, bx) is at `(by * blocks_w + bx) * 64 + u * 8 + v`.
    pub coefs: Vec<i16>,
}

impl ComponentCoefficients {
    /// Block (by, bx), 64 coefficients in natural order.
    pub fn block(&self, by: usize, bx: usize) -> Option<&[i16]> {
        if by >= self.blocks_h || bx >= self.blocks_w {
            return None;
        }
        let o = (by * self.blocks_w + bx) * 64;
        self.coefs.get(o..o + 64)
    }

    /// The coefficients multiplied by their quantisation values (the dequantised DCT
    /// coefficients of T.81 A.3.4), same order as [`coefs`](Self::coefs).
    pub fn dequantised(&self) -> Vec<i32> {
        self.coefs
            .chunks_exact(64)
            .flat_map(|b| {
                b.iter()
                    .zip(&self.quant)
                    .map(|(&c, &q)| i32::from(c) * i32::from(q))
            })
            .collect()
    }
}

/// The quantised coefficients of a JPEG file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coefficients {
    /// Samples per line X.
    pub width: u32,
    /// Lines Y.
    pub height: u32,
    /// Coding process of the frame.
    pub process: Process,
    /// Largest horizontal sampling factor.
    pub hmax: u8,
    /// Largest vertical sampling factor.
    pub vmax: u8,
    /// Components in frame order (for JFIF: Y, Cb, Cr).
    pub components: Vec<ComponentCoefficients>,
    /// What lenient decoding ([`DecodeOptions::lenient`]) repaired, in file order, at most
    /// [`MAX_WARNINGS`] listed; empty for a file without defects and in strict mode.
    pub warnings: Vec<JpegWarning>,
}

/// Decodes a JPEG file to its quantised DCT coefficients (see the module documentation).
pub fn decode_coefficients(data: &[u8], opts: &DecodeOptions) -> Result<Coefficients, JpegError> {
    decoder::decode(data, opts)
}
