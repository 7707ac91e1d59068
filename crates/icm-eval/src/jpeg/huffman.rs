//! Huffman tables (T.81 B.2.4.2, Annex C) and their decoding (F.2.2.3) with a 9-bit
//! lookup table: codes of up to 9 bits take one table read; longer codes fall back to the
//! MAXCODE/VALPTR search of Figure F.16.

use super::bitreader::{Anomaly, BitReader};
use super::error::JpegError;

/// Bits resolved by one lookup.
pub const FAST_BITS: u32 = 9;

/// A decoding table built from a DHT segment's BITS and HUFFVAL.
#[derive(Debug, Clone)]
pub struct HuffmanTable {
    /// Indexed by the next `FAST_BITS` bits: `(code length << 8) | symbol`, or 0 when the
    /// code is longer than `FAST_BITS`.
    fast: [u16; 1 << FAST_BITS],
    /// MAXCODE of Figure F.16 for lengths 0..=16 (-1 when no code has that length);
    /// index 17 is a sentinel.
    maxcode: [i32; 18],
    /// VALPTR - MINCODE per length: `values[code + delta[l]]` is the symbol.
    delta: [i32; 17],
    /// HUFFVAL.
    values: Vec<u8>,
    /// Largest symbol, checked against DC tables' 0..=15 when a scan uses the table.
    pub max_symbol: u8,
    /// For AC use, indexed like `fast`: a run/size symbol and its extra bits decoded in
    /// one step when code and bits fit in `FAST_BITS` and the value in -128..=127:
    /// `(value << 8) | (run << 4) | (code length + size)`; 0 otherwise.
    fast_ac: [i16; 1 << FAST_BITS],
}

impl HuffmanTable {
    /// Builds the table from `counts[l-1]` codes of length l (BITS) and the symbols
    /// (HUFFVAL), generating the codes of Annex C (Figures C.1-C.3). Refuses a table with
    /// more than 256 symbols or whose codes do not fit their lengths (libjpeg's checks).
    pub fn new(counts: &[u8; 16], values: &[u8]) -> Result<Self, String> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total > 256 {
            return Err(format!("{total} Huffman codes (at most 256)"));
        }
        if total != values.len() {
            return Err(format!("{total} codes but {} values", values.len()));
        }
        let mut fast = [0u16; 1 << FAST_BITS];
        let mut maxcode = [-1i32; 18];
        let mut delta = [0i32; 17];
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            delta[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                // Codes of this length must fit in `len` bits (C.2).
                if code >= (1u32 << len) {
                    return Err(format!("code lengths overflow at length {len}"));
                }
                if len <= FAST_BITS {
                    let shift = FAST_BITS - len;
                    let first = (code << shift) as usize;
                    let entry = ((len as u16) << 8) | u16::from(values[k]);
                    for slot in &mut fast[first..first + (1 << shift)] {
                        *slot = entry;
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        let mut fast_ac = [0i16; 1 << FAST_BITS];
        for (i, slot) in fast_ac.iter_mut().enumerate() {
            let e = fast[i];
            if e == 0 {
                continue;
            }
            let (len, rs) = (u32::from(e >> 8), e as u8);
            let (run, size) = (u32::from(rs >> 4), u32::from(rs & 15));
            if size == 0 || len + size > FAST_BITS {
                continue;
            }
            let bits = (i as u32 >> (FAST_BITS - len - size)) & ((1 << size) - 1);
            let value = extend(bits, size);
            if (-128..=127).contains(&value) {
                *slot = ((value << 8) | (run << 4) as i32 | (len + size) as i32) as i16;
            }
        }
        Ok(HuffmanTable {
            fast,
            maxcode,
            delta,
            values: values.to_vec(),
            max_symbol: values.iter().copied().max().unwrap_or(0),
            fast_ac,
        })
    }

    /// The combined AC entry for the next `FAST_BITS` bits (see `fast_ac`), or 0; when
    /// non-zero, the caller consumes `entry & 15` bits. Call [`BitReader::ensure`] first.
    #[inline(always)]
    pub fn peek_fast_ac(&self, br: &BitReader<'_>) -> i16 {
        self.fast_ac[br.peek(FAST_BITS) as usize]
    }

    /// Decodes one symbol (DECODE of Figure F.16).
    #[inline(always)]
    pub fn decode(&self, br: &mut BitReader<'_>) -> Result<u8, JpegError> {
        br.ensure(16);
        let peek = br.peek(FAST_BITS) as usize;
        let e = self.fast[peek];
        if e != 0 {
            br.consume(u32::from(e >> 8));
            return Ok(e as u8);
        }
        self.decode_slow(br)
    }

    /// Decodes one symbol as libjpeg does with corrupt data: a bit string that matches no
    /// code takes 17 bits (the search of Figure F.16 runs to its sentinel) and decodes as
    /// symbol 0 (`jpeg_huff_decode`'s "fake a zero"); the anomaly is noted.
    #[inline(always)]
    pub fn decode_lenient(&self, br: &mut BitReader<'_>) -> u8 {
        br.ensure(17);
        let peek = br.peek(FAST_BITS) as usize;
        let e = self.fast[peek];
        if e != 0 {
            br.consume(u32::from(e >> 8));
            return e as u8;
        }
        match self.decode_slow(br) {
            Ok(s) => s,
            Err(_) => {
                br.note(Anomaly::BadHuffmanCode);
                br.consume(17);
                0
            }
        }
    }

    /// [`decode`](Self::decode), or [`decode_lenient`](Self::decode_lenient) when `L`.
    #[inline(always)]
    pub fn decode_as<const L: bool>(&self, br: &mut BitReader<'_>) -> Result<u8, JpegError> {
        if L {
            Ok(self.decode_lenient(br))
        } else {
            self.decode(br)
        }
    }

    #[cold]
    fn decode_slow(&self, br: &mut BitReader<'_>) -> Result<u8, JpegError> {
        let bits = br.peek(16) as i32;
        for len in FAST_BITS as usize + 1..=16 {
            let code = bits >> (16 - len);
            if code <= self.maxcode[len] {
                let idx = code + self.delta[len];
                let sym = usize::try_from(idx)
                    .ok()
                    .and_then(|i| self.values.get(i))
                    .copied();
                return match sym {
                    Some(s) => {
                        br.consume(len as u32);
                        Ok(s)
                    }
                    None => Err(JpegError::BadHuffmanCode {
                        offset: br.offset(),
                    }),
                };
            }
        }
        Err(JpegError::BadHuffmanCode {
            offset: br.offset(),
        })
    }
}

/// EXTEND of Figure F.12: the value of the `s`-bit magnitude category code `r`.
#[inline(always)]
pub fn extend(r: u32, s: u32) -> i32 {
    if s == 0 {
        return 0;
    }
    let r = r as i32;
    if r < (1 << (s - 1)) {
        r - (1 << s) + 1
    } else {
        r
    }
}

/// RECEIVE and EXTEND (F.2.2.1): reads `s` (0..=15) bits and extends them.
#[inline(always)]
pub fn receive_extend(br: &mut BitReader<'_>, s: u32) -> i32 {
    if s == 0 {
        return 0;
    }
    br.ensure(s);
    let r = br.peek(s);
    br.consume(s);
    extend(r, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The luminance DC table of T.81 Table K.3.
    fn k3() -> HuffmanTable {
        let counts = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        let values: Vec<u8> = (0..12).collect();
        HuffmanTable::new(&counts, &values).expect("table")
    }

    #[test]
    fn decodes_short_and_long_codes() {
        // Table K.3: 0 -> 00, 1 -> 010, 5 -> 110, 11 -> 111111110 (9 bits).
        let t = k3();
        // 00 | 010 | 110 | 111111110 | padding ones
        let bits = "00010110111111110";
        let mut bytes = Vec::new();
        let padded = format!("{bits:1<24}");
        for chunk in padded.as_bytes().chunks(8) {
            let s = std::str::from_utf8(chunk).expect("ascii");
            let b = u8::from_str_radix(s, 2).expect("bits");
            bytes.push(b);
            if b == 0xFF {
                bytes.push(0); // byte stuffing (F.1.2.3)
            }
        }
        let mut br = BitReader::new(&bytes, 0);
        for want in [0u8, 1, 5, 11] {
            assert_eq!(t.decode(&mut br).expect("code"), want);
        }
    }

    #[test]
    fn long_codes_use_the_slow_path() {
        // One code per length 1..=12: 0, 10, 110, ..., 111111111110.
        let mut counts = [0u8; 16];
        for c in counts.iter_mut().take(12) {
            *c = 1;
        }
        let values: Vec<u8> = (0..12).collect();
        let t = HuffmanTable::new(&counts, &values).expect("table");
        // code of length 12 is 111111111110
        // (FF is followed by a stuffed 00, F.1.2.3.)
        let bytes = [0xFF, 0x00, 0b1110_1111, 0xFF, 0x00, 0xFF, 0x00];
        let mut br = BitReader::new(&bytes, 0);
        assert_eq!(t.decode(&mut br).expect("code"), 11);
        // The ones that follow are no code: all-ones 16 bits exceed every MAXCODE.
        assert!(matches!(
            t.decode(&mut br),
            Err(JpegError::BadHuffmanCode { .. })
        ));
    }

    #[test]
    fn lenient_decoding_of_a_bad_code_takes_17_bits_and_gives_0() {
        // One code per length 1..=12 (as above): sixteen ones and more match none.
        let mut counts = [0u8; 16];
        for c in counts.iter_mut().take(12) {
            *c = 1;
        }
        let values: Vec<u8> = (1..13).collect();
        let t = HuffmanTable::new(&counts, &values).expect("table");
        // 17 ones, then the 1-bit code '0' (symbol 1), then '10' (symbol 2).
        // bits: 1111111111111111 1 0 10 + padding zeros
        let bytes = [0xFF, 0x00, 0xFF, 0x00, 0b1010_0000, 0x00];
        let mut br = BitReader::new(&bytes, 0);
        assert_eq!(t.decode_lenient(&mut br), 0);
        assert_eq!(br.anomalies.len(), 1);
        assert_eq!(br.anomalies[0].0, Anomaly::BadHuffmanCode);
        assert_eq!(t.decode_lenient(&mut br), 1);
        assert_eq!(t.decode_lenient(&mut br), 2);
        assert_eq!(br.anomalies.len(), 1);
        // A valid code decodes as in strict mode.
        let mut a = BitReader::new(&[0b0100_0000], 0);
        assert_eq!(t.decode_as::<false>(&mut a).expect("code"), 1);
        assert_eq!(t.decode_as::<true>(&mut a).expect("code"), 2);
    }

    #[test]
    fn refuses_overfull_tables() {
        let counts = [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(HuffmanTable::new(&counts, &[0, 1, 2]).is_err());
        let counts = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(HuffmanTable::new(&counts, &[1]).is_err());
    }

    #[test]
    fn fast_ac_entries_agree_with_decode_then_receive() {
        // Lengths 2, 3, 3 for symbols 0x01 (size 1), 0x12 (run 1, size 2), 0x00 (EOB).
        let mut counts = [0u8; 16];
        counts[1] = 1;
        counts[2] = 2;
        let t = HuffmanTable::new(&counts, &[0x01, 0x12, 0x00]).expect("table");
        for bits in 0u32..512 {
            let bytes = [(bits >> 1) as u8, ((bits & 1) << 7) as u8 | 0x3F];
            let bytes: Vec<u8> = bytes
                .iter()
                .flat_map(|&b| if b == 0xFF { vec![b, 0] } else { vec![b] })
                .collect();
            let mut a = BitReader::new(&bytes, 0);
            a.ensure(16);
            let e = t.peek_fast_ac(&a);
            let mut b = BitReader::new(&bytes, 0);
            let Ok(rs) = t.decode(&mut b) else {
                assert_eq!(e, 0); // "1..." is no code of this table
                continue;
            };
            if rs & 15 == 0 {
                assert_eq!(e, 0);
                continue;
            }
            let v = receive_extend(&mut b, u32::from(rs & 15));
            assert_ne!(e, 0);
            assert_eq!(i32::from(e >> 8), v);
            assert_eq!(((e >> 4) & 15) as u8, rs >> 4);
            a.consume((e & 15) as u32);
            assert_eq!(a.peek(8), b.peek(8));
        }
    }

    #[test]
    fn extend_matches_table_f1() {
        assert_eq!(extend(0, 1), -1);
        assert_eq!(extend(1, 1), 1);
        assert_eq!(extend(0b00, 2), -3);
        assert_eq!(extend(0b01, 2), -2);
        assert_eq!(extend(0b10, 2), 2);
        assert_eq!(extend(0, 11), -2047);
        assert_eq!(extend(2047, 11), 2047);
    }
}
