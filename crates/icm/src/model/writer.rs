//! Writing model files (spec 7): the tensors, the integer h_s quantised from float weights
//! (spec 12.2) and the metadata. Shared by `icm model build` and the importers.

use super::ModelError;
use crate::hyper::MAX_BIAS;
use safetensors::{tensor::TensorView, Dtype};
use std::collections::{BTreeMap, HashMap};

/// The tensors of a model file being written, in the order they are added.
#[derive(Debug, Default)]
pub struct ModelWriter {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

/// One integer layer of h_s (spec 7.3), as quantised by [`quantise_hs_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantisedLayer {
    /// The float weight's shape, kept for the I8 tensor.
    pub shape: Vec<usize>,
    /// Weights in `-127..=127`, in the float layout.
    pub weight: Vec<i8>,
    /// Bias in accumulator units.
    pub bias: Vec<i32>,
    /// Requantisation multipliers.
    pub multiplier: Vec<i32>,
    /// Requantisation shifts.
    pub shift: Vec<u8>,
}

impl ModelWriter {
    /// Adds a tensor of raw little-endian bytes.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        dtype: Dtype,
        shape: Vec<usize>,
        data: Vec<u8>,
    ) {
        self.tensors.push((name.into(), dtype, shape, data));
    }

    /// Adds a float tensor stored as F16.
    pub fn f16(&mut self, name: &str, shape: Vec<usize>, v: &[f32]) {
        let data = v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        self.push(name, Dtype::F16, shape, data);
    }

    /// Adds a float tensor stored as F32.
    pub fn f32(&mut self, name: &str, shape: Vec<usize>, v: &[f32]) {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(name, Dtype::F32, shape, data);
    }

    /// Adds a rank-1 I32 tensor.
    pub fn i32(&mut self, name: &str, v: &[i32]) {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(name, Dtype::I32, vec![v.len()], data);
    }

    /// Adds a rank-1 U16 tensor (frequencies, which are at most `2^16 - 1`, spec 7.4).
    pub fn u16(&mut self, name: &str, v: &[u32]) {
        let data = v.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect();
        self.push(name, Dtype::U16, vec![v.len()], data);
    }

    /// Adds the tensors of h_s layer `index` (spec 7.3); with `negative_slope`, the
    /// layer's `negative_multiplier` too (`round(slope * Mul)`, spec 12.2).
    pub fn int_layer(&mut self, index: usize, layer: &QuantisedLayer, negative_slope: Option<f64>) {
        let p = format!("h_s.{index}");
        self.push(
            format!("{p}.weight"),
            Dtype::I8,
            layer.shape.clone(),
            layer.weight.iter().map(|&v| v as u8).collect(),
        );
        self.i32(&format!("{p}.bias"), &layer.bias);
        self.i32(&format!("{p}.multiplier"), &layer.multiplier);
        self.push(
            format!("{p}.shift"),
            Dtype::U8,
            vec![layer.shift.len()],
            layer.shift.clone(),
        );
        if let Some(slope) = negative_slope {
            let neg: Vec<i32> = layer
                .multiplier
                .iter()
                .map(|&m| {
                    (slope * f64::from(m))
                        .round()
                        .clamp(0.0, f64::from(i32::MAX)) as i32
                })
                .collect();
            self.i32(&format!("{p}.negative_multiplier"), &neg);
        }
    }

    /// The model file: the tensors and the metadata as one JSON entry `icm` (spec 7.2), so
    /// that the bytes are deterministic.
    pub fn finish(self, meta: &BTreeMap<String, String>) -> Result<Vec<u8>, ModelError> {
        let json = serde_json::to_string(meta).map_err(|e| ModelError::BadMetadata {
            key: "icm".into(),
            what: e.to_string(),
        })?;
        let info: HashMap<String, String> = [("icm".to_string(), json)].into_iter().collect();
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                TensorView::new(*dtype, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| ModelError::BadTensor {
                        name: name.clone(),
                        what: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        safetensors::serialize(views, &Some(info))
            .map_err(|e| ModelError::Safetensors(e.to_string()))
    }
}

/// `(multiplier, shift)` with `multiplier * 2^-shift ~= real`, multiplier in `[2^30, 2^31)`
/// where the shift range allows (spec 12.2).
pub fn encode_multiplier(real: f64) -> Result<(i32, u8), ModelError> {
    if !(real.is_finite() && real >= 0.0) || real >= f64::from(1u32 << 29) {
        return Err(ModelError::BadMetadata {
            key: "h_s".into(),
            what: format!("requantisation factor {real} out of range"),
        });
    }
    if real == 0.0 {
        return Ok((0, 1));
    }
    let mut shift = 30 - real.log2().floor() as i64;
    shift = shift.clamp(1, 62);
    let mut m = (real * (shift as f64).exp2()).round() as i64;
    if m >= 1 << 31 {
        m /= 2;
        shift -= 1;
    }
    Ok((m as i32, shift as u8))
}

/// Quantises one float h_s layer (spec 12.2): per-output-channel symmetric int8 weights,
/// bias in accumulator units, requantisation from `in_scale * weight scale` to `out_scale`
/// units. `shape` is PyTorch's: `[cin, cout, k, k]` when `transposed`, else
/// `[cout, cin, k, k]`.
pub fn quantise_hs_layer(
    shape: &[usize],
    weight: &[f32],
    bias: &[f32],
    transposed: bool,
    in_scale: f64,
    out_scale: f64,
) -> Result<QuantisedLayer, ModelError> {
    let bad = |what: String| ModelError::BadTensor {
        name: "h_s".into(),
        what,
    };
    if shape.len() != 4 || weight.len() != shape.iter().product::<usize>() {
        return Err(bad(format!("weight shape {shape:?}")));
    }
    let (cin, cout, kk) = if transposed {
        (shape[0], shape[1], shape[2] * shape[3])
    } else {
        (shape[1], shape[0], shape[2] * shape[3])
    };
    if bias.len() != cout {
        return Err(bad(format!("{} biases for {cout} outputs", bias.len())));
    }
    let idx = |i: usize, o: usize, t: usize| {
        if transposed {
            (i * cout + o) * kk + t
        } else {
            (o * cin + i) * kk + t
        }
    };
    let mut wq = vec![0i8; weight.len()];
    let (mut bq, mut mult, mut shift) = (Vec::new(), Vec::new(), Vec::new());
    for o in 0..cout {
        let mut wmax = 0f64;
        for i in 0..cin {
            for t in 0..kk {
                wmax = wmax.max(f64::from(weight[idx(i, o, t)]).abs());
            }
        }
        let ws = if wmax > 0.0 { wmax / 127.0 } else { 1.0 };
        for i in 0..cin {
            for t in 0..kk {
                let j = idx(i, o, t);
                wq[j] = (f64::from(weight[j]) / ws).round().clamp(-127.0, 127.0) as i8;
            }
        }
        let acc_scale = in_scale * ws;
        let b = (f64::from(bias[o]) / acc_scale).round();
        bq.push(b.clamp(-f64::from(MAX_BIAS), f64::from(MAX_BIAS)) as i32);
        let (m, s) = encode_multiplier(acc_scale / out_scale)?;
        mult.push(m);
        shift.push(s);
    }
    Ok(QuantisedLayer {
        shape: shape.to_vec(),
        weight: wq,
        bias: bq,
        multiplier: mult,
        shift,
    })
}
