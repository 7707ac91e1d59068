use super::{EntropyError, PRECISION, TOTAL};
use core::num::NonZeroU32;

/// A categorical distribution with integer frequencies summing to `2^16` (spec 7.4, 8.1).
///
/// Symbols are `0..len()`; every symbol has a frequency of at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdfTable {
    /// `cdf[s]` = sum of the frequencies of symbols `< s`; `cdf.len() == len() + 1`.
    cdf: Vec<u32>,
}

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
        Ok(Self { cdf })
    }

    /// The uniform distribution over `2^bits` symbols, `0 < bits <= 16` (spec 8.5).
    pub fn uniform_pow2(bits: u32) -> Self {
        let n = 1usize << bits;
        let f = TOTAL >> bits;
        Self {
            cdf: (0..=n as u32).map(|s| s * f).collect(),
        }
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
        // partition_point returns the first index whose cdf exceeds quantile; cdf[0] = 0.
        self.cdf.partition_point(|&c| c <= quantile) - 1
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
}
