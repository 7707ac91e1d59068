//! Fast evaluation of the integer layers of spec 9.2.
//!
//! The sums are those of [`IntLayer::accumulate`](super::IntLayer::accumulate), computed
//! as 16-bit pairwise multiply-adds (x86 `pmaddwd`): inputs (z^ clipped to -128..=127,
//! activations -255..=255) and weights (-127..=127) fit in 16 bits, a pair of products in 32.
//! Integer addition is exact and every partial sum of spec 9.5 fits in 32 bits, so neither
//! the order of the additions nor the SIMD width changes a single bit: the AVX2 path and
//! the portable path give the reference results (tested in `int_layer.rs`).
//!
//! Layout: a layer is a set of *phases*. A convolution (stride 1) has one phase whose
//! output position `(m, j)` reads input `(m + dy, j + dx)` for its `k * k` taps. A
//! transposed convolution (stride 2) has four, one per output parity `(py, px)`: output
//! `(2m + py, 2j + px)` reads input `(m + dy, j + dx)` with kernel tap
//! `(py + pad - 2 dy, px + pad - 2 dx)` where that tap exists. Every phase is thus an
//! ordinary correlation on the input grid. The input is held HWC in 16 bits with a zero
//! border wide enough for every tap offset and the row padded to whole 4-pixel blocks.

use rayon::prelude::*;

/// Output pixels computed together (the register block of the kernels).
const PIXELS: usize = 4;
/// Output channels computed together: two vectors of eight 32-bit lanes.
const CHANNELS: usize = 16;

/// An HWC 16-bit tensor with a zero border, the input of [`PackedLayer::accumulate`].
#[derive(Debug, Clone)]
pub(super) struct PaddedInput {
    /// Rows and columns of the unpadded tensor.
    pub h: usize,
    pub w: usize,
    /// Border width on every side.
    pub pad: usize,
    /// Row length in pixels: `pad + w rounded up to PIXELS + pad`.
    pub wp: usize,
    /// Channels per pixel, the layer's input channels rounded up to even.
    pub c2: usize,
    /// `(h + 2 pad) * wp * c2` values.
    pub data: Vec<i16>,
}

impl PaddedInput {
    /// A zero tensor for an `h x w x channels` input of a layer with border `pad`.
    pub fn zeros(h: usize, w: usize, channels: usize, pad: usize) -> Self {
        let wp = w.div_ceil(PIXELS) * PIXELS + 2 * pad;
        let c2 = channels.div_ceil(2) * 2;
        Self {
            h,
            w,
            pad,
            wp,
            c2,
            data: vec![0; (h + 2 * pad) * wp * c2],
        }
    }

    /// The values of pixel `(y, x)` of the unpadded tensor.
    #[inline]
    pub fn pixel_mut(&mut self, y: usize, x: usize) -> &mut [i16] {
        let i = ((y + self.pad) * self.wp + x + self.pad) * self.c2;
        &mut self.data[i..i + self.c2]
    }
}

/// An output phase `(py, px)` and its taps `(dy, dx, ky, kx)` before packing.
type PhasePlan = (usize, usize, Vec<(isize, isize, usize, usize)>);

/// The taps and packed weights of one output phase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Phase {
    /// Output row and column parity (always 0 for a convolution).
    py: usize,
    px: usize,
    /// Input offsets `(dy, dx)` of the taps.
    taps: Vec<(isize, isize)>,
    /// `[tap][cin pair][cout_pad][2]`: the weights of input channels `2p` and `2p + 1`
    /// side by side for every output channel, zero for padding channels.
    weight: Vec<i16>,
}

/// A layer of spec 9.2 packed for the multiply-add kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PackedLayer {
    /// 1 for a convolution, 2 for a transposed convolution.
    stride: usize,
    /// Pairs of input channels.
    pairs: usize,
    /// Output channels and their count rounded up to [`CHANNELS`].
    cout: usize,
    cout_pad: usize,
    /// Largest tap offset: the input border the layer needs.
    pub pad: usize,
    phases: Vec<Phase>,
    /// Bias, zero-extended to `cout_pad`.
    bias: Vec<i32>,
}

impl PackedLayer {
    /// Packs a layer. `weight` is indexed by `index(i, o, ky, kx)`, the layout of the
    /// layer kind (spec 7.3).
    pub fn new(
        transposed: bool,
        cin: usize,
        cout: usize,
        k: usize,
        bias: &[i32],
        weight_at: impl Fn(usize, usize, usize, usize) -> i8,
    ) -> Self {
        let pad = (k - 1) / 2;
        let pairs = cin.div_ceil(2);
        let cout_pad = cout.div_ceil(CHANNELS) * CHANNELS;
        let mut plans: Vec<PhasePlan> = Vec::new();
        if transposed {
            // Output 2m + p reads input m + d through tap p + pad - 2d, when in 0..k.
            let axis = |p: usize| -> Vec<(isize, usize)> {
                (0..k)
                    .filter(|&t| (p + pad + 2 * k - t).is_multiple_of(2))
                    .map(|t| ((p as isize + pad as isize - t as isize) / 2, t))
                    .collect()
            };
            for py in 0..2 {
                for px in 0..2 {
                    let mut taps = Vec::new();
                    for &(dy, ky) in &axis(py) {
                        for &(dx, kx) in &axis(px) {
                            taps.push((dy, dx, ky, kx));
                        }
                    }
                    plans.push((py, px, taps));
                }
            }
        } else {
            let mut taps = Vec::new();
            for ky in 0..k {
                for kx in 0..k {
                    taps.push((
                        ky as isize - pad as isize,
                        kx as isize - pad as isize,
                        ky,
                        kx,
                    ));
                }
            }
            plans.push((0, 0, taps));
        }
        let border = plans
            .iter()
            .flat_map(|(_, _, t)| t.iter().map(|&(dy, dx, _, _)| dy.abs().max(dx.abs())))
            .max()
            .unwrap_or(0) as usize;
        let phases = plans
            .into_iter()
            .map(|(py, px, taps)| {
                let mut w = vec![0i16; taps.len() * pairs * cout_pad * 2];
                for (t, &(_, _, ky, kx)) in taps.iter().enumerate() {
                    for i in 0..cin {
                        for o in 0..cout {
                            let at = ((t * pairs + i / 2) * cout_pad + o) * 2 + i % 2;
                            w[at] = i16::from(weight_at(i, o, ky, kx));
                        }
                    }
                }
                Phase {
                    py,
                    px,
                    taps: taps.iter().map(|&(dy, dx, _, _)| (dy, dx)).collect(),
                    weight: w,
                }
            })
            .collect();
        let mut b = vec![0i32; cout_pad];
        b[..cout].copy_from_slice(bias);
        Self {
            stride: if transposed { 2 } else { 1 },
            pairs,
            cout,
            cout_pad,
            pad: border,
            phases,
            bias: b,
        }
    }

    /// The accumulators of spec 9.2 (bias included) for `input`, HWC `oh x ow x cout`
    /// with `(oh, ow) = stride * (h, w)`.
    pub fn accumulate(&self, input: &PaddedInput) -> Vec<i32> {
        assert!(input.pad >= self.pad && input.c2 >= 2 * self.pairs);
        let (h, w, s) = (input.h, input.w, self.stride);
        let (ow, cout) = (s * w, self.cout);
        let mut acc = vec![0i32; s * h * ow * cout];
        if acc.is_empty() {
            return acc;
        }
        let wblocks = w.div_ceil(PIXELS) * PIXELS;
        let simd = Simd::detect();
        // One task per input row m: it writes output rows s*m .. s*m + s, all phases.
        acc.par_chunks_mut(s * ow * cout).enumerate().for_each_init(
            || vec![0i32; wblocks * self.cout_pad],
            |row, (m, out)| {
                for ph in &self.phases {
                    simd.phase_row(self, ph, input, m, row);
                    for j in 0..w {
                        let dst = (ph.py * ow + s * j + ph.px) * cout;
                        out[dst..dst + cout]
                            .copy_from_slice(&row[j * self.cout_pad..j * self.cout_pad + cout]);
                    }
                }
            },
        );
        acc
    }
}

/// The instruction set the kernels use, chosen once per call at run time.
#[derive(Debug, Clone, Copy)]
pub(super) enum Simd {
    /// Plain Rust, any CPU.
    Portable,
    /// x86-64 AVX2 (`vpmaddwd` on 256-bit vectors).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 AVX-512 VNNI (`vpdpwssd`: multiply, pair-add and accumulate in one
    /// instruction, 16 lanes).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Simd {
    /// The best path this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return Simd::Avx512Vnni;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Portable
    }

    /// Accumulators of phase `ph` on phase-grid row `m`, for `w` rounded up to whole
    /// [`PIXELS`] blocks: `row[j * cout_pad + o]`.
    fn phase_row(self, l: &PackedLayer, ph: &Phase, x: &PaddedInput, m: usize, row: &mut [i32]) {
        match self {
            Simd::Portable => phase_row_portable(l, ph, x, m, row),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 was detected on this CPU; bounds are checked inside.
            Simd::Avx2 => unsafe { avx2::phase_row(l, ph, x, m, row) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F and VNNI were detected on this CPU; bounds are checked inside.
            Simd::Avx512Vnni => unsafe { avx512::phase_row(l, ph, x, m, row) },
        }
    }
}

/// Start of the input pixel that output column `j` of row `m` reads through tap `(dy, dx)`.
#[inline(always)]
fn tap_base(x: &PaddedInput, m: usize, j: usize, dy: isize, dx: isize) -> usize {
    let y = (m + x.pad) as isize + dy;
    let c = (j + x.pad) as isize + dx;
    (y as usize * x.wp + c as usize) * x.c2
}

fn phase_row_portable(l: &PackedLayer, ph: &Phase, x: &PaddedInput, m: usize, row: &mut [i32]) {
    let cp = l.cout_pad;
    let blocks = row.len() / cp;
    for j in 0..blocks {
        let out = &mut row[j * cp..(j + 1) * cp];
        out.copy_from_slice(&l.bias);
        for (t, &(dy, dx)) in ph.taps.iter().enumerate() {
            let base = tap_base(x, m, j, dy, dx);
            let src = &x.data[base..base + 2 * l.pairs];
            let wt = &ph.weight[t * l.pairs * cp * 2..(t + 1) * l.pairs * cp * 2];
            for (p, pair) in src.chunks_exact(2).enumerate() {
                let (a, b) = (i32::from(pair[0]), i32::from(pair[1]));
                if a == 0 && b == 0 {
                    continue;
                }
                let w = &wt[p * cp * 2..(p + 1) * cp * 2];
                for (o, wo) in out.iter_mut().zip(w.chunks_exact(2)) {
                    *o = o.wrapping_add(a * i32::from(wo[0]) + b * i32::from(wo[1]));
                }
            }
        }
    }
}

/// The bounds the SIMD kernels rely on for phase-grid row `m` and output `row`: every
/// input value a tap reads, every weight, the bias and the output blocks.
#[cfg(target_arch = "x86_64")]
fn check_row_bounds(l: &PackedLayer, ph: &Phase, x: &PaddedInput, m: usize, row: &[i32]) {
    let cp = l.cout_pad;
    let blocks = row.len() / cp;
    assert!(blocks.is_multiple_of(PIXELS) && cp.is_multiple_of(CHANNELS) && l.bias.len() >= cp);
    for &(dy, dx) in &ph.taps {
        let last = tap_base(x, m, blocks - 1, dy, dx) + 2 * l.pairs;
        assert!(last <= x.data.len(), "tap outside the padded input");
    }
    assert!(ph.weight.len() >= ph.taps.len() * l.pairs * cp * 2);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{check_row_bounds, tap_base, PackedLayer, PaddedInput, Phase, CHANNELS, PIXELS};
    use std::arch::x86_64::*;

    /// AVX2 form of `phase_row_portable`: blocks of 4 pixels x 16 channels held in eight
    /// 256-bit accumulators; per input-channel pair one broadcast per pixel and two weight
    /// loads feed eight `vpmaddwd`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn phase_row(
        l: &PackedLayer,
        ph: &Phase,
        x: &PaddedInput,
        m: usize,
        row: &mut [i32],
    ) {
        let cp = l.cout_pad;
        let blocks = row.len() / cp;
        let pairs = l.pairs;
        if blocks == 0 {
            return;
        }
        check_row_bounds(l, ph, x, m, row);
        let xp = x.data.as_ptr();
        let wp = ph.weight.as_ptr();
        for j0 in (0..blocks).step_by(PIXELS) {
            for ob in (0..cp).step_by(CHANNELS) {
                // SAFETY (whole block): `ob + 16 <= cp`, so the bias and the output loads
                // and stores stay within `l.bias` and `row` (j0 + 3 < blocks); the input
                // reads are within the bounds asserted above, the weight reads within
                // `ph.weight` (t < taps, p < pairs, ob + 16 <= cp).
                unsafe {
                    let b0 = _mm256_loadu_si256(l.bias.as_ptr().add(ob) as *const __m256i);
                    let b1 = _mm256_loadu_si256(l.bias.as_ptr().add(ob + 8) as *const __m256i);
                    let mut acc = [[b0, b1]; PIXELS];
                    for (t, &(dy, dx)) in ph.taps.iter().enumerate() {
                        let base = tap_base(x, m, j0, dy, dx);
                        let mut w = wp.add((t * pairs * cp + ob) * 2);
                        let mut src = xp.add(base);
                        for _ in 0..pairs {
                            let w0 = _mm256_loadu_si256(w as *const __m256i);
                            let w1 = _mm256_loadu_si256(w.add(16) as *const __m256i);
                            for (p, a) in acc.iter_mut().enumerate() {
                                let v = (src.add(p * x.c2) as *const i32).read_unaligned();
                                let v = _mm256_set1_epi32(v);
                                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(v, w0));
                                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(v, w1));
                            }
                            w = w.add(cp * 2);
                            src = src.add(2);
                        }
                    }
                    for (p, a) in acc.iter().enumerate() {
                        let out = row.as_mut_ptr().add((j0 + p) * cp + ob);
                        _mm256_storeu_si256(out as *mut __m256i, a[0]);
                        _mm256_storeu_si256(out.add(8) as *mut __m256i, a[1]);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{check_row_bounds, tap_base, PackedLayer, PaddedInput, Phase, CHANNELS, PIXELS};
    use std::arch::x86_64::*;

    /// AVX-512 VNNI form of `phase_row_portable`: blocks of 4 pixels x 16 channels in four
    /// 512-bit accumulators; per input-channel pair one weight load and, per pixel, one
    /// broadcast and one `vpdpwssd`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn phase_row(
        l: &PackedLayer,
        ph: &Phase,
        x: &PaddedInput,
        m: usize,
        row: &mut [i32],
    ) {
        let cp = l.cout_pad;
        let blocks = row.len() / cp;
        if blocks == 0 {
            return;
        }
        let pairs = l.pairs;
        check_row_bounds(l, ph, x, m, row);
        let xp = x.data.as_ptr();
        let wp = ph.weight.as_ptr();
        for j0 in (0..blocks).step_by(PIXELS) {
            for ob in (0..cp).step_by(CHANNELS) {
                // SAFETY: as in the AVX2 kernel: bias, output, input and weight accesses
                // are within the bounds asserted above.
                unsafe {
                    let b = _mm512_loadu_si512(l.bias.as_ptr().add(ob) as *const __m512i);
                    let mut acc = [b; PIXELS];
                    for (t, &(dy, dx)) in ph.taps.iter().enumerate() {
                        let base = tap_base(x, m, j0, dy, dx);
                        let mut w = wp.add((t * pairs * cp + ob) * 2);
                        let mut src = xp.add(base);
                        for _ in 0..pairs {
                            let wv = _mm512_loadu_si512(w as *const __m512i);
                            for (p, a) in acc.iter_mut().enumerate() {
                                let v = (src.add(p * x.c2) as *const i32).read_unaligned();
                                *a = _mm512_dpwssd_epi32(*a, _mm512_set1_epi32(v), wv);
                            }
                            w = w.add(cp * 2);
                            src = src.add(2);
                        }
                    }
                    for (p, a) in acc.iter().enumerate() {
                        let out = row.as_mut_ptr().add((j0 + p) * cp + ob);
                        _mm512_storeu_si512(out as *mut __m512i, *a);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) fn accumulate_with(l: &PackedLayer, input: &PaddedInput, simd: Simd) -> Vec<i32> {
    let (h, w, s) = (input.h, input.w, l.stride);
    let (ow, cout) = (s * w, l.cout);
    let wblocks = w.div_ceil(PIXELS) * PIXELS;
    let mut acc = vec![0i32; s * h * ow * cout];
    let mut row = vec![0i32; wblocks * l.cout_pad];
    for m in 0..h {
        for ph in &l.phases {
            simd.phase_row(l, ph, input, m, &mut row);
            for j in 0..w {
                let dst = ((s * m + ph.py) * ow + s * j + ph.px) * cout;
                acc[dst..dst + cout].copy_from_slice(&row[j * l.cout_pad..j * l.cout_pad + cout]);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::super::{IntLayer, IntLayerKind};
    use super::*;

    use crate::rng::Rng;

    fn layer(rng: &mut Rng, kind: IntLayerKind, cin: usize, cout: usize, k: usize) -> IntLayer {
        let n = cin * cout * k * k;
        // Mostly extreme weights, so that the sums reach the ranges of spec 9.5.
        let weight = (0..n)
            .map(|_| match rng.next_u64() % 4 {
                0 => 127,
                1 => -127,
                _ => rng.range(-127, 127) as i8,
            })
            .collect();
        let bias = (0..cout)
            .map(|_| rng.range(-(1 << 20), 1 << 20) as i32)
            .collect();
        IntLayer::new(
            0,
            kind,
            cin,
            cout,
            k,
            weight,
            bias,
            vec![1 << 20; cout],
            vec![30; cout],
        )
        .expect("valid layer")
    }

    /// The reference loops, the portable kernel and (where the CPU has it) the AVX2 kernel
    /// give the same accumulators, on odd sizes, odd channel counts and extreme inputs.
    #[test]
    fn kernels_match_the_reference_loops() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let cases = [
            (IntLayerKind::Transposed, 5, 7, 5, 3, 5),
            (IntLayerKind::Transposed, 96, 96, 5, 4, 6),
            (IntLayerKind::Transposed, 3, 17, 3, 1, 1),
            (IntLayerKind::Conv, 9, 33, 1, 5, 7),
            (IntLayerKind::Conv, 96, 384, 1, 2, 9),
            (IntLayerKind::Conv, 4, 16, 3, 6, 5),
            (IntLayerKind::Conv, 1, 1, 5, 1, 2),
        ];
        for (kind, cin, cout, k, h, w) in cases {
            let l = layer(&mut rng, kind, cin, cout, k);
            for extreme in [false, true] {
                let input: Vec<i32> = (0..h * w * cin)
                    .map(|_| match (extreme, rng.next_u64() % 3) {
                        (true, 0) => -128,
                        (true, _) => 255,
                        (false, 0) => 0,
                        _ => rng.range(-128, 255) as i32,
                    })
                    .collect();
                let mut padded = l.padded_input(h, w);
                for (p, px) in input.chunks_exact(cin).enumerate() {
                    for (d, &v) in padded.pixel_mut(p / w, p % w).iter_mut().zip(px) {
                        *d = v as i16;
                    }
                }
                let want = l.accumulate(&input, h, w);
                let what = format!("{kind:?} {cin}->{cout} k{k} {h}x{w} extreme={extreme}");
                assert_eq!(
                    accumulate_with(&l.fast, &padded, Simd::Portable),
                    want,
                    "{what}"
                );
                assert_eq!(
                    accumulate_with(&l.fast, &padded, Simd::detect()),
                    want,
                    "{what}"
                );
                assert_eq!(l.accumulate_padded(&padded), want, "{what}");
            }
        }
    }
}
