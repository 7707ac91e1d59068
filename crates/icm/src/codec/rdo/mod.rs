//! Encoder-side rate-distortion optimisation of the latents (spec 12.6, informative).
//!
//! The decoder is fixed; the encoder may send any y^ it likes. At effort 0 it sends
//! `round(y - mean)`, the latents g_a predicts. Higher efforts search, per tile, for the
//! integers `q` that minimise the model's own training objective
//!
//! ```text
//! L(q) = bits(q) + lambda * 255^2 * SSE(g_s(q + mean), x) / 3
//! ```
//!
//! (`bits` from the y tables that the decoder will use, SSE over the tile's pixels in
//! [0, 1], `lambda` from the model's metadata or the caller; summed over tiles this is
//! `P * (bpp + lambda * 255^2 * MSE)` for a picture of `P` pixels). z^, and with it every
//! mean and scale, stays what g_a and h_a give.
//!
//! The search is stochastic Gumbel annealing (Yang et al. 2020, "Improving inference for
//! neural image compression"): a continuous `v` per latent, started at `y - mean`, is
//! moved by Adam on the expectation of `L` under a relaxed rounding of `v` to
//! `floor(v)` or `floor(v) + 1` whose temperature falls from 0.5 to 0.05 (module
//! [`sga`]). The noise comes from a counter-based generator keyed by the step and the
//! latent's index, so the result does not depend on the thread count. The rounded result
//! is kept only when its `L` is lower than effort 0's.

mod code_length;
mod sga;

pub use sga::{RefineStats, Search, TileTarget};

/// Largest effort.
pub const MAX_EFFORT: u8 = 3;

/// Parameters of the annealing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RdoParams {
    /// Gradient steps.
    pub steps: u32,
    /// Adam learning rate (latent units per step).
    pub learning_rate: f32,
    /// Temperature of the relaxed rounding at the first step.
    pub temperature_start: f32,
    /// Temperature at the last step (geometric decay in between).
    pub temperature_end: f32,
}

impl RdoParams {
    /// The parameters of `effort` (1 to [`MAX_EFFORT`]); `None` for effort 0 and efforts
    /// above the largest.
    pub fn for_effort(effort: u8) -> Option<Self> {
        let (steps, learning_rate) = match effort {
            1 => (25, 0.03),
            2 => (60, 0.03),
            3 => (150, 0.015),
            _ => return None,
        };
        Some(Self {
            steps,
            learning_rate,
            temperature_start: 0.5,
            temperature_end: 0.05,
        })
    }
}
