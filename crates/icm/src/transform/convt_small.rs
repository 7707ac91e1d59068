//! Transposed convolution with few output channels: a direct kernel.
//!
//! The last layer of g_s maps 64 channels to 3 at the full picture size. As im2col + GEMM
//! it would gather `cin * 9` values per phase pixel to feed only `4 * cout` products each,
//! so memory traffic, not arithmetic, would bound it. Here every input row segment is
//! loaded once per tap offset and multiplied into the accumulators of both column phases
//! and all output channels, held in registers.

use rayon::prelude::*;

use super::conv::ConvTranspose2d;
use super::kernels::SharedMut;
use super::Tensor;

/// Largest output channel count the direct kernel handles.
pub(crate) const SMALL_COUT: usize = 4;
/// Phase-grid columns computed together (two 256-bit vectors of f32).
const LANES: usize = 16;

/// The weights of a transposed convolution arranged for the direct kernel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SmallTaps {
    /// Input row offsets `dy` of output row phase 0 and 1.
    dys: [Vec<isize>; 2],
    /// Input column offsets `dx` used by either column phase.
    dxs: Vec<isize>,
    /// Most row offsets of a phase (the stride of `weight` in `dy`).
    max_dy: usize,
    /// `[ci][py][dy index][dx index][px][SMALL_COUT]`, zero where a phase has no tap.
    weight: Vec<f32>,
}

impl SmallTaps {
    /// Arranges the weights of `l` (`l.cout() <= SMALL_COUT`).
    pub(crate) fn new(l: &ConvTranspose2d) -> Self {
        let dys = [l.phase_offsets(0), l.phase_offsets(1)];
        let dxs = l.union_offsets();
        let max_dy = dys[0].len().max(dys[1].len());
        let (cin, cout, k) = (l.cin(), l.cout(), l.kernel_size());
        let mut weight = vec![0.0f32; cin * 2 * max_dy * dxs.len() * 2 * SMALL_COUT];
        for ci in 0..cin {
            for (py, dys_py) in dys.iter().enumerate() {
                for (a, &dy) in dys_py.iter().enumerate() {
                    let Some(ky) = l.offset_tap(py, dy) else {
                        continue;
                    };
                    for (b, &dx) in dxs.iter().enumerate() {
                        for px in 0..2 {
                            let Some(kx) = l.offset_tap(px, dx) else {
                                continue;
                            };
                            for co in 0..cout {
                                let at = ((((ci * 2 + py) * max_dy + a) * dxs.len() + b) * 2 + px)
                                    * SMALL_COUT
                                    + co;
                                weight[at] = l.weights()[((ci * cout + co) * k + ky) * k + kx];
                            }
                        }
                    }
                }
            }
        }
        Self {
            dys,
            dxs,
            max_dy,
            weight,
        }
    }
}

/// Runs `l` on `x` into `out` (`cout x hout x wout`, CHW).
pub(super) fn forward(
    l: &ConvTranspose2d,
    taps: &SmallTaps,
    x: &Tensor,
    out: &mut [f32],
    size: (usize, usize),
) {
    forward_with(l, taps, x, out, size, avx_available())
}

/// [`forward`] with the choice of kernel given: `avx` only where [`avx_available`].
pub(super) fn forward_with(
    l: &ConvTranspose2d,
    taps: &SmallTaps,
    x: &Tensor,
    out: &mut [f32],
    size: (usize, usize),
    avx: bool,
) {
    let avx = avx && avx_available();
    match l.cout() {
        1 => rows::<1>(l, taps, x, out, size, avx),
        2 => rows::<2>(l, taps, x, out, size, avx),
        3 => rows::<3>(l, taps, x, out, size, avx),
        4 => rows::<4>(l, taps, x, out, size, avx),
        n => unreachable!("the direct kernel takes 1..={SMALL_COUT} output channels, not {n}"),
    }
}

/// All output rows, one task per phase-grid row (output rows `2m` and `2m + 1`).
fn rows<const C: usize>(
    l: &ConvTranspose2d,
    taps: &SmallTaps,
    x: &Tensor,
    out: &mut [f32],
    (hout, wout): (usize, usize),
    avx: bool,
) {
    assert!(C == l.cout() && out.len() == C * hout * wout);
    let shared = SharedMut::new(out);
    (0..hout.div_ceil(2)).into_par_iter().for_each(|m| {
        for py in 0..2 {
            let oy = 2 * m + py;
            if oy >= hout {
                break;
            }
            // SAFETY: row `oy` of each channel is written by this task only; the views
            // are disjoint (one per channel) and in bounds (`co < cout`, `oy < hout`).
            let mut orows: [&mut [f32]; C] =
                std::array::from_fn(|co| unsafe { shared.slice((co * hout + oy) * wout, wout) });
            let orows = &mut orows[..];
            #[cfg(target_arch = "x86_64")]
            if avx {
                // SAFETY: the caller checked `avx_available`.
                unsafe { phase_row_avx2::<C>(l, taps, x, m, py, orows) };
                continue;
            }
            phase_row::<C>(l, taps, x, m, py, orows);
        }
    });
}

/// Whether the AVX2 + FMA row kernel can run on this CPU.
pub(super) fn avx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`phase_row`] with AVX2 and FMA intrinsics: the `2 * C` accumulators of sixteen
/// lanes (two vectors each) stay in registers; per input channel and tap offset, two
/// unaligned loads of input values feed `4 * C` fused multiply-adds, each broadcast
/// weight serving both vectors. (Fused rounding differs from the portable path in the
/// last bit, as the GEMM library's FMA kernels do: the reconstruction is float and only
/// held to the tolerance of spec 11.)
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn phase_row_avx2<const C: usize>(
    l: &ConvTranspose2d,
    taps: &SmallTaps,
    x: &Tensor,
    m: usize,
    py: usize,
    orows: &mut [&mut [f32]],
) {
    use std::arch::x86_64::*;
    const V: usize = 8;
    let (h, w) = (x.h, x.w);
    let ndx = taps.dxs.len();
    let bias = l.biases();
    let wout = orows.first().map_or(0, |r| r.len());
    assert!(x.data.len() >= x.c * h * w && orows.len() == C && bias.len() == C);
    assert!(taps.weight.len() >= x.c * 2 * taps.max_dy * ndx * 2 * SMALL_COUT);
    for j0 in (0..w).step_by(LANES) {
        let mut acc = [[[_mm256_setzero_ps(); 2]; C]; 2];
        for ci in 0..x.c {
            for (a, &dy) in taps.dys[py].iter().enumerate() {
                let r = m as isize + dy;
                if r < 0 || r >= h as isize {
                    continue;
                }
                let row = &x.data[(ci * h + r as usize) * w..][..w];
                let wbase = ((ci * 2 + py) * taps.max_dy + a) * ndx;
                for (b, &dx) in taps.dxs.iter().enumerate() {
                    let start = j0 as isize + dx;
                    // SAFETY: the loads read row[start..start + 16] when that is inside
                    // the row, else a local copy with zeros outside it.
                    let v = unsafe {
                        if start >= 0 && start as usize + LANES <= w {
                            let p = row.as_ptr().add(start as usize);
                            [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(V))]
                        } else {
                            let win = window(row, start);
                            [
                                _mm256_loadu_ps(win.as_ptr()),
                                _mm256_loadu_ps(win.as_ptr().add(V)),
                            ]
                        }
                    };
                    let wt = &taps.weight[(wbase + b) * 2 * SMALL_COUT..][..2 * SMALL_COUT];
                    for (px, acc_px) in acc.iter_mut().enumerate() {
                        for (co, a) in acc_px.iter_mut().enumerate() {
                            let wv = _mm256_set1_ps(wt[px * SMALL_COUT + co]);
                            a[0] = _mm256_fmadd_ps(v[0], wv, a[0]);
                            a[1] = _mm256_fmadd_ps(v[1], wv, a[1]);
                        }
                    }
                }
            }
        }
        for (co, orow) in orows.iter_mut().enumerate() {
            let b = _mm256_set1_ps(bias[co]);
            let mut tmp = [0.0f32; 2 * LANES];
            for (half, (&even, &odd)) in acc[0][co].iter().zip(&acc[1][co]).enumerate() {
                let e = _mm256_add_ps(even, b);
                let o = _mm256_add_ps(odd, b);
                // Interleave even and odd output columns: e0 o0 e1 o1 ... e7 o7, from
                // lo = e0 o0 e1 o1 | e4 o4 e5 o5 and hi = e2 o2 e3 o3 | e6 o6 e7 o7.
                let lo = _mm256_unpacklo_ps(e, o);
                let hi = _mm256_unpackhi_ps(e, o);
                // SAFETY: tmp holds 32 values; this half writes 16 of them.
                unsafe {
                    let t = tmp.as_mut_ptr().add(half * 2 * V);
                    _mm256_storeu_ps(t, _mm256_permute2f128_ps(lo, hi, 0x20));
                    _mm256_storeu_ps(t.add(V), _mm256_permute2f128_ps(lo, hi, 0x31));
                }
            }
            let ox = 2 * j0;
            let n = wout.saturating_sub(ox).min(2 * LANES);
            orow[ox..ox + n].copy_from_slice(&tmp[..n]);
        }
    }
}

/// Output row `2m + py` of every channel: both column phases, `LANES` phase columns at a
/// time, summed over input channels and the taps of row phase `py`.
#[inline(always)]
fn phase_row<const C: usize>(
    l: &ConvTranspose2d,
    taps: &SmallTaps,
    x: &Tensor,
    m: usize,
    py: usize,
    orows: &mut [&mut [f32]],
) {
    let (h, w) = (x.h, x.w);
    let ndx = taps.dxs.len();
    let bias = l.biases();
    let wout = orows.first().map_or(0, |r| r.len());
    for j0 in (0..w).step_by(LANES) {
        // acc[px][co][lane]: phase-grid column j0 + lane, output column 2 (j0 + lane) + px.
        let mut acc = [[[0.0f32; LANES]; C]; 2];
        for ci in 0..x.c {
            let plane = &x.data[ci * h * w..(ci + 1) * h * w];
            for (a, &dy) in taps.dys[py].iter().enumerate() {
                let r = m as isize + dy;
                if r < 0 || r >= h as isize {
                    continue;
                }
                let row = &plane[r as usize * w..(r as usize + 1) * w];
                let wbase = ((ci * 2 + py) * taps.max_dy + a) * ndx;
                for (b, &dx) in taps.dxs.iter().enumerate() {
                    let v = window(row, j0 as isize + dx);
                    let wt = &taps.weight[(wbase + b) * 2 * SMALL_COUT..][..2 * SMALL_COUT];
                    for (px, acc_px) in acc.iter_mut().enumerate() {
                        for (co, acc_c) in acc_px.iter_mut().enumerate() {
                            let wv = wt[px * SMALL_COUT + co];
                            for (s, &vi) in acc_c.iter_mut().zip(&v) {
                                *s += vi * wv;
                            }
                        }
                    }
                }
            }
        }
        for (co, orow) in orows.iter_mut().enumerate() {
            for (lane, (&e, &o)) in acc[0][co].iter().zip(&acc[1][co]).enumerate() {
                let ox = 2 * (j0 + lane);
                if ox < wout {
                    orow[ox] = e + bias[co];
                }
                if ox + 1 < wout {
                    orow[ox + 1] = o + bias[co];
                }
            }
        }
    }
}

/// `row[start..start + LANES]` with zeros outside the row.
#[inline(always)]
fn window(row: &[f32], start: isize) -> [f32; LANES] {
    if start >= 0 && start as usize + LANES <= row.len() {
        let s = start as usize;
        let mut v = [0.0f32; LANES];
        v.copy_from_slice(&row[s..s + LANES]);
        return v;
    }
    std::array::from_fn(|i| {
        let j = start + i as isize;
        if j >= 0 && (j as usize) < row.len() {
            row[j as usize]
        } else {
            0.0
        }
    })
}
