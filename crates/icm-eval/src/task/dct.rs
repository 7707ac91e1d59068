//! MobileNetV2 on JPEG DCT coefficients, without pixel decoding (issue 9; spec Annex B;
//! Xu et al., "Learning in the Frequency Domain", CVPR 2020).
//!
//! The network is the shared classifier (`classification/mobilenet_v2_1.0_224_quant.onnx`)
//! with its input stages, up to the first 32-channel stride-8 projection, replaced by a
//! small stem that reads frequency channels (Annex B.2) at stride 8: all 192 of a YCbCr
//! JPEG, or the 24 of Annex B.3. The stems are trained by distillation from the RGB network
//! (`models/training/icm_training/dct/`) and shipped in `models/tasks/`; `scripts/compose_dct_tasks.py`
//! (run by `scripts/setup_onnxruntime.sh`) joins each stem to the tail of the shared
//! classifier in [`composed_model_dir`]. A composed file lists the channels it reads, in
//! input order, in its metadata key `icm.channels` (JSON), which [`DctMobileNetV2`] follows.
//!
//! Input: the dequantised coefficients `R` of the listed channels (Annex B.1, B.2), CHW, as
//! float32, one cell per 8x8 block of the picture: a 224x224 JPEG (the classifier's input
//! crop, [`super::classification::input_crop`], JPEG-coded) gives a 28x28 grid. Other sizes
//! run too (the final average pool is global) but the stems were trained on 224x224 crops.
//! Output: the 1001 softmax probabilities of the classifier (index 0 background).

use super::classification::class_scores;
use super::domain::InputDomain;
use super::runtime::OnnxModel;
use super::{
    DctCoefficients, TaskDecoder, TaskError, TaskInput, TaskInputKind, TaskKind, TaskOutput,
};
use crate::jpeg::channels::{frequency_tensor, TensorLayout};
use icm::codec::RgbImage;
use std::path::{Path, PathBuf};

/// Smallest grid the network runs on: two stride-2 stages after the cut need 4 cells.
pub const MIN_GRID: usize = 4;

/// Where the composed DCT classifiers are: `$ICM_TASK_CACHE`, else `~/.cache/icm/tasks`
/// (what `scripts/compose_dct_tasks.py` writes).
pub fn composed_model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ICM_TASK_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("icm").join("tasks")
}

/// The model file of a DCT domain: `explicit` when given, else its composed file. Fails
/// with [`TaskError::ComposedModelNotFound`] when it is not a file.
pub fn resolve_dct_model(
    domain: InputDomain,
    explicit: Option<&Path>,
) -> Result<PathBuf, TaskError> {
    let path = match (explicit, domain.dct_model_file()) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(f)) => composed_model_dir().join(f),
        (None, None) => {
            return Err(TaskError::Output {
                model: "mobilenet_v2".into(),
                why: format!("the {domain} domain has no composed DCT model"),
            })
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TaskError::ComposedModelNotFound {
            path: path.display().to_string(),
        })
    }
}

/// Parses the `icm.channels` metadata value: a JSON list of distinct channel indices
/// below 192.
pub fn parse_channel_list(text: &str) -> Result<Vec<usize>, String> {
    let v: Vec<usize> =
        serde_json::from_str(text).map_err(|e| format!("icm.channels is not a list: {e}"))?;
    if v.is_empty() {
        return Err("icm.channels is empty".into());
    }
    let mut seen = [false; 192];
    for &c in &v {
        if c >= 192 {
            return Err(format!("icm.channels: channel {c} is not below 192"));
        }
        if std::mem::replace(&mut seen[c], true) {
            return Err(format!("icm.channels: channel {c} listed twice"));
        }
    }
    Ok(v)
}

/// The classifier on DCT channels (a composed model, see the module documentation).
pub struct DctMobileNetV2 {
    model: OnnxModel,
    channels: Vec<usize>,
    name: String,
}

impl DctMobileNetV2 {
    /// Loads a composed model and reads its channel list.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let model = OnnxModel::load(path)?;
        let bad = |why: String| TaskError::Model {
            path: path.display().to_string(),
            why,
        };
        let text = model.metadata("icm.channels").ok_or_else(|| {
            bad("no icm.channels metadata: not a DCT classifier made by \
                 scripts/compose_dct_tasks.py"
                .into())
        })?;
        let channels = parse_channel_list(&text).map_err(bad)?;
        let name = format!("mobilenet_v2_dct{}", channels.len());
        Ok(Self {
            model,
            channels,
            name,
        })
    }

    /// The channels it reads, in input order.
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    /// The network input of a JPEG's coefficients: shape `[1, C, rows, cols]` and the
    /// dequantised coefficients of its channels as float32 (Annex B.2, CHW). A grayscale
    /// file gives zeros in the chroma channels (neutral chroma).
    pub fn input_tensor(&self, c: &DctCoefficients) -> Result<(Vec<usize>, Vec<f32>), TaskError> {
        let bad = |why: String| TaskError::Output {
            model: self.name.clone(),
            why,
        };
        if !matches!(c.components.len(), 1 | 3) {
            return Err(bad(format!(
                "a JPEG with {} components: YCbCr (3) or grayscale (1) expected",
                c.components.len()
            )));
        }
        let limit = crate::jpeg::DecodeOptions::default().max_tensor_bytes;
        let (shape, values) = frequency_tensor(c, &self.channels, true, TensorLayout::Chw, limit)?;
        if shape[1] < MIN_GRID || shape[2] < MIN_GRID {
            return Err(bad(format!(
                "{}x{} picture: at least {} pixels a side",
                c.width,
                c.height,
                MIN_GRID * 8
            )));
        }
        // |R| < 2^15 * 2^16 is exact in f32 only below 2^24; JPEG's 8-bit coefficients
        // times their quantisation values stay below 2^11 * 255.
        let data = values.iter().map(|&v| v as f32).collect();
        Ok((vec![1, shape[0], shape[1], shape[2]], data))
    }

    /// Runs the network on a tensor from [`input_tensor`](Self::input_tensor); returns the
    /// 1000 ImageNet class probabilities.
    pub fn run_tensor(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Vec<f32>, TaskError> {
        let (_, out) = self.model.run(shape, data)?;
        class_scores(&out)
    }

    /// The 1000 class probabilities of a JPEG's coefficients.
    pub fn classify(&mut self, c: &DctCoefficients) -> Result<Vec<f32>, TaskError> {
        let (shape, data) = self.input_tensor(c)?;
        self.run_tensor(&shape, data)
    }
}

impl TaskDecoder for DctMobileNetV2 {
    fn name(&self) -> &str {
        &self.name
    }
    fn task(&self) -> TaskKind {
        TaskKind::Classification
    }
    fn input_kind(&self) -> TaskInputKind {
        TaskInputKind::Dct
    }
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        match input {
            TaskInput::Dct(c) => Ok(TaskOutput::ClassScores(self.classify(c)?)),
            other => Err(TaskError::WrongInput {
                decoder: self.name.clone(),
                wanted: TaskInputKind::Dct,
                got: other.kind(),
            }),
        }
    }
}

/// RGB to YCbCr as libjpeg's `rgb_ycc_convert` (jccolor.c): 16-bit fixed point, Y rounded
/// with +1/2, Cb and Cr with +1/2 - 2^-16.
fn libjpeg_ycc(r: u8, g: u8, b: u8) -> [i32; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    let cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16;
    let cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16;
    [y, cb, cr]
}

/// The picture in YCbCr with each 2x2 cell's chroma replaced by its average as libjpeg's
/// `h2v2_downsample` computes it (jcsample.c: `(a + b + c + d + bias) >> 2`, bias 1 and 2
/// on alternate output columns; edges replicated). An encoder that subsamples by taking
/// one sample per cell (jpeg-encoder does) then writes libjpeg's chroma.
fn ycc_with_libjpeg_chroma(img: &RgbImage) -> Vec<u8> {
    let (w, h) = (img.width as usize, img.height as usize);
    let ycc: Vec<[i32; 3]> = img
        .data
        .chunks_exact(3)
        .map(|p| libjpeg_ycc(p[0], p[1], p[2]))
        .collect();
    let mut out = vec![0u8; w * h * 3];
    for (i, (o, v)) in out.chunks_exact_mut(3).zip(&ycc).enumerate() {
        let (x, y) = (i % w, i / w);
        let (cx, cy) = (x / 2, y / 2);
        let bias = if cx % 2 == 0 { 1 } else { 2 };
        o[0] = v[0].clamp(0, 255) as u8;
        for c in 1..3 {
            let mut sum = bias;
            for dy in 0..2 {
                for dx in 0..2 {
                    let (sx, sy) = ((2 * cx + dx).min(w - 1), (2 * cy + dy).min(h - 1));
                    sum += ycc[sy * w + sx][c];
                }
            }
            o[c] = (sum >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// JPEG coding of the DCT-domain evaluation, as libjpeg (the Pillow encoder the stems were
/// trained on) codes 4:2:0: libjpeg's colour conversion and 2x2 box downsampling of the
/// chroma, then the `jpeg-encoder` crate: baseline, the T.81 Annex K tables scaled by
/// `quality` (1..100) as `jpeg_set_quality`, standard Huffman tables. (jpeg-encoder alone
/// subsamples chroma by taking one sample per 2x2 cell; its high-frequency chroma
/// coefficients then differ from libjpeg's, which cost the 192-channel network 8 points of
/// top-1 at quality 95.)
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, TaskError> {
    let err = |why: String| TaskError::Codec {
        what: format!("JPEG quality {quality}"),
        why,
    };
    let (w, h) = (
        u16::try_from(img.width).map_err(|_| err("picture wider than 65535".into()))?,
        u16::try_from(img.height).map_err(|_| err("picture taller than 65535".into()))?,
    );
    if img.data.len() != usize::from(w) * usize::from(h) * 3 {
        return Err(err(format!(
            "{} bytes for a {w}x{h} RGB picture",
            img.data.len()
        )));
    }
    let ycc = ycc_with_libjpeg_chroma(img);
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    enc.encode(&ycc, w, h, jpeg_encoder::ColorType::Ycbcr)
        .map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// Decodes a JPEG to RGB8 (the `image` crate).
pub fn decode_jpeg_rgb(bytes: &[u8]) -> Result<RgbImage, TaskError> {
    let img =
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).map_err(|e| {
            TaskError::Codec {
                what: "JPEG decoding".into(),
                why: e.to_string(),
            }
        })?;
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        data: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{decode_coefficients, DecodeOptions};

    #[test]
    fn channel_metadata() {
        assert_eq!(parse_channel_list("[0, 64, 128]"), Ok(vec![0, 64, 128]));
        assert!(parse_channel_list("[]").is_err());
        assert!(parse_channel_list("[0, 0]").is_err());
        assert!(parse_channel_list("[192]").is_err());
        assert!(parse_channel_list("{}").is_err());
    }

    #[test]
    fn libjpeg_colour_and_downsampling() {
        assert_eq!(libjpeg_ycc(255, 255, 255), [255, 128, 128]);
        assert_eq!(libjpeg_ycc(0, 0, 0), [0, 128, 128]);
        assert_eq!(libjpeg_ycc(255, 0, 0), [76, 85, 255]);
        // 3x2 picture: cells (0, 0) and (1, 0), the second with its right column replicated.
        let img = RgbImage {
            width: 3,
            height: 2,
            data: vec![
                255, 0, 0, 0, 0, 255, 0, 255, 0, //
                255, 255, 255, 0, 0, 0, 0, 255, 0,
            ],
        };
        let ycc = ycc_with_libjpeg_chroma(&img);
        let cb: Vec<i32> = [[255, 0, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]
            .iter()
            .map(|p| libjpeg_ycc(p[0], p[1], p[2])[1])
            .collect();
        let want0 = ((cb.iter().sum::<i32>() + 1) >> 2) as u8;
        assert_eq!(ycc[1], want0);
        assert_eq!(ycc[3 + 1], want0);
        assert_eq!(ycc[9 + 1], want0);
        let g = libjpeg_ycc(0, 255, 0);
        assert_eq!(ycc[6 + 1], ((4 * g[1] + 2) >> 2) as u8);
        assert_eq!(ycc[6], g[0] as u8);
    }

    #[test]
    fn encoder_is_420_with_libjpeg_tables() {
        let img = icm::testimage::synthetic(224, 224, 2);
        for (q, luma0, chroma0) in [(50u8, 16u16, 17u16), (10, 80, 85), (95, 2, 2)] {
            let bytes = encode_jpeg(&img, q).expect("encode");
            let c = decode_coefficients(&bytes, &DecodeOptions::default()).expect("decode");
            assert_eq!((c.width, c.height), (224, 224));
            assert_eq!(c.components.len(), 3);
            assert_eq!((c.components[0].h, c.components[0].v), (2, 2));
            assert_eq!((c.components[1].h, c.components[1].v), (1, 1));
            // T.81 Annex K Table K.1/K.2 first entries (16, 17) scaled as jpeg_set_quality:
            // q < 50: 5000 / q percent, else 200 - 2q percent, rounded, clamped to 1..255.
            assert_eq!(c.components[0].quant[0], luma0, "q{q}");
            assert_eq!(c.components[1].quant[0], chroma0, "q{q}");
            let rgb = decode_jpeg_rgb(&bytes).expect("rgb");
            assert_eq!((rgb.width, rgb.height), (224, 224));
        }
    }
}
