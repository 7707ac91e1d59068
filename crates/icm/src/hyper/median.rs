//! The median term of h_s layer 0 (spec 9.2, version 1.2).
//!
//! Architectures with `z.median` feed h_s with `z^ + Med[c] / 2^8`. The decoder keeps z^
//! integer and adds, to every accumulator of layer 0,
//! `RoundShift(sum of Med[i] * W0[i][o][ky][kx], 8)` over the same taps as the layer's own
//! sum. Which taps reach inside the input grid depends on the output position only through
//! its row and its column, so the sum is `sum over ky in Rows(Y), kx in Cols(X) of
//! P[o][ky][kx]` with `P[o][ky][kx] = sum over i of Med[i] * W0[i][o][ky][kx]`, computed
//! once per model.

use super::int_layer::{IntLayer, IntLayerKind};
use super::HyperError;
use crate::fixed::round_shift;

/// Largest `|Med[c]|` (spec 7.5).
pub const MAX_MEDIAN: i32 = 1 << 15;

/// Fractional bits of `Med` (spec 7.3).
const MEDIAN_FRAC_BITS: u32 = 8;

/// `Med` of a model and the per-tap sums `P` of its layer 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MedianTerm {
    /// `Med[c]` in units of `2^-8`.
    pub median: Vec<i32>,
    /// `P[o][ky][kx]`, `cout x k x k`.
    tap_sums: Vec<i64>,
    cout: usize,
    k: usize,
}

impl MedianTerm {
    /// Validates `median` against layer 0 (a transposed convolution with `median.len()`
    /// inputs) and prepares the tap sums.
    pub fn new(layer0: &IntLayer, median: Vec<i32>) -> Result<Self, HyperError> {
        let bad = |what: String| HyperError::BadLayer { layer: 0, what };
        if layer0.kind != IntLayerKind::Transposed || median.len() != layer0.cin {
            return Err(bad(format!(
                "{} z medians for {} hyper channels",
                median.len(),
                layer0.cin
            )));
        }
        if median.iter().any(|m| m.unsigned_abs() > MAX_MEDIAN as u32) {
            return Err(bad(format!("z median magnitude over {MAX_MEDIAN}")));
        }
        let (cout, k) = (layer0.cout, layer0.k);
        let mut tap_sums = vec![0i64; cout * k * k];
        for (i, &m) in median.iter().enumerate() {
            for o in 0..cout {
                for t in 0..k * k {
                    // W0[i][o][ky][kx]; |sum| <= 2^15 taps * 127 * 2^15 < 2^37.
                    tap_sums[o * k * k + t] +=
                        i64::from(m) * i64::from(layer0.weight[(i * cout + o) * k * k + t]);
                }
            }
        }
        Ok(Self {
            median,
            tap_sums,
            cout,
            k,
        })
    }

    /// The kernel rows (or columns) that reach inside an input of `n` rows from output row
    /// `y` of the stride-2 transposed convolution: `y = 2 * iy + ky - pad` with
    /// `0 <= iy < n` (spec 9.2).
    fn taps(&self, y: usize, n: usize) -> impl Iterator<Item = usize> + '_ {
        let pad = (self.k - 1) / 2;
        (0..self.k).filter(move |&ky| {
            let t = y + pad;
            t >= ky && (t - ky).is_multiple_of(2) && (t - ky) / 2 < n
        })
    }

    /// Adds the rounded median term to the HWC accumulators `acc` of layer 0, whose input
    /// is `h x w` (output `2h x 2w`).
    pub fn add_to(&self, acc: &mut [i32], h: usize, w: usize) {
        let (cout, kk) = (self.cout, self.k * self.k);
        let cols: Vec<Vec<usize>> = (0..2 * w).map(|x| self.taps(x, w).collect()).collect();
        let mut sums = vec![0i64; cout];
        for y in 0..2 * h {
            let rows: Vec<usize> = self.taps(y, h).collect();
            for (x, cols) in cols.iter().enumerate() {
                sums.iter_mut().for_each(|s| *s = 0);
                for &ky in &rows {
                    for &kx in cols {
                        for (o, s) in sums.iter_mut().enumerate() {
                            *s += self.tap_sums[o * kk + ky * self.k + kx];
                        }
                    }
                }
                let px = &mut acc[(y * 2 * w + x) * cout..][..cout];
                for (a, &s) in px.iter_mut().zip(&sums) {
                    // Fits i32 (spec 9.5): |acc0| <= 2,139,095,039.
                    *a = (i64::from(*a) + round_shift(s, MEDIAN_FRAC_BITS)) as i32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn layer0(rng: &mut Rng, cin: usize, cout: usize) -> IntLayer {
        let weight = (0..cin * cout * 25)
            .map(|_| rng.range(-127, 127) as i8)
            .collect();
        let bias = (0..cout).map(|_| rng.range(-1000, 1000) as i32).collect();
        IntLayer::new(
            0,
            IntLayerKind::Transposed,
            cin,
            cout,
            5,
            weight,
            bias,
            vec![1 << 30; cout],
            vec![30; cout],
        )
        .expect("layer")
    }

    /// The term against the spec's sum over `(i, iy, ix, ky, kx)`, written out directly.
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn median_term_is_the_spec_sum() {
        let mut rng = Rng(5);
        for (h, w) in [(1, 1), (1, 3), (2, 2), (3, 4)] {
            let (cin, cout) = (3, 4);
            let layer = layer0(&mut rng, cin, cout);
            let median: Vec<i32> = (0..cin)
                .map(|_| rng.range(-i64::from(MAX_MEDIAN), i64::from(MAX_MEDIAN)) as i32)
                .collect();
            let term = MedianTerm::new(&layer, median.clone()).expect("term");
            let mut acc = vec![0i32; 4 * h * w * cout];
            term.add_to(&mut acc, h, w);
            for oy in 0..2 * h {
                for ox in 0..2 * w {
                    for o in 0..cout {
                        let mut s = 0i64;
                        for i in 0..cin {
                            for iy in 0..h {
                                for ix in 0..w {
                                    for ky in 0..5 {
                                        for kx in 0..5 {
                                            if 2 * iy + ky == oy + 2 && 2 * ix + kx == ox + 2 {
                                                s += i64::from(median[i])
                                                    * i64::from(
                                                        layer.weight
                                                            [((i * cout + o) * 5 + ky) * 5 + kx],
                                                    );
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        assert_eq!(
                            i64::from(acc[(oy * 2 * w + ox) * cout + o]),
                            round_shift(s, 8),
                            "{h}x{w} at ({oy}, {ox}, {o})"
                        );
                    }
                }
            }
        }
    }

    /// An integer median `m` (`Med = 256 m`) adds exactly what `m` added to every input
    /// sample would: the term is the layer's own sum on a constant input.
    #[test]
    fn integer_medians_shift_the_input() {
        let mut rng = Rng(9);
        let (cin, cout, h, w) = (4, 6, 3, 2);
        let layer = layer0(&mut rng, cin, cout);
        let m: Vec<i32> = (0..cin).map(|_| rng.range(-5, 5) as i32).collect();
        let z: Vec<i32> = (0..h * w * cin)
            .map(|_| rng.range(-20, 20) as i32)
            .collect();
        let shifted: Vec<i32> = z.iter().enumerate().map(|(j, v)| v + m[j % cin]).collect();
        let term = MedianTerm::new(&layer, m.iter().map(|v| v * 256).collect()).expect("term");
        let mut acc = layer.accumulate(&z, h, w);
        term.add_to(&mut acc, h, w);
        assert_eq!(acc, layer.accumulate(&shifted, h, w));
    }

    #[test]
    fn out_of_range_medians_are_refused() {
        let mut rng = Rng(1);
        let layer = layer0(&mut rng, 2, 2);
        assert!(MedianTerm::new(&layer, vec![MAX_MEDIAN, -MAX_MEDIAN]).is_ok());
        assert!(MedianTerm::new(&layer, vec![MAX_MEDIAN + 1, 0]).is_err());
        assert!(MedianTerm::new(&layer, vec![0]).is_err());
    }
}
