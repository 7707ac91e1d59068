//! `icm model build`: turns a float export of a trained model into a model file
//! (spec 7, 12.2-12.3). Quantises h_s to integers and builds the entropy tables.

use super::file::{read_f32, read_metadata, read_sequential, G_A, G_S, H_A, H_S, MODEL_FORMAT};
use super::tables::{gaussian_table, hyper_table, scale_table};
use super::writer::{quantise_hs_layer, ModelWriter};
use super::Architecture;
use super::ModelError;
use crate::hyper::MEAN_FRAC_BITS;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// Options of [`build_model_file`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Model name written into streams (1..=64 bytes).
    pub name: String,
    /// Zoo quality index (overrides the export's `quality` entry when set).
    pub quality: Option<u8>,
    /// Extra metadata entries (description, training notes).
    pub extra: BTreeMap<String, String>,
}

/// Metadata of a float export: the `icm` JSON entry if present, else the flat entries.
fn read_export_metadata(bytes: &[u8]) -> BTreeMap<String, String> {
    if let Ok(m) = read_metadata(bytes) {
        return m;
    }
    SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, meta)| meta.metadata().clone())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// Builds a model file from a float export (`format = icm-float-1`, spec 7 and 12.2-12.3).
pub fn build_model_file(float_export: &[u8], opts: &BuildOptions) -> Result<Vec<u8>, ModelError> {
    let src_meta = read_export_metadata(float_export);
    let st = SafeTensors::deserialize(float_export)
        .map_err(|e| ModelError::Safetensors(e.to_string()))?;
    let mut out = ModelWriter::default();

    // Float transforms: validated, then stored as F16.
    let (_, m) = read_sequential(&st, "g_a", &G_A, 3)?;
    let (_, n) = read_sequential(&st, "h_a", &H_A, m)?;
    read_sequential(&st, "g_s", &G_S, m)?;
    let (_, hs_out) = read_sequential(&st, "h_s", &H_S, n)?;
    if hs_out != 2 * m {
        return Err(ModelError::Transform {
            name: "h_s",
            what: format!("{hs_out} outputs, expected 2M = {}", 2 * m),
        });
    }
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    for name in &names {
        if name.starts_with("g_a.") || name.starts_with("h_a.") || name.starts_with("g_s.") {
            let (shape, v) = read_f32(&st, name)?;
            out.f16(name, shape, &v);
        } else if name.starts_with("entropy_bottleneck.") || name == "h_s.calibration" {
            let (shape, v) = read_f32(&st, name)?;
            out.push(
                name.clone(),
                Dtype::F32,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            );
        }
    }

    // Integer h_s (spec 12.2).
    let (_, calib) = read_f32(&st, "h_s.calibration")?;
    if calib.len() != 3 || calib.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(ModelError::BadTensor {
            name: "h_s.calibration".into(),
            what: "needs 3 positive values".into(),
        });
    }
    let act_scale = |c: f32| f64::from(c) / 255.0;
    let fixed = f64::from(MEAN_FRAC_BITS).exp2().recip();
    let layers = [
        (0, true, 1.0, act_scale(calib[1])),
        (2, true, act_scale(calib[1]), act_scale(calib[2])),
        (4, false, act_scale(calib[2]), fixed),
    ];
    for (index, transposed, s_in, s_out) in layers {
        let (shape, w) = read_f32(&st, &format!("h_s.{index}.weight"))?;
        let (_, b) = read_f32(&st, &format!("h_s.{index}.bias"))?;
        if shape.len() != 4 {
            return Err(ModelError::BadTensor {
                name: format!("h_s.{index}.weight"),
                what: "rank must be 4".into(),
            });
        }
        let layer = quantise_hs_layer(&shape, &w, &b, transposed, s_in, s_out)?;
        out.int_layer(index, &layer, None);
    }

    // Hyper tables (spec 12.3).
    let (pshape, pmf) = read_f32(&st, "z_pmf")?;
    if pshape.len() != 2 || pshape[0] != n || pshape[1] % 2 == 0 {
        return Err(ModelError::BadTensor {
            name: "z_pmf".into(),
            what: format!("shape {pshape:?}, expected [{n}, odd]"),
        });
    }
    let width = pshape[1];
    let v0 = -((width / 2) as i32);
    let (mut z_off, mut z_size, mut z_freq) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..n {
        let row: Vec<f64> = pmf[c * width..(c + 1) * width]
            .iter()
            .map(|&p| f64::from(p))
            .collect();
        let (off, f) = hyper_table(&row, v0);
        z_off.push(off);
        z_size.push(f.len() as i32);
        z_freq.extend(f);
    }
    out.i32("z.offset", &z_off);
    out.i32("z.size", &z_size);
    out.u16("z.frequency", &z_freq);

    // Gaussian tables and scale thresholds (spec 12.3).
    let scales = scale_table();
    let thresholds: Vec<i32> = scales[..scales.len() - 1]
        .iter()
        .map(|s| (s * f64::from(MEAN_FRAC_BITS).exp2()).round() as i32)
        .collect();
    let (mut half, mut y_freq) = (Vec::new(), Vec::new());
    for &s in &scales {
        let (r, f) = gaussian_table(s);
        half.push(r);
        y_freq.extend(f);
    }
    out.i32("y.scale_threshold", &thresholds);
    out.i32("y.half_width", &half);
    out.u16("y.frequency", &y_freq);

    // Metadata (spec 7.2): a single JSON entry so that the file bytes are deterministic.
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    for key in ["lambda", "steps", "data", "quality"] {
        if let Some(v) = src_meta.get(key) {
            meta.insert(key.into(), v.clone());
        }
    }
    meta.extend(opts.extra.clone());
    meta.insert("format".into(), MODEL_FORMAT.into());
    meta.insert(
        "architecture".into(),
        Architecture::HyperpriorV1.name().into(),
    );
    meta.insert("name".into(), opts.name.clone());
    meta.insert("N".into(), n.to_string());
    meta.insert("M".into(), m.to_string());
    meta.insert("mean_frac_bits".into(), MEAN_FRAC_BITS.to_string());
    meta.insert("ans_precision".into(), "16".into());
    if let Some(q) = opts.quality {
        meta.insert("quality".into(), q.to_string());
    }
    meta.entry("quality".into()).or_insert_with(|| "0".into());
    out.finish(&meta)
}

/// The float hyper-synthesis of a float export, for measuring what the integer h_s costs
/// (spec 12.2). Not used by the codec.
pub fn float_hyper_synthesis(
    float_export: &[u8],
) -> Result<crate::transform::Sequential, ModelError> {
    let st = SafeTensors::deserialize(float_export)
        .map_err(|e| ModelError::Safetensors(e.to_string()))?;
    let (shape, _) = read_f32(&st, "h_s.0.weight")?;
    let (seq, _) = read_sequential(&st, "h_s", &H_S, shape.first().copied().unwrap_or(0))?;
    Ok(seq)
}
