use super::{AnsDecoder, CdfTable, EntropyError, UniformTables};
use crate::fixed::unzigzag;

/// Largest escape bit count `n` (spec 8.5); escaped values satisfy `|v| <= 2^16 - 1`.
pub const MAX_ESCAPE_BITS: u32 = 16;

/// Decodes one value with a table whose last symbol is the escape (spec 8.5).
///
/// Symbol `s < len - 1` means `offset + s`; the escape symbol is followed by the bit count
/// `n` (32-symbol uniform table) and, if `n > 0`, an `n`-bit uniform symbol `r`; the value
/// is `UnZigZag(2^n + r - 1)`.
#[inline]
pub fn decode_value(
    dec: &mut AnsDecoder<'_>,
    table: &CdfTable,
    offset: i32,
    uniform: &UniformTables,
) -> Result<i32, EntropyError> {
    let s = dec.decode(table);
    if s + 1 < table.len() {
        return Ok(offset + s as i32);
    }
    let n = dec.decode(uniform.bit_count()) as u32;
    if n > MAX_ESCAPE_BITS {
        return Err(EntropyError::EscapeTooLong {
            bits: n,
            max: MAX_ESCAPE_BITS,
        });
    }
    let mut u = 1u32 << n;
    if n > 0 {
        u += dec.decode(uniform.bits(n)) as u32;
    }
    Ok(unzigzag(u - 1))
}
