use super::{CdfTable, EntropyError, PRECISION};

/// `2^32`: the lower bound of the coder state while words remain (spec 8.2).
const STATE_LOW: u64 = 1 << 32;
const QUANTILE_MASK: u64 = (1 << PRECISION) - 1;

/// The rANS decoder of spec 8.2-8.4: 32-bit words, 64-bit state, 16-bit precision.
///
/// A payload is a sequence of little-endian 32-bit words that the decoder consumes from
/// the **end** towards the start (the encoder works as a stack).
#[derive(Debug, Clone)]
pub struct AnsDecoder<'a> {
    payload: &'a [u8],
    words_left: usize,
    state: u64,
}

impl<'a> AnsDecoder<'a> {
    /// Initialises the decoder on `payload` (spec 8.2).
    pub fn new(payload: &'a [u8]) -> Result<Self, EntropyError> {
        if !payload.len().is_multiple_of(4) {
            return Err(EntropyError::PartialWord { len: payload.len() });
        }
        let mut dec = Self {
            payload,
            words_left: payload.len() / 4,
            state: 0,
        };
        if let Some(first) = dec.pop_word() {
            if first == 0 {
                return Err(EntropyError::TrailingZeroWord);
            }
            dec.state = u64::from(first);
            if let Some(second) = dec.pop_word() {
                dec.state = (dec.state << 32) | u64::from(second);
            }
        }
        Ok(dec)
    }

    #[inline(always)]
    fn pop_word(&mut self) -> Option<u32> {
        if self.words_left == 0 {
            return None;
        }
        self.words_left -= 1;
        let i = self.words_left * 4;
        let b = &self.payload[i..i + 4];
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Decodes one symbol with `table` (spec 8.3). Never fails: every state decodes to
    /// some symbol; corruption is detected by [`finish`](Self::finish).
    #[inline]
    pub fn decode(&mut self, table: &CdfTable) -> usize {
        let quantile = (self.state & QUANTILE_MASK) as u32;
        let s = table.symbol_of(quantile);
        let f = u64::from(table.frequency(s));
        let c = u64::from(table.cumulative(s));
        self.state = (self.state >> PRECISION) * f + u64::from(quantile) - c;
        if self.state < STATE_LOW {
            if let Some(w) = self.pop_word() {
                self.state = (self.state << 32) | u64::from(w);
            }
        }
        s
    }

    /// Checks the end condition of spec 8.4: every word read and the state back at zero.
    pub fn finish(self) -> Result<(), EntropyError> {
        if self.words_left != 0 || self.state != 0 {
            return Err(EntropyError::NotExhausted {
                words_left: self.words_left,
                state: self.state,
            });
        }
        Ok(())
    }
}
