//! DeepLabV3-MobileNetV2 on PASCAL VOC (`models/segmentation/MODEL.md`): plain bilinear
//! resize of the whole picture to 257x257 (aspect ratio not kept), NHWC RGB,
//! `pixel / 127.5 - 1`; the `[1, 257, 257, 21]` logits are resized bilinearly to the picture
//! size, then the argmax per pixel is the class (0 background, 1..20 VOC classes).

use super::imageops::{resize_argmax, resize_bilinear};
use super::runtime::OnnxModel;
use super::{expect_pixels, SegmentationMap, TaskDecoder, TaskError, TaskInput};
use super::{TaskInputKind, TaskKind, TaskOutput};
use icm::codec::RgbImage;
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

/// VOC class (1..=20) of a COCO category id, for the 20 VOC-equivalent categories
/// (airplane->aeroplane, motorcycle->motorbike, couch->sofa, potted plant->pottedplant,
/// dining table->diningtable, tv->tvmonitor, the rest the same name; MODEL.md).
pub fn voc_class_of_coco(category_id: u32) -> Option<u8> {
    Some(match category_id {
        5 => 1,   // airplane
        2 => 2,   // bicycle
        16 => 3,  // bird
        9 => 4,   // boat
        44 => 5,  // bottle
        6 => 6,   // bus
        3 => 7,   // car
        17 => 8,  // cat
        62 => 9,  // chair
        21 => 10, // cow
        67 => 11, // dining table
        18 => 12, // dog
        19 => 13, // horse
        4 => 14,  // motorcycle
        1 => 15,  // person
        64 => 16, // potted plant
        20 => 17, // sheep
        63 => 18, // couch
        7 => 19,  // train
        72 => 20, // tv
        _ => return None,
    })
}

/// VOC "ignore" label.
pub const IGNORE: u8 = 255;

/// VOC-style ground truth of one COCO image, as `models/segmentation/MODEL.md` built its
/// baseline: the instance masks of the 20 VOC-equivalent categories, larger objects (by
/// `area`) drawn first so smaller ones stay visible, other COCO objects left as background
/// (0), crowd regions [`IGNORE`]d.
pub fn coco_voc_truth(segments: &[crate::task::coco::Segment], width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut mask = vec![0u8; w * h];
    let mut order: Vec<&crate::task::coco::Segment> = segments
        .iter()
        .filter(|s| s.iscrowd || voc_class_of_coco(s.category_id).is_some())
        .collect();
    order.sort_by(|a, b| b.area.total_cmp(&a.area));
    for s in order {
        let value = if s.iscrowd {
            IGNORE
        } else {
            voc_class_of_coco(s.category_id).unwrap_or(0)
        };
        crate::task::coco::paint(&s.shape, &mut mask, w, h, value);
    }
    mask
}
