//! The bit reader of an entropy-coded segment (T.81 F.2.2.5, Figure F.18): bytes are read
//! most significant bit first, a `00` byte after `FF` is a stuffed zero (F.1.2.3) and is
//! dropped, and `FF` followed by anything else is a marker, which ends the segment.
//!
//! After the segment ends (a marker, or the end of the file) the reader supplies zero bits,
//! as libjpeg does, but counts them: decoding that consumes one of them reads past the end
//! of the data, which the scan decoders report as a truncated scan after the MCU.
//!
//! Lenient decoding uses the same zero bits as libjpeg's `jpeg_fill_bit_buffer` does, notes
//! anomalies met inside a block ([`Anomaly`]) for the warnings, and handles the marker that
//! ends a restart interval as libjpeg's `read_restart_marker` does
//! ([`pending_marker`](BitReader::pending_marker), [`skip_pending_marker`](BitReader::skip_pending_marker)).

/// Code of EOI, the marker libjpeg's data source supplies at the end of the file.
pub const EOI: u8 = 0xD9;

/// Something lenient decoding repaired inside a block, at a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// No code of the table matches: 17 bits read, symbol 0 (libjpeg's `jpeg_huff_decode`).
    BadHuffmanCode,
    /// A zero run went past the end of the block or band: the coefficient was stored where
    /// libjpeg stores it (`jpeg_natural_order` with its 16 extra entries).
    RunPastBand,
    /// A new coefficient of an AC refinement scan with a size other than 1 (libjpeg warns
    /// and reads one sign bit, as for size 1).
    RefinementSize,
}

/// Reads bits from `data` starting at a byte offset; offsets are from the start of `data`.
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load into `buf`.
    pos: usize,
    /// Bits MSB-aligned: the next bit to read is bit 63.
    buf: u64,
    /// Valid bits in `buf` (real and supplied zeros).
    nbits: u32,
    /// Of the bits loaded so far, how many were supplied zeros past the end of the data.
    fake: u32,
    /// Offset of the `FF` of the marker that ended the segment, or the file length.
    end: Option<usize>,
    /// Lenient decoding: anomalies repaired since the caller last took them.
    pub anomalies: Vec<(Anomaly, usize)>,
}

impl<'a> BitReader<'a> {
    /// A reader of the entropy-coded segment starting at `data[start]`.
    pub fn new(data: &'a [u8], start: usize) -> Self {
        BitReader {
            data,
            pos: start.min(data.len()),
            buf: 0,
            nbits: 0,
            fake: 0,
            end: None,
            anomalies: Vec::new(),
        }
    }

    /// Records an anomaly repaired at the current position (lenient decoding).
    #[cold]
    pub fn note(&mut self, a: Anomaly) {
        let at = self.offset();
        self.anomalies.push((a, at));
    }

    /// Makes at least `n` (<= 56) bits available.
    #[inline(always)]
    pub fn ensure(&mut self, n: u32) {
        if self.nbits < n {
            self.refill();
        }
    }

    #[inline(never)]
    fn refill(&mut self) {
        // Fast path: load whole bytes from a 64-bit word that holds no FF (no stuffing, no
        // marker), as many as fit.
        if self.nbits <= 48 && self.end.is_none() {
            if let Some(w) = self.data.get(self.pos..self.pos + 8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                let w = u64::from_be_bytes(b);
                let x = !w;
                let has_ff = x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080;
                if has_ff == 0 {
                    let nbytes = (64 - self.nbits) / 8; // 2..=8
                    let take = w >> (64 - 8 * nbytes);
                    self.buf |= take << (64 - self.nbits - 8 * nbytes);
                    self.pos += nbytes as usize;
                    self.nbits += 8 * nbytes;
                    return;
                }
            }
        }
        while self.nbits <= 56 {
            let byte = match self.end {
                Some(_) => None,
                None => self.next_byte(),
            };
            let b = match byte {
                Some(b) => b,
                None => {
                    self.fake += 8;
                    0
                }
            };
            self.buf |= u64::from(b) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    /// The next data byte, undoing stuffing; `None` (and `end` set) at a marker or EOF.
    #[inline(always)]
    fn next_byte(&mut self) -> Option<u8> {
        let Some(&b) = self.data.get(self.pos) else {
            self.end = Some(self.data.len());
            return None;
        };
        if b != 0xFF {
            self.pos += 1;
            return Some(b);
        }
        // FF: skip fill bytes FF (B.1.1.2); FF 00 is a data FF, FF xx a marker.
        let mut q = self.pos + 1;
        while self.data.get(q) == Some(&0xFF) {
            q += 1;
        }
        match self.data.get(q) {
            Some(0) => {
                self.pos = q + 1;
                Some(0xFF)
            }
            Some(_) => {
                self.pos = q - 1;
                self.end = Some(q - 1);
                None
            }
            None => {
                self.pos = self.data.len();
                self.end = Some(self.data.len());
                None
            }
        }
    }

    /// The next `n` (1..=32) bits without consuming them; call [`ensure`](Self::ensure) first.
    #[inline(always)]
    pub fn peek(&self, n: u32) -> u32 {
        debug_assert!((1..=32).contains(&n));
        (self.buf >> (64 - n)) as u32
    }

    /// Drops `n` (<= the available) bits.
    #[inline(always)]
    pub fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.nbits && n < 64);
        self.buf <<= n;
        self.nbits = self.nbits.saturating_sub(n);
    }

    /// Reads `n` (0..=16) bits as an unsigned number.
    #[inline(always)]
    pub fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.ensure(n);
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// Reads one bit.
    #[inline(always)]
    pub fn bit(&mut self) -> bool {
        self.bits(1) == 1
    }

    /// True when decoding has consumed bits supplied past the end of the segment.
    #[inline(always)]
    pub fn overread(&self) -> bool {
        self.fake > self.nbits
    }

    /// Approximately the offset of the byte holding the next unread bit (for messages).
    pub fn offset(&self) -> usize {
        let real_buffered = self.nbits.saturating_sub(self.fake) / 8;
        self.pos.saturating_sub(real_buffered as usize)
    }

    /// Where the data ended: the offset of the marker's `FF` (or the file length) when the
    /// reader has reached it, else the next byte it would read.
    pub fn end_offset(&self) -> usize {
        self.end.unwrap_or(self.pos)
    }

    /// Restart (F.2.1.3.1 / G.1.2): drops the buffered bits, skips to the next marker and
    /// reads it. Returns the marker code found, if any, and the offset of its `FF`; after
    /// an RST marker the reader continues with the bytes that follow it.
    pub fn next_marker(&mut self) -> (Option<u8>, usize) {
        self.buf = 0;
        self.nbits = 0;
        self.fake = 0;
        let mut p = self.end.unwrap_or(self.pos);
        self.end = None;
        // Skip anything up to FF xx, xx not 00 or FF (libjpeg warns and skips garbage).
        loop {
            match self.data.get(p) {
                None => {
                    self.pos = self.data.len();
                    return (None, self.data.len());
                }
                Some(0xFF) => {
                    let mut q = p + 1;
                    while self.data.get(q) == Some(&0xFF) {
                        q += 1;
                    }
                    match self.data.get(q) {
                        Some(0) => p = q + 1,
                        Some(&m) => {
                            self.pos = q + 1;
                            return (Some(m), q - 1);
                        }
                        None => {
                            self.pos = self.data.len();
                            return (None, self.data.len());
                        }
                    }
                }
                Some(_) => p += 1,
            }
        }
    }
}

impl BitReader<'_> {
    /// Lenient restart, libjpeg's `process_restart` and `read_restart_marker`: drops the
    /// buffered bits and returns the marker that ends the segment without consuming it:
    /// the one the reader already met, else the next one in the data (other bytes are
    /// skipped and counted as libjpeg's `next_marker` counts them). Returns its code
    /// ([`EOI`] at the end of the file, as libjpeg's data source supplies), the offset of
    /// its `FF` (the file length at its end) and the bytes skipped. Until
    /// [`skip_pending_marker`](Self::skip_pending_marker) the reader supplies zero bits.
    pub fn pending_marker(&mut self) -> (u8, usize, usize) {
        self.buf = 0;
        self.nbits = 0;
        self.fake = 0;
        let len = self.data.len();
        if let Some(at) = self.end {
            return (self.data.get(at + 1).copied().unwrap_or(EOI), at, 0);
        }
        let mut p = self.pos;
        let mut skipped = 0;
        loop {
            match self.data.get(p) {
                None => break,
                Some(0xFF) => {
                    let mut q = p + 1;
                    while self.data.get(q) == Some(&0xFF) {
                        q += 1;
                    }
                    match self.data.get(q) {
                        Some(0) => {
                            skipped += 2;
                            p = q + 1;
                        }
                        Some(&m) => {
                            self.end = Some(q - 1);
                            return (m, q - 1, skipped);
                        }
                        None => break,
                    }
                }
                Some(_) => {
                    skipped += 1;
                    p += 1;
                }
            }
        }
        self.pos = len;
        self.end = Some(len);
        (EOI, len, skipped)
    }

    /// The code of the marker the reader has met, `None` before one or at the end of the
    /// file.
    pub fn pending_marker_code(&self) -> Option<u8> {
        self.end.and_then(|at| self.data.get(at + 1).copied())
    }

    /// Length of the whole file.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Whether the reader stands at a marker (or the end of the file) it has not consumed.
    pub fn at_marker(&self) -> bool {
        self.end.is_some()
    }

    /// Consumes the marker [`pending_marker`](Self::pending_marker) returned (or the one the
    /// reader met): reading continues with the bytes after it. At the end of the file the
    /// reader stays there (and meets a new end, as libjpeg meets a new fake EOI).
    pub fn skip_pending_marker(&mut self) {
        self.buf = 0;
        self.nbits = 0;
        self.fake = 0;
        if let Some(at) = self.end.take() {
            self.pos = (at + 2).min(self.data.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_markers_as_libjpeg_reads_them() {
        // data, garbage, FF00 (skipped as 2), fill FF, RST2, data, then the end.
        let data = [0xAB, 0x12, 0x34, 0xFF, 0x00, 0xFF, 0xFF, 0xD2, 0x80];
        // (Read from offset 1 without loading bytes: they are skipped by the search.)
        let mut br = BitReader::new(&data, 1);
        assert!(!br.at_marker());
        assert_eq!(br.pending_marker(), (0xD2, 6, 4));
        assert!(br.at_marker());
        // Still at the marker: zero bits, the same marker again.
        assert_eq!(br.bits(8), 0);
        assert_eq!(br.pending_marker(), (0xD2, 6, 0));
        br.skip_pending_marker();
        assert!(!br.at_marker());
        assert_eq!(br.bits(1), 1);
        assert!(!br.overread());
        // The end of the file is a fake EOI, again after it is skipped.
        assert_eq!(br.pending_marker(), (EOI, 9, 0));
        br.skip_pending_marker();
        assert_eq!(br.pending_marker(), (EOI, 9, 0));
        // A marker met while reading is the pending one.
        let data = [0x55, 0xFF, 0xD5, 0x00];
        let mut br = BitReader::new(&data, 0);
        assert_eq!(br.bits(16), 0x5500);
        assert!(br.overread());
        assert_eq!(br.pending_marker(), (0xD5, 1, 0));
        br.skip_pending_marker();
        assert_eq!(br.bits(8), 0);
        assert!(!br.overread());
    }

    #[test]
    fn unstuffs_and_stops_at_markers() {
        let data = [0xAB, 0xFF, 0x00, 0x12, 0xFF, 0xD9];
        let mut br = BitReader::new(&data, 0);
        assert_eq!(br.bits(8), 0xAB);
        assert_eq!(br.bits(8), 0xFF);
        assert_eq!(br.bits(4), 0x1);
        assert_eq!(br.bits(4), 0x2);
        assert!(!br.overread());
        assert_eq!(br.end_offset(), 4);
        // Zeros after the marker, counted.
        assert_eq!(br.bits(3), 0);
        assert!(br.overread());
    }

    #[test]
    fn restart_marker_is_found_after_the_padding() {
        let data = [0b1010_1111, 0xFF, 0xD3, 0x55];
        let mut br = BitReader::new(&data, 0);
        assert_eq!(br.bits(4), 0b1010);
        let (m, at) = br.next_marker();
        assert_eq!((m, at), (Some(0xD3), 1));
        assert_eq!(br.bits(8), 0x55);
        assert!(!br.overread());
    }

    #[test]
    fn end_of_file_supplies_counted_zeros() {
        let data = [0x80];
        let mut br = BitReader::new(&data, 0);
        assert!(br.bit());
        assert_eq!(br.bits(7), 0);
        assert!(!br.overread());
        assert_eq!(br.bits(1), 0);
        assert!(br.overread());
        assert_eq!(br.next_marker(), (None, 1));
    }
}
