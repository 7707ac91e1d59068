//! Seeded float exports for tests and conformance vectors made before trained weights exist.
//! They go through the same [`build_model_file`](super::build_model_file) path as trained
//! weights.

use safetensors::{tensor::TensorView, Dtype};
use std::collections::HashMap;

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-a, a).
    fn uniform(&mut self, a: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
}

/// Widths of a seeded model: `(N, M, [c1, c2, c3])`.
pub type RandomWidths = (usize, usize, [usize; 3]);

/// A float export (format `icm-float-1`) with random weights from `seed`, for the
/// architecture of spec 7.3 with the given widths. Weights are scaled like a
/// fan-in initialisation so activations stay in a useful range.
pub fn random_float_export(seed: u64, widths: RandomWidths) -> Vec<u8> {
    let (n, m, [c1, c2, c3]) = widths;
    let mut rng = SplitMix(seed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut conv = |name: &str, shape: [usize; 4], fan_in: usize, gain: f32, rng: &mut SplitMix| {
        let a = gain * (3.0 / fan_in as f32).sqrt();
        let len = shape.iter().product();
        let w = (0..len).map(|_| rng.uniform(a)).collect();
        let cout = if name.contains("h_s.0") || name.contains("h_s.2") || name.starts_with("g_s") {
            shape[1]
        } else {
            shape[0]
        };
        let b = (0..cout).map(|_| rng.uniform(0.05)).collect();
        tensors.push((format!("{name}.weight"), shape.to_vec(), w));
        tensors.push((format!("{name}.bias"), vec![cout], b));
    };
    conv("g_a.0", [c3, 3, 5, 5], 75, 1.0, &mut rng);
    conv("g_a.2", [c2, c3, 5, 5], c3 * 25, 1.0, &mut rng);
    conv("g_a.4", [c1, c2, 5, 5], c2 * 25, 1.0, &mut rng);
    conv("g_a.6", [m, c1, 5, 5], c1 * 25, 4.0, &mut rng);
    conv("h_a.0", [n, m, 3, 3], m * 9, 1.0, &mut rng);
    conv("h_a.2", [n, n, 5, 5], n * 25, 1.0, &mut rng);
    conv("h_a.4", [n, n, 5, 5], n * 25, 2.0, &mut rng);
    conv("h_s.0", [n, n, 5, 5], n * 6, 1.0, &mut rng);
    conv("h_s.2", [n, n, 5, 5], n * 6, 1.0, &mut rng);
    conv("h_s.4", [2 * m, n, 1, 1], n, 2.0, &mut rng);
    conv("g_s.0", [m, c1, 5, 5], m * 6, 1.0, &mut rng);
    conv("g_s.2", [c1, c2, 5, 5], c1 * 6, 1.0, &mut rng);
    conv("g_s.4", [c2, c3, 5, 5], c2 * 6, 1.0, &mut rng);
    conv("g_s.6", [c3, 3, 5, 5], c3 * 6, 1.0, &mut rng);
    for (prefix, c) in [
        ("g_a.1", c3),
        ("g_a.3", c2),
        ("g_a.5", c1),
        ("g_s.1", c1),
        ("g_s.3", c2),
        ("g_s.5", c3),
    ] {
        let beta = vec![1.0f32; c];
        let mut gamma = vec![0.0f32; c * c];
        for i in 0..c {
            for j in 0..c {
                gamma[i * c + j] = if i == j { 0.1 } else { rng.uniform(0.01).abs() };
            }
        }
        tensors.push((format!("{prefix}.beta"), vec![c], beta));
        tensors.push((format!("{prefix}.gamma"), vec![c, c], gamma));
    }
    // Discretised logistic densities with a random scale per hyper channel.
    let width = 129usize;
    let mut pmf = Vec::with_capacity(n * width);
    for _ in 0..n {
        let s = 0.3 + rng.uniform(1.0).abs() * 2.0;
        let cdf = |x: f32| 1.0 / (1.0 + (-x / s).exp());
        for v in -64..=64 {
            let v = v as f32;
            pmf.push(cdf(v + 0.5) - cdf(v - 0.5));
        }
    }
    tensors.push(("z_pmf".into(), vec![n, width], pmf));
    tensors.push(("h_s.calibration".into(), vec![3], vec![16.0, 4.0, 4.0]));

    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, v)| {
            (
                name,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .filter_map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .ok()
                .map(|v| (name.clone(), v))
        })
        .collect();
    let meta =
        format!("{{\"format\":\"icm-float-1\",\"seed\":\"{seed}\",\"N\":\"{n}\",\"M\":\"{m}\"}}");
    let info: HashMap<String, String> = [("icm".to_string(), meta)].into_iter().collect();
    safetensors::serialize(views, &Some(info)).unwrap_or_default()
}

/// Widths of the small seeded model that tests, fuzz targets and conformance vectors use.
pub const SMALL_WIDTHS: RandomWidths = (16, 24, [16, 16, 16]);

/// Builds a seeded model file and loads it, through the same path as trained weights.
pub fn seeded_model(
    seed: u64,
    widths: RandomWidths,
    name: &str,
    quality: Option<u8>,
) -> Result<super::Model, super::ModelError> {
    let opts = super::BuildOptions {
        name: name.into(),
        quality,
        ..Default::default()
    };
    let bytes = super::build_model_file(&random_float_export(seed, widths), &opts)?;
    super::Model::from_bytes(&bytes)
}
