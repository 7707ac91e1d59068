//! Rate control and the continuous quality scale (spec 12.7, informative): a target size
//! reached with the zoo model nearest to it and a global step found by bisection.

use super::{Analysis, CodecError, EncodeOptions, RgbImage};
use crate::container::{MAX_STEP, MIN_STEP, UNIT_STEP};
use crate::model::Model;

/// What rate control chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateChoice {
    /// Index of the model in the list given (lowest quality first).
    pub model: usize,
    /// The base step, units of `2^-8`: the steps of the options multiplied by `base / 256`.
    pub base_step: u16,
    /// Stream size in bytes.
    pub bytes: usize,
    /// Encodes run (each a quantisation and entropy coding; analyses not counted).
    pub trials: u32,
}

/// The models of a zoo, lowest quality first, each analysed once when first needed.
pub struct RateControl<'m, 'i> {
    img: &'i RgbImage,
    models: Vec<&'m Model>,
    analyses: Vec<Option<Analysis<'m>>>,
    opts: EncodeOptions,
    trials: u32,
}

impl<'m, 'i> RateControl<'m, 'i> {
    /// Rate control of `img` over `models` (lowest quality first) with `opts`'s tile size,
    /// checksums and steps (the shape that the base step scales; [`super::Steps::UNIT`] for a
    /// uniform step). The bisection codes at effort 0; the final stream at `opts.effort`.
    pub fn new(img: &'i RgbImage, models: Vec<&'m Model>, opts: &EncodeOptions) -> Self {
        let analyses = models.iter().map(|_| None).collect();
        Self {
            img,
            models,
            analyses,
            opts: opts.clone(),
            trials: 0,
        }
    }

    fn analysis(&mut self, k: usize) -> Result<&Analysis<'m>, CodecError> {
        if self.analyses[k].is_none() {
            self.analyses[k] = Some(Analysis::new(self.img, self.models[k], self.opts.tile)?);
        }
        self.analyses[k]
            .as_ref()
            .ok_or_else(|| CodecError::Input("analysis missing".into()))
    }

    /// What rate control chose: model `k` at base step `base`, giving `bytes`.
    fn choice(&self, k: usize, base: u16, bytes: &[u8]) -> RateChoice {
        RateChoice {
            model: k,
            base_step: base,
            bytes: bytes.len(),
            trials: self.trials,
        }
    }

    /// The stream of model `k` at base step `base`, at effort 0.
    fn trial(&mut self, k: usize, base: u16) -> Result<Vec<u8>, CodecError> {
        self.trials += 1;
        let opts = EncodeOptions {
            effort: 0,
            steps: self.opts.steps.scaled(base),
            ..self.opts.clone()
        };
        self.analysis(k)?.code(&opts, &|_, _| {})
    }

    /// The size of model `k`'s stream at step 1 (of the options' steps unscaled).
    pub fn size_at_unit_step(&mut self, k: usize) -> Result<usize, CodecError> {
        Ok(self.trial(k, UNIT_STEP)?.len())
    }

    /// A stream of at most `target` bytes (spec 12.7): the lowest-quality model whose
    /// stream at step 1 has at least `target` bytes (the highest when none has), and the
    /// smallest base step whose stream fits, by bisection over `1..=4096` at effort 0. At a
    /// higher effort the stream is searched at that step (up to four slightly coarser steps
    /// when the search made it larger than `target`, then effort 0's stream): never larger
    /// than `target`.
    pub fn encode_to_size(
        &mut self,
        target: usize,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(Vec<u8>, RateChoice), CodecError> {
        let last = self
            .models
            .len()
            .checked_sub(1)
            .ok_or_else(|| CodecError::Input("rate control needs at least one model".into()))?;
        let mut k = last;
        for j in 0..=last {
            if self.size_at_unit_step(j)? >= target {
                k = j;
                break;
            }
        }
        self.encode_model_to_size(k, target, progress)
    }

    /// [`encode_to_size`](Self::encode_to_size) with model `k`.
    pub fn encode_model_to_size(
        &mut self,
        k: usize,
        target: usize,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(Vec<u8>, RateChoice), CodecError> {
        // Invariant: the stream at `hi` fits; every base below `lo` was too large.
        let (mut lo, mut hi) = (MIN_STEP, MAX_STEP);
        let smallest = self.trial(k, hi)?.len();
        if smallest > target {
            return Err(CodecError::Input(format!(
                "cannot reach {target} bytes: the smallest stream of model {:?} (step 16) has \
                 {smallest} bytes",
                self.models[k].name
            )));
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.trial(k, mid)?.len() <= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        // The final stream at the options' effort. The search usually lowers the rate; when
        // it does not, a slightly coarser step is tried, and failing that effort 0's stream,
        // which fits.
        let mut base = hi;
        for _ in 0..4 {
            let opts = EncodeOptions {
                steps: self.opts.steps.scaled(base),
                ..self.opts.clone()
            };
            let bytes = self.analysis(k)?.code(&opts, progress)?;
            self.trials += 1;
            if bytes.len() <= target || self.opts.effort == 0 {
                let choice = self.choice(k, base, &bytes);
                return Ok((bytes, choice));
            }
            base = (base + (base / 50).max(1)).min(MAX_STEP);
        }
        let bytes = self.trial(k, hi)?;
        let choice = self.choice(k, hi, &bytes);
        Ok((bytes, choice))
    }

    /// The continuous quality `x` in `[1, models]` (spec 12.7): model `x` when `x` is a
    /// whole number, else rate control to the geometric interpolation of the sizes of
    /// models `floor(x)` and `floor(x) + 1` at step 1.
    pub fn encode_at_quality(
        &mut self,
        x: f64,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(Vec<u8>, RateChoice), CodecError> {
        let n = self.models.len();
        if !(x.is_finite() && x >= 1.0 && x <= n as f64) {
            return Err(CodecError::Input(format!("quality {x} is outside 1..{n}")));
        }
        let k = (x.floor() as usize).min(n) - 1;
        let f = x - (k + 1) as f64;
        if f == 0.0 {
            let opts = self.opts.clone();
            let bytes = self.analysis(k)?.code(&opts, progress)?;
            self.trials += 1;
            let choice = self.choice(k, UNIT_STEP, &bytes);
            return Ok((bytes, choice));
        }
        let (low, high) = (
            self.size_at_unit_step(k)? as f64,
            self.size_at_unit_step(k + 1)? as f64,
        );
        let target = (low.powf(1.0 - f) * high.powf(f)).round() as usize;
        self.encode_model_to_size(k + 1, target, progress)
    }
}

/// The target size in bytes of `bpp` bits per pixel for a `width x height` picture:
/// `floor(bpp * width * height / 8)` (spec 12.7).
pub fn bytes_for_bpp(bpp: f64, width: u32, height: u32) -> Result<usize, CodecError> {
    if !(bpp.is_finite() && bpp > 0.0) {
        return Err(CodecError::Input(format!(
            "target {bpp} bpp is not a positive number"
        )));
    }
    Ok((bpp * f64::from(width) * f64::from(height) / 8.0).floor() as usize)
}

/// The steps of `Steps::UNIT` scaled by rate control: a helper for callers that report
/// the step chosen.
pub fn step_of(base: u16) -> f64 {
    f64::from(base) / f64::from(UNIT_STEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpp_targets() {
        assert_eq!(bytes_for_bpp(0.5, 768, 512).expect("bytes"), 24576);
        assert!(bytes_for_bpp(0.0, 1, 1).is_err());
        assert!(bytes_for_bpp(f64::NAN, 1, 1).is_err());
        assert_eq!(step_of(384), 1.5);
    }
}
