//! Convolution and stride-2 transposed convolution.

use rayon::prelude::*;

use super::kernels::{band_rows, gemm, split_phases, with_scratch, Im2col, SharedMut};
use super::{check_input, check_len, shape_len, Tensor, TransformError};

/// `nn.Conv2d(cin, cout, k, stride, padding = k/2)` with zero padding.
///
/// Weight layout `[cout][cin][k][k]`, bias `[cout]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Weights, `[cout][cin][k][k]`.
    pub weight: Vec<f32>,
    /// Bias, `[cout]`.
    pub bias: Vec<f32>,
}

impl Conv2d {
    const NAME: &'static str = "Conv2d";

    /// Checks the hyper-parameters and parameter lengths.
    pub fn validate(&self) -> Result<(), TransformError> {
        check_config(Self::NAME, self.cin, self.cout, self.k)?;
        if self.stride == 0 {
            return Err(TransformError::InvalidConfig {
                layer: Self::NAME,
                reason: "zero stride",
            });
        }
        let wlen = self
            .cout
            .checked_mul(self.cin)
            .and_then(|v| v.checked_mul(self.k))
            .and_then(|v| v.checked_mul(self.k));
        check_len(Self::NAME, "weight", self.weight.len(), wlen)?;
        check_len(Self::NAME, "bias", self.bias.len(), Some(self.cout))
    }

    /// Output height and width for an `h` x `w` input: `(n + 2 * (k / 2) - k) / stride + 1`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let p2 = 2 * (self.k / 2);
        let s = self.stride.max(1);
        let f = |n: usize| (n + p2).saturating_sub(self.k) / s + 1;
        (f(h), f(w))
    }

    /// Applies the convolution.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TransformError> {
        self.validate()?;
        check_input(x, Self::NAME, self.cin)?;
        let (hout, wout) = self.output_size(x.h, x.w);
        let (cout, k) = (self.cout, self.k);
        let hw = hout * wout;
        let mut out = vec![0.0f32; shape_len(cout, hout, wout)?];
        let offs: Vec<isize> = (0..k).map(|t| t as isize - (k / 2) as isize).collect();
        // Stride 2 (g_a, h_a): gather from the polyphase split, contiguous row segments.
        let split;
        let cols = if self.stride == 2 {
            let (planes, hp, wp) = split_phases(&x.data, self.cin, x.h, x.w);
            split = planes;
            let mut rows = Vec::with_capacity(self.cin * k * k);
            for ci in 0..self.cin {
                for &oy in &offs {
                    for &ox in &offs {
                        let plane = (2 * oy.rem_euclid(2) + ox.rem_euclid(2)) as usize;
                        rows.push((plane * self.cin + ci, oy.div_euclid(2), ox.div_euclid(2)));
                    }
                }
            }
            Im2col {
                x: &split,
                h: hp,
                w: wp,
                stride: 1,
                rows,
                cols: wout,
            }
        } else {
            Im2col::channels(&x.data, self.cin, x.h, x.w, self.stride, &offs, &offs, wout)
        };
        let kk = cols.k();
        let rows = band_rows(hout, kk * wout);
        let shared = SharedMut::new(&mut out);
        (0..hout.div_ceil(rows)).into_par_iter().for_each(|band| {
            let r0 = band * rows;
            let nr = rows.min(hout - r0);
            let n = nr * wout;
            with_scratch(kk * n, 0, |b, _| {
                cols.fill(r0, nr, b);
                for (co, &bias) in self.bias.iter().enumerate() {
                    // SAFETY: rows r0..r0+nr of each channel belong to this band only.
                    unsafe { shared.slice(co * hw + r0 * wout, n) }.fill(bias);
                }
                assert!((cout - 1) * hw + r0 * wout + n <= shared.len());
                // SAFETY: C covers rows r0..r0+nr of every output channel (in bounds,
                // checked above), which no other band touches.
                unsafe {
                    gemm(
                        cout,
                        kk,
                        n,
                        &self.weight,
                        kk,
                        b,
                        n,
                        1.0,
                        shared.ptr_at(r0 * wout),
                        hw,
                    );
                }
            });
        });
        Ok(Tensor {
            c: cout,
            h: hout,
            w: wout,
            data: out,
        })
    }
}

/// `nn.ConvTranspose2d(cin, cout, k, stride = 2, padding = k/2, output_padding = 1)`.
///
/// Output size is `(n - 1) * 2 - 2 * (k / 2) + k + 1`, i.e. exactly `2n` for odd `k`.
/// Weight layout `[cin][cout][k][k]` (PyTorch layout), bias `[cout]`. Built with
/// [`ConvTranspose2d::new`], which checks the parameters and prepares the weights of
/// every output phase once.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose2d {
    pub(super) cin: usize,
    pub(super) cout: usize,
    pub(super) k: usize,
    /// `[cin][cout][k][k]`.
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    /// GEMM groups (`cout > SMALL_COUT`), or empty.
    groups: Vec<PhaseGroup>,
    /// Direct-kernel weights (`cout <= SMALL_COUT`), or empty.
    small: Option<SmallTaps>,
}

/// Output channel count below which all four output phases share one GEMM.
const FUSED_PHASES_MAX_COUT: usize = 8;

/// A set of output phases `(py, px)` computed by one GEMM over common tap offsets.
#[derive(Debug, Clone, PartialEq)]
struct PhaseGroup {
    /// Phases, in GEMM row-block order.
    phases: Vec<(usize, usize)>,
    /// Vertical input offsets `dy` (input row `m + dy` for phase row `m`).
    offy: Vec<isize>,
    /// Horizontal input offsets.
    offx: Vec<isize>,
    /// Weights, `[phases.len() * cout][cin * offy.len() * offx.len()]`.
    weight: Vec<f32>,
}

impl ConvTranspose2d {
    const NAME: &'static str = "ConvTranspose2d";

    /// A layer with weights `[cin][cout][k][k]` and bias `[cout]`; checks the shapes.
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Self, TransformError> {
        check_config(Self::NAME, cin, cout, k)?;
        let wlen = cin
            .checked_mul(cout)
            .and_then(|v| v.checked_mul(k))
            .and_then(|v| v.checked_mul(k));
        check_len(Self::NAME, "weight", weight.len(), wlen)?;
        check_len(Self::NAME, "bias", bias.len(), Some(cout))?;
        let mut l = Self {
            cin,
            cout,
            k,
            weight,
            bias,
            groups: Vec::new(),
            small: None,
        };
        if cout <= SMALL_COUT {
            l.small = Some(SmallTaps::new(&l));
        } else {
            l.groups = l.phase_groups();
        }
        Ok(l)
    }

    /// Input channels.
    pub fn cin(&self) -> usize {
        self.cin
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.cout
    }

    /// Kernel size.
    pub fn kernel_size(&self) -> usize {
        self.k
    }

    /// Weights, `[cin][cout][k][k]`.
    pub fn weights(&self) -> &[f32] {
        &self.weight
    }

    /// Bias, `[cout]`.
    pub fn biases(&self) -> &[f32] {
        &self.bias
    }

    /// Checks the hyper-parameters and parameter lengths (always true for a layer made
    /// by [`new`](Self::new)).
    pub fn validate(&self) -> Result<(), TransformError> {
        check_config(Self::NAME, self.cin, self.cout, self.k)
    }

    /// Output height and width for an `h` x `w` input (`h, w >= 1`).
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let f = |n: usize| (n.max(1) - 1) * 2 + self.k + 1 - 2 * (self.k / 2);
        (f(h), f(w))
    }

    /// Input offset of tap `t` for output phase `phase`, if the tap contributes.
    ///
    /// Output index `o = 2 * i + t - pad`; for `o = 2 * m + phase` this gives
    /// `i = m + (phase + pad - t) / 2`, valid only when `phase + pad - t` is even.
    fn tap_offset(&self, phase: usize, t: usize) -> Option<isize> {
        let d = (phase + self.k / 2) as isize - t as isize;
        (d % 2 == 0).then_some(d / 2)
    }

    /// Kernel tap `t` that reads input offset `d` in phase `phase`, if any.
    pub(super) fn offset_tap(&self, phase: usize, d: isize) -> Option<usize> {
        let t = (phase + self.k / 2) as isize - 2 * d;
        (0..self.k as isize).contains(&t).then_some(t as usize)
    }

    /// Input offsets used by phase `phase`, ascending.
    pub(super) fn phase_offsets(&self, phase: usize) -> Vec<isize> {
        let mut v: Vec<isize> = (0..self.k)
            .filter_map(|t| self.tap_offset(phase, t))
            .collect();
        v.sort_unstable();
        v
    }

    /// Input offsets used by either phase, ascending.
    pub(super) fn union_offsets(&self) -> Vec<isize> {
        let mut v = self.phase_offsets(0);
        v.extend(self.phase_offsets(1));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Builds the GEMM groups: one per phase, or one for all phases when `cout` is small.
    fn phase_groups(&self) -> Vec<PhaseGroup> {
        let all = [(0, 0), (0, 1), (1, 0), (1, 1)];
        let groups: Vec<Vec<(usize, usize)>> = if self.cout <= FUSED_PHASES_MAX_COUT {
            vec![all.to_vec()]
        } else {
            all.iter().map(|&p| vec![p]).collect()
        };
        groups
            .into_iter()
            .map(|phases| {
                let union = |sel: fn(&(usize, usize)) -> usize| {
                    let mut v: Vec<isize> = phases
                        .iter()
                        .flat_map(|p| self.phase_offsets(sel(p)))
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                };
                let offy = union(|p| p.0);
                let offx = union(|p| p.1);
                let kk = self.cin * offy.len() * offx.len();
                let mut weight = vec![0.0f32; phases.len() * self.cout * kk];
                for (g, &(py, px)) in phases.iter().enumerate() {
                    for co in 0..self.cout {
                        let row = &mut weight[(g * self.cout + co) * kk..][..kk];
                        let mut idx = 0;
                        for ci in 0..self.cin {
                            let w = &self.weight[(ci * self.cout + co) * self.k * self.k..];
                            for &dy in &offy {
                                for &dx in &offx {
                                    if let (Some(ky), Some(kx)) =
                                        (self.offset_tap(py, dy), self.offset_tap(px, dx))
                                    {
                                        row[idx] = w[ky * self.k + kx];
                                    }
                                    idx += 1;
                                }
                            }
                        }
                    }
                }
                PhaseGroup {
                    phases,
                    offy,
                    offx,
                    weight,
                }
            })
            .collect()
    }

    /// Applies the transposed convolution.
    ///
    /// Each output phase `(oy % 2, ox % 2)` is an ordinary stride-1 correlation of the
    /// input with a subset of the taps: a direct kernel for a few output channels
    /// ([`SMALL_COUT`]), else im2col + GEMM in bands of rows.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TransformError> {
        check_input(x, Self::NAME, self.cin)?;
        let (hout, wout) = self.output_size(x.h, x.w);
        let mut out = vec![0.0f32; shape_len(self.cout, hout, wout)?];
        match &self.small {
            Some(taps) => convt_small::forward(self, taps, x, &mut out, (hout, wout)),
            None => self.forward_gemm(x, &mut out, (hout, wout)),
        }
        Ok(Tensor {
            c: self.cout,
            h: hout,
            w: wout,
            data: out,
        })
    }

    /// The direct kernel without SIMD, for tests of the portable path (`None` when
    /// `cout > SMALL_COUT`).
    #[cfg(test)]
    pub(super) fn forward_portable(&self, x: &Tensor) -> Option<Tensor> {
        let taps = self.small.as_ref()?;
        let (hout, wout) = self.output_size(x.h, x.w);
        let mut out = vec![0.0f32; self.cout * hout * wout];
        convt_small::forward_with(self, taps, x, &mut out, (hout, wout), false);
        Some(Tensor {
            c: self.cout,
            h: hout,
            w: wout,
            data: out,
        })
    }

    /// The im2col + GEMM path: per band of phase rows, one GEMM per phase group, then
    /// the rows of both column phases written interleaved in one pass.
    fn forward_gemm(&self, x: &Tensor, out: &mut [f32], (hout, wout): (usize, usize)) {
        let cout = self.cout;
        let hw = hout * wout;
        // Phase grids: phase row m maps to output row 2m + py.
        let (gh, gw) = (hout.div_ceil(2), wout.div_ceil(2));
        let groups = &self.groups;
        let gathers: Vec<Im2col> = groups
            .iter()
            .map(|g| Im2col::channels(&x.data, self.cin, x.h, x.w, 1, &g.offy, &g.offx, gw))
            .collect();
        // Scratch per band: the largest gather, and the GEMM results of all groups.
        let per_row = gathers.iter().map(|c| c.k()).max().unwrap_or(1) * gw + 4 * cout * gw;
        let rows = band_rows(gh, per_row);
        let shared = SharedMut::new(out);
        let max_kk = gathers.iter().map(|c| c.k()).max().unwrap_or(0);
        (0..gh.div_ceil(rows)).into_par_iter().for_each(|band| {
            let m0 = band * rows;
            let nr = rows.min(gh - m0);
            let n = nr * gw;
            // Results of phase (py, px) at cbuf[(2 * py + px) * cout * n..].
            with_scratch(max_kk * n, 4 * cout * n, |buf, cbuf| {
                let mut done = 0;
                for (g, cols) in groups.iter().zip(&gathers) {
                    let kk = cols.k();
                    let mrows = g.phases.len() * cout;
                    let b = &mut buf[..kk * n];
                    // Groups are whole phases in (py, px) order, so they fill cbuf in order.
                    let c = &mut cbuf[done..done + mrows * n];
                    done += mrows * n;
                    if kk == 0 {
                        c.fill(0.0);
                    } else {
                        cols.fill(m0, nr, b);
                        // SAFETY: `c` is an exclusive local buffer of mrows x n values.
                        unsafe { gemm(mrows, kk, n, &g.weight, kk, b, n, 0.0, c.as_mut_ptr(), n) };
                    }
                }
                for py in 0..2 {
                    let even = &cbuf[(2 * py) * cout * n..][..cout * n];
                    let odd = &cbuf[(2 * py + 1) * cout * n..][..cout * n];
                    for (co, &bias) in self.bias.iter().enumerate() {
                        for r in 0..nr {
                            let oy = 2 * (m0 + r) + py;
                            if oy >= hout {
                                break;
                            }
                            let e = &even[co * n + r * gw..][..gw];
                            let o = &odd[co * n + r * gw..][..gw];
                            // SAFETY: output rows 2 * m + py for m in this band are
                            // written by this band only.
                            let orow = unsafe { shared.slice(co * hw + oy * wout, wout) };
                            interleave_add(orow, e, o, bias);
                        }
                    }
                }
            });
        });
    }
}

/// `out[2j] = even[j] + bias`, `out[2j + 1] = odd[j] + bias` for the length of `out`.
fn interleave_add(out: &mut [f32], even: &[f32], odd: &[f32], bias: f32) {
    let pairs = out.len() / 2;
    for ((d, &e), &o) in out.chunks_exact_mut(2).zip(even).zip(odd) {
        d[0] = e + bias;
        d[1] = o + bias;
    }
    if out.len() % 2 == 1 {
        out[2 * pairs] = even[pairs] + bias;
    }
}

use super::convt_small::{self, SmallTaps, SMALL_COUT};

/// Rejects zero channel counts and kernel sizes.
fn check_config(
    layer: &'static str,
    cin: usize,
    cout: usize,
    k: usize,
) -> Result<(), TransformError> {
    let reason = if cin == 0 {
        "zero input channels"
    } else if cout == 0 {
        "zero output channels"
    } else if k == 0 {
        "zero kernel size"
    } else {
        return Ok(());
    };
    Err(TransformError::InvalidConfig { layer, reason })
}
