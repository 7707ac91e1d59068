//! YOLOX-Nano on the decoded latents y^, without g_s (issue 8).
//!
//! [`LatentYolox`] is the shared detector (`yolox_nano/yolox_nano.onnx`) with its backbone
//! (CSPDarknet, from the letterboxed picture to the three tensors its PAN neck reads: 64,
//! 128 and 256 channels at strides 8, 16 and 32) replaced by a stem that reads y^. The stem
//! is trained by distillation from the backbone (`models/training/icm_training/latent/train_det.py`) and
//! shipped in `models/tasks/latent_det_stem.onnx`; `scripts/compose_latent_tasks.py` joins
//! it to the detector's neck and head in [`super::dct::composed_model_dir`]. The neck, the
//! head and the post-processing (grid decode, score threshold, class-wise NMS) are the
//! pixel detector's ([`super::detection`]), so boxes come out in picture coordinates.
//!
//! Input geometry. The pixel detector scales the picture by
//! `r = min(416 / h, 416 / w)` to `nw x nh = floor(w r) x floor(h r)` and places it at the
//! top left of a 416x416 canvas ([`super::detection::letterbox`]); its stride-16 tensor is
//! a 26x26 grid over the canvas. [`sample_letterbox`] maps the centre of canvas cell j,
//! `16 j + 7.5`, into the picture (`(16 j + 8) w / nw - 0.5`, half-pixel convention of the
//! bilinear resize, [`super::latent::sample_positions`] with offset 0) and samples y^ / 256
//! there bilinearly, clamped to the grid. The share of a cell inside the scaled picture,
//! `clamp((nw - 16 j) / 16, 0, 1)` times the same for rows, is a 193rd channel; y^ is 0 on
//! cells with no share (the grey padding).

use super::detection::{
    decode_grid, letterbox_geometry, nms_classwise, INPUT_SIZE, NMS_IOU, SCORE_THRESHOLD,
};
use super::latent::{sample_grid, sample_positions, ComposedMeta};
use super::runtime::OnnxModel;
use super::{
    Detection, LatentTensor, TaskDecoder, TaskError, TaskInput, TaskInputKind, TaskKind, TaskOutput,
};
use std::path::Path;

/// Side of the stem's input grid: the detector's canvas at stride 16.
pub const GRID: usize = INPUT_SIZE as usize / 16;
/// The composed detector in [`super::dct::composed_model_dir`].
pub const DETECTOR_FILE: &str = "yolox_nano_latent.onnx";

/// Share of each of the [`GRID`] canvas cells along one axis inside a scaled side of
/// `resized` pixels: `clamp((resized - 16 j) / 16, 0, 1)`.
pub fn coverage(resized: u32) -> Vec<f64> {
    (0..GRID)
        .map(|j| ((f64::from(resized) - 16.0 * j as f64) / 16.0).clamp(0.0, 1.0))
        .collect()
}

/// The stem's input for y^ (module documentation): `(channels + 1, 26, 26)` float32, CHW,
/// y^ / 256 sampled on the letterbox grid then the coverage channel, and the letterbox
/// scale `r`. Weights and sums in f64, rounded once to f32 (as
/// `models/training/icm_training/latent/inputs.py`).
pub fn sample_letterbox(l: &LatentTensor) -> Result<(Vec<f32>, f32), TaskError> {
    let (r, nw, nh) = letterbox_geometry(l.image_width, l.image_height);
    let u = sample_positions(l.image_width, nw, 0, GRID);
    let v = sample_positions(l.image_height, nh, 0, GRID);
    let mut out = sample_grid(l, &u, &v)?;
    let (cov_x, cov_y) = (coverage(nw), coverage(nh));
    let share: Vec<f32> = cov_y
        .iter()
        .flat_map(|&cy| cov_x.iter().map(move |&cx| (cy * cx) as f32))
        .collect();
    for plane in out.chunks_exact_mut(GRID * GRID) {
        for (value, &s) in plane.iter_mut().zip(&share) {
            if s == 0.0 {
                *value = 0.0;
            }
        }
    }
    out.extend_from_slice(&share);
    Ok((out, r as f32))
}

/// YOLOX-Nano on y^ (a composed model, see the module documentation).
pub struct LatentYolox {
    model: OnnxModel,
    name: String,
    channels: usize,
    macs: Option<u64>,
    detector_macs: Option<u64>,
    /// Score threshold (default [`SCORE_THRESHOLD`]).
    pub score_threshold: f32,
    /// NMS IoU threshold (default [`NMS_IOU`]).
    pub nms_iou: f32,
}

impl LatentYolox {
    /// Loads a composed model; checks its metadata `icm.input` (`latents`) and `icm.task`
    /// (`detection`) and reads the multiply-adds recorded by
    /// `scripts/compose_latent_tasks.py`.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let model = OnnxModel::load(path)?;
        let meta = ComposedMeta::read(&model, path, "detection", "icm.detector_macs")?;
        Ok(Self {
            model,
            name: "yolox_nano_latent".into(),
            channels: meta.channels,
            macs: meta.macs,
            detector_macs: meta.shared_macs,
            score_threshold: SCORE_THRESHOLD,
            nms_iou: NMS_IOU,
        })
    }

    /// Multiply-adds of the composed network (stem, neck and head) on its 26x26 input.
    pub fn macs(&self) -> Option<u64> {
        self.macs
    }

    /// Multiply-adds of the shared pixel detector on 3x416x416, as recorded.
    pub fn detector_macs(&self) -> Option<u64> {
        self.detector_macs
    }

    /// Detects the objects of a picture from its y^.
    pub fn detect(&mut self, l: &LatentTensor) -> Result<Vec<Detection>, TaskError> {
        if l.channels != self.channels {
            return Err(TaskError::Output {
                model: self.name.clone(),
                why: format!(
                    "y^ has {} channels, the network reads {}",
                    l.channels, self.channels
                ),
            });
        }
        let (input, ratio) = sample_letterbox(l)?;
        let (_, out) = self.model.run(&[1, l.channels + 1, GRID, GRID], input)?;
        let dets = decode_grid(&out, ratio, self.score_threshold)?;
        Ok(nms_classwise(dets, self.nms_iou))
    }
}

impl TaskDecoder for LatentYolox {
    fn name(&self) -> &str {
        &self.name
    }
    fn task(&self) -> TaskKind {
        TaskKind::Detection
    }
    fn input_kind(&self) -> TaskInputKind {
        TaskInputKind::Latents
    }
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        match input {
            TaskInput::Latents(l) => Ok(TaskOutput::Detections(self.detect(l)?)),
            other => Err(TaskError::WrongInput {
                decoder: self.name.clone(),
                wanted: TaskInputKind::Latents,
                got: other.kind(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_tensor as tensor;

    #[test]
    fn geometry_is_the_pixel_letterbox() {
        // COCO's 640x480: r = 0.65, 416x312.
        let (r, nw, nh) = letterbox_geometry(640, 480);
        assert!((r - 0.65).abs() < 1e-12);
        assert_eq!((nw, nh), (416, 312));
        let img = icm::codec::RgbImage {
            width: 640,
            height: 480,
            data: vec![0; 640 * 480 * 3],
        };
        let lb = super::super::detection::letterbox(&img);
        assert_eq!(lb.ratio, r as f32);
        // 312 rows: 19 full cells, one half cell, six on the padding.
        let c = coverage(nh);
        assert_eq!(c[18], 1.0);
        assert_eq!(c[19], 0.5);
        assert!(c[20..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn a_416_picture_samples_its_own_cells() {
        // 416x416: no resize, canvas cell j is y^ cell j.
        let l = tensor(2, 26, 26, 416, 416);
        let (s, r) = sample_letterbox(&l).expect("sample");
        assert_eq!(r, 1.0);
        assert_eq!(s.len(), 3 * GRID * GRID);
        for ch in 0..2 {
            for y in 0..GRID {
                for x in 0..GRID {
                    let want = f64::from(l.data[(ch * 26 + y) * 26 + x]) / 256.0;
                    assert_eq!(f64::from(s[(ch * GRID + y) * GRID + x]), want);
                }
            }
        }
        assert!(s[2 * GRID * GRID..].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn padding_cells_are_zero_and_marked() {
        // 800x200: r = 0.52, 416x104 (6.5 rows of cells); y^ 13x50.
        let l = tensor(1, 13, 50, 800, 200);
        let (s, _) = sample_letterbox(&l).expect("sample");
        let (plane, cov) = s.split_at(GRID * GRID);
        for y in 0..GRID {
            let want_cov = ((104.0 - 16.0 * y as f64) / 16.0).clamp(0.0, 1.0) as f32;
            for x in 0..GRID {
                assert_eq!(cov[y * GRID + x], want_cov, "{y} {x}");
                if want_cov == 0.0 {
                    assert_eq!(plane[y * GRID + x], 0.0);
                } else {
                    assert!(plane[y * GRID + x] > 0.0);
                }
            }
        }
        // Linear in the columns inside the grid: 5 per y^ cell, and consecutive canvas
        // cells lie 16 / r picture pixels, i.e. 800 / 416 y^ cells, apart.
        let step = f64::from(plane[1] - plane[0]);
        assert!((step - 5.0 * 800.0 / 416.0).abs() < 1e-3, "{step}");
        let bad = LatentTensor {
            data: vec![0; 3],
            ..tensor(1, 2, 2, 32, 32)
        };
        assert!(sample_letterbox(&bad).is_err());
    }
}
