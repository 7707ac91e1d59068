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
        let c = self.c;
        let hw = x.h * x.w;
        let mut out = vec![0.0f32; x.data.len()];
        // Bands of spatial positions, a multiple of 64 wide, small enough that the
        // squares and the GEMM output stay in L2 for the elementwise pass.
        let chunk = band_rows(hw.div_ceil(64), c * 64)
            .min(GDN_BAND_FLOATS / (c * 64))
            .max(1)
            * 64;
        let shared = SharedMut::new(&mut out);
        (0..hw.div_ceil(chunk)).into_par_iter().for_each(|band| {
            let j0 = band * chunk;
            let n = chunk.min(hw - j0);
            with_scratch(c * n, 0, |sq, _| {
                for (ch, (s, &beta)) in sq.chunks_exact_mut(n).zip(&self.beta).enumerate() {
                    let xs = &x.data[ch * hw + j0..][..n];
                    for (d, v) in s.iter_mut().zip(xs) {
                        *d = v * v;
                    }
                    // SAFETY: columns j0..j0+n of each channel belong to this band only.
                    unsafe { shared.slice(ch * hw + j0, n) }.fill(beta);
                }
                assert!((c - 1) * hw + j0 + n <= shared.len());
                // SAFETY: C covers columns j0..j0+n of every channel (in bounds, checked
                // above), which no other band touches.
                unsafe { gemm(c, c, n, &self.gamma, c, sq, n, 1.0, shared.ptr_at(j0), hw) };
                for ch in 0..c {
                    let xs = &x.data[ch * hw + j0..][..n];
                    // SAFETY: as above.
                    let ys = unsafe { shared.slice(ch * hw + j0, n) };
                    if self.inverse {
                        for (y, v) in ys.iter_mut().zip(xs) {
                            *y = v * y.sqrt();
                        }
                    } else {
                        for (y, v) in ys.iter_mut().zip(xs) {
                            *y = v * (1.0 / y.sqrt());
                        }
                    }
                }
            });
        });
        Ok(Tensor {
            c,
            h: x.h,
            w: x.w,
            data: out,
        })
    }
}
