//! CompressAI's `bmshj2018-hyperprior` (`ScaleHyperprior`) and `mbt2018-mean`
//! (`MeanScaleHyperprior`) as icm model files (spec 7.2.1, 12.5).
//!
//! The float transforms g_a, h_a and g_s are copied (GDN parameters converted from
//! CompressAI's reparametrisation), h_s becomes the integer h_s of spec 9 calibrated on
//! pictures ([`crate::calibrate`]), the z medians become `z.median`, and the entropy tables
//! are CompressAI's own quantised CDFs where the checkpoint holds them.

use crate::calibrate::{calibrate, FloatHyper};
use crate::torch::Tensor;
use crate::ImportError;
use icm::codec::RgbImage;
use icm::hyper::{MAX_MEDIAN, MEAN_FRAC_BITS};
use icm::model::tables::{gaussian_table, hyper_table, scale_table};
use icm::model::{quantise_hs_layer, Architecture, Model, ModelWriter, LEAKY_SLOPE, MODEL_FORMAT};
use icm::transform::{Conv2d, ConvTranspose2d, Layer, Sequential};
use std::collections::BTreeMap;

/// A PyTorch state dict: parameter and buffer names to tensors.
pub type StateDict = BTreeMap<String, Tensor>;

/// The CompressAI model families icm imports (`compressai.zoo` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressaiArch {
    /// `bmshj2018-hyperprior`: `compressai.models.ScaleHyperprior`.
    Bmshj2018Hyperprior,
    /// `mbt2018-mean`: `compressai.models.MeanScaleHyperprior`.
    Mbt2018Mean,
}

impl CompressaiArch {
    /// Both families.
    pub const ALL: [CompressaiArch; 2] = [
        CompressaiArch::Bmshj2018Hyperprior,
        CompressaiArch::Mbt2018Mean,
    ];

    /// The `compressai.zoo` name, which is also the icm architecture's name.
    pub fn name(self) -> &'static str {
        self.architecture().name()
    }

    /// The icm architecture (spec table 7-1).
    pub fn architecture(self) -> Architecture {
        match self {
            CompressaiArch::Bmshj2018Hyperprior => Architecture::Bmshj2018Hyperprior,
            CompressaiArch::Mbt2018Mean => Architecture::Mbt2018Mean,
        }
    }

    /// The family named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The model family of the checkpoint.
    pub arch: CompressaiArch,
    /// Model name carried by streams (1..=64 bytes, spec 7.2).
    pub name: String,
    /// Quality index written into the metadata (informative).
    pub quality: Option<u8>,
    /// Pictures on which the integer h_s is calibrated (spec 12.2).
    pub calibration: Vec<RgbImage>,
    /// Where the calibration pictures came from, for the metadata.
    pub calibration_source: String,
    /// Store the float transforms as F16 (half the file) instead of F32 (CompressAI's own
    /// precision).
    pub f16: bool,
    /// Informative metadata entries to add (e.g. the checkpoint's SHA-256).
    pub extra: BTreeMap<String, String>,
}

/// Where the entropy tables of an imported model come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSource {
    /// CompressAI's quantised CDFs stored in the checkpoint (after `net.update()`).
    Checkpoint,
    /// Rebuilt by spec 12.3 from the learned densities (the checkpoint had no CDFs).
    Rebuilt,
}

/// What an import measured and chose.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Channels of z (N) and of y (M).
    pub n: usize,
    /// Channels of y.
    pub m: usize,
    /// Largest activation of the two hidden layers of the float h_s on the calibration
    /// pictures: the `act_max` of spec 12.2.
    pub act_max: [f64; 2],
    /// Largest `|median|` of z.
    pub max_abs_median: f64,
    /// Source of the z tables.
    pub z_tables: TableSource,
    /// Source of the y tables.
    pub y_tables: TableSource,
}

/// An integer tensor: shape and elements.
type IntTensor = (Vec<usize>, Vec<i64>);

/// Reads tensors of a state dict for one architecture, naming it in errors.
struct Reader<'a> {
    state: &'a StateDict,
    arch: &'static str,
}

impl Reader<'_> {
    fn get(&self, name: &str) -> Result<&Tensor, ImportError> {
        self.state.get(name).ok_or_else(|| ImportError::Missing {
            name: name.into(),
            arch: self.arch,
        })
    }

    /// A float tensor of rank `rank` (any float or integer dtype, converted to f32).
    fn f32(&self, name: &str, rank: usize) -> Result<(Vec<usize>, Vec<f32>), ImportError> {
        let t = self.get(name)?;
        if t.shape.len() != rank {
            return Err(bad(
                name,
                format!("shape {:?}, expected rank {rank}", t.shape),
            ));
        }
        let v = t.to_f32();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(bad(name, "holds a value that is not finite"));
        }
        Ok((t.shape.clone(), v))
    }

    /// An integer tensor (none when absent or empty: CompressAI's buffers are empty until
    /// `update()`).
    fn ints(&self, name: &str) -> Result<Option<IntTensor>, ImportError> {
        match self.state.get(name) {
            None => Ok(None),
            Some(t) if t.numel() == 0 => Ok(None),
            Some(t) => {
                let v = t
                    .to_i64()
                    .ok_or_else(|| bad(name, "expected an integer tensor"))?;
                Ok(Some((t.shape.clone(), v)))
            }
        }
    }

    fn conv(&self, prefix: &str, stride: usize) -> Result<Conv2d, ImportError> {
        let w = format!("{prefix}.weight");
        let (shape, weight) = self.f32(&w, 4)?;
        let (_, bias) = self.f32(&format!("{prefix}.bias"), 1)?;
        if shape[2] != shape[3] || shape[2] % 2 == 0 || bias.len() != shape[0] {
            return Err(bad(
                &w,
                format!("shape {shape:?} with {} biases", bias.len()),
            ));
        }
        Ok(Conv2d {
            cin: shape[1],
            cout: shape[0],
            k: shape[2],
            stride,
            weight,
            bias,
        })
    }

    fn deconv(&self, prefix: &str) -> Result<ConvTranspose2d, ImportError> {
        let w = format!("{prefix}.weight");
        let (shape, weight) = self.f32(&w, 4)?;
        let (_, bias) = self.f32(&format!("{prefix}.bias"), 1)?;
        if shape[2] != 5 || shape[3] != 5 || bias.len() != shape[1] {
            return Err(bad(
                &w,
                format!("shape {shape:?}, expected [Cin, Cout, 5, 5]"),
            ));
        }
        ConvTranspose2d::new(shape[0], shape[1], 5, weight, bias)
            .map_err(|e| bad(&w, e.to_string()))
    }

    /// The effective GDN parameters (spec 12.5) of CompressAI's reparametrised `beta` and
    /// `gamma`, computed in f32 as CompressAI's `NonNegativeParametrizer` does: `max(x,
    /// bound)^2 - pedestal`, with the bound and pedestal buffers of the checkpoint where
    /// present.
    fn gdn(&self, prefix: &str) -> Result<(Vec<f32>, Vec<f32>), ImportError> {
        let pedestal_default = (2f64.powi(-18) * 2f64.powi(-18)) as f32;
        let param = |name: &str, minimum: f64| -> Result<Vec<f32>, ImportError> {
            let full = format!("{prefix}.{name}");
            let (_, v) = self.f32(&full, if name == "beta" { 1 } else { 2 })?;
            let scalar = |buffer: String, default: f32| -> Result<f32, ImportError> {
                match self.state.get(&buffer) {
                    Some(t) => t
                        .to_f32()
                        .first()
                        .copied()
                        .ok_or_else(|| bad(&buffer, "empty")),
                    None => Ok(default),
                }
            };
            let pedestal = scalar(
                format!("{prefix}.{name}_reparam.pedestal"),
                pedestal_default,
            )?;
            let bound = scalar(
                format!("{prefix}.{name}_reparam.lower_bound.bound"),
                (minimum + f64::from(pedestal_default)).sqrt() as f32,
            )?;
            Ok(v.iter()
                .map(|&x| {
                    let b = x.max(bound);
                    b * b - pedestal
                })
                .collect())
        };
        let beta = param("beta", 1e-6)?;
        let gamma = param("gamma", 0.0)?;
        if gamma.len() != beta.len() * beta.len() {
            return Err(bad(
                &format!("{prefix}.gamma"),
                format!("{} values for {} channels", gamma.len(), beta.len()),
            ));
        }
        Ok((beta, gamma))
    }
}

fn bad(name: &str, what: impl Into<String>) -> ImportError {
    ImportError::BadTensor {
        name: name.into(),
        what: what.into(),
    }
}

/// Frequencies of CompressAI's quantised CDF row (`cdf[0..len]`, from 0 to `2^16`); none
/// when a frequency is 0 or the row does not end at `2^16`.
fn cdf_frequencies(row: &[i64]) -> Option<Vec<u32>> {
    if row.len() < 3 || row[0] != 0 || row[row.len() - 1] != 1 << 16 {
        return None;
    }
    row.windows(2)
        .map(|p| {
            let f = p[1] - p[0];
            (1..1 << 16).contains(&f).then_some(f as u32)
        })
        .collect()
}

/// Entropy tables: per table, the value of symbol 0 and the frequencies (spec 7.3).
type Tables = Vec<(i64, Vec<u32>)>;

/// The rows of a `_quantized_cdf` buffer `[rows, width]` cut to `_cdf_length`, with their
/// `_offset`; none if any is missing, empty or malformed.
fn compressai_tables(
    r: &Reader<'_>,
    prefix: &str,
    rows: usize,
) -> Result<Option<Tables>, ImportError> {
    let cdf = r.ints(&format!("{prefix}._quantized_cdf"))?;
    let len = r.ints(&format!("{prefix}._cdf_length"))?;
    let off = r.ints(&format!("{prefix}._offset"))?;
    let (Some((cshape, cdf)), Some((_, len)), Some((_, off))) = (cdf, len, off) else {
        return Ok(None);
    };
    if cshape.len() != 2 || cshape[0] != rows || len.len() != rows || off.len() != rows {
        return Ok(None);
    }
    let width = cshape[1];
    let mut out = Vec::with_capacity(rows);
    for c in 0..rows {
        let n = len[c];
        if !(3..=width as i64).contains(&n) {
            return Ok(None);
        }
        match cdf_frequencies(&cdf[c * width..c * width + n as usize]) {
            Some(f) => out.push((off[c], f)),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// One layer of the density of [`Density`].
struct DensityLayer {
    /// `softplus(matrix)`, `[channel][out][in]`.
    matrix: Vec<f64>,
    /// `[channel][out]`.
    bias: Vec<f64>,
    /// `tanh(factor)`, `[channel][out]` (none in the last layer).
    factor: Option<Vec<f64>>,
    outputs: usize,
    inputs: usize,
}

/// CompressAI's `EntropyBottleneck._logits_cumulative` for channel `c` at `x`, in f64.
struct Density {
    layers: Vec<DensityLayer>,
}

impl Density {
    fn read(r: &Reader<'_>, channels: usize) -> Result<Self, ImportError> {
        let mut layers = Vec::new();
        for i in 0.. {
            // CompressAI >= 1.2 names `matrices.{i}`; older checkpoints `_matrix{i}`.
            let pick = |new: String, old: String| {
                if r.state.contains_key(&new) {
                    Some(new)
                } else if r.state.contains_key(&old) {
                    Some(old)
                } else {
                    None
                }
            };
            let Some(mname) = pick(
                format!("entropy_bottleneck.matrices.{i}"),
                format!("entropy_bottleneck._matrix{i}"),
            ) else {
                break;
            };
            let (ms, m) = r.f32(&mname, 3)?;
            let bname = pick(
                format!("entropy_bottleneck.biases.{i}"),
                format!("entropy_bottleneck._bias{i}"),
            )
            .unwrap_or_else(|| format!("entropy_bottleneck.biases.{i}"));
            let (_, b) = r.f32(&bname, 3)?;
            let fname = pick(
                format!("entropy_bottleneck.factors.{i}"),
                format!("entropy_bottleneck._factor{i}"),
            );
            let f = match fname {
                Some(n) => Some(r.f32(&n, 3)?.1),
                None => None,
            };
            let (fout, fin) = (ms[1], ms[2]);
            if ms[0] != channels || b.len() != channels * fout {
                return Err(bad(&mname, format!("shape {ms:?} for {channels} channels")));
            }
            if f.as_ref().is_some_and(|f| f.len() != channels * fout) {
                return Err(bad(&mname, "factor of another shape"));
            }
            let softplus = |x: f64| if x > 30.0 { x } else { x.exp().ln_1p() };
            layers.push(DensityLayer {
                matrix: m.iter().map(|&x| softplus(f64::from(x))).collect(),
                bias: b.iter().map(|&x| f64::from(x)).collect(),
                factor: f.map(|f| f.iter().map(|&x| f64::from(x).tanh()).collect()),
                outputs: fout,
                inputs: fin,
            });
        }
        if layers.is_empty() {
            return Err(ImportError::Missing {
                name: "entropy_bottleneck.matrices.0".into(),
                arch: "CompressAI",
            });
        }
        Ok(Self { layers })
    }

    fn logit(&self, c: usize, x: f64) -> f64 {
        let mut v = vec![x];
        for l in &self.layers {
            let (fout, fin) = (l.outputs, l.inputs);
            if v.len() != fin {
                return f64::NAN;
            }
            let mut next = vec![0.0; fout];
            for (o, n) in next.iter_mut().enumerate() {
                let row = &l.matrix[(c * fout + o) * fin..(c * fout + o + 1) * fin];
                *n = row.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() + l.bias[c * fout + o];
                if let Some(f) = &l.factor {
                    *n += f[c * fout + o] * n.tanh();
                }
            }
            v = next;
        }
        v.first().copied().unwrap_or(f64::NAN)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Imports a CompressAI state dict as an icm model file (spec 12.5): the file's bytes, the
/// model loaded from them (the validation of spec 7.5, done once here), and the report.
pub fn import(
    state: &StateDict,
    opts: &ImportOptions,
) -> Result<(Vec<u8>, Model, ImportReport), ImportError> {
    let arch = opts.arch.architecture();
    let r = Reader {
        state,
        arch: opts.arch.name(),
    };
    let mut out = ModelWriter::default();
    let float = |out: &mut ModelWriter, name: &str, shape: Vec<usize>, v: &[f32]| {
        if opts.f16 {
            out.f16(name, shape, v);
        } else {
            out.f32(name, shape, v);
        }
    };

    // Float transforms (spec 11.1): g_a, g_s with GDN converted, h_a as is.
    for prefix in ["g_a", "g_s"] {
        for i in [0, 2, 4, 6] {
            for part in ["weight", "bias"] {
                let name = format!("{prefix}.{i}.{part}");
                let (shape, v) = r.f32(&name, if part == "weight" { 4 } else { 1 })?;
                float(&mut out, &name, shape, &v);
            }
        }
        for i in [1, 3, 5] {
            let (beta, gamma) = r.gdn(&format!("{prefix}.{i}"))?;
            let c = beta.len();
            float(&mut out, &format!("{prefix}.{i}.beta"), vec![c], &beta);
            float(&mut out, &format!("{prefix}.{i}.gamma"), vec![c, c], &gamma);
        }
    }
    for i in [0, 2, 4] {
        for part in ["weight", "bias"] {
            let name = format!("h_a.{i}.{part}");
            let (shape, v) = r.f32(&name, if part == "weight" { 4 } else { 1 })?;
            float(&mut out, &name, shape, &v);
        }
    }

    // z medians (spec 9.2, 12.5).
    let (qshape, quantiles) = r.f32("entropy_bottleneck.quantiles", 3)?;
    if qshape[1] != 1 || qshape[2] != 3 {
        return Err(bad(
            "entropy_bottleneck.quantiles",
            format!("shape {qshape:?}, expected [N, 1, 3]"),
        ));
    }
    let n = qshape[0];
    let medians: Vec<f64> = (0..n).map(|c| f64::from(quantiles[c * 3 + 1])).collect();
    let med: Vec<i32> = medians
        .iter()
        .map(|m| (m * f64::from(1u32 << MEAN_FRAC_BITS)).round())
        .map(|v| {
            if v.abs() <= f64::from(MAX_MEDIAN) {
                Ok(v as i32)
            } else {
                Err(bad(
                    "entropy_bottleneck.quantiles",
                    format!(
                        "a median of {} is outside the range of z.median (+-128)",
                        v / 256.0
                    ),
                ))
            }
        })
        .collect::<Result<_, _>>()?;

    // The float h_s, calibrated on pictures (spec 12.2).
    let hyper = FloatHyper {
        g_a: Sequential {
            layers: (0..7)
                .map(|i| -> Result<Layer, ImportError> {
                    if i % 2 == 0 {
                        Ok(Layer::Conv(r.conv(&format!("g_a.{i}"), 2)?))
                    } else {
                        let (beta, gamma) = r.gdn(&format!("g_a.{i}"))?;
                        Ok(Layer::Gdn(icm::transform::Gdn {
                            c: beta.len(),
                            beta,
                            gamma,
                            inverse: false,
                        }))
                    }
                })
                .collect::<Result<_, _>>()?,
        },
        h_a: {
            let act = if arch.leaky_hyper_analysis() {
                Layer::LeakyRelu(LEAKY_SLOPE)
            } else {
                Layer::Relu
            };
            Sequential {
                layers: vec![
                    Layer::Conv(r.conv("h_a.0", 1)?),
                    act.clone(),
                    Layer::Conv(r.conv("h_a.2", 2)?),
                    act,
                    Layer::Conv(r.conv("h_a.4", 2)?),
                ],
            }
        },
        abs_input: arch.hyper_analysis_of_abs(),
        h_s: [
            Layer::ConvTranspose(r.deconv("h_s.0")?),
            Layer::ConvTranspose(r.deconv("h_s.2")?),
            Layer::Conv(r.conv("h_s.4", 1)?),
        ],
        negative_slope: arch.leaky_hyper_synthesis().then_some(LEAKY_SLOPE),
        median: med.iter().map(|&v| v as f32 / 256.0).collect(),
    };
    let (m, _, hs_out) = hyper.validate()?;
    let want_out = if arch.scale_only() { m } else { 2 * m };
    if hs_out != want_out {
        return Err(bad(
            "h_s.4.weight",
            format!(
                "{hs_out} outputs, a {} with M = {m} has {want_out}",
                opts.arch.name()
            ),
        ));
    }
    let act_max = calibrate(&hyper, &opts.calibration)?;

    let act_scale = |a: f64| a / 255.0;
    let fixed = f64::from(MEAN_FRAC_BITS).exp2().recip();
    let steps = [
        (0, true, 1.0, act_scale(act_max[0])),
        (2, true, act_scale(act_max[0]), act_scale(act_max[1])),
        (4, false, act_scale(act_max[1]), fixed),
    ];
    for (index, transposed, s_in, s_out) in steps {
        let (shape, w) = r.f32(&format!("h_s.{index}.weight"), 4)?;
        let (_, b) = r.f32(&format!("h_s.{index}.bias"), 1)?;
        let layer = quantise_hs_layer(&shape, &w, &b, transposed, s_in, s_out)?;
        let slope = (index < 4).then_some(()).and(hyper.negative_slope);
        out.int_layer(index, &layer, slope.map(f64::from));
    }

    // z tables (spec 12.5): CompressAI's CDFs, or rebuilt from the density.
    let (z_tables, z_source) = match compressai_tables(&r, "entropy_bottleneck", n)? {
        Some(t) => (t, TableSource::Checkpoint),
        None => {
            let density = Density::read(&r, n)?;
            let mut tables = Vec::with_capacity(n);
            for c in 0..n {
                let (q0, m_c, q2) = (
                    f64::from(quantiles[c * 3]),
                    medians[c],
                    f64::from(quantiles[c * 3 + 2]),
                );
                let minima = (m_c - q0).ceil().clamp(0.0, 4096.0) as i32;
                let maxima = (q2 - m_c).ceil().clamp(0.0, 4096.0) as i32;
                let centre = f64::from(med[c]) / 256.0;
                let pmf: Vec<f64> = (-minima..=maxima)
                    .map(|v| {
                        let x = f64::from(v) + centre;
                        let p =
                            sigmoid(density.logit(c, x + 0.5)) - sigmoid(density.logit(c, x - 0.5));
                        if p.is_finite() {
                            p.max(0.0)
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let (off, f) = hyper_table(&pmf, -minima);
                tables.push((i64::from(off), f));
            }
            (tables, TableSource::Rebuilt)
        }
    };
    out.i32(
        "z.offset",
        &z_tables.iter().map(|t| t.0 as i32).collect::<Vec<_>>(),
    );
    out.i32(
        "z.size",
        &z_tables
            .iter()
            .map(|t| t.1.len() as i32)
            .collect::<Vec<_>>(),
    );
    out.u16(
        "z.frequency",
        &z_tables
            .iter()
            .flat_map(|t| t.1.clone())
            .collect::<Vec<_>>(),
    );
    out.i32("z.median", &med);

    // y tables and thresholds (spec 12.5).
    let scales: Vec<f64> = match r.state.get("gaussian_conditional.scale_table") {
        Some(t) if t.numel() >= 2 => t.to_f32().iter().map(|&s| f64::from(s)).collect(),
        _ => scale_table(),
    };
    let thresholds: Vec<i32> = scales[..scales.len() - 1]
        .iter()
        .map(|s| (s * 256.0).round() as i32)
        .collect();
    if thresholds.windows(2).any(|t| t[0] >= t[1]) || thresholds.len() > 255 {
        return Err(bad(
            "gaussian_conditional.scale_table",
            "the scales in units of 1/256 are not strictly increasing (or more than 256)",
        ));
    }
    let (y_tables, y_source) = match compressai_tables(&r, "gaussian_conditional", scales.len())? {
        Some(t)
            if t.iter()
                .all(|(off, f)| *off <= 0 && f.len() as i64 == 2 * -off + 2) =>
        {
            (t, TableSource::Checkpoint)
        }
        _ => (
            scales
                .iter()
                .map(|&s| {
                    let (r, f) = gaussian_table(s);
                    (-i64::from(r), f)
                })
                .collect(),
            TableSource::Rebuilt,
        ),
    };
    out.i32("y.scale_threshold", &thresholds);
    out.i32(
        "y.half_width",
        &y_tables.iter().map(|t| -t.0 as i32).collect::<Vec<_>>(),
    );
    out.u16(
        "y.frequency",
        &y_tables
            .iter()
            .flat_map(|t| t.1.clone())
            .collect::<Vec<_>>(),
    );

    // Metadata (spec 7.2).
    let mut meta: BTreeMap<String, String> = opts.extra.clone();
    let mut set = |k: &str, v: String| {
        meta.insert(k.into(), v);
    };
    set("format", MODEL_FORMAT.into());
    set("architecture", arch.name().into());
    set("name", opts.name.clone());
    set("quality", opts.quality.unwrap_or(0).to_string());
    set("N", n.to_string());
    set("M", m.to_string());
    set("mean_frac_bits", MEAN_FRAC_BITS.to_string());
    set("ans_precision", "16".into());
    set("source", format!("CompressAI {}", opts.arch.name()));
    set(
        "calibration",
        format!(
            "{} ({} pictures); act_max {:.6} {:.6}",
            opts.calibration_source,
            opts.calibration.len(),
            act_max[0],
            act_max[1]
        ),
    );
    let bytes = out.finish(&meta)?;
    // The file must load (spec 7.5): a failure here is a bug of the importer or a model
    // outside icm's limits, reported before anything is written.
    let model = Model::from_bytes(&bytes)?;
    Ok((
        bytes,
        model,
        ImportReport {
            n,
            m,
            act_max,
            max_abs_median: medians.iter().fold(0.0, |a, m| a.max(m.abs())),
            z_tables: z_source,
            y_tables: y_source,
        },
    ))
}
