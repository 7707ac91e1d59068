//! MobileNetV2 1.0/224 on ImageNet (`models/classification/MODEL.md`): shorter side to 256
//! (bilinear), centre crop 224x224, `(pixel - 127.5) / 127.5`, NCHW RGB; the 1001 outputs
//! are softmax probabilities whose index 0 is "background" and index k+1 ImageNet class k.

use super::imageops::resize_bilinear;
use super::runtime::OnnxModel;
use super::TaskOutput;
use super::{expect_pixels, TaskDecoder, TaskError, TaskInput, TaskInputKind, TaskKind};
use crate::codec::RgbImage;
use std::path::Path;

/// Crop side.
pub const CROP: u32 = 224;
/// Shorter side after the resize.
pub const RESIZE: u32 = 256;
/// Network outputs (background + 1000 classes).
pub const OUTPUTS: usize = 1001;

/// The `[1, 3, 224, 224]` input of one picture: shorter side resized to 256 (the longer one
/// to `floor(long * 256 / short)`, as torchvision's `Resize(256)`), centre crop with the
/// offset `round((side - 224) / 2)`, scaled to -1..1.
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width.max(1), img.height.max(1));
    let (nw, nh) = if w <= h {
        (
            RESIZE,
            ((u64::from(h) * u64::from(RESIZE)) / u64::from(w)) as u32,
        )
    } else {
        (
            ((u64::from(w) * u64::from(RESIZE)) / u64::from(h)) as u32,
            RESIZE,
        )
    };
    let r = resize_bilinear(img, nw.max(CROP), nh.max(CROP));
    let (rw, rh) = (r.width as usize, r.height as usize);
    let c = CROP as usize;
    let x0 = ((rw - c) as f64 / 2.0).round() as usize;
    let y0 = ((rh - c) as f64 / 2.0).round() as usize;
    let mut t = vec![0f32; 3 * c * c];
    for y in 0..c {
        for x in 0..c {
            let p = ((y0 + y) * rw + x0 + x) * 3;
            for ch in 0..3 {
                t[(ch * c + y) * c + x] = (f32::from(r.data[p + ch]) - 127.5) / 127.5;
            }
        }
    }
    t
}

/// The 1000 ImageNet class probabilities of the 1001 network outputs (background dropped,
/// so that index k is ImageNet class k in sorted-synset order, as `labels.csv` numbers them).
pub fn class_scores(out: &[f32]) -> Result<Vec<f32>, TaskError> {
    if out.len() != OUTPUTS {
        return Err(TaskError::Output {
            model: "mobilenet_v2".into(),
            why: format!("{} outputs, expected {OUTPUTS}", out.len()),
        });
    }
    Ok(out[1..].to_vec())
}

/// The MobileNetV2 classifier.
pub struct MobileNetV2 {
    model: OnnxModel,
}

impl MobileNetV2 {
    /// Loads the ONNX file.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        Ok(Self {
            model: OnnxModel::load(path)?,
        })
    }

    /// The 1000 class probabilities of one picture.
    pub fn classify(&mut self, img: &RgbImage) -> Result<Vec<f32>, TaskError> {
        let c = CROP as usize;
        let (_, out) = self.model.run(&[1, 3, c, c], preprocess(img))?;
        class_scores(&out)
    }
}

impl TaskDecoder for MobileNetV2 {
    fn name(&self) -> &str {
        "mobilenet_v2"
    }
    fn task(&self) -> TaskKind {
        TaskKind::Classification
    }
    fn input_kind(&self) -> TaskInputKind {
        TaskInputKind::Pixels
    }
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        let img = expect_pixels("mobilenet_v2", input)?;
        Ok(TaskOutput::ClassScores(self.classify(img)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_is_dropped() {
        let mut out = vec![0.0f32; OUTPUTS];
        out[0] = 0.5;
        out[8] = 0.4; // ImageNet class 7
        let s = class_scores(&out).expect("scores");
        assert_eq!(s.len(), 1000);
        assert_eq!(s[7], 0.4);
        assert!(class_scores(&out[..1000]).is_err());
    }

    #[test]
    fn preprocess_range_and_crop() {
        let img = RgbImage {
            width: 300,
            height: 200,
            data: vec![255; 300 * 200 * 3],
        };
        let t = preprocess(&img);
        assert_eq!(t.len(), 3 * 224 * 224);
        assert!(t.iter().all(|&v| (v - 1.0).abs() < 1e-6));
    }
}
