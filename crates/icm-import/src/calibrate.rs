//! Calibration of the integer h_s (spec 12.2): the largest activation of each hidden layer
//! of the float h_s on pictures, which sets the fixed-point scale of that layer's output.

use crate::ImportError;
use icm::codec::RgbImage;
use icm::transform::{Layer, Sequential, Tensor};

/// The float networks that produce the inputs of h_s, and h_s itself.
#[derive(Debug, Clone)]
pub struct FloatHyper {
    /// Analysis transform.
    pub g_a: Sequential,
    /// Hyper-analysis transform.
    pub h_a: Sequential,
    /// Whether h_a reads `abs(y)` (spec 11.1).
    pub abs_input: bool,
    /// The three layers of h_s (transposed, transposed, convolution).
    pub h_s: [Layer; 3],
    /// LeakyReLU slope of the hidden activations of h_s (none: ReLU).
    pub negative_slope: Option<f32>,
    /// The z median of each channel as the integer h_s uses it (`Med / 256`).
    pub median: Vec<f32>,
}

impl FloatHyper {
    /// Checks that the networks chain (3 -> g_a -> M -> h_a -> N -> h_s) before any picture
    /// runs through them; returns `(M, N, outputs of h_s)`.
    pub fn validate(&self) -> Result<(usize, usize, usize), ImportError> {
        let err = |stage: &str, e: icm::transform::TransformError| {
            ImportError::Calibration(format!("{stage}: {e}"))
        };
        let m = self.g_a.validate(3).map_err(|e| err("g_a", e))?;
        let n = self.h_a.validate(m).map_err(|e| err("h_a", e))?;
        if n != self.median.len() {
            return Err(ImportError::Calibration(format!(
                "h_a gives {n} channels, the entropy bottleneck has {}",
                self.median.len()
            )));
        }
        let mut c = n;
        for (i, layer) in self.h_s.iter().enumerate() {
            c = layer
                .validate(c)
                .map_err(|e| err(&format!("h_s.{}", 2 * i), e))?;
        }
        Ok((m, n, c))
    }
}

/// The picture as a `[0, 1]` CHW tensor padded to multiples of 64 by repeating its last
/// row and column, as the encoder pads a tile (spec 12.1).
fn padded_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width as usize, img.height as usize);
    let (pw, ph) = (w.div_ceil(64) * 64, h.div_ceil(64) * 64);
    let mut t = Tensor::zeros(3, ph, pw);
    for y in 0..ph {
        let sy = y.min(h - 1);
        for x in 0..pw {
            let sx = x.min(w - 1);
            for c in 0..3 {
                t.data[(c * ph + y) * pw + x] = f32::from(img.data[(sy * w + sx) * 3 + c]) / 255.0;
            }
        }
    }
    t
}

/// The activation of a hidden layer of h_s, in place.
fn activate(v: &mut [f32], slope: Option<f32>) {
    for x in v {
        if *x < 0.0 {
            *x = slope.map_or(0.0, |s| s * *x);
        }
    }
}

/// The largest `|activation|` of h_s layers 0 and 2 over `pictures`, with z quantised as
/// the encoder quantises it (`round(z - median) + median`, spec 12.1). A layer whose
/// activations are all 0 gets 1 (any scale represents it).
pub fn calibrate(net: &FloatHyper, pictures: &[RgbImage]) -> Result<[f64; 2], ImportError> {
    if pictures.is_empty() {
        return Err(ImportError::Calibration("no pictures".into()));
    }
    net.validate()?;
    let err = |stage: &str, e: icm::transform::TransformError| {
        ImportError::Calibration(format!("{stage}: {e}"))
    };
    let mut act_max = [0f64; 2];
    for img in pictures {
        if img.width == 0 || img.height == 0 {
            continue;
        }
        let x = padded_tensor(img);
        let mut y = net.g_a.forward(&x).map_err(|e| err("g_a", e))?;
        if net.abs_input {
            y.data.iter_mut().for_each(|v| *v = v.abs());
        }
        let mut z = net.h_a.forward(&y).map_err(|e| err("h_a", e))?;
        if z.c != net.median.len() {
            return Err(ImportError::Calibration(format!(
                "h_a gives {} channels, the entropy bottleneck has {}",
                z.c,
                net.median.len()
            )));
        }
        let plane = z.h * z.w;
        for (j, v) in z.data.iter_mut().enumerate() {
            let m = net.median[j / plane.max(1)];
            *v = (*v - m).round() + m;
        }
        let mut a = net.h_s[0].forward(&z).map_err(|e| err("h_s.0", e))?;
        activate(&mut a.data, net.negative_slope);
        act_max[0] = a
            .data
            .iter()
            .fold(act_max[0], |m, v| m.max(f64::from(v.abs())));
        let mut b = net.h_s[1].forward(&a).map_err(|e| err("h_s.2", e))?;
        activate(&mut b.data, net.negative_slope);
        act_max[1] = b
            .data
            .iter()
            .fold(act_max[1], |m, v| m.max(f64::from(v.abs())));
    }
    Ok(act_max.map(|a| if a > 0.0 && a.is_finite() { a } else { 1.0 }))
}
