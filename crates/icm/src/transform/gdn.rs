//! Generalized divisive normalization.

use rayon::prelude::*;

use super::kernels::{band_rows, gemm, with_scratch, SharedMut};
use super::{check_input, check_len, Tensor, TransformError};

/// Target size of the per-band squares buffer, in f32 values (256 KiB).
const GDN_BAND_FLOATS: usize = 1 << 16;

/// CompressAI GDN with effective (already reparametrised) parameters.
///
/// GDN (`inverse == false`): `y_i = x_i / sqrt(beta_i + sum_j gamma[i][j] * x_j^2)`;
/// IGDN (`inverse == true`): `y_i = x_i * sqrt(beta_i + sum_j gamma[i][j] * x_j^2)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gdn {
    /// Channels.
    pub c: usize,
    /// `beta`, `[c]`.
    pub beta: Vec<f32>,
    /// `gamma`, `[c][c]` row-major (`gamma[i * c + j]`).
    pub gamma: Vec<f32>,
    /// Inverse GDN (used in the synthesis transform).
    pub inverse: bool,
}

impl Gdn {
    const NAME: &'static str = "Gdn";

    /// Checks the parameter lengths.
    pub fn validate(&self) -> Result<(), TransformError> {
        if self.c == 0 {
            return Err(TransformError::InvalidConfig {
                layer: Self::NAME,
                reason: "zero channels",
            });
        }
        check_len(Self::NAME, "beta", self.beta.len(), Some(self.c))?;
        check_len(
            Self::NAME,
            "gamma",
            self.gamma.len(),
            self.c.checked_mul(self.c),
        )
    }

    /// Applies the normalization.
    ///
    /// Computes `norm = gamma * x^2 + beta` as a 1x1 GEMM, then `x * rsqrt(norm)`
    /// (or `x * sqrt(norm)` when inverse), as CompressAI does.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TransformError> {
        self.validate()?;
        check_input(x, Self::NAME, self.c)?;
        let inverse = self.inverse;
        let data = channel_mix(
            self.c,
            &self.gamma,
            &x.data,
            |v| v * v,
            Some(&self.beta),
            |start, n, ys| {
                let xs = &x.data[start..][..n];
                if inverse {
                    for (y, v) in ys.iter_mut().zip(xs) {
                        *y = v * y.sqrt();
                    }
                } else {
                    for (y, v) in ys.iter_mut().zip(xs) {
                        *y = v * (1.0 / y.sqrt());
                    }
                }
            },
        );
        Ok(Tensor {
            c: self.c,
            h: x.h,
            w: x.w,
            data,
        })
    }

    /// The vector-Jacobian product: given the layer input `x` and the gradient `g` of a
    /// loss with respect to the output, the gradient with respect to `x`.
    ///
    /// With `s_i = sqrt(beta_i + sum_j gamma[i][j] x_j^2)`:
    /// IGDN `dx_k = g_k s_k + x_k sum_i gamma[i][k] g_i x_i / s_i`,
    /// GDN `dx_k = g_k / s_k - x_k sum_i gamma[i][k] g_i x_i / s_i^3`.
    pub fn backward(&self, x: &Tensor, g: &Tensor) -> Result<Tensor, TransformError> {
        self.validate()?;
        check_input(x, Self::NAME, self.c)?;
        check_input(g, Self::NAME, self.c)?;
        if (g.h, g.w) != (x.h, x.w) {
            return Err(TransformError::OutputSize {
                h: x.h,
                w: x.w,
                got_h: g.h,
                got_w: g.w,
            });
        }
        let c = self.c;
        let s = channel_mix(
            c,
            &self.gamma,
            &x.data,
            |v| v * v,
            Some(&self.beta),
            |_, _, ys| ys.iter_mut().for_each(|v| *v = v.sqrt()),
        );
        // u_i = g_i x_i / s_i (IGDN) or g_i x_i / s_i^3 (GDN).
        let u: Vec<f32> = if self.inverse {
            (g.data.par_iter().zip(&x.data).zip(&s))
                .map(|((g, x), s)| g * x / s)
                .collect()
        } else {
            (g.data.par_iter().zip(&x.data).zip(&s))
                .map(|((g, x), s)| g * x / (s * s * s))
                .collect()
        };
        let mut gamma_t = vec![0.0f32; c * c];
        for i in 0..c {
            for k in 0..c {
                gamma_t[k * c + i] = self.gamma[i * c + k];
            }
        }
        let inverse = self.inverse;
        let data = channel_mix(
            c,
            &gamma_t,
            &u,
            |v| v,
            None,
            |start, n, ts| {
                let range = start..start + n;
                let (xs, gs, ss) = (&x.data[range.clone()], &g.data[range.clone()], &s[range]);
                for (((t, xv), gv), sv) in ts.iter_mut().zip(xs).zip(gs).zip(ss) {
                    *t = if inverse {
                        gv * sv + xv * *t
                    } else {
                        gv / sv - xv * *t
                    };
                }
            },
        );
        Ok(Tensor {
            c,
            h: x.h,
            w: x.w,
            data,
        })
    }
}

/// `out[:, j] = mat * pre(src[:, j]) + fill` for every spatial position `j` of a `c x hw`
/// CHW array (`fill` = 0 when `None`), as a 1x1 GEMM in bands of positions; then
/// `finish(start, len, out_band)` once per channel and band, where `out_band` holds the
/// `len` values of that channel from flat index `start`.
///
/// Bands are a multiple of 64 positions wide and small enough that the operand and the
/// GEMM output stay in L2 for the elementwise pass; their size depends only on the
/// shapes, so results do not depend on the thread count.
fn channel_mix(
    c: usize,
    mat: &[f32],
    src: &[f32],
    pre: impl Fn(f32) -> f32 + Sync,
    fill: Option<&[f32]>,
    finish: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let hw = src.len() / c;
    let mut out = vec![0.0f32; src.len()];
    let chunk = band_rows(hw.div_ceil(64), c * 64)
        .min(GDN_BAND_FLOATS / (c * 64))
        .max(1)
        * 64;
    let shared = SharedMut::new(&mut out);
    (0..hw.div_ceil(chunk)).into_par_iter().for_each(|band| {
        let j0 = band * chunk;
        let n = chunk.min(hw - j0);
        with_scratch(c * n, 0, |sq, _| {
            for (ch, s) in sq.chunks_exact_mut(n).enumerate() {
                let xs = &src[ch * hw + j0..][..n];
                for (d, v) in s.iter_mut().zip(xs) {
                    *d = pre(*v);
                }
                // SAFETY: columns j0..j0+n of each channel belong to this band only.
                unsafe { shared.slice(ch * hw + j0, n) }.fill(fill.map_or(0.0, |f| f[ch]));
            }
            assert!((c - 1) * hw + j0 + n <= shared.len());
            // SAFETY: C covers columns j0..j0+n of every channel (in bounds, checked
            // above), which no other band touches.
            unsafe { gemm(c, c, n, mat, c, sq, n, 1.0, shared.ptr_at(j0), hw) };
            for ch in 0..c {
                // SAFETY: as above.
                let ys = unsafe { shared.slice(ch * hw + j0, n) };
                finish(ch * hw + j0, n, ys);
            }
        });
    });
    out
}
