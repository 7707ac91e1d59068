use super::{EntropyError, PRECISION, TOTAL};
use core::num::NonZeroU32;

/// A categorical distribution with integer frequencies summing to `2^16` (spec 7.4, 8.1).
///
/// Symbols are `0..len()`; every symbol has a frequency of at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdfTable {
    /// `cdf[s]` = sum of the frequencies of symbols `< s`; `cdf.len() == len() + 1`.
    cdf: Vec<u32>,
    /// `start[b]`: the symbol of quantile `b << (PRECISION - LOOKUP_BITS)`, the first
    /// candidate for every quantile of bucket `b` (a search accelerator: it does not
    /// change which symbol a quantile decodes to).
    start: Vec<u16>,
}

/// Quantile buckets of the symbol lookup: `2^LOOKUP_BITS` of them.
const LOOKUP_BITS: u32 = 10;

impl CdfTable {
    /// Builds a table from frequencies, checking the constraints of spec 7.4.
    pub fn from_frequencies(freq: &[u32]) -> Result<Self, EntropyError> {
        if freq.len() < 2 || freq.len() > TOTAL as usize {
            return Err(EntropyError::BadTable(format!(
                "{} symbols (must be 2..={TOTAL})",
                freq.len()
            )));
        }
        let mut cdf = Vec::with_capacity(freq.len() + 1);
        let mut acc: u64 = 0;
        cdf.push(0);
        for (s, &f) in freq.iter().enumerate() {
            if f == 0 {
                return Err(EntropyError::BadTable(format!(
                    "symbol {s} has frequency 0"
                )));
            }
            acc += u64::from(f);
            if acc > u64::from(TOTAL) {
                return Err(EntropyError::BadTable(format!(
                    "frequencies exceed {TOTAL}"
                )));
            }
            cdf.push(acc as u32);
        }
        if acc != u64::from(TOTAL) {
            return Err(EntropyError::BadTable(format!(
                "frequencies sum to {acc}, not {TOTAL}"
            )));
        }
        Ok(Self::with_lookup(cdf))
    }

    /// The uniform distribution over `2^bits` symbols, `0 < bits <= 16` (spec 8.5).
    pub fn uniform_pow2(bits: u32) -> Self {
        let n = 1usize << bits;
        let f = TOTAL >> bits;
        Self::with_lookup((0..=n as u32).map(|s| s * f).collect())
    }

    /// Number of symbols.
    #[inline]
    pub fn len(&self) -> usize {
        self.cdf.len() - 1
    }

    /// Always false: a table has at least two symbols.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Frequency of `symbol`.
    #[inline]
    pub fn frequency(&self, symbol: usize) -> u32 {
        self.cdf[symbol + 1] - self.cdf[symbol]
    }

    /// Cumulative frequency of the symbols below `symbol`.
    #[inline]
    pub fn cumulative(&self, symbol: usize) -> u32 {
        self.cdf[symbol]
    }

    /// The symbol `s` with `cdf[s] <= quantile < cdf[s+1]` (spec 8.3, step 2).
    #[inline]
    pub fn symbol_of(&self, quantile: u32) -> usize {
        let b = (quantile >> (PRECISION - LOOKUP_BITS)) as usize;
        let lo = usize::from(self.start[b]);
        // The symbol lies in lo..=hi: hi is the first candidate of the next bucket.
        let hi = self
            .start
            .get(b + 1)
            .map_or(self.len() - 1, |&s| usize::from(s));
        if hi - lo <= 4 {
            let mut s = lo;
            while s < hi && self.cdf[s + 1] <= quantile {
                s += 1;
            }
            s
        } else {
            // Many small symbols share the bucket (a tail): binary search within it.
            lo + self.cdf[lo + 1..=hi].partition_point(|&c| c <= quantile)
        }
    }

    /// The symbol of `quantile` by a plain search of the whole table (the definition;
    /// the reference for [`symbol_of`](Self::symbol_of)).
    pub fn symbol_of_reference(&self, quantile: u32) -> usize {
        // partition_point returns the first index whose cdf exceeds quantile; cdf[0] = 0.
        self.cdf.partition_point(|&c| c <= quantile) - 1
    }

    /// A table from its cumulative frequencies, with the bucket lookup.
    fn with_lookup(cdf: Vec<u32>) -> Self {
        let mut t = Self {
            cdf,
            start: Vec::new(),
        };
        t.start = (0..1u32 << LOOKUP_BITS)
            .map(|b| t.symbol_of_reference(b << (PRECISION - LOOKUP_BITS)) as u16)
            .collect();
        t
    }

    /// The frequencies of all symbols (model-file serialisation, spec 7.4).
    pub fn frequencies(&self) -> Vec<u32> {
        self.cdf.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The ideal code length of `symbol` in bits, `-log2(freq / 2^16)`.
    pub fn bits(&self, symbol: usize) -> f64 {
        f64::from(PRECISION) - f64::from(self.frequency(symbol)).log2()
    }
}

impl constriction::stream::model::EntropyModel<16> for CdfTable {
    type Symbol = u32;
    type Probability = u32;
}

impl constriction::stream::model::EncoderModel<16> for CdfTable {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl core::borrow::Borrow<u32>,
    ) -> Option<(u32, NonZeroU32)> {
        let s = *symbol.borrow() as usize;
        if s >= self.len() {
            return None;
        }
        Some((self.cdf[s], NonZeroU32::new(self.frequency(s))?))
    }
}

impl constriction::stream::model::DecoderModel<16> for CdfTable {
    fn quantile_function(&self, quantile: u32) -> (u32, u32, NonZeroU32) {
        let s = self.symbol_of(quantile);
        let f = NonZeroU32::new(self.frequency(s)).unwrap_or(NonZeroU32::MIN);
        (s as u32, self.cdf[s], f)
    }
}

/// The fixed uniform tables used by the escape code (spec 8.5): index `n` holds the
/// uniform distribution over `2^n` symbols for `n` in `1..=16`, index 0 the 32-symbol
/// distribution of the bit count.
#[derive(Debug, Clone)]
pub struct UniformTables {
    tables: Vec<CdfTable>,
}

impl Default for UniformTables {
    fn default() -> Self {
        Self::new()
    }
}

impl UniformTables {
    /// Builds all escape tables.
    pub fn new() -> Self {
        let mut tables = vec![CdfTable::uniform_pow2(5)];
        tables.extend((1..=16).map(CdfTable::uniform_pow2));
        Self { tables }
    }

    /// The 32-symbol table of the escape bit count `n`.
    pub fn bit_count(&self) -> &CdfTable {
        &self.tables[0]
    }

    /// The uniform table over `2^n` symbols, `1 <= n <= 16`.
    pub fn bits(&self, n: u32) -> &CdfTable {
        &self.tables[n as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_tables() {
        assert!(CdfTable::from_frequencies(&[TOTAL]).is_err());
        assert!(CdfTable::from_frequencies(&[TOTAL - 1, 0, 1]).is_err());
        assert!(CdfTable::from_frequencies(&[TOTAL - 2, 1]).is_err());
        assert!(CdfTable::from_frequencies(&[TOTAL, 1]).is_err());
        let t = CdfTable::from_frequencies(&[TOTAL - 3, 1, 2]).unwrap();
        assert_eq!(t.symbol_of(0), 0);
        assert_eq!(t.symbol_of(TOTAL - 4), 0);
        assert_eq!(t.symbol_of(TOTAL - 3), 1);
        assert_eq!(t.symbol_of(TOTAL - 2), 2);
        assert_eq!(t.symbol_of(TOTAL - 1), 2);
    }

    /// The bucket lookup decodes every quantile to the symbol of the plain search: peaked
    /// tables, long tails of frequency-1 symbols, the largest table, uniform tables.
    #[test]
    fn lookup_matches_the_plain_search() {
        let mut tables = vec![CdfTable::uniform_pow2(0), CdfTable::uniform_pow2(16)];
        for bits in [1, 5, 10, 11] {
            tables.push(CdfTable::uniform_pow2(bits));
        }
        // Peaked with 1-frequency tails on both sides.
        for tail in [1usize, 3, 63, 64, 65, 700, 20_000] {
            let mut f = vec![1u32; 2 * tail + 3];
            f[tail] = 100;
            f[tail + 2] = 7;
            let rest: u32 = f.iter().sum::<u32>() - f[tail + 1];
            f[tail + 1] = TOTAL - rest;
            tables.push(CdfTable::from_frequencies(&f).unwrap());
        }
        // Pseudo-random frequencies.
        let mut x = 0x1234_5678u64;
        for n in [2usize, 17, 255, 4096] {
            let mut f: Vec<u32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    1 + (x % (u64::from(TOTAL) / n as u64 / 2).min(50)) as u32
                })
                .collect();
            let sum: u32 = f.iter().sum();
            f[n / 2] += TOTAL - sum;
            tables.push(CdfTable::from_frequencies(&f).unwrap());
        }
        for t in &tables {
            for q in 0..TOTAL {
                assert_eq!(
                    t.symbol_of(q),
                    t.symbol_of_reference(q),
                    "q {q} len {}",
                    t.len()
                );
            }
        }
    }
}
