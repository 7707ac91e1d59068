//! Plug-in task decoders: networks that read a decoded picture, the decoded latents or the
//! DCT coefficients of a JPEG file, and return a detection, classification or segmentation
//! result, with the scoring that turns results into rate-task curves (`icm task-eval`).
//!
//! - [`TaskDecoder`]: the plug-in trait. A decoder declares the [`TaskInputKind`] it reads,
//!   runs on a [`TaskInput`] and returns a typed [`TaskOutput`].
//! - Built-in decoders for the three networks of `../shared/models` (each file's MODEL.md
//!   gives the pre- and post-processing followed here): [`detection::Yolox`] (YOLOX-Nano,
//!   COCO), [`classification::MobileNetV2`] (ImageNet) and [`segmentation::DeepLabV3`]
//!   (PASCAL VOC). They run on ONNX Runtime ([`runtime`], cargo feature `tasks`, on by
//!   default) loaded at run time from `libonnxruntime.so`.
//! - [`dct::DctMobileNetV2`]: the same classifier on JPEG DCT coefficients (spec Annex B),
//!   its input stages replaced by a stem trained by distillation (`models/tasks/`).
//! - [`latent::LatentMobileNetV2`]: the same classifier on the decoded latents y^, without
//!   g_s, its stages before stride 16 replaced by a stem trained by distillation.
//! - [`latent_detection::LatentYolox`]: YOLOX-Nano on y^, its backbone replaced by a stem
//!   that feeds the neck at strides 8, 16 and 32.
//! - Scoring in Rust: [`coco`] (pycocotools' COCOeval for boxes), [`scoring`] (top-k, mIoU).
//! - [`rate`]: the codec side of an evaluation, one [`rate::RateCodec`] per rate point.
//! - [`evaluate`]: the evaluation engine (dataset x rate point x [`domain::InputDomain`]),
//!   over a [`dataset::Dataset`], with [`score::Score`] per rate point and network.

pub mod classification;
pub mod coco;
pub mod dataset;
pub mod dct;
pub mod detection;
pub mod domain;
pub mod evaluate;
pub mod imageops;
pub mod job;
pub mod latent;
pub mod latent_detection;
pub mod network;
pub mod rate;
pub mod roi;
pub mod runtime;
pub mod score;
pub mod scoring;
pub mod segmentation;

use icm::codec::RgbImage;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors of the task decoders, their runtime and their scoring.
#[derive(Debug, Error)]
pub enum TaskError {
    /// No ONNX Runtime library was found.
    #[error(
        "ONNX Runtime library not found (looked at: {searched}); run scripts/setup_onnxruntime.sh \
         or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or later"
    )]
    RuntimeNotFound {
        /// The places looked at.
        searched: String,
    },
    /// A library was found but cannot be used.
    #[error(
        "{path}: cannot load ONNX Runtime: {why}; run scripts/setup_onnxruntime.sh or set \
         ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or later"
    )]
    RuntimeLoad {
        /// Library path.
        path: String,
        /// Cause.
        why: String,
    },
    /// Built without the `tasks` cargo feature.
    #[error(
        "icm was built without the `tasks` feature (ONNX Runtime task decoders); rebuild with \
         default features"
    )]
    FeatureDisabled,
    /// The task network file is missing.
    #[error(
        "{path}: task model not found; give --task-model PATH or set ICM_TASK_MODELS to the \
         folder holding yolox_nano/, classification/ and segmentation/"
    )]
    ModelNotFound {
        /// Model path.
        path: String,
    },
    /// A composed DCT- or latent-domain network (`scripts/compose_dct_tasks.py`,
    /// `scripts/compose_latent_tasks.py`) is missing.
    #[error(
        "{path}: composed task network not found; run scripts/setup_onnxruntime.sh (it \
         composes the stems of models/tasks/ with ../shared's networks), or give \
         --task-model PATH"
    )]
    ComposedModelNotFound {
        /// Model path.
        path: String,
    },
    /// ONNX Runtime refused the model or failed to run it.
    #[error("{path}: {why}")]
    Model {
        /// Model path.
        path: String,
        /// Cause.
        why: String,
    },
    /// The network's output does not have the shape its MODEL.md gives.
    #[error("{model}: unexpected output: {why}")]
    Output {
        /// Model name.
        model: String,
        /// What was wrong.
        why: String,
    },
    /// No built-in network reads this input domain for this task.
    #[error(
        "the {} task has no network for --input-domain {domain} (classification reads rgb, \
         dct192, dct24 and latents; detection rgb and latents; segmentation rgb)",
        task.name()
    )]
    NoNetwork {
        /// The task.
        task: TaskKind,
        /// The domain asked for.
        domain: domain::InputDomain,
    },
    /// A decoder was given an input of another kind than it declares.
    #[error("task decoder {decoder} reads {wanted:?} input, got {got:?}")]
    WrongInput {
        /// Decoder name.
        decoder: String,
        /// What it reads.
        wanted: TaskInputKind,
        /// What it was given.
        got: TaskInputKind,
    },
    /// A dataset (annotations, labels, images) is malformed.
    #[error("{path}: {why}")]
    Dataset {
        /// File or folder.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A picture file could not be read.
    #[error(transparent)]
    Picture(#[from] crate::picture::PictureError),
    /// A JPEG's coefficients could not be read or arranged.
    #[error(transparent)]
    Jpeg(#[from] crate::jpeg::JpegError),
    /// The records of an evaluation's pictures do not make up the evaluation (one missing,
    /// one twice, one of another evaluation).
    #[error("task evaluation records: {why}")]
    Records {
        /// What was wrong.
        why: String,
    },
    /// The codec under test failed on an image.
    #[error("{what}: {why}")]
    Codec {
        /// Image and codec.
        what: String,
        /// Cause.
        why: String,
    },
}

/// The three tasks with built-in decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Object detection (COCO boxes).
    Detection,
    /// Image classification (ImageNet-1k).
    Classification,
    /// Semantic segmentation (PASCAL VOC classes).
    Segmentation,
}

impl TaskKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Detection => "detection",
            Self::Classification => "classification",
            Self::Segmentation => "segmentation",
        }
    }

    /// The model file of the built-in decoder, relative to the task model folder.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::Detection => "yolox_nano/yolox_nano.onnx",
            Self::Classification => "classification/mobilenet_v2_1.0_224_quant.onnx",
            Self::Segmentation => "segmentation/deeplabv3_mnv2_pascal_257.onnx",
        }
    }
}

impl std::str::FromStr for TaskKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "detection" => Ok(Self::Detection),
            "classification" => Ok(Self::Classification),
            "segmentation" => Ok(Self::Segmentation),
            _ => Err(format!(
                "unknown task {s:?} (detection, classification, segmentation)"
            )),
        }
    }
}

/// What a task decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskInputKind {
    /// The decoded picture, 8-bit RGB.
    Pixels,
    /// The decoded latents y^ (spec 10, normative and bit-exact).
    Latents,
    /// DCT coefficients of a JPEG file (spec Annex B), without pixel decoding.
    Dct,
}

/// Decoded y^ as `icm decode --latents` writes it: int32 fixed point in units of 1/256,
/// CHW, shape `(channels, height, width)` = `(192, ceil(H/64)*4, ceil(W/64)*4)` with tiles
/// placed at their positions.
#[derive(Debug, Clone)]
pub struct LatentTensor {
    /// Channels (M).
    pub channels: usize,
    /// Rows (picture height / 16, rounded up to whole 64-pixel blocks).
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels * height * width` values, CHW.
    pub data: Vec<i32>,
    /// Width of the coded picture in pixels.
    pub image_width: u32,
    /// Height of the coded picture in pixels.
    pub image_height: u32,
}

impl LatentTensor {
    /// y^ of a decoded stream: the mosaic of [`icm::codec::Latents::y_mosaic`] with the
    /// picture's size.
    pub fn from_latents(tiling: &icm::container::Tiling, latents: &icm::codec::Latents) -> Self {
        let m = latents.y_mosaic(tiling);
        Self {
            channels: m.channels,
            height: m.height,
            width: m.width,
            data: m.data,
            image_width: tiling.width,
            image_height: tiling.height,
        }
    }
}

/// DCT coefficients of a JPEG file as [`crate::jpeg::decode_coefficients`] gives them
/// (spec Annex B.1): per component, the quantised coefficients and the quantisation table,
/// without pixel decoding. A DCT-domain decoder arranges the channels it reads itself
/// ([`crate::jpeg::channels::frequency_tensor`], Annex B.2 and B.3).
pub type DctCoefficients = crate::jpeg::Coefficients;

/// The input given to a task decoder.
#[derive(Debug, Clone, Copy)]
pub enum TaskInput<'a> {
    /// A decoded (or original) picture.
    Pixels(&'a RgbImage),
    /// Decoded latents.
    Latents(&'a LatentTensor),
    /// DCT coefficients of a JPEG file.
    Dct(&'a DctCoefficients),
}

impl TaskInput<'_> {
    /// Its kind.
    pub fn kind(&self) -> TaskInputKind {
        match self {
            Self::Pixels(_) => TaskInputKind::Pixels,
            Self::Latents(_) => TaskInputKind::Latents,
            Self::Dct(_) => TaskInputKind::Dct,
        }
    }
}

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Box `[x, y, width, height]` in pixels of the original picture (COCO's `bbox`).
    pub bbox: [f32; 4],
    /// Confidence in 0..1.
    pub score: f32,
    /// Class index of the network (for YOLOX: 0..80, in COCO category-id order).
    pub class_id: usize,
}

/// A per-pixel class map at the size of the original picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationMap {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of classes of the network (class values are below it).
    pub classes: usize,
    /// `width * height` class indices, row-major.
    pub labels: Vec<u8>,
}

/// The result of a task decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutput {
    /// Detected objects, best first.
    Detections(Vec<Detection>),
    /// One probability per dataset class (for ImageNet: 1000, index = class index in sorted
    /// synset order, the network's background entry removed).
    ClassScores(Vec<f32>),
    /// A class per pixel.
    SegmentationMap(SegmentationMap),
}

/// A task network plugged in after the decoder.
pub trait TaskDecoder: Send {
    /// A short name (for messages and results files).
    fn name(&self) -> &str;
    /// The task.
    fn task(&self) -> TaskKind;
    /// The input it reads.
    fn input_kind(&self) -> TaskInputKind;
    /// Runs the network on one input.
    fn run(&mut self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError>;
}

/// Checks that `input` is of the kind `decoder` reads and returns its picture.
pub(crate) fn expect_pixels<'a>(
    decoder: &str,
    input: TaskInput<'a>,
) -> Result<&'a RgbImage, TaskError> {
    match input {
        TaskInput::Pixels(img) => Ok(img),
        other => Err(TaskError::WrongInput {
            decoder: decoder.to_string(),
            wanted: TaskInputKind::Pixels,
            got: other.kind(),
        }),
    }
}

/// The folder of task networks: `$ICM_TASK_MODELS`, else `../shared/models` beside the
/// repository (the parent of the icm model folder, see
/// [`icm::model::default_model_dir`]).
pub fn default_task_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ICM_TASK_MODELS") {
        return PathBuf::from(dir);
    }
    let models = icm::model::default_model_dir();
    let root = models.parent().unwrap_or(Path::new("."));
    root.join("..").join("shared").join("models")
}

/// The model file of `task`: `explicit` when given, else the built-in one in
/// [`default_task_model_dir`]. Fails with [`TaskError::ModelNotFound`] when it is not a file.
pub fn resolve_task_model(task: TaskKind, explicit: Option<&Path>) -> Result<PathBuf, TaskError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => default_task_model_dir().join(task.default_model()),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TaskError::ModelNotFound {
            path: path.display().to_string(),
        })
    }
}

/// The built-in decoder of `task` on the model file `path`.
pub fn load_decoder(task: TaskKind, path: &Path) -> Result<Box<dyn TaskDecoder>, TaskError> {
    Ok(match task {
        TaskKind::Detection => Box::new(detection::Yolox::load(path)?),
        TaskKind::Classification => Box::new(classification::MobileNetV2::load(path)?),
        TaskKind::Segmentation => Box::new(segmentation::DeepLabV3::load(path)?),
    })
}

/// Reads lines of a label file (one name per line), or `None` when it cannot be read.
pub fn read_labels(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().map(|l| l.trim().to_string()).collect())
}

/// A y^ tensor for unit tests: channel c, row y, column x holds
/// `(1000 c + 37 y + 5 x) * 256 + 128` (a plane linear in rows and columns, with a half
/// in the fixed-point fraction).
#[cfg(test)]
pub(crate) fn test_tensor(c: usize, rows: usize, cols: usize, w: u32, h: u32) -> LatentTensor {
    let data = (0..c * rows * cols)
        .map(|i| {
            let (ch, y, x) = (i / (rows * cols), (i / cols) % rows, i % cols);
            ((ch * 1000 + y * 37 + x * 5) as i32) * 256 + 128
        })
        .collect();
    LatentTensor {
        channels: c,
        height: rows,
        width: cols,
        data,
        image_width: w,
        image_height: h,
    }
}
