//! DeepLabV3-MobileNetV2 on PASCAL VOC (`models/segmentation/MODEL.md`): plain bilinear
//! resize of the whole picture to 257x257 (aspect ratio not kept), NHWC RGB,
//! `pixel / 127.5 - 1`; the `[1, 257, 257, 21]` logits are resized bilinearly to the picture
//! size, then the argmax per pixel is the class (0 background, 1..20 VOC classes).

use super::imageops::{resize_argmax, resize_bilinear};
use super::runtime::OnnxModel;
use super::{expect_pixels, SegmentationMap, TaskDecoder, TaskError, TaskInput};
use super::{TaskInputKind, TaskKind, TaskOutput};
use crate::codec::RgbImage;
use std::path::Path;

/// Network input side.
pub const INPUT_SIZE: u32 = 257;
/// Classes (background + 20).
pub const CLASSES: usize = 21;

/// The `[1, 257, 257, 3]` NHWC input of one picture.
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    let r = resize_bilinear(img, INPUT_SIZE, INPUT_SIZE);
    r.data.iter().map(|&v| f32::from(v) / 127.5 - 1.0).collect()
}

/// The DeepLabV3 segmenter.
pub struct DeepLabV3 {
    model: OnnxModel,
}

impl DeepLabV3 {
    /// Loads the ONNX file.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        Ok(Self {
            model: OnnxModel::load(path)?,
        })
    }

    /// The class map of one picture at its own size.
    pub fn segment(&mut self, img: &RgbImage) -> Result<SegmentationMap, TaskError> {
        let s = INPUT_SIZE as usize;
        let (shape, out) = self.model.run(&[1, s, s, 3], preprocess(img))?;
        if shape != [1, s, s, CLASSES] {
            return Err(TaskError::Output {
                model: "deeplabv3".into(),
                why: format!("shape {shape:?}, expected [1, {s}, {s}, {CLASSES}]"),
            });
        }
        let labels = resize_argmax(&out, s, s, CLASSES, img.width as usize, img.height as usize);
        Ok(SegmentationMap {
            width: img.width,
            height: img.height,
            classes: CLASSES,
            labels,
        })
    }
}

impl TaskDecoder for DeepLabV3 {
    fn name(&self) -> &str {
        "deeplabv3"
    }
    fn task(&self) -> TaskKind {
        TaskKind::Segmentation
    }
    fn input_kind(&self) -> TaskInputKind {
        TaskInputKind::Pixels
    }
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        let img = expect_pixels("deeplabv3", input)?;
        Ok(TaskOutput::SegmentationMap(self.segment(img)?))
    }
}
