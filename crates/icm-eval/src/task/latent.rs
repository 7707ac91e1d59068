//! Task decoders on the decoded latents y^, without g_s (issue 8; Torfason et al.,
//! "Towards Image Understanding from Deep Compression without Decoding", ICLR 2018).
//!
//! [`LatentMobileNetV2`] is the shared classifier
//! (`classification/mobilenet_v2_1.0_224_quant.onnx`) with everything before its first
//! stride-16 projection (`expanded_conv_6/project`, 64 channels) replaced by a stem that
//! reads y^ (192 channels at stride 16). The stem is trained by distillation from the
//! pixel network (`models/training/icm_training/latent/`) and shipped in `models/tasks/`;
//! `scripts/compose_latent_tasks.py` (run by `scripts/setup_onnxruntime.sh`) joins it to the
//! classifier's tail in [`super::dct::composed_model_dir`].
//!
//! Input geometry. The pixel classifier resizes the picture to a shorter side of 256 and
//! crops the centre 224x224 ([`super::classification::crop_geometry`]); its stride-16
//! tensor is a 14x14 grid over that crop. y^ (spec 5.3, 10) is a stride-16 grid over the
//! coded picture at its own size. [`sample_crop`] maps the centre of each of the 14x14
//! crop cells back into the coded picture (half-pixel convention of the bilinear resize)
//! and samples y^ / 256 there bilinearly, clamped to the grid: the stem sees y^ resampled
//! the way the classifier's pre-processing resamples pixels. For a 256x256 picture (no
//! resize, crop offset 16) the positions are the cells 1..14 themselves.

use super::classification::{class_scores, crop_geometry, CROP};
use super::dct::composed_model_dir;
use super::runtime::OnnxModel;
use super::{LatentTensor, TaskDecoder, TaskError, TaskInput, TaskInputKind, TaskKind, TaskOutput};
use icm::transform::{Layer, Sequential};
use std::path::{Path, PathBuf};

/// Side of the stem's input grid: the classifier's crop at stride 16.
pub const GRID: usize = CROP as usize / 16;
/// The composed classifier in [`composed_model_dir`].
pub const CLASSIFIER_FILE: &str = "mobilenet_v2_latent.onnx";
/// Fixed-point scale of y^ (spec 10: units of 2^-8).
const FRAC: f64 = 256.0;

/// Positions, in y^ cells, of the centres of `n` crop cells along one axis of a picture
/// of side `size` resized to `resized` and cropped from `offset`: the centre of cell j,
/// `offset + 16 j + 7.5` in the resized picture, lies at
/// `(offset + 16 j + 8) * size / resized - 0.5` in the picture, and y^ cell k is centred on
/// pixel `16 k + 7.5`.
pub fn sample_positions(size: u32, resized: u32, offset: u32, n: usize) -> Vec<f64> {
    let scale = f64::from(size) / f64::from(resized.max(1));
    (0..n)
        .map(|j| ((f64::from(offset) + 16.0 * j as f64 + 8.0) * scale - 8.0) / 16.0)
        .collect()
}

/// Bilinear taps of a position on a grid of `cells`, clamped to it: (i0, i1, fraction of
/// i1).
fn bilinear_taps(pos: f64, cells: usize) -> (usize, usize, f64) {
    let last = cells.saturating_sub(1);
    let p = pos.clamp(0.0, last as f64);
    let i0 = (p.floor() as usize).min(last);
    (i0, (i0 + 1).min(last), p - i0 as f64)
}

/// y^ / 256 sampled bilinearly at the 14x14 cells of the classifier's centre crop of the
/// coded picture (module documentation): `(channels, 14, 14)` float32, CHW. Weights and
/// sums in f64, rounded once to f32 (as `models/training/icm_training/latent/inputs.py`).
pub fn sample_crop(l: &LatentTensor) -> Result<Vec<f32>, TaskError> {
    let g = crop_geometry(l.image_width, l.image_height);
    let u = sample_positions(l.image_width, g.width, g.x0, GRID);
    let v = sample_positions(l.image_height, g.height, g.y0, GRID);
    sample_grid(l, &u, &v)
}

/// y^ / 256 sampled bilinearly at positions `u` (columns) x `v` (rows), in units of y^
/// cells and clamped to the grid: `(channels, v.len(), u.len())` float32, CHW, each value
/// computed in f64 and rounded once. Fails on a tensor whose data does not match its shape.
pub(crate) fn sample_grid(l: &LatentTensor, u: &[f64], v: &[f64]) -> Result<Vec<f32>, TaskError> {
    let (c, rows, cols) = (l.channels, l.height, l.width);
    if rows == 0 || cols == 0 || c == 0 || l.data.len() != c * rows * cols {
        return Err(TaskError::Output {
            model: "latents".into(),
            why: format!(
                "y^ of shape ({c}, {rows}, {cols}) with {} values",
                l.data.len()
            ),
        });
    }
    let tx: Vec<_> = u.iter().map(|&p| bilinear_taps(p, cols)).collect();
    let ty: Vec<_> = v.iter().map(|&p| bilinear_taps(p, rows)).collect();
    let mut out = Vec::with_capacity(c * u.len() * v.len());
    for plane in l.data.chunks_exact(rows * cols) {
        let at = |y: usize, x: usize| f64::from(plane[y * cols + x]) / FRAC;
        for &(y0, y1, fy) in &ty {
            for &(x0, x1, fx) in &tx {
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bot = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out.push((top * (1.0 - fy) + bot * fy) as f32);
            }
        }
    }
    Ok(out)
}

/// A composed latent-domain network: `explicit` when given, else `file`
/// ([`CLASSIFIER_FILE`], [`super::latent_detection::DETECTOR_FILE`]) in
/// [`composed_model_dir`]. Fails with [`TaskError::ComposedModelNotFound`] when it is not
/// a file.
pub fn resolve_latent_model(file: &str, explicit: Option<&Path>) -> Result<PathBuf, TaskError> {
    let path = explicit.map_or_else(|| composed_model_dir().join(file), Path::to_path_buf);
    if path.is_file() {
        Ok(path)
    } else {
        Err(TaskError::ComposedModelNotFound {
            path: path.display().to_string(),
        })
    }
}

/// What the latent-domain decoders read of a composed network's metadata (written by
/// `scripts/compose_latent_tasks.py`).
pub(crate) struct ComposedMeta {
    /// Channels of y^ the network reads (`icm.latent_channels`, default 192).
    pub channels: usize,
    /// Multiply-adds of the composed network on its input grid (`icm.macs`).
    pub macs: Option<u64>,
    /// Multiply-adds of the shared pixel network it stands for (`shared_macs_key`).
    pub shared_macs: Option<u64>,
}

impl ComposedMeta {
    /// Checks `icm.input` (`latents`) and `icm.task` (`task`; a classifier may omit it) and
    /// reads the numbers.
    pub(crate) fn read(
        model: &OnnxModel,
        path: &Path,
        task: &str,
        shared_macs_key: &str,
    ) -> Result<Self, TaskError> {
        let bad = |why: String| TaskError::Model {
            path: path.display().to_string(),
            why,
        };
        let (input, declared) = (model.metadata("icm.input"), model.metadata("icm.task"));
        let task_ok = declared
            .as_deref()
            .map_or(task == "classification", |t| t == task);
        if input.as_deref() != Some("latents") || !task_ok {
            return Err(bad(format!(
                "metadata icm.input = {input:?}, icm.task = {declared:?}: not a latent-domain \
                 {task} network made by scripts/compose_latent_tasks.py"
            )));
        }
        let number = |key: &str| -> Result<Option<u64>, TaskError> {
            model
                .metadata(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|e| bad(format!("metadata {key} = {v:?}: {e}")))
                })
                .transpose()
        };
        Ok(Self {
            channels: number("icm.latent_channels")?.unwrap_or(192) as usize,
            macs: number("icm.macs")?,
            shared_macs: number(shared_macs_key)?,
        })
    }
}

/// The classifier on y^ (a composed model, see the module documentation).
pub struct LatentMobileNetV2 {
    model: OnnxModel,
    name: String,
    channels: usize,
    macs: Option<u64>,
    classifier_macs: Option<u64>,
}

impl LatentMobileNetV2 {
    /// Loads a composed model; checks its metadata `icm.input` (`latents`) and reads the
    /// multiply-adds recorded by `scripts/compose_latent_tasks.py`.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let model = OnnxModel::load(path)?;
        let meta = ComposedMeta::read(&model, path, "classification", "icm.classifier_macs")?;
        Ok(Self {
            model,
            name: "mobilenet_v2_latent".into(),
            channels: meta.channels,
            macs: meta.macs,
            classifier_macs: meta.shared_macs,
        })
    }

    /// Multiply-adds of the composed network (stem and tail) on its 14x14 input, as the
    /// composition recorded them.
    pub fn macs(&self) -> Option<u64> {
        self.macs
    }

    /// Multiply-adds of the shared pixel classifier on 3x224x224, as recorded.
    pub fn classifier_macs(&self) -> Option<u64> {
        self.classifier_macs
    }

    /// The network input of y^: shape `[1, channels, 14, 14]` and [`sample_crop`].
    pub fn input_tensor(&self, l: &LatentTensor) -> Result<(Vec<usize>, Vec<f32>), TaskError> {
        if l.channels != self.channels {
            return Err(TaskError::Output {
                model: self.name.clone(),
                why: format!(
                    "y^ has {} channels, the network reads {}",
                    l.channels, self.channels
                ),
            });
        }
        Ok((vec![1, l.channels, GRID, GRID], sample_crop(l)?))
    }

    /// Runs the network on a tensor from [`input_tensor`](Self::input_tensor); returns the
    /// 1000 ImageNet class probabilities.
    pub fn run_tensor(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Vec<f32>, TaskError> {
        let (_, out) = self.model.run(shape, data)?;
        class_scores(&out)
    }

    /// The 1000 class probabilities of a picture's y^.
    pub fn classify(&mut self, l: &LatentTensor) -> Result<Vec<f32>, TaskError> {
        let (shape, data) = self.input_tensor(l)?;
        self.run_tensor(&shape, data)
    }
}

impl TaskDecoder for LatentMobileNetV2 {
    fn name(&self) -> &str {
        &self.name
    }
    fn task(&self) -> TaskKind {
        TaskKind::Classification
    }
    fn input_kind(&self) -> TaskInputKind {
        TaskInputKind::Latents
    }
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        match input {
            TaskInput::Latents(l) => Ok(TaskOutput::ClassScores(self.classify(l)?)),
            other => Err(TaskError::WrongInput {
                decoder: self.name.clone(),
                wanted: TaskInputKind::Latents,
                got: other.kind(),
            }),
        }
    }
}

/// Multiply-adds of a float transform (g_s, spec 11.1) on a `rows` x `cols` input: a convolution counts `cout * cin * k * k` per output position, a stride-2
/// transposed convolution `cin * cout * k * k` per input position (every tap, as the
/// scatter form computes it), a GDN or IGDN `c * c` per position (its `gamma` product);
/// ReLU and LeakyReLU count nothing.
pub fn transform_macs(t: &Sequential, rows: usize, cols: usize) -> u64 {
    let (mut h, mut w) = (rows, cols);
    let mut total = 0u64;
    for layer in &t.layers {
        match layer {
            Layer::Conv(l) => {
                let (oh, ow) = l.output_size(h, w);
                total += (l.cout * l.cin * l.k * l.k * oh * ow) as u64;
                (h, w) = (oh, ow);
            }
            Layer::ConvTranspose(l) => {
                let k = l.kernel_size();
                total += (l.cin() * l.cout() * k * k * h * w) as u64;
                (h, w) = l.output_size(h, w);
            }
            Layer::Gdn(l) => total += (l.c * l.c * h * w) as u64,
            Layer::Relu | Layer::LeakyRelu(_) => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_tensor as tensor;

    #[test]
    fn synthesis_macs_of_the_zoo() {
        let path = icm::model::default_model_dir().join("icm-psnr-q3.safetensors");
        let model = icm::model::Model::from_path(&path).expect("zoo model q3");
        // A 768x512 picture (y^ 32x48): docs/results/speed.md gives 7.8 G for g_s (widths
        // 128/96/64).
        let macs = transform_macs(&model.g_s, 32, 48);
        assert!((7.75e9..7.85e9).contains(&(macs as f64)), "{macs}");
        // Every layer scales with the area.
        assert_eq!(transform_macs(&model.g_s, 64, 96), 4 * macs);
        assert_eq!(transform_macs(&Sequential::default(), 32, 48), 0);
    }

    #[test]
    fn a_256_picture_samples_its_own_cells() {
        // 256x256: no resize, the crop starts at pixel 16, i.e. at y^ cell 1.
        let l = tensor(3, 16, 16, 256, 256);
        let s = sample_crop(&l).expect("sample");
        assert_eq!(s.len(), 3 * GRID * GRID);
        for ch in 0..3 {
            for y in 0..GRID {
                for x in 0..GRID {
                    let want = f64::from(l.data[(ch * 16 + y + 1) * 16 + x + 1]) / 256.0;
                    assert_eq!(
                        f64::from(s[(ch * GRID + y) * GRID + x]),
                        want,
                        "{ch} {y} {x}"
                    );
                }
            }
        }
    }

    #[test]
    fn positions_follow_the_resize() {
        // 500x375: resized to 341x256, crop offset (59, 16); the scale is 375/256.
        let g = crop_geometry(500, 375);
        assert_eq!((g.width, g.height, g.x0, g.y0), (341, 256, 59, 16));
        let u = sample_positions(500, g.width, g.x0, GRID);
        let want0 = ((59.0 + 8.0) * 500.0 / 341.0 - 8.0) / 16.0;
        assert!((u[0] - want0).abs() < 1e-12);
        // Consecutive crop cells are 16 resized pixels apart: 16 * 500 / 341 picture pixels.
        let step = 500.0 / 341.0;
        assert!(u.windows(2).all(|p| (p[1] - p[0] - step).abs() < 1e-9));
        // The crop is centred: its first and last cells are symmetric about the picture's
        // centre up to the rounding of the offset.
        let mid = (u[0] + u[GRID - 1]) / 2.0;
        assert!((mid - (250.0 - 8.0) / 16.0).abs() < 0.05, "{mid}");
    }

    #[test]
    fn sampling_is_linear_between_cells_and_clamped_outside() {
        let l = tensor(1, 4, 8, 100, 40);
        // Values rise by 5 per column, 37 per row: bilinear sampling reproduces the plane
        // inside the grid.
        let s = sample_crop(&l).expect("sample");
        let g = crop_geometry(100, 40);
        let u = sample_positions(100, g.width, g.x0, GRID);
        let v = sample_positions(40, g.height, g.y0, GRID);
        for (y, &vy) in v.iter().enumerate() {
            for (x, &ux) in u.iter().enumerate() {
                let (cx, cy) = (ux.clamp(0.0, 7.0), vy.clamp(0.0, 3.0));
                let want = (cy * 37.0 + cx * 5.0) + 0.5;
                let got = f64::from(s[y * GRID + x]);
                assert!((got - want).abs() < 1e-3, "{y} {x}: {got} vs {want}");
            }
        }
        let bad = LatentTensor {
            data: vec![0; 5],
            ..tensor(1, 2, 2, 32, 32)
        };
        assert!(sample_crop(&bad).is_err());
    }
}
