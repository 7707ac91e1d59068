//! Stochastic Gumbel annealing of one tile's latents (module documentation of
//! [`super`]).

use rayon::prelude::*;

use super::code_length::CodeLengths;
use super::RdoParams;
use crate::codec::CodecError;
use crate::hyper::MEAN_FRAC_BITS;
use crate::model::Model;
use crate::transform::{Differentiable, Tensor, TransformError};

/// Largest latent magnitude the encoder sends (the escape limit, spec 8.5).
const LIMIT: f32 = ((1u32 << crate::entropy::MAX_ESCAPE_BITS) - 1) as f32;

/// Distances to the rounding bounds are clipped to `[0, 1 - CLIP]` before `atanh`.
const CLIP: f32 = 1e-4;

/// Adam's moment decay rates and denominator offset.
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;

/// The picture a tile should reconstruct.
#[derive(Debug, Clone, Copy)]
pub struct TileTarget<'a> {
    /// The tile padded as g_a saw it: `3 x padded height x padded width`, values in [0, 1].
    pub pixels: &'a Tensor,
    /// Visible width: only columns below it count in the distortion.
    pub width: usize,
    /// Visible height.
    pub height: usize,
}

/// What the refinement of one tile achieved, in the units of the loss (module
/// documentation of [`super`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefineStats {
    /// Bits of y^ at effort 0.
    pub bits_start: f64,
    /// Sum of squared errors at effort 0 (pixels in [0, 1], three channels).
    pub sse_start: f64,
    /// Bits of the y^ returned.
    pub bits_end: f64,
    /// Sum of squared errors of the y^ returned.
    pub sse_end: f64,
    /// Whether the annealed latents were kept (false: they did not lower the loss, and
    /// effort 0's were returned).
    pub improved: bool,
}

/// The loss of a tile's integer latents and its parts.
struct Evaluation {
    bits: f64,
    sse: f64,
}

impl Evaluation {
    fn loss(&self, weight: f64) -> f64 {
        self.bits + weight * self.sse
    }
}

/// The search of one encode: the parameters, and what every tile shares (the code lengths
/// of the y tables, g_s's adjoints), prepared once.
pub struct Search<'m> {
    model: &'m Model,
    params: RdoParams,
    /// `lambda * 255^2 / 3`: bits + weight * SSE is the per-tile form of
    /// bpp + lambda * 255^2 * MSE.
    weight: f64,
    lengths: CodeLengths,
    net: Differentiable<'m>,
}

impl<'m> Search<'m> {
    /// Prepares the search of `params` with the rate-distortion weight `lambda` (`bpp +
    /// lambda * 255^2 * MSE`), which must be positive and finite.
    pub fn new(model: &'m Model, params: RdoParams, lambda: f32) -> Result<Self, CodecError> {
        if !(lambda.is_finite() && lambda > 0.0) {
            return Err(CodecError::Input(format!(
                "lambda must be a positive number, got {lambda}"
            )));
        }
        let net = Differentiable::new(&model.g_s).map_err(|source| CodecError::Transform {
            stage: "g_s",
            source,
        })?;
        Ok(Self {
            model,
            params,
            weight: f64::from(lambda) * 255.0 * 255.0 / 3.0,
            lengths: CodeLengths::new(&model.y_tables, &model.uniform),
            net,
        })
    }

    /// Gradient steps per tile.
    pub fn steps(&self) -> u32 {
        self.params.steps.max(1)
    }

    /// Refines the integers `q = y^ - mean` of one tile (`y`: g_a's output; `mean` and
    /// `scale_index`: the integer h_s's output, spec 9; `start`: effort 0's `q`, the
    /// rounding of `y - mean`) by stochastic Gumbel annealing. With a step map (`steps`:
    /// `D` of every position of the grid, units of `2^-8`, spec 5.4) `y^ = mean + q * D`,
    /// `start` is the rounding of `(y - mean) / D` and `scale_index` holds the indices for
    /// the steps (spec 9.4). `seed` keys the noise; `on_step` is called after every
    /// gradient step. Returns `q` in CHW order, never with a higher loss than `start`.
    #[allow(clippy::too_many_arguments)]
    pub fn refine_tile(
        &self,
        target: TileTarget<'_>,
        y: &Tensor,
        start: Vec<i32>,
        mean: &[i32],
        scale_index: &[u8],
        steps: Option<&[u16]>,
        seed: u64,
        on_step: &(dyn Fn() + Sync),
    ) -> Result<(Vec<i32>, RefineStats), CodecError> {
        let (model, params, weight) = (self.model, &self.params, self.weight);
        let (lengths, net) = (&self.lengths, &self.net);
        let transform = |source| CodecError::Transform {
            stage: "g_s",
            source,
        };
        let n = y.data.len();
        if mean.len() != n || scale_index.len() != n || start.len() != n {
            return Err(CodecError::Input(format!(
                "rdo: {n} latents but {} means, {} scale indices and {} start values",
                mean.len(),
                scale_index.len(),
                start.len()
            )));
        }
        let unit = 1.0 / f32::from(1u16 << MEAN_FRAC_BITS);
        let mean_f: Vec<f32> = mean.iter().map(|&m| m as f32 * unit).collect();
        // The step of every latent in latent units (1 without a step map).
        let plane = y.h * y.w;
        let q_steps: Vec<f32> = match steps {
            Some(d) if d.len() == plane => (0..n).map(|j| f32::from(d[j % plane]) * unit).collect(),
            Some(d) => {
                return Err(CodecError::Input(format!(
                    "rdo: a step map of {} positions for a grid of {plane}",
                    d.len()
                )))
            }
            None => vec![1.0; n],
        };
        let latents = |values: Vec<f32>| Tensor::new(y.c, y.h, y.w, values).map_err(transform);
        let evaluate = |q: &[i32]| -> Result<Evaluation, CodecError> {
            let values = q
                .iter()
                .zip(&mean_f)
                .zip(&q_steps)
                .map(|((&q, m), d)| q as f32 * d + m)
                .collect();
            let x = model.g_s.forward(&latents(values)?).map_err(transform)?;
            // Sums in a fixed order (sequential), so that the comparison of losses does not
            // depend on the thread count.
            let bits = q
                .iter()
                .zip(scale_index)
                .map(|(&q, &i)| f64::from(lengths.bits(usize::from(i), q)))
                .sum();
            Ok(Evaluation {
                bits,
                sse: distortion(&x, target, None).map_err(transform)?,
            })
        };

        let at_start = evaluate(&start)?;

        let mut v: Vec<f32> = y
            .data
            .iter()
            .zip(&mean_f)
            .zip(&q_steps)
            .map(|((v, m), d)| ((v - m) / d).clamp(-LIMIT, LIMIT))
            .collect();
        let mut adam_m = vec![0.0f32; n];
        let mut adam_v = vec![0.0f32; n];
        let mut soft = vec![0.0f32; n];
        let mut slope = vec![0.0f32; n];
        let mut rate_step = vec![0.0f32; n];
        let steps = self.steps();
        let decay = (params.temperature_end / params.temperature_start).ln();
        for step in 0..steps {
            let frac = if steps > 1 {
                step as f32 / (steps - 1) as f32
            } else {
                1.0
            };
            let tau = params.temperature_start * (decay * frac).exp();
            // Relaxed rounding: soft = floor + w, w the relaxed probability of rounding up.
            (
                soft.par_iter_mut(),
                slope.par_iter_mut(),
                rate_step.par_iter_mut(),
            )
                .into_par_iter()
                .zip(v.par_iter().zip(&mean_f).zip(scale_index).zip(&q_steps))
                .enumerate()
                .for_each(|(j, ((s, d, r), (((&v, &m), &idx), &q_step)))| {
                    let floor = v.floor();
                    let relaxed = relax(v - floor, tau, logistic_noise(seed, step, j));
                    *s = (floor + relaxed.weight) * q_step + m;
                    *d = relaxed.slope;
                    let f = floor as i32;
                    let idx = usize::from(idx);
                    *r = lengths.bits(idx, f + 1) - lengths.bits(idx, f);
                });
            let (x, tape) = net.forward(&latents(soft.clone())?).map_err(transform)?;
            let mut grad_x = x.clone();
            distortion(&x, target, Some(&mut grad_x.data)).map_err(transform)?;
            grad_x
                .data
                .par_iter_mut()
                .for_each(|g| *g = (f64::from(*g) * weight) as f32);
            let grad_y = net.backward(&tape, grad_x).map_err(transform)?;
            // Adam on v; bias corrections of step t = step + 1.
            let t = (step + 1) as i32;
            let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
            let lr = params.learning_rate;
            (
                v.par_iter_mut(),
                adam_m.par_iter_mut(),
                adam_v.par_iter_mut(),
            )
                .into_par_iter()
                .zip(
                    grad_y
                        .data
                        .par_iter()
                        .zip(&slope)
                        .zip(&rate_step)
                        .zip(&q_steps),
                )
                .for_each(|((v, m, s), (((&gd, &sl), &dr), &q_step))| {
                    // y^ = (floor + w) * q_step + mean: the distortion's gradient in w is
                    // q_step times its gradient in y^; the rate is interpolated in w.
                    let g = (gd * q_step + dr) * sl;
                    *m = BETA1 * *m + (1.0 - BETA1) * g;
                    *s = BETA2 * *s + (1.0 - BETA2) * g * g;
                    *v = (*v - lr * (*m / c1) / ((*s / c2).sqrt() + ADAM_EPS)).clamp(-LIMIT, LIMIT);
                });
            on_step();
        }
        let end: Vec<i32> = v.iter().map(|v| v.round() as i32).collect();
        let at_end = evaluate(&end)?;
        let improved = at_end.loss(weight) < at_start.loss(weight);
        let stats = RefineStats {
            bits_start: at_start.bits,
            sse_start: at_start.sse,
            bits_end: if improved { at_end.bits } else { at_start.bits },
            sse_end: if improved { at_end.sse } else { at_start.sse },
            improved,
        };
        Ok((if improved { end } else { start }, stats))
    }
}

/// The relaxed rounding of a latent at distance `frac` in [0, 1) above its floor.
struct Relaxed {
    /// Weight of the upper bound: the soft value is `floor + weight`.
    weight: f32,
    /// `d weight / d v`.
    slope: f32,
}

/// Yang et al.'s relaxation: logits `-atanh(d) / tau` for the distance `d` to each bound,
/// Gumbel-softmax at temperature `tau`. With two bounds the softmax is a logistic of the
/// logit difference plus logistic noise (the difference of two Gumbel variables).
#[inline]
fn relax(frac: f32, tau: f32, noise: f32) -> Relaxed {
    let clip = |d: f32| d.clamp(0.0, 1.0 - CLIP);
    let (down, up) = (clip(frac), clip(1.0 - frac));
    let logit = (down.atanh() - up.atanh()) / tau;
    let weight = 1.0 / (1.0 + (-(logit + noise) / tau).exp());
    // d(atanh d)/dd = 1 / (1 - d^2), zero where clipped.
    let d_down = if frac < 1.0 - CLIP {
        1.0 / (1.0 - down * down)
    } else {
        0.0
    };
    let d_up = if 1.0 - frac < 1.0 - CLIP {
        1.0 / (1.0 - up * up)
    } else {
        0.0
    };
    Relaxed {
        weight,
        slope: weight * (1.0 - weight) * (d_down + d_up) / (tau * tau),
    }
}

/// Logistic noise `ln(u / (1 - u))` with `u` uniform in (0, 1), a hash of the seed, the
/// step and the latent's index (SplitMix64's finaliser): the same value on every thread
/// count and platform.
#[inline]
fn logistic_noise(seed: u64, step: u32, index: usize) -> f32 {
    let mut z = seed ^ (u64::from(step) << 40) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // 24 bits, offset by half a step: u in (0, 1) exactly.
    let u = ((z >> 40) as f32 + 0.5) / (1u32 << 24) as f32;
    (u / (1.0 - u)).ln()
}

/// The sum of squared errors between the decoder's clamped picture `clamp(x, 0, 1)` and the
/// target over the visible pixels; with `grad`, also its gradient with respect to `x`
/// (zero outside the visible area and where the clamp is active).
fn distortion(
    x: &Tensor,
    target: TileTarget<'_>,
    grad: Option<&mut [f32]>,
) -> Result<f64, TransformError> {
    let t = target.pixels;
    if (x.c, x.h, x.w) != (t.c, t.h, t.w) || target.width > t.w || target.height > t.h {
        return Err(TransformError::OutputSize {
            h: t.h,
            w: t.w,
            got_h: x.h,
            got_w: x.w,
        });
    }
    let row = x.w;
    let visible = |i: usize| (i / row) % x.h < target.height && i % row < target.width;
    let sse = x
        .data
        .iter()
        .zip(&t.data)
        .enumerate()
        .filter(|(i, _)| visible(*i))
        .map(|(_, (&a, &b))| f64::from(a.clamp(0.0, 1.0) - b).powi(2))
        .sum();
    if let Some(grad) = grad {
        grad.par_iter_mut()
            .zip(x.data.par_iter().zip(&t.data))
            .enumerate()
            .for_each(|(i, (g, (&a, &b)))| {
                *g = if visible(i) && (0.0..=1.0).contains(&a) {
                    2.0 * (a - b)
                } else {
                    0.0
                };
            });
    }
    Ok(sse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_rounding_slope_is_the_derivative_of_its_weight() {
        for tau in [0.5f32, 0.2, 0.05] {
            for noise in [-1.5f32, 0.0, 0.7] {
                for frac in [0.1f32, 0.3, 0.5, 0.62, 0.9] {
                    let r = relax(frac, tau, noise);
                    assert!((0.0..=1.0).contains(&r.weight));
                    let h = 2e-3 * tau * tau;
                    let numeric = (f64::from(relax(frac + h, tau, noise).weight)
                        - f64::from(relax(frac - h, tau, noise).weight))
                        / (2.0 * f64::from(h));
                    let tol = 2e-2 * numeric.abs() + 1e-3;
                    assert!(
                        (numeric - f64::from(r.slope)).abs() <= tol,
                        "tau {tau} noise {noise} frac {frac}: {} vs {numeric}",
                        r.slope
                    );
                }
            }
        }
        // Without noise it rounds to the nearer bound, harder as tau falls.
        assert!(relax(0.3, 0.5, 0.0).weight < 0.5 && relax(0.7, 0.5, 0.0).weight > 0.5);
        assert!(relax(0.3, 0.05, 0.0).weight < 1e-3);
        assert!(relax(0.0, 0.5, 0.0).weight < 1e-6);
    }

    #[test]
    fn noise_is_logistic_and_keyed_by_step_and_index() {
        let n = 100_000;
        let draws: Vec<f64> = (0..n).map(|j| f64::from(logistic_noise(7, 3, j))).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
        // Logistic(0, 1): mean 0, variance pi^2 / 3.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!(
            (var - std::f64::consts::PI.powi(2) / 3.0).abs() < 0.1,
            "variance {var}"
        );
        assert_eq!(logistic_noise(7, 3, 5), logistic_noise(7, 3, 5));
        assert_ne!(logistic_noise(7, 3, 5), logistic_noise(7, 4, 5));
        assert_ne!(logistic_noise(7, 3, 5), logistic_noise(8, 3, 5));
        assert_ne!(logistic_noise(7, 3, 5), logistic_noise(7, 3, 6));
    }

    #[test]
    fn distortion_counts_visible_pixels_and_its_gradient_is_exact() {
        let (h, w) = (4, 6);
        let target = Tensor::new(
            3,
            h,
            w,
            (0..3 * h * w).map(|i| (i % 7) as f32 / 7.0).collect(),
        )
        .expect("target");
        let x = Tensor::new(
            3,
            h,
            w,
            (0..3 * h * w).map(|i| (i % 5) as f32 / 4.0 - 0.1).collect(),
        )
        .expect("x");
        let tile = TileTarget {
            pixels: &target,
            width: 5,
            height: 3,
        };
        let mut grad = vec![0.0f32; x.data.len()];
        let sse = distortion(&x, tile, Some(&mut grad)).expect("sse");
        let mut want = 0.0f64;
        for c in 0..3 {
            for yy in 0..h {
                for xx in 0..w {
                    let i = (c * h + yy) * w + xx;
                    let visible = yy < 3 && xx < 5;
                    let a = x.data[i];
                    if visible {
                        want += f64::from(a.clamp(0.0, 1.0) - target.data[i]).powi(2);
                    }
                    let g = if visible && (0.0..=1.0).contains(&a) {
                        2.0 * (a - target.data[i])
                    } else {
                        0.0
                    };
                    assert_eq!(grad[i], g, "{c} {yy} {xx}");
                }
            }
        }
        assert!((sse - want).abs() < 1e-9);
        let wrong = Tensor::zeros(3, h, w + 1);
        assert!(distortion(&wrong, tile, None).is_err());
    }
}
