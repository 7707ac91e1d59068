use super::median::MedianTerm;
use super::output::OutputStage;
use super::{HyperError, IntLayer};

/// Fractional bits of the fixed-point mean and of y^ (spec 9.4, 10).
pub const MEAN_FRAC_BITS: u32 = 8;
/// Means are clipped to `[-MEAN_LIMIT, MEAN_LIMIT]` (spec 9.4).
pub const MEAN_LIMIT: i64 = 1 << 23;
/// z^ values are clipped to `[Z_CLIP_MIN, Z_CLIP_MAX]` at the input of h_s (spec 9.1).
pub const Z_CLIP_MIN: i32 = -128;
/// See [`Z_CLIP_MIN`].
pub const Z_CLIP_MAX: i32 = 127;

/// The outputs of h_s for one tile: per element of y^ a scale index and a mean (spec 9.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperOutput {
    /// Channels of y^ (M).
    pub channels: usize,
    /// Height of y^.
    pub height: usize,
    /// Width of y^.
    pub width: usize,
    /// Scale-table index, CHW.
    pub scale_index: Vec<u8>,
    /// Mean in units of `2^-MEAN_FRAC_BITS`, CHW.
    pub mean: Vec<i32>,
}

/// What the last layer of h_s gives (spec 9.4, table 7-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HyperOutputs {
    /// `2M` outputs: scales, then means.
    ScalesAndMeans,
    /// `M` outputs: scales; every mean is 0 (`bmshj2018-hyperprior`).
    Scales,
}

/// The integer hyper-synthesis network of spec 9.1: `Transposed -> Act -> Transposed ->
/// Act -> Conv`, whose last layer has `2M` outputs (scales, then means) or `M` (scales).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperSynthesis {
    /// The three layers (model-file indices 0, 2, 4).
    pub layers: [IntLayer; 3],
    /// Fixed-point scale thresholds `T[0..L-1]` (spec 9.4), strictly increasing.
    pub scale_thresholds: Vec<i32>,
    /// What the last layer gives.
    pub outputs: HyperOutputs,
    /// The median term of layer 0 (spec 9.2), for architectures with `z.median`.
    median: Option<MedianTerm>,
    /// The final step (spec 9.4) prepared for the last layer and the thresholds.
    output: OutputStage,
}

impl HyperSynthesis {
    /// Validates the chain of shapes (spec 7.5).
    pub fn new(
        layers: [IntLayer; 3],
        scale_thresholds: Vec<i32>,
        outputs: HyperOutputs,
    ) -> Result<Self, HyperError> {
        for j in 1..3 {
            if layers[j].cin != layers[j - 1].cout {
                return Err(HyperError::BadLayer {
                    layer: 2 * j,
                    what: format!(
                        "{} input channels after a layer with {} outputs",
                        layers[j].cin,
                        layers[j - 1].cout
                    ),
                });
            }
        }
        let cout = layers[2].cout;
        let bad_outputs = match outputs {
            HyperOutputs::ScalesAndMeans => !cout.is_multiple_of(2) || cout > 2 * 1024,
            HyperOutputs::Scales => cout > 1024,
        };
        if bad_outputs {
            let want = match outputs {
                HyperOutputs::ScalesAndMeans => "2M",
                HyperOutputs::Scales => "M",
            };
            return Err(HyperError::BadLayer {
                layer: 4,
                what: format!("{cout} outputs (must be {want}, M <= 1024)"),
            });
        }
        if scale_thresholds.is_empty()
            || scale_thresholds.len() > 255
            || scale_thresholds.windows(2).any(|t| t[0] >= t[1])
        {
            return Err(HyperError::BadLayer {
                layer: 4,
                what: "scale thresholds must be 1..=255 strictly increasing values".into(),
            });
        }
        let output = OutputStage::new(&layers[2], &scale_thresholds, outputs);
        Ok(Self {
            layers,
            scale_thresholds,
            outputs,
            median: None,
            output,
        })
    }

    /// Adds the median term of `z.median` (spec 9.2; `|Med| <= 2^15`, one per channel of z).
    pub fn with_median(mut self, median: Vec<i32>) -> Result<Self, HyperError> {
        self.median = Some(MedianTerm::new(&self.layers[0], median)?);
        Ok(self)
    }

    /// `Med[c]` in units of `2^-8`, for architectures with `z.median` (spec 7.3).
    pub fn median(&self) -> Option<&[i32]> {
        self.median.as_ref().map(|m| m.median.as_slice())
    }

    /// Channels of z^ (N).
    pub fn hyper_channels(&self) -> usize {
        self.layers[0].cin
    }

    /// Channels of y^ (M).
    pub fn latent_channels(&self) -> usize {
        match self.outputs {
            HyperOutputs::ScalesAndMeans => self.layers[2].cout / 2,
            HyperOutputs::Scales => self.layers[2].cout,
        }
    }

    /// Runs h_s on z^ given as CHW integers of `n x h x w` (spec 9.1-9.4).
    pub fn run(&self, z: &[i32], h: usize, w: usize) -> Result<HyperOutput, HyperError> {
        self.run_with_steps(z, h, w, None)
    }

    /// [`run`](Self::run) for a tile with a step map (spec 5.4, 9.4): `steps` gives the
    /// step of every position of the output grid (`4h x 4w`, row-major, units of `2^-8`);
    /// the scale index of a position is that of its scale divided by its step.
    pub fn run_with_steps(
        &self,
        z: &[i32],
        h: usize,
        w: usize,
        steps: Option<&[u16]>,
    ) -> Result<HyperOutput, HyperError> {
        let n = self.hyper_channels();
        if z.len() != n * h * w {
            return Err(HyperError::InputChannels {
                found: z.len() / (h * w).max(1),
                expected: n,
            });
        }
        // CHW -> padded HWC with the input clip of spec 9.1.
        let mut x = self.layers[0].padded_input(h, w);
        for c in 0..n {
            for p in 0..h * w {
                let v = z[c * h * w + p].clamp(Z_CLIP_MIN, Z_CLIP_MAX);
                x.pixel_mut(p / w, p % w)[c] = v as i16;
            }
        }
        let (mut ch, mut cw) = (h, w);
        for j in 0..2 {
            let layer = &self.layers[j];
            let mut acc = layer.accumulate_padded(&x);
            if let (0, Some(term)) = (j, &self.median) {
                term.add_to(&mut acc, ch, cw);
            }
            layer.activate(&mut acc);
            (ch, cw) = layer.output_size(ch, cw);
            // Activations are in -ACTIVATION_MAX..=ACTIVATION_MAX (spec 9.3): 16 bits.
            x = self.layers[j + 1].padded_input(ch, cw);
            for (p, px) in acc.chunks_exact(layer.cout).enumerate() {
                for (d, &v) in x.pixel_mut(p / cw, p % cw).iter_mut().zip(px) {
                    *d = v as i16;
                }
            }
        }
        let last = &self.layers[2];
        let acc = last.accumulate_padded(&x);
        let mut out = self.output.run(&acc, ch, cw);
        if let Some(steps) = steps {
            super::steps::apply_steps(&mut out, &acc, last, &self.scale_thresholds, steps)?;
        }
        Ok(out)
    }
}
