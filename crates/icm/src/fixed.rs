//! Integer conventions of spec section 2: rounding, clipping, shifts and zigzag mapping.
//!
//! Every function here is total on its documented domain and is used by the normative
//! decoding process, so its exact rounding is part of the bitstream definition.

/// `RoundShift(v, s)` of spec 2.3: `(v + 2^(s-1)) >> s` with an arithmetic (flooring) shift,
/// i.e. division by `2^s` rounded to nearest, ties towards positive infinity.
/// `s` must be in `1..=62`; callers validate it when the model is loaded (spec 7.5).
#[inline(always)]
pub fn round_shift(v: i64, s: u32) -> i64 {
    (v + (1i64 << (s - 1))) >> s
}

/// `Clip(lo, hi, v)` of spec 2.3.
#[inline(always)]
pub fn clip(lo: i64, hi: i64, v: i64) -> i64 {
    v.max(lo).min(hi)
}

/// `ZigZag(q)` of spec 2.4: 0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ...
#[inline(always)]
pub fn zigzag(q: i32) -> u32 {
    ((q << 1) ^ (q >> 31)) as u32
}

/// Inverse of [`zigzag`] (spec 2.4).
#[inline(always)]
pub fn unzigzag(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

/// `CeilDiv(a, b)` of spec 2.3 for positive `b`.
#[inline(always)]
pub fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_ties_go_up() {
        assert_eq!(round_shift(3, 1), 2); // 1.5 -> 2
        assert_eq!(round_shift(-3, 1), -1); // -1.5 -> -1
        assert_eq!(round_shift(-5, 2), -1); // -1.25 -> -1
        assert_eq!(round_shift(-6, 2), -1); // -1.5 -> -1
        assert_eq!(round_shift(-7, 2), -2); // -1.75 -> -2
    }

    #[test]
    fn zigzag_round_trips() {
        for q in [-70000, -2, -1, 0, 1, 2, 65536, i32::MAX, i32::MIN] {
            assert_eq!(unzigzag(zigzag(q)), q);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
