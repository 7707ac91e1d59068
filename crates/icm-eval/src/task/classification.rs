//! MobileNetV2 1.0/224 on ImageNet (`models/classification/MODEL.md`): shorter side to 256
//! (bilinear), centre crop 224x224, `(pixel - 127.5) / 127.5`, NCHW RGB; the 1001 outputs
//! are softmax probabilities whose index 0 is "background" and index k+1 ImageNet class k.

use super::imageops::resize_bilinear;
use super::runtime::OnnxModel;
use super::TaskOutput;
use super::{expect_pixels, TaskDecoder, TaskError, TaskInput, TaskInputKind, TaskKind};
use icm::codec::RgbImage;
use std::path::Path;

/// Crop side.
pub const CROP: u32 = 224;
/// Shorter side after the resize.
pub const RESIZE: u32 = 256;
/// Network outputs (background + 1000 classes).
pub const OUTPUTS: usize = 1001;

/// Where [`input_crop`] takes the network's input from a `width` x `height` picture: the
/// size it resizes the picture to and the offset of the 224x224 crop in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropGeometry {
    /// Width after the resize (at least [`CROP`]).
    pub width: u32,
    /// Height after the resize (at least [`CROP`]).
    pub height: u32,
    /// Left column of the crop in the resized picture.
    pub x0: u32,
    /// Top row of the crop in the resized picture.
    pub y0: u32,
}

/// The geometry of [`input_crop`] for a `width` x `height` picture: shorter side to 256,
/// the longer to `floor(long * 256 / short)`, each at least 224, crop offset
/// `round((side - 224) / 2)`.
pub fn crop_geometry(width: u32, height: u32) -> CropGeometry {
    let (w, h) = (width.max(1), height.max(1));
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
    let (nw, nh) = (nw.max(CROP), nh.max(CROP));
    CropGeometry {
        width: nw,
        height: nh,
        x0: (f64::from(nw - CROP) / 2.0).round() as u32,
        y0: (f64::from(nh - CROP) / 2.0).round() as u32,
    }
}

/// The picture the network sees: shorter side resized to 256 (the longer one to
/// `floor(long * 256 / short)`, as torchvision's `Resize(256)`), then the centre 224x224
/// crop at the offset `round((side - 224) / 2)`.
pub fn input_crop(img: &RgbImage) -> RgbImage {
    let g = crop_geometry(img.width, img.height);
    let r = resize_bilinear(img, g.width, g.height);
    let rw = r.width as usize;
    let c = CROP as usize;
    let (x0, y0) = (g.x0 as usize, g.y0 as usize);
    let mut data = Vec::with_capacity(c * c * 3);
    for y in 0..c {
        let row = ((y0 + y) * rw + x0) * 3;
        data.extend_from_slice(&r.data[row..row + c * 3]);
    }
    RgbImage {
        width: CROP,
        height: CROP,
        data,
    }
}

/// The `[1, 3, H, W]` network input of a picture taken as it is (no resize): RGB scaled
/// to -1..1 by `(pixel - 127.5) / 127.5`, planar.
pub fn normalise(img: &RgbImage) -> Vec<f32> {
    let plane = img.width as usize * img.height as usize;
    let mut t = vec![0f32; 3 * plane];
    for (i, px) in img.data.chunks_exact(3).enumerate().take(plane) {
        for (ch, &v) in px.iter().enumerate() {
            t[ch * plane + i] = (f32::from(v) - 127.5) / 127.5;
        }
    }
    t
}

/// The `[1, 3, 224, 224]` input of one picture: [`input_crop`], then [`normalise`].
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    normalise(&input_crop(img))
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
    /// The pictures it is given are already its input crop ([`Self::on_crops`]).
    crops: bool,
}

impl MobileNetV2 {
    /// Loads the ONNX file.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        Ok(Self {
            model: OnnxModel::load(path)?,
            crops: false,
        })
    }

    /// The same network given pictures that already are its 224x224 input crop (the
    /// JPEG-coded crops of the DCT-domain evaluation): through the plug-in interface it
    /// then runs [`Self::classify_crop`] instead of [`Self::classify`].
    pub fn on_crops(self) -> Self {
        Self {
            crops: true,
            ..self
        }
    }

    /// The 1000 class probabilities of one picture.
    pub fn classify(&mut self, img: &RgbImage) -> Result<Vec<f32>, TaskError> {
        let c = CROP as usize;
        let (_, out) = self.model.run(&[1, 3, c, c], preprocess(img))?;
        class_scores(&out)
    }

    /// The 1000 class probabilities of a picture that is already the network's 224x224
    /// input crop ([`input_crop`]): no resize, only [`normalise`].
    pub fn classify_crop(&mut self, crop: &RgbImage) -> Result<Vec<f32>, TaskError> {
        if (crop.width, crop.height) != (CROP, CROP) {
            return Err(TaskError::Output {
                model: "mobilenet_v2".into(),
                why: format!(
                    "input crop is {}x{}, expected {CROP}x{CROP}",
                    crop.width, crop.height
                ),
            });
        }
        self.run_input(normalise(crop))
    }

    /// The 1000 class probabilities of a `[1, 3, 224, 224]` network input (the
    /// [`normalise`]d input crop).
    pub fn run_input(&mut self, input: Vec<f32>) -> Result<Vec<f32>, TaskError> {
        let c = CROP as usize;
        let (_, out) = self.model.run(&[1, 3, c, c], input)?;
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
        let scores = if self.crops {
            self.classify_crop(img)?
        } else {
            self.classify(img)?
        };
        Ok(TaskOutput::ClassScores(scores))
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

    #[test]
    fn crop_then_normalise_is_planar() {
        // 300x200: resized to 384x256, crop offset (80, 16).
        let img = icm::testimage::synthetic(300, 200, 5);
        let crop = input_crop(&img);
        assert_eq!((crop.width, crop.height), (224, 224));
        let t = normalise(&crop);
        let plane = 224 * 224;
        let (x, y) = (17usize, 101usize);
        let p = (y * 224 + x) * 3;
        for ch in 0..3 {
            let want = (f32::from(crop.data[p + ch]) - 127.5) / 127.5;
            assert_eq!(t[ch * plane + y * 224 + x], want);
        }
        let r = resize_bilinear(&img, 384, 256);
        let q = ((16 + y) * 384 + 80 + x) * 3;
        assert_eq!(&crop.data[p..p + 3], &r.data[q..q + 3]);
    }
}
