use super::kernel::{PackedLayer, PaddedInput};
use super::HyperError;
use crate::fixed::{clip, round_shift};

/// Largest number of products that contribute to one accumulator (spec 9.5).
pub const MAX_TAPS: usize = 1 << 15;
/// Largest magnitude of a coded bias (spec 9.5).
pub const MAX_BIAS: i32 = (1 << 30) - 1;
/// Largest hidden activation magnitude (activations are in `-255..=255`, and in `0..=255`
/// for the clipped ReLU, spec 9.3).
pub const ACTIVATION_MAX: i64 = 255;

/// The two layer types of the integer hyper-synthesis (spec 9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntLayerKind {
    /// Transposed convolution, stride 2, padding `(k-1)/2`, output padding 1: output is
    /// `2H x 2W`. Weight layout `[cin][cout][k][k]`.
    Transposed,
    /// Convolution, stride 1, padding `(k-1)/2`, output `H x W`. Weight layout
    /// `[cout][cin][k][k]`.
    Conv,
}

/// One integer layer: int8 weights, int32 bias, per-output-channel requantisation
/// `RoundShift(acc * multiplier, shift)` (spec 9.2, 9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntLayer {
    /// Layer type.
    pub kind: IntLayerKind,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (odd).
    pub k: usize,
    /// Weights in the layout of `kind`, values in `-127..=127`.
    pub weight: Vec<i8>,
    /// Bias in accumulator units, `|b| <= MAX_BIAS`.
    pub bias: Vec<i32>,
    /// Requantisation multiplier, `0 <= m < 2^31`.
    pub multiplier: Vec<i32>,
    /// Requantisation shift, `1..=62`.
    pub shift: Vec<u8>,
    /// Multiplier of negative accumulators in hidden layers, `0 <= m < 2^31` (spec 9.3):
    /// all 0 for the clipped ReLU, the LeakyReLU's slope times `multiplier` otherwise.
    pub negative_multiplier: Vec<i32>,
    /// Weights rearranged to `[cin][ky][kx][cout]` for the reference loops.
    packed: Vec<i32>,
    /// The layer packed for the multiply-add kernels of `kernel.rs`.
    pub(super) fast: PackedLayer,
}

impl IntLayer {
    /// Builds and validates a layer against the limits of spec 7.5 / 9.5. The arguments are
    /// the tensors of spec 7.3 in their order there.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        kind: IntLayerKind,
        cin: usize,
        cout: usize,
        k: usize,
        weight: Vec<i8>,
        bias: Vec<i32>,
        multiplier: Vec<i32>,
        shift: Vec<u8>,
    ) -> Result<Self, HyperError> {
        let bad = |what: String| HyperError::BadLayer { layer: index, what };
        if cin == 0 || cout == 0 || k == 0 || k.is_multiple_of(2) {
            return Err(bad(format!(
                "shape cin={cin} cout={cout} k={k} (k must be odd)"
            )));
        }
        if weight.len() != cin * cout * k * k {
            return Err(bad(format!(
                "{} weights for {cin}x{cout}x{k}x{k}",
                weight.len()
            )));
        }
        if bias.len() != cout || multiplier.len() != cout || shift.len() != cout {
            return Err(bad("bias/multiplier/shift length differs from cout".into()));
        }
        let taps = match kind {
            IntLayerKind::Transposed => cin * k.div_ceil(2) * k.div_ceil(2),
            IntLayerKind::Conv => cin * k * k,
        };
        if taps > MAX_TAPS {
            return Err(bad(format!("{taps} taps per output exceed {MAX_TAPS}")));
        }
        if weight.contains(&i8::MIN) {
            return Err(bad("weight -128 (allowed -127..=127)".into()));
        }
        if bias.iter().any(|b| b.unsigned_abs() > MAX_BIAS as u32) {
            return Err(bad(format!("bias magnitude over {MAX_BIAS}")));
        }
        if multiplier.iter().any(|&m| m < 0) {
            return Err(bad("negative multiplier".into()));
        }
        if shift.iter().any(|&s| !(1..=62).contains(&s)) {
            return Err(bad("shift outside 1..=62".into()));
        }
        let mut packed = vec![0i32; weight.len()];
        for i in 0..cin {
            for o in 0..cout {
                for t in 0..k * k {
                    let src = match kind {
                        IntLayerKind::Transposed => (i * cout + o) * k * k + t,
                        IntLayerKind::Conv => (o * cin + i) * k * k + t,
                    };
                    packed[(i * k * k + t) * cout + o] = i32::from(weight[src]);
                }
            }
        }
        let fast = PackedLayer::new(
            kind == IntLayerKind::Transposed,
            cin,
            cout,
            k,
            &bias,
            |i, o, ky, kx| match kind {
                IntLayerKind::Transposed => weight[((i * cout + o) * k + ky) * k + kx],
                IntLayerKind::Conv => weight[((o * cin + i) * k + ky) * k + kx],
            },
        );
        Ok(Self {
            kind,
            cin,
            cout,
            k,
            weight,
            bias,
            negative_multiplier: vec![0; multiplier.len()],
            multiplier,
            shift,
            packed,
            fast,
        })
    }

    /// Makes the activation a clipped LeakyReLU with `h_s.{index}.negative_multiplier`
    /// (spec 9.3, 7.5: `0 <= NegMul < 2^31`, one per output channel).
    pub fn with_negative_multiplier(
        mut self,
        index: usize,
        negative_multiplier: Vec<i32>,
    ) -> Result<Self, HyperError> {
        let bad = |what: String| HyperError::BadLayer { layer: index, what };
        if negative_multiplier.len() != self.cout {
            return Err(bad(format!(
                "{} negative multipliers for {} outputs",
                negative_multiplier.len(),
                self.cout
            )));
        }
        if negative_multiplier.iter().any(|&m| m < 0) {
            return Err(bad("negative negative_multiplier".into()));
        }
        self.negative_multiplier = negative_multiplier;
        Ok(self)
    }

    /// Output spatial size for an `h x w` input.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        match self.kind {
            IntLayerKind::Transposed => (2 * h, 2 * w),
            IntLayerKind::Conv => (h, w),
        }
    }

    /// The input border (in pixels) that [`accumulate_padded`](Self::accumulate_padded)
    /// needs around its input.
    pub(super) fn input_border(&self) -> usize {
        self.fast.pad
    }

    /// An empty padded input of `h x w` pixels for this layer.
    pub(super) fn padded_input(&self, h: usize, w: usize) -> PaddedInput {
        PaddedInput::zeros(h, w, self.cin, self.input_border())
    }

    /// The accumulators of spec 9.2, as [`accumulate`](Self::accumulate) computes them,
    /// from a padded 16-bit input, with SIMD where the CPU has it and the output rows in
    /// parallel. The result is bit-identical to [`accumulate`](Self::accumulate).
    pub(super) fn accumulate_padded(&self, input: &PaddedInput) -> Vec<i32> {
        self.fast.accumulate(input)
    }

    /// Computes the accumulators (spec 9.2) for an HWC input of `h x w x cin`; returns HWC
    /// `acc` of the output size. This is the direct form of the spec's sums, the reference
    /// for the fast path. Integer addition is exact (spec 9.5), so the order of the sums
    /// does not change the result.
    pub fn accumulate(&self, input: &[i32], h: usize, w: usize) -> Vec<i32> {
        let (oh, ow) = self.output_size(h, w);
        let (k, cin, cout) = (self.k, self.cin, self.cout);
        let pad = (k - 1) / 2;
        let mut acc = vec![0i32; oh * ow * cout];
        for px in acc.chunks_exact_mut(cout) {
            px.copy_from_slice(&self.bias);
        }
        match self.kind {
            IntLayerKind::Transposed => {
                // out[o][2*iy+ky-pad][2*ix+kx-pad] += in[i][iy][ix] * W[i][o][ky][kx]
                for iy in 0..h {
                    for ix in 0..w {
                        let src = &input[(iy * w + ix) * cin..(iy * w + ix + 1) * cin];
                        for ky in 0..k {
                            let oy = 2 * iy + ky;
                            if oy < pad || oy - pad >= oh {
                                continue;
                            }
                            for kx in 0..k {
                                let ox = 2 * ix + kx;
                                if ox < pad || ox - pad >= ow {
                                    continue;
                                }
                                let dst = ((oy - pad) * ow + (ox - pad)) * cout;
                                let out = &mut acc[dst..dst + cout];
                                for (i, &v) in src.iter().enumerate() {
                                    if v == 0 {
                                        continue;
                                    }
                                    let wt = &self.packed[((i * k + ky) * k + kx) * cout..][..cout];
                                    for (a, &wv) in out.iter_mut().zip(wt) {
                                        *a += v * wv;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            IntLayerKind::Conv => {
                // out[o][y][x] += in[i][y+ky-pad][x+kx-pad] * W[o][i][ky][kx]
                for y in 0..oh {
                    for x in 0..ow {
                        let dst = (y * ow + x) * cout;
                        let out = &mut acc[dst..dst + cout];
                        for ky in 0..k {
                            let sy = y + ky;
                            if sy < pad || sy - pad >= h {
                                continue;
                            }
                            for kx in 0..k {
                                let sx = x + kx;
                                if sx < pad || sx - pad >= w {
                                    continue;
                                }
                                let src = &input[((sy - pad) * w + (sx - pad)) * cin..][..cin];
                                for (i, &v) in src.iter().enumerate() {
                                    if v == 0 {
                                        continue;
                                    }
                                    let wt = &self.packed[((i * k + ky) * k + kx) * cout..][..cout];
                                    for (a, &wv) in out.iter_mut().zip(wt) {
                                        *a += v * wv;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        acc
    }

    /// `RoundShift(acc * multiplier[o], shift[o])` of spec 9.3, in 64-bit arithmetic.
    #[inline(always)]
    pub fn requantise(&self, acc: i32, o: usize) -> i64 {
        round_shift(
            i64::from(acc) * i64::from(self.multiplier[o]),
            u32::from(self.shift[o]),
        )
    }

    /// Hidden-layer output `Act(acc)` of spec 9.3, in place: `Clip(-255, 255,
    /// RoundShift(acc * m, shift))` with `m` the multiplier for `acc >= 0` and the negative
    /// multiplier otherwise. With negative multipliers 0 this is the clipped ReLU
    /// `Clip(0, 255, requantise(acc))`.
    pub fn activate(&self, acc: &mut [i32]) {
        for px in acc.chunks_exact_mut(self.cout) {
            for (o, a) in px.iter_mut().enumerate() {
                let m = if *a >= 0 {
                    self.multiplier[o]
                } else {
                    self.negative_multiplier[o]
                };
                let v = round_shift(i64::from(*a) * i64::from(m), u32::from(self.shift[o]));
                *a = clip(-ACTIVATION_MAX, ACTIVATION_MAX, v) as i32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn layer(rng: &mut Rng, cout: usize) -> IntLayer {
        IntLayer::new(
            0,
            IntLayerKind::Conv,
            1,
            cout,
            1,
            vec![1; cout],
            vec![0; cout],
            (0..cout)
                .map(|_| rng.range(0, i64::from(i32::MAX)) as i32)
                .collect(),
            (0..cout).map(|_| rng.range(20, 40) as u8).collect(),
        )
        .expect("layer")
    }

    /// Spec 9.3 written out: the clipped LeakyReLU, and the clipped ReLU as the LeakyReLU
    /// with negative multipliers 0.
    #[test]
    fn activations_follow_spec_9_3() {
        let mut rng = Rng(3);
        let cout = 5;
        let relu = layer(&mut rng, cout);
        let neg: Vec<i32> = (0..cout)
            .map(|_| rng.range(0, i64::from(i32::MAX)) as i32)
            .collect();
        let leaky = relu
            .clone()
            .with_negative_multiplier(2, neg.clone())
            .expect("leaky");
        let acc: Vec<i32> = (0..cout * 400)
            .map(|_| match rng.next_u64() % 3 {
                0 => rng.range(-(1 << 30), 1 << 30) as i32,
                1 => [i32::MIN + 1, i32::MAX, 0, -1, 1][(rng.next_u64() % 5) as usize],
                _ => rng.range(-(1 << 16), 1 << 16) as i32,
            })
            .collect();
        let (mut a_relu, mut a_leaky) = (acc.clone(), acc.clone());
        relu.activate(&mut a_relu);
        leaky.activate(&mut a_leaky);
        for (j, &a) in acc.iter().enumerate() {
            let o = j % cout;
            let sh = u32::from(relu.shift[o]);
            let pos = round_shift(i64::from(a) * i64::from(relu.multiplier[o]), sh);
            assert_eq!(i64::from(a_relu[j]), clip(0, 255, pos), "relu {a}");
            let m = if a >= 0 { relu.multiplier[o] } else { neg[o] };
            let want = clip(-255, 255, round_shift(i64::from(a) * i64::from(m), sh));
            assert_eq!(i64::from(a_leaky[j]), want, "leaky {a}");
        }
        assert!(relu
            .clone()
            .with_negative_multiplier(0, vec![-1; cout])
            .is_err());
        assert!(relu.with_negative_multiplier(0, vec![0; cout + 1]).is_err());
    }
}
