//! YOLOX-Nano on COCO (`models/yolox_nano/MODEL.md`): letterbox pre-processing, the grid
//! decode of the 3549 anchor points, score threshold and class-wise NMS.

use super::imageops::resize_bilinear;
use super::runtime::OnnxModel;
use super::{expect_pixels, Detection, TaskDecoder, TaskError, TaskInput, TaskInputKind};
use super::{TaskKind, TaskOutput};
use icm::codec::RgbImage;
use std::path::Path;

/// Network input side (416x416).
pub const INPUT_SIZE: u32 = 416;
/// Letterbox fill value.
pub const PAD_VALUE: u8 = 114;
/// Strides of the three heads, in output order.
pub const STRIDES: [usize; 3] = [8, 16, 32];
/// Classes.
pub const CLASSES: usize = 80;
/// Default score threshold (`score > 0.01`, the MODEL.md evaluation setting).
pub const SCORE_THRESHOLD: f32 = 0.01;
/// Default NMS IoU threshold (class-wise NMS at 0.65).
pub const NMS_IOU: f32 = 0.65;

/// COCO category id of YOLOX class 0..80 (ascending ids 1..90 with gaps, MODEL.md).
pub const COCO_CATEGORY_IDS: [u32; 80] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
];

/// The letterboxed network input and its scale.
pub struct Letterbox {
    /// `[1, 3, 416, 416]` float32, NCHW, **BGR**, values 0..255.
    pub tensor: Vec<f32>,
    /// `r = min(416 / h, 416 / w)`.
    pub ratio: f32,
}

/// The letterbox's scale and scaled size for a `width x height` picture: `(r, nw, nh)`,
/// `r = min(416 / h, 416 / w)` in f64 (as the reference, Python, computes it, so that
/// `floor(w r)` agrees), `nw = floor(w r)`, `nh = floor(h r)`, each clamped to 1..416.
pub fn letterbox_geometry(width: u32, height: u32) -> (f64, u32, u32) {
    let r = (f64::from(INPUT_SIZE) / f64::from(height.max(1)))
        .min(f64::from(INPUT_SIZE) / f64::from(width.max(1)));
    let nw = ((f64::from(width) * r) as u32).clamp(1, INPUT_SIZE);
    let nh = ((f64::from(height) * r) as u32).clamp(1, INPUT_SIZE);
    (r, nw, nh)
}

/// Letterbox as MODEL.md gives it: scale `r = min(416/h, 416/w)`, bilinear resize to
/// `(floor(w*r), floor(h*r))` (OpenCV-style, [`resize_bilinear`]), placed at the top-left
/// of a 416x416 canvas filled with 114, BGR channel order, no normalisation.
pub fn letterbox(img: &RgbImage) -> Letterbox {
    let s = INPUT_SIZE as usize;
    let (r, nw, nh) = letterbox_geometry(img.width, img.height);
    let resized = resize_bilinear(img, nw, nh);
    let mut tensor = vec![f32::from(PAD_VALUE); 3 * s * s];
    let (nw, nh) = (nw as usize, nh as usize);
    for y in 0..nh {
        for x in 0..nw {
            let p = &resized.data[(y * nw + x) * 3..(y * nw + x) * 3 + 3];
            for (c, &v) in [p[2], p[1], p[0]].iter().enumerate() {
                tensor[(c * s + y) * s + x] = f32::from(v);
            }
        }
    }
    Letterbox {
        tensor,
        ratio: r as f32,
    }
}

/// Decodes the `[3549, 85]` output: `cx = (x + gx) * s`, `cy = (y + gy) * s`,
/// `w = exp(log w) * s`, `h = exp(log h) * s` in letterboxed pixels, divided by `ratio`;
/// score = objectness * class score (both already after the sigmoid). Keeps, per anchor,
/// every class whose score is above `threshold` (the multi-label candidates that
/// class-wise NMS then filters), as YOLOX's ONNX demo (`multiclass_nms`, class-aware)
/// does. Boxes are not clipped to the picture (neither YOLOX's demo nor its COCO
/// evaluation clips, and clipping changes the IoU pycocotools computes).
pub fn decode_grid(out: &[f32], ratio: f32, threshold: f32) -> Result<Vec<Detection>, TaskError> {
    let stride_row = 5 + CLASSES;
    let points: usize = STRIDES
        .iter()
        .map(|s| (INPUT_SIZE as usize / s).pow(2))
        .sum();
    if out.len() != points * stride_row {
        return Err(TaskError::Output {
            model: "yolox_nano".into(),
            why: format!("{} values, expected {points} x {stride_row}", out.len()),
        });
    }
    let mut dets = Vec::new();
    let mut i = 0usize;
    for &s in &STRIDES {
        let g = INPUT_SIZE as usize / s;
        for gy in 0..g {
            for gx in 0..g {
                let row = &out[i * stride_row..(i + 1) * stride_row];
                i += 1;
                let obj = row[4];
                if obj <= threshold {
                    continue;
                }
                let sf = s as f32;
                let cx = (row[0] + gx as f32) * sf;
                let cy = (row[1] + gy as f32) * sf;
                let w = row[2].exp() * sf;
                let h = row[3].exp() * sf;
                let x0 = (cx - w / 2.0) / ratio;
                let y0 = (cy - h / 2.0) / ratio;
                let x1 = (cx + w / 2.0) / ratio;
                let y1 = (cy + h / 2.0) / ratio;
                for (c, &p) in row[5..].iter().enumerate() {
                    let score = obj * p;
                    if score > threshold {
                        dets.push(Detection {
                            bbox: [x0, y0, x1 - x0, y1 - y0],
                            score,
                            class_id: c,
                        });
                    }
                }
            }
        }
    }
    Ok(dets)
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let (ax1, ay1) = (a[0] + a[2], a[1] + a[3]);
    let (bx1, by1) = (b[0] + b[2], b[1] + b[3]);
    let w = (ax1.min(bx1) - a[0].max(b[0])).max(0.0);
    let h = (ay1.min(by1) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Class-wise greedy NMS: within each class, boxes in decreasing score order suppress later
/// boxes overlapping them by IoU > `iou_threshold` (as OpenCV's `NMSBoxes` /
/// torchvision's `batched_nms`). Returns the kept boxes, best score first (ties in input
/// order).
pub fn nms_classwise(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); CLASSES.max(1)];
    for d in dets {
        if d.class_id >= per_class.len() {
            per_class.resize(d.class_id + 1, Vec::new());
        }
        let suppressed = per_class[d.class_id]
            .iter()
            .any(|&k| iou(&kept[k].bbox, &d.bbox) > iou_threshold);
        if !suppressed {
            per_class[d.class_id].push(kept.len());
            kept.push(d);
        }
    }
    kept
}

/// The YOLOX-Nano decoder.
pub struct Yolox {
    model: OnnxModel,
    /// Score threshold (default [`SCORE_THRESHOLD`]).
    pub score_threshold: f32,
    /// NMS IoU threshold (default [`NMS_IOU`]).
    pub nms_iou: f32,
}

impl Yolox {
    /// Loads the ONNX file.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        Ok(Self {
            model: OnnxModel::load(path)?,
            score_threshold: SCORE_THRESHOLD,
            nms_iou: NMS_IOU,
        })
    }

    /// Detects the objects of one picture.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>, TaskError> {
        if img.width == 0 || img.height == 0 {
            return Ok(Vec::new());
        }
        let lb = letterbox(img);
        let s = INPUT_SIZE as usize;
        let (_, out) = self.model.run(&[1, 3, s, s], lb.tensor)?;
        let dets = decode_grid(&out, lb.ratio, self.score_threshold)?;
        Ok(nms_classwise(dets, self.nms_iou))
    }
}

impl TaskDecoder for Yolox {
    fn name(&self) -> &str {
        "yolox_nano"
    }
    fn task(&self) -> TaskKind {
        TaskKind::Detection
    }
    fn input_kind(&self) -> TaskInputKind {
        TaskInputKind::Pixels
    }
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        let img = expect_pixels("yolox_nano", input)?;
        Ok(TaskOutput::Detections(self.detect(img)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_ids_ascend() {
        assert!(COCO_CATEGORY_IDS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(COCO_CATEGORY_IDS[79], 90);
        assert_eq!(COCO_CATEGORY_IDS[11], 13);
    }

    #[test]
    fn nms_keeps_best_per_class() {
        let d = |x: f32, score: f32, class_id: usize| Detection {
            bbox: [x, 0.0, 10.0, 10.0],
            score,
            class_id,
        };
        // Two overlapping boxes of class 0 (IoU 0.82), one of class 1 at the same place.
        let kept = nms_classwise(vec![d(1.0, 0.5, 0), d(0.0, 0.9, 0), d(0.0, 0.7, 1)], 0.65);
        assert_eq!(kept, vec![d(0.0, 0.9, 0), d(0.0, 0.7, 1)]);
        // Below the threshold both stay.
        let kept = nms_classwise(vec![d(5.0, 0.5, 0), d(0.0, 0.9, 0)], 0.65);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn grid_decode_of_one_anchor() {
        let n = 52 * 52 + 26 * 26 + 13 * 13;
        let mut out = vec![0.0f32; n * 85];
        // Anchor (gx 2, gy 1) of stride 16: index 52*52 + 1*26 + 2.
        let i = 52 * 52 + 26 + 2;
        let row = &mut out[i * 85..(i + 1) * 85];
        row[0] = 0.5;
        row[1] = 0.25;
        row[2] = 1.0f32.ln();
        row[3] = 2.0f32.ln();
        row[4] = 0.8;
        row[5 + 3] = 0.5;
        let dets = decode_grid(&out, 0.5, 0.01).expect("decode");
        assert_eq!(dets.len(), 1);
        let d = dets[0];
        assert_eq!(d.class_id, 3);
        assert!((d.score - 0.4).abs() < 1e-6);
        // cx = 2.5 * 16 = 40, cy = 1.25 * 16 = 20, w = 16, h = 32; / 0.5.
        let want = [64.0, 8.0, 32.0, 64.0];
        for (a, b) in d.bbox.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{:?}", d.bbox);
        }
        assert!(decode_grid(&out[..85], 1.0, 0.01).is_err());
    }
}
