//! The last step of h_s (spec 9.4): from the accumulators of the final layer to a scale
//! index and a fixed-point mean for every element of y^.
//!
//! Spec 9.4 requantises each scale accumulator, `s = RoundShift(acc * mult, shift)`, and
//! counts the thresholds `T[i] < s`. `RoundShift(acc * mult, shift)` is non-decreasing in
//! `acc` (`mult >= 0`), so `T[i] < s` holds exactly when `acc > A[i]`, where `A[i]` is the
//! largest accumulator whose requantised value is at most `T[i]`. This module computes the
//! `A[i]` of every channel once, when the model is loaded, and counts accumulator
//! thresholds instead: one compare per threshold, which vectorises (AVX2: eight channels
//! at a time). The means are requantised as the spec says, in 64-bit arithmetic (AVX2:
//! four lanes per instruction). Every path gives the bits of the spec's formulas (tested
//! below against them directly).

use super::int_layer::IntLayer;
use super::network::{HyperOutput, HyperOutputs, MEAN_LIMIT};
use crate::fixed::clip;
use rayon::prelude::*;

/// Channels per vector group.
const LANES: usize = 8;

/// Accumulator thresholds and requantisation constants of the final layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutputStage {
    /// Latent channels (M); the layer has 2M outputs, scales first, or M (scales).
    m: usize,
    /// Outputs of the layer per pixel (2M or M).
    stride: usize,
    /// Whether the layer gives means (else every mean is 0).
    means: bool,
    /// Thresholds per channel (`L - 1`).
    n_thresholds: usize,
    /// `[group][threshold][LANES]`: `A[i]` of channel `group * LANES + lane`, clamped to
    /// the i32 range (exact: every accumulator lies strictly inside it, spec 9.5);
    /// `i32::MAX` for the padding channels of the last group.
    acc_thresholds: Vec<i32>,
    /// Requantisation multiplier and shift of the mean channels, padded to whole groups.
    mean_mult: Vec<i32>,
    mean_shift: Vec<u8>,
}

/// The largest `acc` with `RoundShift(acc * mult, shift) <= t`, clamped to the i32 range.
fn acc_threshold(t: i32, mult: i32, shift: u8) -> i32 {
    let (m, s) = (i128::from(mult), u32::from(shift));
    if m == 0 {
        // RoundShift(0, s) = 0 for every accumulator.
        return if t < 0 { i32::MIN } else { i32::MAX };
    }
    // (acc * m + 2^(s-1)) >> s <= t  <=>  acc * m <= (t + 1) * 2^s - 2^(s-1) - 1.
    let bound = (i128::from(t) + 1) * (1i128 << s) - (1i128 << (s - 1)) - 1;
    let a = bound.div_euclid(m);
    a.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

impl OutputStage {
    /// Tables for `last` (the final layer, `2M` or `M` outputs) and the scale thresholds
    /// `T`.
    pub fn new(last: &IntLayer, thresholds: &[i32], outputs: HyperOutputs) -> Self {
        let means = outputs == HyperOutputs::ScalesAndMeans;
        let m = if means { last.cout / 2 } else { last.cout };
        let groups = m.div_ceil(LANES);
        let nt = thresholds.len();
        let mut acc_thresholds = vec![i32::MAX; groups * nt * LANES];
        for c in 0..m {
            let (g, lane) = (c / LANES, c % LANES);
            for (i, &t) in thresholds.iter().enumerate() {
                acc_thresholds[(g * nt + i) * LANES + lane] =
                    acc_threshold(t, last.multiplier[c], last.shift[c]);
            }
        }
        // Without means, a multiplier of 0 gives RoundShift(0, 1) = 0 for every mean.
        let mut mean_mult = vec![0i32; groups * LANES];
        let mut mean_shift = vec![1u8; groups * LANES];
        if means {
            mean_mult[..m].copy_from_slice(&last.multiplier[m..]);
            mean_shift[..m].copy_from_slice(&last.shift[m..]);
        }
        Self {
            m,
            stride: last.cout,
            means,
            n_thresholds: nt,
            acc_thresholds,
            mean_mult,
            mean_shift,
        }
    }

    /// Scale indices and means (CHW) from the final layer's accumulators (HWC,
    /// `plane x 2M`, or `plane x M` without means) of an `h x w` grid.
    pub fn run(&self, acc: &[i32], h: usize, w: usize) -> HyperOutput {
        self.run_with(acc, h, w, avx2_available())
    }

    /// [`run`](Self::run) with the AVX2 path allowed or not (tests use both).
    pub fn run_with(&self, acc: &[i32], h: usize, w: usize, avx2: bool) -> HyperOutput {
        let (m, plane) = (self.m, h * w);
        assert_eq!(
            acc.len(),
            plane * self.stride,
            "accumulators of the final layer"
        );
        let mut scale_index = vec![0u8; m * plane];
        let mut mean = vec![0i32; m * plane];
        let avx2 = avx2 && avx2_available();
        // One task per group of LANES channels: it writes LANES whole output planes.
        scale_index
            .par_chunks_mut(LANES * plane.max(1))
            .zip(mean.par_chunks_mut(LANES * plane.max(1)))
            .enumerate()
            .for_each(|(g, (idx_out, mean_out))| {
                let lanes = idx_out.len() / plane.max(1);
                let mut idx8 = [0u8; LANES];
                let mut mean8 = [0i32; LANES];
                for (p, px) in acc.chunks_exact(self.stride).enumerate() {
                    let c0 = g * LANES;
                    let mut scales = [0i32; LANES];
                    let mut means = [0i32; LANES];
                    scales[..lanes].copy_from_slice(&px[c0..c0 + lanes]);
                    if self.means {
                        means[..lanes].copy_from_slice(&px[m + c0..m + c0 + lanes]);
                    }
                    #[cfg(target_arch = "x86_64")]
                    if avx2 {
                        // SAFETY: AVX2 is available (checked above).
                        unsafe { self.group_avx2(g, &scales, &means, &mut idx8, &mut mean8) };
                    } else {
                        self.group(g, &scales, &means, &mut idx8, &mut mean8);
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    {
                        let _ = avx2;
                        self.group(g, &scales, &means, &mut idx8, &mut mean8);
                    }
                    for lane in 0..lanes {
                        idx_out[lane * plane + p] = idx8[lane];
                        mean_out[lane * plane + p] = mean8[lane];
                    }
                }
            });
        HyperOutput {
            channels: m,
            height: h,
            width: w,
            scale_index,
            mean,
        }
    }

    /// One group of channels at one pixel, portable.
    fn group(
        &self,
        g: usize,
        scales: &[i32; LANES],
        means: &[i32; LANES],
        idx: &mut [u8; LANES],
        mean: &mut [i32; LANES],
    ) {
        let nt = self.n_thresholds;
        let table = &self.acc_thresholds[g * nt * LANES..(g + 1) * nt * LANES];
        for lane in 0..LANES {
            let a = scales[lane];
            idx[lane] = table.chunks_exact(LANES).filter(|t| a > t[lane]).count() as u8;
            let c = g * LANES + lane;
            let v = i64::from(means[lane]) * i64::from(self.mean_mult[c]);
            let mu = crate::fixed::round_shift(v, u32::from(self.mean_shift[c]));
            mean[lane] = clip(-MEAN_LIMIT, MEAN_LIMIT, mu) as i32;
        }
    }

    /// [`group`](Self::group) with AVX2: the threshold count as eight-lane compares, the
    /// mean requantisation in 64-bit lanes (`vpmuldq`, and an arithmetic right shift made
    /// from the logical one: `(x ^ s) >> n ^ s` with `s` the sign mask).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn group_avx2(
        &self,
        g: usize,
        scales: &[i32; LANES],
        means: &[i32; LANES],
        idx: &mut [u8; LANES],
        mean: &mut [i32; LANES],
    ) {
        use std::arch::x86_64::*;
        let nt = self.n_thresholds;
        let table = &self.acc_thresholds[g * nt * LANES..(g + 1) * nt * LANES];
        let c0 = g * LANES;
        let mult = &self.mean_mult[c0..c0 + LANES];
        let shift = &self.mean_shift[c0..c0 + LANES];
        // SAFETY: every load and store below reads or writes LANES values of a slice that
        // holds exactly LANES (or `nt * LANES` for the table, read in steps of LANES).
        unsafe {
            let a = _mm256_loadu_si256(scales.as_ptr() as *const __m256i);
            let mut count = _mm256_setzero_si256();
            for t in table.chunks_exact(LANES) {
                let tv = _mm256_loadu_si256(t.as_ptr() as *const __m256i);
                // The compare gives -1 where a > t: subtracting it counts.
                count = _mm256_sub_epi32(count, _mm256_cmpgt_epi32(a, tv));
            }
            let mut counts = [0i32; LANES];
            _mm256_storeu_si256(counts.as_mut_ptr() as *mut __m256i, count);
            for (d, &c) in idx.iter_mut().zip(&counts) {
                *d = c as u8;
            }

            let x = _mm256_loadu_si256(means.as_ptr() as *const __m256i);
            let mv = _mm256_loadu_si256(mult.as_ptr() as *const __m256i);
            // Shifts and rounding constants of the even (0, 2, 4, 6) and odd lanes.
            let sh = |o: usize| {
                _mm256_set_epi64x(
                    i64::from(shift[6 + o]),
                    i64::from(shift[4 + o]),
                    i64::from(shift[2 + o]),
                    i64::from(shift[o]),
                )
            };
            let (sh_e, sh_o) = (sh(0), sh(1));
            let one = _mm256_set1_epi64x(1);
            let lim = _mm256_set1_epi64x(MEAN_LIMIT);
            let neg_lim = _mm256_set1_epi64x(-MEAN_LIMIT);
            let zero = _mm256_setzero_si256();
            let requant = |prod: __m256i, sh: __m256i| {
                // RoundShift(v, s) = (v + 2^(s-1)) >> s, arithmetic.
                let v = _mm256_add_epi64(prod, _mm256_sllv_epi64(one, _mm256_sub_epi64(sh, one)));
                let sign = _mm256_cmpgt_epi64(zero, v);
                let r = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), sh), sign);
                // Clip to [-MEAN_LIMIT, MEAN_LIMIT].
                let r = _mm256_blendv_epi8(r, lim, _mm256_cmpgt_epi64(r, lim));
                _mm256_blendv_epi8(r, neg_lim, _mm256_cmpgt_epi64(neg_lim, r))
            };
            let even = requant(_mm256_mul_epi32(x, mv), sh_e);
            let odd = requant(
                _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mv, 32)),
                sh_o,
            );
            // Low 32 bits of each 64-bit result: even lanes in place, odd ones moved up.
            let r = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b1010_1010);
            _mm256_storeu_si256(mean.as_mut_ptr() as *mut __m256i, r);
        }
    }
}

/// Whether the AVX2 path can run on this CPU.
fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::round_shift;
    use crate::hyper::IntLayerKind;

    use crate::rng::Rng;

    #[test]
    fn acc_threshold_is_the_last_accumulator_at_or_below_t() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let mult = match rng.next_u64() % 5 {
                0 => 0,
                1 => i32::MAX,
                _ => rng.range(0, i64::from(i32::MAX)) as i32,
            };
            let shift = rng.range(1, 62) as u8;
            let t = rng.range(-(1 << 30), 1 << 30) as i32;
            let a = acc_threshold(t, mult, shift);
            let rs = |acc: i32| round_shift(i64::from(acc) * i64::from(mult), u32::from(shift));
            if a > i32::MIN {
                assert!(
                    rs(a) <= i64::from(t),
                    "t {t} mult {mult} shift {shift}: A {a}"
                );
            }
            if a < i32::MAX {
                assert!(
                    rs(a + 1) > i64::from(t),
                    "t {t} mult {mult} shift {shift}: A {a}"
                );
            }
        }
    }

    /// The stage against spec 9.4's formulas, portable and AVX2, on random layers and
    /// accumulators at the extremes of spec 9.5.
    #[test]
    fn output_stage_matches_spec_formulas() {
        let mut rng = Rng(11);
        for m in [1usize, 7, 8, 13, 192] {
            let cout = 2 * m;
            let multiplier: Vec<i32> = (0..cout)
                .map(|c| match c % 6 {
                    0 => 0,
                    1 => (1 << 30) + rng.range(0, (1 << 30) - 1) as i32,
                    _ => rng.range(0, i64::from(i32::MAX)) as i32,
                })
                .collect();
            let shift: Vec<u8> = (0..cout).map(|_| rng.range(1, 62) as u8).collect();
            let layer = IntLayer::new(
                4,
                IntLayerKind::Conv,
                2,
                cout,
                1,
                vec![1; 2 * cout],
                vec![0; cout],
                multiplier,
                shift,
            )
            .expect("layer");
            let mut t: Vec<i32> = (0..63)
                .map(|_| rng.range(-(1 << 20), 1 << 20) as i32)
                .collect();
            t.sort_unstable();
            t.dedup();
            let stage = OutputStage::new(&layer, &t, HyperOutputs::ScalesAndMeans);
            // The same layer read as scale-only (2M scale channels, spec 9.4): the indices
            // of every channel from its own accumulator, every mean 0.
            let scale_only = OutputStage::new(&layer, &t, HyperOutputs::Scales);
            let (h, w) = (3, 5);
            let bound = 2_134_933_503i64; // largest |acc| of spec 9.5
            let acc: Vec<i32> = (0..h * w * cout)
                .map(|_| match rng.next_u64() % 4 {
                    0 => rng.range(-bound, bound) as i32,
                    1 => [-bound, bound, 0, 1, -1][(rng.next_u64() % 5) as usize] as i32,
                    _ => rng.range(-(1 << 24), 1 << 24) as i32,
                })
                .collect();
            for avx2 in [false, true] {
                let out = scale_only.run_with(&acc, h, w, avx2);
                assert!(out.mean.iter().all(|&v| v == 0));
                for p in 0..h * w {
                    for c in 0..cout {
                        let s = layer.requantise(acc[p * cout + c], c);
                        let want = t.partition_point(|&v| i64::from(v) < s);
                        assert_eq!(usize::from(out.scale_index[c * h * w + p]), want);
                    }
                }
                let out = stage.run_with(&acc, h, w, avx2);
                for p in 0..h * w {
                    for c in 0..m {
                        let px = &acc[p * cout..(p + 1) * cout];
                        let s = layer.requantise(px[c], c);
                        let want = t.partition_point(|&v| i64::from(v) < s);
                        assert_eq!(usize::from(out.scale_index[c * h * w + p]), want);
                        let mu = clip(-MEAN_LIMIT, MEAN_LIMIT, layer.requantise(px[m + c], m + c));
                        assert_eq!(
                            i64::from(out.mean[c * h * w + p]),
                            mu,
                            "m {m} c {c} avx2 {avx2}"
                        );
                    }
                }
            }
        }
    }
}
