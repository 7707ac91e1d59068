use super::{CdfTable, EntropyError, UniformTables, MAX_ESCAPE_BITS};
use crate::fixed::zigzag;
use constriction::stream::{stack::DefaultAnsCoder, Encode};

/// Collects symbols in decoding order and writes them as one ANS payload (spec 8.2) with
/// `constriction`'s `AnsCoder<u32, u64>`, which encodes in reverse order (a stack).
#[derive(Debug, Default)]
pub struct SymbolWriter<'t> {
    ops: Vec<(&'t CdfTable, u32)>,
    bits: f64,
}

impl<'t> SymbolWriter<'t> {
    /// An empty writer.
    pub fn new() -> Self {
        Self {
            ops: Vec::new(),
            bits: 0.0,
        }
    }

    /// Appends one symbol.
    pub fn push(&mut self, table: &'t CdfTable, symbol: usize) -> Result<(), EntropyError> {
        if symbol >= table.len() {
            return Err(EntropyError::SymbolOutOfRange {
                symbol: symbol as u32,
                size: table.len(),
            });
        }
        self.bits += table.bits(symbol);
        self.ops.push((table, symbol as u32));
        Ok(())
    }

    /// Appends `value` with the escape code of spec 8.5 (the inverse of
    /// [`decode_value`](super::decode_value)). Values outside `[-(2^16-1), 2^16-1]` are
    /// clipped to that range (the encoder never produces them for valid input).
    pub fn push_value(
        &mut self,
        table: &'t CdfTable,
        offset: i32,
        value: i32,
        uniform: &'t UniformTables,
    ) -> Result<(), EntropyError> {
        let s = i64::from(value) - i64::from(offset);
        if s >= 0 && s + 1 < table.len() as i64 {
            return self.push(table, s as usize);
        }
        self.push(table, table.len() - 1)?;
        let limit = (1i32 << MAX_ESCAPE_BITS) - 1;
        let u = zigzag(value.clamp(-limit, limit)) + 1; // 1 ..= 2^17 - 1
        let n = 31 - u.leading_zeros();
        self.push(uniform.bit_count(), n as usize)?;
        if n > 0 {
            self.push(uniform.bits(n), (u - (1 << n)) as usize)?;
        }
        Ok(())
    }

    /// Sum of the ideal code lengths of the symbols pushed so far, in bits.
    pub fn ideal_bits(&self) -> f64 {
        self.bits
    }

    /// Number of symbols pushed so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Encodes every symbol (last first) and returns the payload bytes (spec 8.2).
    pub fn finish(self) -> Result<Vec<u8>, EntropyError> {
        let mut coder = DefaultAnsCoder::new();
        for &(table, symbol) in self.ops.iter().rev() {
            coder
                .encode_symbol(symbol, table)
                .map_err(|_| EntropyError::SymbolOutOfRange {
                    symbol,
                    size: table.len(),
                })?;
        }
        let words = coder.into_compressed().unwrap_or_default();
        Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_value, AnsDecoder, TOTAL};
    use super::*;
    use constriction::stream::{stack::DefaultAnsCoder, Decode};

    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    fn random_table(seed: &mut u64, n: usize) -> CdfTable {
        let mut f: Vec<u32> = (0..n).map(|_| 1 + lcg(seed) % 1000).collect();
        let sum: u32 = f.iter().sum();
        // Scale to TOTAL keeping every entry >= 1, then fix the remainder on the largest.
        for x in f.iter_mut() {
            *x = (*x * (TOTAL - n as u32) / sum).max(1);
        }
        let s: u32 = f.iter().sum();
        let imax = (0..n).max_by_key(|&i| f[i]).unwrap();
        f[imax] += TOTAL - s;
        CdfTable::from_frequencies(&f).unwrap()
    }

    #[test]
    fn values_round_trip_with_escapes() {
        let mut seed = 7;
        let uniform = UniformTables::new();
        let tables: Vec<CdfTable> = (0..5).map(|i| random_table(&mut seed, 3 + i * 7)).collect();
        let mut values = Vec::new();
        let mut w = SymbolWriter::new();
        for i in 0..20_000 {
            let t = &tables[i % tables.len()];
            let v = match lcg(&mut seed) % 10 {
                0 => (lcg(&mut seed) % 131_071) as i32 - 65_535,
                _ => (lcg(&mut seed) % t.len() as u32) as i32 - 5,
            };
            w.push_value(t, -5, v, &uniform).unwrap();
            values.push(v);
        }
        let bytes = w.finish().unwrap();
        let mut dec = AnsDecoder::new(&bytes).unwrap();
        for (i, &v) in values.iter().enumerate() {
            let t = &tables[i % tables.len()];
            assert_eq!(
                decode_value(&mut dec, t, -5, &uniform).unwrap(),
                v,
                "value {i}"
            );
        }
        dec.finish().unwrap();
    }

    #[test]
    fn decoder_matches_constriction() {
        // constriction's own decoder is the oracle for the spec 8.3 algorithm.
        let mut seed = 11;
        let table = random_table(&mut seed, 40);
        let symbols: Vec<usize> = (0..5000).map(|_| (lcg(&mut seed) % 40) as usize).collect();
        let mut w = SymbolWriter::new();
        for &s in &symbols {
            w.push(&table, s).unwrap();
        }
        let bytes = w.finish().unwrap();
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut oracle = DefaultAnsCoder::from_compressed(words).unwrap();
        let mut ours = AnsDecoder::new(&bytes).unwrap();
        for &s in &symbols {
            let o: u32 = Decode::<16>::decode_symbol(&mut oracle, &table).unwrap();
            assert_eq!(o as usize, s);
            assert_eq!(ours.decode(&table), s);
        }
        assert!(oracle.is_empty());
        ours.finish().unwrap();
    }

    #[test]
    fn empty_payload_and_corruption() {
        let dec = AnsDecoder::new(&[]).unwrap();
        dec.finish().unwrap();
        assert_eq!(
            AnsDecoder::new(&[1, 2, 3]).unwrap_err(),
            EntropyError::PartialWord { len: 3 }
        );
        assert_eq!(
            AnsDecoder::new(&[1, 2, 3, 4, 0, 0, 0, 0]).unwrap_err(),
            EntropyError::TrailingZeroWord
        );
        let mut seed = 3;
        let table = random_table(&mut seed, 9);
        let mut w = SymbolWriter::new();
        for i in 0..1000 {
            w.push(&table, i % 9).unwrap();
        }
        let mut bytes = w.finish().unwrap();
        bytes[5] ^= 0x40;
        if let Ok(mut dec) = AnsDecoder::new(&bytes) {
            for _ in 0..1000 {
                dec.decode(&table);
            }
            assert!(dec.finish().is_err());
        }
    }
}
