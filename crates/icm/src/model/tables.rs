//! Construction of the integer entropy tables stored in a model file (spec 7.4, 12.3).
//!
//! This runs when a model file is built, never when a stream is decoded: the decoder only
//! reads the stored integer frequencies, so the floating point here is not normative.

use crate::entropy::TOTAL;

/// Number of entries of the scale table (spec 12.3).
pub const SCALE_LEVELS: usize = 64;
/// Smallest and largest Gaussian scale of the table (as CompressAI's `get_scale_table`).
pub const SCALE_MIN: f64 = 0.11;
/// See [`SCALE_MIN`].
pub const SCALE_MAX: f64 = 256.0;
/// Tail mass left to the escape symbol when the half-width is chosen (spec 12.3).
pub const TAIL_MASS: f64 = 1e-9;

/// The scale table `exp(linspace(ln 0.11, ln 256, 64))`.
pub fn scale_table() -> Vec<f64> {
    let (a, b) = (SCALE_MIN.ln(), SCALE_MAX.ln());
    (0..SCALE_LEVELS)
        .map(|i| (a + (b - a) * i as f64 / (SCALE_LEVELS - 1) as f64).exp())
        .collect()
}

/// Complementary error function, |relative error| < 1.2e-7 (Numerical Recipes `erfcc`).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Integer frequencies for `probs` (non-negative, any sum): every entry at least 1, total
/// exactly `2^16`, the remainder given to the largest fractional parts (ties: lower index).
pub fn quantize_probabilities(probs: &[f64]) -> Vec<u32> {
    let n = probs.len();
    let sum: f64 = probs.iter().map(|p| p.max(0.0)).sum();
    let spare = f64::from(TOTAL - n as u32);
    let mut freq = Vec::with_capacity(n);
    let mut frac = Vec::with_capacity(n);
    for (i, p) in probs.iter().enumerate() {
        let share = if sum > 0.0 {
            p.max(0.0) / sum * spare
        } else {
            spare / n as f64
        };
        let f = share.floor();
        freq.push(1 + f as u32);
        frac.push((share - f, i));
    }
    let used: u32 = freq.iter().sum();
    let mut left = TOTAL - used;
    frac.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in frac.iter().cycle() {
        if left == 0 {
            break;
        }
        freq[i] += 1;
        left -= 1;
    }
    freq
}

/// The table of one Gaussian scale `sigma` (spec 12.3): half-width
/// `R = ceil(sigma * 6.109)` (6.109 = -Phi^-1(TAIL_MASS/2)), symbols `v = -R..=R` with
/// mass `Phi((v+0.5)/sigma) - Phi((v-0.5)/sigma)`, then the escape with the two tails.
/// Returns `(R, frequencies)`.
pub fn gaussian_table(sigma: f64) -> (i32, Vec<u32>) {
    let multiplier = 6.109_410_204_869_29; // -Phi^-1(5e-10)
    let r = (sigma * multiplier).ceil().max(1.0) as i32;
    let mut probs: Vec<f64> = (-r..=r)
        .map(|v| {
            normal_cdf((f64::from(v) + 0.5) / sigma) - normal_cdf((f64::from(v) - 0.5) / sigma)
        })
        .collect();
    probs.push(2.0 * normal_cdf(-(f64::from(r) + 0.5) / sigma));
    (r, quantize_probabilities(&probs))
}

/// The table of one hyper channel from its probability masses `pmf[v - v0]` for
/// `v = v0..v0+len` (spec 12.3): the support is trimmed to the values whose mass is at
/// least `2^-18` (always keeping 0), the trimmed mass goes to the escape symbol.
/// Returns `(offset, frequencies)`.
pub fn hyper_table(pmf: &[f64], v0: i32) -> (i32, Vec<u32>) {
    let keep = |p: f64| p >= 1.0 / f64::from(1u32 << 18);
    let zero = (-v0) as usize;
    let lo = pmf.iter().position(|&p| keep(p)).unwrap_or(zero).min(zero);
    let hi = pmf.iter().rposition(|&p| keep(p)).unwrap_or(zero).max(zero);
    let mut probs: Vec<f64> = pmf[lo..=hi].to_vec();
    let inside: f64 = probs.iter().sum();
    let total: f64 = pmf.iter().sum();
    probs.push((total - inside).max(0.0) + 1e-9);
    (v0 + lo as i32, quantize_probabilities(&probs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_are_valid() {
        for sigma in scale_table() {
            let (r, f) = gaussian_table(sigma);
            assert_eq!(f.len(), 2 * r as usize + 2);
            assert_eq!(f.iter().sum::<u32>(), TOTAL);
            assert!(f.iter().all(|&x| x >= 1));
            // Symmetric mass around zero up to rounding.
            let c = r as usize;
            assert!((i64::from(f[c - 1]) - i64::from(f[c + 1])).abs() <= 1);
        }
        assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 1e-7);
    }
}
