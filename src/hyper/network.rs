use super::{HyperError, IntLayer};
use crate::fixed::clip;

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

/// The integer hyper-synthesis network of spec 9.1: `Transposed -> ReLU8 -> Transposed ->
/// ReLU8 -> Conv`, whose last layer has `2M` outputs (scales, then means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperSynthesis {
    /// The three layers (model-file indices 0, 2, 4).
    pub layers: [IntLayer; 3],
    /// Fixed-point scale thresholds `T[0..L-1]` (spec 9.4), strictly increasing.
    pub scale_thresholds: Vec<i32>,
}

impl HyperSynthesis {
    /// Validates the chain of shapes (spec 7.5).
    pub fn new(layers: [IntLayer; 3], scale_thresholds: Vec<i32>) -> Result<Self, HyperError> {
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
        if !layers[2].cout.is_multiple_of(2) || layers[2].cout > 2 * 1024 {
            return Err(HyperError::BadLayer {
                layer: 4,
                what: format!("{} outputs (must be 2M, M <= 1024)", layers[2].cout),
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
        Ok(Self {
            layers,
            scale_thresholds,
        })
    }

    /// Channels of z^ (N).
    pub fn hyper_channels(&self) -> usize {
        self.layers[0].cin
    }

    /// Channels of y^ (M).
    pub fn latent_channels(&self) -> usize {
        self.layers[2].cout / 2
    }

    /// Runs h_s on z^ given as CHW integers of `n x h x w` (spec 9.1-9.4).
    pub fn run(&self, z: &[i32], h: usize, w: usize) -> Result<HyperOutput, HyperError> {
        let n = self.hyper_channels();
        if z.len() != n * h * w {
            return Err(HyperError::InputChannels {
                found: z.len() / (h * w).max(1),
                expected: n,
            });
        }
        // CHW -> HWC with the input clip of spec 9.1.
        let mut x = vec![0i32; z.len()];
        for c in 0..n {
            for p in 0..h * w {
                x[p * n + c] = z[c * h * w + p].clamp(Z_CLIP_MIN, Z_CLIP_MAX);
            }
        }
        let (mut ch, mut cw) = (h, w);
        for layer in &self.layers[..2] {
            let mut acc = layer.accumulate(&x, ch, cw);
            layer.activate(&mut acc);
            (ch, cw) = layer.output_size(ch, cw);
            x = acc;
        }
        let last = &self.layers[2];
        let acc = last.accumulate(&x, ch, cw);
        let m = self.latent_channels();
        let plane = ch * cw;
        let mut scale_index = vec![0u8; m * plane];
        let mut mean = vec![0i32; m * plane];
        for p in 0..plane {
            let px = &acc[p * 2 * m..(p + 1) * 2 * m];
            for c in 0..m {
                let s = last.requantise(px[c], c);
                let idx = self.scale_thresholds.partition_point(|&t| i64::from(t) < s);
                scale_index[c * plane + p] = idx as u8;
                let mu = last.requantise(px[m + c], m + c);
                mean[c * plane + p] = clip(-MEAN_LIMIT, MEAN_LIMIT, mu) as i32;
            }
        }
        Ok(HyperOutput {
            channels: m,
            height: ch,
            width: cw,
            scale_index,
            mean,
        })
    }
}
