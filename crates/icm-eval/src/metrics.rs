//! Image quality metrics on interleaved 8-bit RGB: PSNR and MS-SSIM.
//!
//! [`ms_ssim_rgb8`] follows `pytorch_msssim.ms_ssim(X, Y, data_range=255,
//! size_average=True)` (pytorch-msssim 1.0.0) step by step: an 11-tap Gaussian window
//! with sigma 1.5 applied separably without padding ("valid"), K = (0.01, 0.03), five
//! scales with weights [0.0448, 0.2856, 0.3001, 0.2363, 0.1333], 2x2 average pooling with
//! one pixel of zero padding (counted in the average) on each odd-sized side, ReLU on the
//! per-channel contrast-structure and SSIM terms, and the mean over the three channels.
//! Arithmetic is in `f64`; pytorch computes in `f32`, so figures agree to about 1e-6.

use thiserror::Error;

/// Gaussian window length.
pub const MS_SSIM_WIN_SIZE: usize = 11;
/// Gaussian window standard deviation.
pub const MS_SSIM_WIN_SIGMA: f64 = 1.5;
/// Stabilising constants (K1, K2).
pub const MS_SSIM_K: (f64, f64) = (0.01, 0.03);
/// Per-scale exponents, finest scale first.
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
/// The smaller image side must exceed this: `(MS_SSIM_WIN_SIZE - 1) * 2^4`.
pub const MS_SSIM_MIN_SIDE: u32 = ((MS_SSIM_WIN_SIZE - 1) * 16) as u32;

const DATA_RANGE: f64 = 255.0;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetricError {
    /// The two images have different lengths, or a length that does not match the size.
    #[error("image data is {a} and {b} bytes, expected {expected} for {width}x{height} RGB")]
    Size {
        /// Bytes in the first image.
        a: usize,
        /// Bytes in the second image.
        b: usize,
        /// `width * height * 3`.
        expected: usize,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The image is too small for four downsamplings with the 11-tap window.
    #[error("{width}x{height} is too small for MS-SSIM: the smaller side must exceed {min}")]
    TooSmall {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The bound the smaller side must exceed.
        min: u32,
    },
}

/// PSNR in dB of two 8-bit images of equal length (any channel layout): the MSE over all
/// samples, `10 log10(255^2 / mse)`. Identical images give `f64::INFINITY`; images of
/// different or zero length give `f64::NAN`.
pub fn psnr_rgb8(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::NAN;
    }
    let sse: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = u64::from(x.abs_diff(y));
            d * d
        })
        .sum();
    if sse == 0 {
        return f64::INFINITY;
    }
    let mse = sse as f64 / a.len() as f64;
    10.0 * (DATA_RANGE * DATA_RANGE / mse).log10()
}

/// MS-SSIM of two interleaved 8-bit RGB images of `width x height`, as
/// `pytorch_msssim.ms_ssim(X, Y, data_range=255, size_average=True)` computes it for one
/// image pair (see the module documentation). The result is in [0, 1].
pub fn ms_ssim_rgb8(a: &[u8], b: &[u8], width: u32, height: u32) -> Result<f64, MetricError> {
    let expected = width as usize * height as usize * 3;
    if a.len() != expected || b.len() != expected {
        return Err(MetricError::Size {
            a: a.len(),
            b: b.len(),
            expected,
            width,
            height,
        });
    }
    if width.min(height) <= MS_SSIM_MIN_SIDE {
        return Err(MetricError::TooSmall {
            width,
            height,
            min: MS_SSIM_MIN_SIDE,
        });
    }
    let win = gaussian_window(MS_SSIM_WIN_SIZE, MS_SSIM_WIN_SIGMA);
    let (w, h) = (width as usize, height as usize);
    let mut sum = 0.0;
    for c in 0..3 {
        let x: Vec<f64> = a.iter().skip(c).step_by(3).map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = b.iter().skip(c).step_by(3).map(|&v| f64::from(v)).collect();
        sum += ms_ssim_plane(Plane { w, h, data: x }, Plane { w, h, data: y }, &win);
    }
    Ok(sum / 3.0)
}

/// One channel, row-major.
#[derive(Debug, Clone)]
struct Plane {
    w: usize,
    h: usize,
    data: Vec<f64>,
}

/// `_fspecial_gauss_1d`: `exp(-(i - size/2)^2 / (2 sigma^2))`, normalised to sum 1.
fn gaussian_window(size: usize, sigma: f64) -> Vec<f64> {
    let half = (size / 2) as f64;
    let g: Vec<f64> = (0..size)
        .map(|i| {
            let c = i as f64 - half;
            (-(c * c) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f64 = g.iter().sum();
    g.into_iter().map(|v| v / total).collect()
}

/// `gaussian_filter`: valid (unpadded) correlation with `win` along the height, then along
/// the width; a dimension shorter than the window is left unfiltered.
fn gaussian_filter(p: &Plane, win: &[f64]) -> Plane {
    let k = win.len();
    let mut cur = p.clone();
    if cur.h >= k {
        let oh = cur.h - k + 1;
        let mut out = vec![0.0; oh * cur.w];
        for (oy, row) in out.chunks_exact_mut(cur.w).enumerate() {
            for (t, &g) in win.iter().enumerate() {
                let src = &cur.data[(oy + t) * cur.w..(oy + t + 1) * cur.w];
                for (o, &s) in row.iter_mut().zip(src) {
                    *o += g * s;
                }
            }
        }
        cur = Plane {
            w: cur.w,
            h: oh,
            data: out,
        };
    }
    if cur.w >= k {
        let ow = cur.w - k + 1;
        let mut out = vec![0.0; ow * cur.h];
        for (row, src) in out.chunks_exact_mut(ow).zip(cur.data.chunks_exact(cur.w)) {
            for (ox, o) in row.iter_mut().enumerate() {
                *o = win.iter().zip(&src[ox..ox + k]).map(|(g, s)| g * s).sum();
            }
        }
        cur = Plane {
            w: ow,
            h: cur.h,
            data: out,
        };
    }
    cur
}

/// `_ssim` for one channel: the means of the SSIM map and of the contrast-structure map.
fn ssim_cs(x: &Plane, y: &Plane, win: &[f64]) -> (f64, f64) {
    let c1 = (MS_SSIM_K.0 * DATA_RANGE).powi(2);
    let c2 = (MS_SSIM_K.1 * DATA_RANGE).powi(2);
    let product = |f: fn(f64, f64) -> f64| Plane {
        w: x.w,
        h: x.h,
        data: x.data.iter().zip(&y.data).map(|(&a, &b)| f(a, b)).collect(),
    };
    let mu1 = gaussian_filter(x, win);
    let mu2 = gaussian_filter(y, win);
    let xx = gaussian_filter(&product(|a, _| a * a), win);
    let yy = gaussian_filter(&product(|_, b| b * b), win);
    let xy = gaussian_filter(&product(|a, b| a * b), win);
    let n = mu1.data.len();
    let (mut ssim_sum, mut cs_sum) = (0.0, 0.0);
    for i in 0..n {
        let (m1, m2) = (mu1.data[i], mu2.data[i]);
        let s1 = xx.data[i] - m1 * m1;
        let s2 = yy.data[i] - m2 * m2;
        let s12 = xy.data[i] - m1 * m2;
        let cs = (2.0 * s12 + c2) / (s1 + s2 + c2);
        cs_sum += cs;
        ssim_sum += (2.0 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1) * cs;
    }
    (ssim_sum / n as f64, cs_sum / n as f64)
}

/// `F.avg_pool2d(kernel_size=2, padding=[h % 2, w % 2])` with the default
/// `count_include_pad=True`: zero padding counts in the average, so every output is a
/// quarter of its window's sum.
fn avg_pool(p: &Plane) -> Plane {
    let (ph, pw) = (p.h % 2, p.w % 2);
    let oh = (p.h + 2 * ph - 2) / 2 + 1;
    let ow = (p.w + 2 * pw - 2) / 2 + 1;
    let mut data = vec![0.0; oh * ow];
    for oy in 0..oh {
        for ox in 0..ow {
            let mut s = 0.0;
            for dy in 0..2 {
                let Some(sy) = (2 * oy + dy).checked_sub(ph).filter(|&v| v < p.h) else {
                    continue;
                };
                for dx in 0..2 {
                    if let Some(sx) = (2 * ox + dx).checked_sub(pw).filter(|&v| v < p.w) {
                        s += p.data[sy * p.w + sx];
                    }
                }
            }
            data[oy * ow + ox] = s / 4.0;
        }
    }
    Plane { w: ow, h: oh, data }
}

/// MS-SSIM of one channel.
fn ms_ssim_plane(mut x: Plane, mut y: Plane, win: &[f64]) -> f64 {
    let levels = MS_SSIM_WEIGHTS.len();
    let mut value = 1.0;
    for (i, &weight) in MS_SSIM_WEIGHTS.iter().enumerate() {
        let (ssim, cs) = ssim_cs(&x, &y, win);
        if i + 1 < levels {
            value *= cs.max(0.0).powf(weight);
            x = avg_pool(&x);
            y = avg_pool(&y);
        } else {
            value *= ssim.max(0.0).powf(weight);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(width: u32, height: u32, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761) | 1;
        (0..width * height * 3)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let x = (i / 3) % width;
                ((x * 200 / width) + (s >> 27)) as u8
            })
            .collect()
    }

    /// Mirrors `base_image` / `distort` of tests/data/ms_ssim_reference.py.
    fn reference_pair(width: u32, height: u32, seed: u64, kind: &str) -> (Vec<u8>, Vec<u8>) {
        const MASK: u64 = 0xffff_ffff;
        let mix32 = |v: u64| {
            let mut v = v & MASK;
            v ^= v >> 16;
            v = (v * 0x7feb_352d) & MASK;
            v ^= v >> 15;
            v = (v * 0x846c_a68b) & MASK;
            v ^ (v >> 16)
        };
        let (w, h) = (u64::from(width), u64::from(height));
        let mut a = Vec::new();
        let mut b = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let idx = (y * w + x) * 3 + c;
                    let noise = mix32((idx + seed * 0x9e37_79b1) & MASK) % 32;
                    let checker = ((x / 16 + y / 16 + c) % 2) * 60;
                    let v = ((x * 160) / w + (y * 80) / h + checker + noise) % 256;
                    let v = v as i64;
                    a.push(v as u8);
                    let d = match kind {
                        "noise" => {
                            let n = mix32((idx + (seed + 1) * 0x9e37_79b1) & MASK) % 41;
                            (v + n as i64 - 20).clamp(0, 255)
                        }
                        "quantised" => v / 24 * 24 + 12,
                        "invert-blue" if c == 2 => 255 - v,
                        "invert-blue" => v,
                        other => panic!("unknown distortion {other}"),
                    };
                    b.push(d as u8);
                }
            }
        }
        (a, b)
    }

    #[derive(serde::Deserialize)]
    struct ReferenceCase {
        name: String,
        width: u32,
        height: u32,
        seed: u64,
        kind: String,
        ms_ssim: f64,
        psnr: f64,
        ms_ssim_pytorch_msssim: Option<f64>,
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        cases: Vec<ReferenceCase>,
    }

    /// Figures from tests/data/ms_ssim_reference.py: its float64 port of pytorch_msssim
    /// (agreement to 1e-9) and the pytorch_msssim source itself in float32 (1e-5).
    #[test]
    fn matches_pytorch_msssim_reference() {
        let doc: Reference =
            serde_json::from_str(include_str!("../../../tests/data/ms_ssim_reference.json"))
                .expect("reference json");
        assert!(doc.cases.len() >= 3);
        for case in &doc.cases {
            let (a, b) = reference_pair(case.width, case.height, case.seed, &case.kind);
            let v = ms_ssim_rgb8(&a, &b, case.width, case.height).expect("ms-ssim");
            assert!(
                (v - case.ms_ssim).abs() < 1e-9,
                "{}: {v} vs {}",
                case.name,
                case.ms_ssim
            );
            if let Some(r) = case.ms_ssim_pytorch_msssim {
                assert!((v - r).abs() < 1e-5, "{}: {v} vs {r}", case.name);
            }
            let p = psnr_rgb8(&a, &b);
            assert!(
                (p - case.psnr).abs() < 1e-9,
                "{}: {p} vs {}",
                case.name,
                case.psnr
            );
        }
    }

    #[test]
    fn identical_images() {
        let a = pattern(193, 170, 7);
        assert_eq!(psnr_rgb8(&a, &a), f64::INFINITY);
        let v = ms_ssim_rgb8(&a, &a, 193, 170).expect("ms-ssim");
        assert!((v - 1.0).abs() < 1e-12, "{v}");
    }

    #[test]
    fn psnr_known_value() {
        let a = vec![10u8; 300];
        let mut b = a.clone();
        b[0] = 20; // sse 100 over 300 samples
        let expected = 10.0 * (255.0f64 * 255.0 / (100.0 / 300.0)).log10();
        assert!((psnr_rgb8(&a, &b) - expected).abs() < 1e-12);
        assert!(psnr_rgb8(&a, &b[..299]).is_nan());
    }

    #[test]
    fn size_errors() {
        let a = pattern(160, 200, 1);
        assert!(matches!(
            ms_ssim_rgb8(&a, &a, 160, 200),
            Err(MetricError::TooSmall { .. })
        ));
        assert!(matches!(
            ms_ssim_rgb8(&a, &a[..3], 160, 200),
            Err(MetricError::Size { .. })
        ));
    }

    #[test]
    fn pooling_pads_odd_sides_with_counted_zeros() {
        let p = Plane {
            w: 3,
            h: 1,
            data: vec![4.0, 8.0, 12.0],
        };
        let q = avg_pool(&p);
        // h: pad 1 -> 1 row; w: pad 1 -> windows [-1,0], [1,2].
        assert_eq!((q.w, q.h), (2, 1));
        assert_eq!(q.data, vec![1.0, 5.0]);
    }
}
