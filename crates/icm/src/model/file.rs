use super::{Architecture, ModelError};
use crate::entropy::{CdfTable, UniformTables};
use crate::hyper::{HyperOutputs, HyperSynthesis, IntLayer, IntLayerKind};
use crate::transform::{Conv2d, ConvTranspose2d, Gdn, Layer, Sequential};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Value of the `format` metadata entry of a model file (spec 7.2).
pub const MODEL_FORMAT: &str = "icm-model-1";
/// The layer types of the float transforms (spec 7.3, 11).
#[derive(Debug, Clone, Copy)]
pub(crate) enum FloatLayer {
    /// Ordinary convolution: stride, and the kernel size when the architecture fixes it.
    Conv(usize, Option<usize>),
    Transposed,
    Gdn,
    Igdn,
    Relu,
    /// LeakyReLU with the slope of spec 11.1.
    LeakyRelu,
}

/// g_a of `hyperprior-v1`: four stride-2 5x5 convolutions with GDN between them.
pub(crate) const G_A: [FloatLayer; 7] = [
    FloatLayer::Conv(2, Some(5)),
    FloatLayer::Gdn,
    FloatLayer::Conv(2, Some(5)),
    FloatLayer::Gdn,
    FloatLayer::Conv(2, Some(5)),
    FloatLayer::Gdn,
    FloatLayer::Conv(2, Some(5)),
];
/// h_a: 3x3 stride 1, ReLU, 5x5 stride 2, ReLU, 5x5 stride 2.
pub(crate) const H_A: [FloatLayer; 5] = [
    FloatLayer::Conv(1, Some(3)),
    FloatLayer::Relu,
    FloatLayer::Conv(2, Some(5)),
    FloatLayer::Relu,
    FloatLayer::Conv(2, Some(5)),
];
/// h_a of `mbt2018-mean`: h_a with LeakyReLU (spec 11.1).
pub(crate) const H_A_LEAKY: [FloatLayer; 5] = [
    FloatLayer::Conv(1, Some(3)),
    FloatLayer::LeakyRelu,
    FloatLayer::Conv(2, Some(5)),
    FloatLayer::LeakyRelu,
    FloatLayer::Conv(2, Some(5)),
];
/// h_s (float form, used only by the model builder): see spec 9.1.
pub(crate) const H_S: [FloatLayer; 5] = [
    FloatLayer::Transposed,
    FloatLayer::Relu,
    FloatLayer::Transposed,
    FloatLayer::Relu,
    FloatLayer::Conv(1, None),
];
/// g_s: four transposed 5x5 convolutions with inverse GDN between them.
pub(crate) const G_S: [FloatLayer; 7] = [
    FloatLayer::Transposed,
    FloatLayer::Igdn,
    FloatLayer::Transposed,
    FloatLayer::Igdn,
    FloatLayer::Transposed,
    FloatLayer::Igdn,
    FloatLayer::Transposed,
];

/// A loaded, validated model (spec 7).
#[derive(Debug)]
pub struct Model {
    /// `name` metadata entry; streams carry it (spec 4.1).
    pub name: String,
    /// `quality` metadata entry (zoo quality index).
    pub quality: u8,
    /// `architecture` metadata entry (spec 7.2.1).
    pub architecture: Architecture,
    /// SHA-256 of the model file: the model id (spec 7.1).
    pub sha256: [u8; 32],
    /// All metadata entries.
    pub metadata: BTreeMap<String, String>,
    /// Analysis transform (absent in decoder-only files).
    pub g_a: Option<Sequential>,
    /// Hyper-analysis transform (absent in decoder-only files).
    pub h_a: Option<Sequential>,
    /// Synthesis transform.
    pub g_s: Sequential,
    /// Integer hyper-synthesis.
    pub h_s: HyperSynthesis,
    /// Per channel of z^: value of symbol 0 and the table (spec 7.4).
    pub z_tables: Vec<(i32, CdfTable)>,
    /// Per scale index: value of symbol 0 (`-R`) and the table (spec 7.4).
    pub y_tables: Vec<(i32, CdfTable)>,
    /// The escape tables (spec 8.5).
    pub uniform: UniformTables,
}

pub(crate) fn tensor<'a>(
    st: &'a SafeTensors<'a>,
    name: &str,
) -> Result<TensorView<'a>, ModelError> {
    st.tensor(name)
        .map_err(|_| ModelError::MissingTensor(name.to_string()))
}

fn bad(name: &str, what: impl Into<String>) -> ModelError {
    ModelError::BadTensor {
        name: name.to_string(),
        what: what.into(),
    }
}

/// Reads a float tensor stored as F32 or F16.
pub(crate) fn read_f32(
    st: &SafeTensors<'_>,
    name: &str,
) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
    let t = tensor(st, name)?;
    let data = t.data();
    let v = match t.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        d => return Err(bad(name, format!("dtype {d:?}, expected F32 or F16"))),
    };
    Ok((t.shape().to_vec(), v))
}

/// Reads a rank-1 integer tensor.
fn read_vector(st: &SafeTensors<'_>, name: &str, dtype: Dtype) -> Result<Vec<i64>, ModelError> {
    let (shape, v) = read_int(st, name, dtype)?;
    expect_shape(name, &shape, 1)?;
    Ok(v)
}

fn read_int(
    st: &SafeTensors<'_>,
    name: &str,
    dtype: Dtype,
) -> Result<(Vec<usize>, Vec<i64>), ModelError> {
    let t = tensor(st, name)?;
    if t.dtype() != dtype {
        return Err(bad(
            name,
            format!("dtype {:?}, expected {dtype:?}", t.dtype()),
        ));
    }
    let d = t.data();
    let v: Vec<i64> = match dtype {
        Dtype::I8 => d.iter().map(|&b| i64::from(b as i8)).collect(),
        Dtype::U8 => d.iter().map(|&b| i64::from(b)).collect(),
        Dtype::U16 => d
            .chunks_exact(2)
            .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => return Err(bad(name, "unsupported integer dtype")),
    };
    Ok((t.shape().to_vec(), v))
}

fn expect_shape(name: &str, shape: &[usize], rank: usize) -> Result<(), ModelError> {
    if shape.len() != rank {
        return Err(bad(name, format!("rank {} (expected {rank})", shape.len())));
    }
    Ok(())
}

/// Checks a shape exactly (spec 7.5: every tensor has exactly the shape given).
fn expect_dims(name: &str, shape: &[usize], want: &[usize]) -> Result<(), ModelError> {
    if shape != want {
        return Err(bad(name, format!("shape {shape:?}, expected {want:?}")));
    }
    Ok(())
}

/// The dtypes a model file may hold (spec 7.1).
const DTYPES: [Dtype; 6] = [
    Dtype::I8,
    Dtype::U8,
    Dtype::U16,
    Dtype::I32,
    Dtype::F16,
    Dtype::F32,
];

/// Loads a float transform `prefix.{i}` with the layer list `spec`.
pub(crate) fn read_sequential(
    st: &SafeTensors<'_>,
    prefix: &'static str,
    spec: &[FloatLayer],
    cin: usize,
) -> Result<(Sequential, usize), ModelError> {
    let mut layers = Vec::with_capacity(spec.len());
    for (i, kind) in spec.iter().enumerate() {
        let w = format!("{prefix}.{i}.weight");
        let b = format!("{prefix}.{i}.bias");
        let layer = match *kind {
            FloatLayer::Conv(stride, k) => {
                let (shape, weight) = read_f32(st, &w)?;
                expect_shape(&w, &shape, 4)?;
                let (bias_shape, bias) = read_f32(st, &b)?;
                expect_dims(&b, &bias_shape, &shape[..1])?;
                if shape[2] != shape[3] || shape[2] % 2 == 0 {
                    return Err(bad(&w, "kernel must be square and odd"));
                }
                if k.is_some_and(|k| shape[2] != k) {
                    return Err(bad(&w, format!("kernel {}, expected {k:?}", shape[2])));
                }
                Layer::Conv(Conv2d {
                    cin: shape[1],
                    cout: shape[0],
                    k: shape[2],
                    stride,
                    weight,
                    bias,
                })
            }
            FloatLayer::Transposed => {
                let (shape, weight) = read_f32(st, &w)?;
                expect_shape(&w, &shape, 4)?;
                let (bias_shape, bias) = read_f32(st, &b)?;
                expect_dims(&b, &bias_shape, &shape[1..2])?;
                if shape[2] != 5 || shape[3] != 5 {
                    return Err(bad(&w, "transposed convolutions are 5x5"));
                }
                Layer::ConvTranspose(
                    ConvTranspose2d::new(shape[0], shape[1], 5, weight, bias)
                        .map_err(|e| bad(&w, e.to_string()))?,
                )
            }
            FloatLayer::Gdn | FloatLayer::Igdn => {
                let bn = format!("{prefix}.{i}.beta");
                let gn = format!("{prefix}.{i}.gamma");
                let (beta_shape, beta) = read_f32(st, &bn)?;
                expect_shape(&bn, &beta_shape, 1)?;
                let (gamma_shape, gamma) = read_f32(st, &gn)?;
                expect_dims(&gn, &gamma_shape, &[beta.len(), beta.len()])?;
                Layer::Gdn(Gdn {
                    c: beta.len(),
                    beta,
                    gamma,
                    inverse: matches!(kind, FloatLayer::Igdn),
                })
            }
            FloatLayer::Relu => Layer::Relu,
            FloatLayer::LeakyRelu => Layer::LeakyRelu(super::architecture::LEAKY_SLOPE),
        };
        layers.push(layer);
    }
    let seq = Sequential { layers };
    let cout = seq
        .validate(cin)
        .map_err(|source| ModelError::TransformLayers {
            name: prefix,
            source,
        })?;
    Ok((seq, cout))
}

/// Reads the `icm` metadata entry: a JSON object of strings (spec 7.2).
pub(crate) fn read_metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>, ModelError> {
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("icm"))
        .ok_or_else(|| ModelError::BadMetadata {
            key: "icm".into(),
            what: "missing".into(),
        })?;
    serde_json::from_str(json).map_err(|e| ModelError::BadMetadata {
        key: "icm".into(),
        what: e.to_string(),
    })
}

fn meta_usize(meta: &BTreeMap<String, String>, key: &str) -> Result<usize, ModelError> {
    meta.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ModelError::BadMetadata {
            key: key.into(),
            what: "missing or not an integer".into(),
        })
}

fn read_int_layer(
    st: &SafeTensors<'_>,
    index: usize,
    kind: IntLayerKind,
    leaky: bool,
) -> Result<IntLayer, ModelError> {
    let p = format!("h_s.{index}");
    let wn = format!("{p}.weight");
    let (shape, w) = read_int(st, &wn, Dtype::I8)?;
    expect_shape(&wn, &shape, 4)?;
    let (cin, cout) = match kind {
        IntLayerKind::Transposed => (shape[0], shape[1]),
        IntLayerKind::Conv => (shape[1], shape[0]),
    };
    if shape[2] != shape[3] {
        return Err(bad(&wn, "kernel must be square"));
    }
    if kind == IntLayerKind::Transposed && shape[2] != 5 {
        return Err(bad(&wn, format!("kernel {}, h_s.{index} is 5x5", shape[2])));
    }
    let per_channel = |what: &str, dtype| -> Result<Vec<i64>, ModelError> {
        let name = format!("{p}.{what}");
        let (s, v) = read_int(st, &name, dtype)?;
        expect_dims(&name, &s, &[cout])?;
        Ok(v)
    };
    let b = per_channel("bias", Dtype::I32)?;
    let m = per_channel("multiplier", Dtype::I32)?;
    let s = per_channel("shift", Dtype::U8)?;
    let layer = IntLayer::new(
        index,
        kind,
        cin,
        cout,
        shape[2],
        w.iter().map(|&v| v as i8).collect(),
        b.iter().map(|&v| v as i32).collect(),
        m.iter().map(|&v| v as i32).collect(),
        s.iter().map(|&v| v as u8).collect(),
    )?;
    if !leaky {
        return Ok(layer);
    }
    let neg = per_channel("negative_multiplier", Dtype::I32)?;
    Ok(layer.with_negative_multiplier(index, neg.iter().map(|&v| v as i32).collect())?)
}

/// Reads concatenated frequency tables `prefix.frequency` split by `sizes` (spec 7.4).
fn read_tables(
    st: &SafeTensors<'_>,
    prefix: &str,
    sizes: &[i64],
    offsets: &[i64],
) -> Result<Vec<(i32, CdfTable)>, ModelError> {
    let name = format!("{prefix}.frequency");
    let freq = read_vector(st, &name, Dtype::U16)?;
    let total: i64 = sizes.iter().sum();
    if sizes.iter().any(|&s| s < 2) || total != freq.len() as i64 {
        return Err(bad(
            &name,
            format!("{} entries, sizes add up to {total}", freq.len()),
        ));
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0usize;
    for (&size, &offset) in sizes.iter().zip(offsets) {
        let f: Vec<u32> = freq[start..start + size as usize]
            .iter()
            .map(|&v| v as u32)
            .collect();
        start += size as usize;
        if !(-(1 << 20)..=(1 << 20)).contains(&offset) {
            return Err(bad(&name, format!("offset {offset} out of range")));
        }
        out.push((offset as i32, CdfTable::from_frequencies(&f)?));
    }
    Ok(out)
}

impl Model {
    /// Parses and validates a model file (spec 7.5). The SHA-256 of `bytes` is its id.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let metadata = read_metadata(bytes)?;
        let check = |key: &str, want: &str| -> Result<(), ModelError> {
            match metadata.get(key) {
                Some(v) if v == want => Ok(()),
                other => Err(ModelError::BadMetadata {
                    key: key.into(),
                    what: format!("{other:?}, this decoder implements {want:?}"),
                }),
            }
        };
        check("format", MODEL_FORMAT)?;
        let architecture = metadata
            .get("architecture")
            .and_then(|a| Architecture::from_name(a))
            .ok_or_else(|| ModelError::BadMetadata {
                key: "architecture".into(),
                what: format!(
                    "{:?}, this decoder implements {}",
                    metadata.get("architecture"),
                    Architecture::ALL.map(|a| a.name()).join(", ")
                ),
            })?;
        check("mean_frac_bits", "8")?;
        check("ans_precision", "16")?;
        let name = metadata.get("name").cloned().unwrap_or_default();
        if name.is_empty() || name.len() > 64 {
            return Err(ModelError::BadMetadata {
                key: "name".into(),
                what: "must be 1..=64 bytes".into(),
            });
        }
        let quality = meta_usize(&metadata, "quality")?.min(255) as u8;
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))?;
        // The file rules of 7.5 (offsets tiling the data section exactly) are safetensors'
        // own; the dtypes are narrower.
        for (name, t) in st.tensors() {
            if !DTYPES.contains(&t.dtype()) {
                return Err(bad(
                    &name,
                    format!("dtype {:?} is not one of spec 7.1", t.dtype()),
                ));
            }
        }

        let leaky = architecture.leaky_hyper_synthesis();
        let mut h_s = HyperSynthesis::new(
            [
                read_int_layer(&st, 0, IntLayerKind::Transposed, leaky)?,
                read_int_layer(&st, 2, IntLayerKind::Transposed, leaky)?,
                read_int_layer(&st, 4, IntLayerKind::Conv, false)?,
            ],
            read_vector(&st, "y.scale_threshold", Dtype::I32)?
                .iter()
                .map(|&v| v as i32)
                .collect(),
            if architecture.scale_only() {
                HyperOutputs::Scales
            } else {
                HyperOutputs::ScalesAndMeans
            },
        )?;
        if architecture.z_median() {
            let median = read_vector(&st, "z.median", Dtype::I32)?;
            h_s = h_s.with_median(median.iter().map(|&v| v as i32).collect())?;
        }
        let n = h_s.hyper_channels();
        let m = h_s.latent_channels();

        let z_size = read_vector(&st, "z.size", Dtype::I32)?;
        let z_offset = read_vector(&st, "z.offset", Dtype::I32)?;
        if z_size.len() != n || z_offset.len() != n {
            return Err(bad(
                "z.size",
                format!("{} tables for {n} hyper channels", z_size.len()),
            ));
        }
        let z_tables = read_tables(&st, "z", &z_size, &z_offset)?;

        let half = read_vector(&st, "y.half_width", Dtype::I32)?;
        if half.len() != h_s.scale_thresholds.len() + 1
            || half.iter().any(|&r| !(0..=32767).contains(&r))
        {
            return Err(bad(
                "y.half_width",
                "needs one entry in 0..=32767 per scale index (thresholds + 1)",
            ));
        }
        let sizes: Vec<i64> = half.iter().map(|&r| 2 * r + 2).collect();
        let offsets: Vec<i64> = half.iter().map(|&r| -r).collect();
        let y_tables = read_tables(&st, "y", &sizes, &offsets)?;

        let (g_s, out) = read_sequential(&st, "g_s", &G_S, m)?;
        if out != 3 {
            return Err(ModelError::Transform {
                name: "g_s",
                what: format!("{out} output channels, expected 3"),
            });
        }
        let g_a = if st.tensor("g_a.0.weight").is_ok() {
            let (g_a, out) = read_sequential(&st, "g_a", &G_A, 3)?;
            if out != m {
                return Err(ModelError::Transform {
                    name: "g_a",
                    what: format!("{out} outputs, M = {m}"),
                });
            }
            Some(g_a)
        } else {
            None
        };
        let h_a = if st.tensor("h_a.0.weight").is_ok() {
            let layers: &[FloatLayer] = if architecture.leaky_hyper_analysis() {
                &H_A_LEAKY
            } else {
                &H_A
            };
            let (h_a, out) = read_sequential(&st, "h_a", layers, m)?;
            if out != n {
                return Err(ModelError::Transform {
                    name: "h_a",
                    what: format!("{out} outputs, N = {n}"),
                });
            }
            Some(h_a)
        } else {
            None
        };
        Ok(Self {
            name,
            quality,
            architecture,
            sha256,
            metadata,
            g_a,
            h_a,
            g_s,
            h_s,
            z_tables,
            y_tables,
            uniform: UniformTables::new(),
        })
    }

    /// Reads and parses a model file.
    pub fn from_path(path: &std::path::Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| ModelError::InFile {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// Channels of y^ (M).
    pub fn latent_channels(&self) -> usize {
        self.h_s.latent_channels()
    }

    /// Channels of z^ (N).
    pub fn hyper_channels(&self) -> usize {
        self.h_s.hyper_channels()
    }

    /// The model id as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        crate::hex::hex(&self.sha256)
    }
}
