//! The codec side of a task evaluation: one [`RateCodec`] per rate point.
//!
//! A rate codec codes an original picture and hands back what was coded ([`Coded`]): its
//! size, and the stream the input domains decode (an icm stream, a JPEG file), or the
//! decoded picture where the codec's own tools decode it. Built in: [`Uncompressed`] (the
//! ceiling), [`IcmCodec`] (one model of the zoo), [`AnchorRateCodec`] (a conventional
//! codec through the `icm anchor` path) and [`JpegIjg`] (the classifier's input crop,
//! JPEG-coded in process, for the DCT domains). Another codec plugs in by implementing
//! the trait.

use super::dct::encode_jpeg;
use super::roi::{importance, ImportanceMap, RoiNetworks, RoiParams, RoiTask};
use super::TaskError;
use icm::codec::{self, EncodeOptions, RgbImage, Steps};
use icm::model::Model;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a rate codec's decoder side starts from.
#[derive(Debug, Clone)]
pub enum Stream<'a> {
    /// A decoded picture: the original (uncompressed) or what the codec's own decoder gave.
    Picture(RgbImage),
    /// An icm stream and the model that decodes it.
    Icm {
        /// The stream.
        bytes: Vec<u8>,
        /// Its model.
        model: &'a Model,
    },
    /// A JPEG file.
    Jpeg(Vec<u8>),
}

/// One coded picture.
#[derive(Debug, Clone)]
pub struct Coded<'a> {
    /// Size of the coded stream in bytes (the raw RGB size for the uncompressed ceiling).
    pub bytes: usize,
    /// What the input domains decode.
    pub stream: Stream<'a>,
}

/// A codec at one rate point.
pub trait RateCodec: Send {
    /// Codec name (`icm`, `none`, `vvc`, `jpeg-ijg`, ...).
    fn codec(&self) -> &str;
    /// The rate point's label (model name, `vvc-qp32`, `jpeg-q50`, ...).
    fn label(&self) -> String;
    /// The rate point's quality index or rate parameter as results report it.
    fn quality(&self) -> f64;
    /// What decides the coded picture besides the picture itself (the model's SHA-256,
    /// the encoder settings and the tool's version): a key of the record cache
    /// ([`super::job::RecordCache`]). Two rate points with the same identity code every
    /// picture to the same stream.
    fn identity(&self) -> String;
    /// Codes one picture.
    fn code(&self, img: &RgbImage) -> Result<Coded<'_>, TaskError>;
}

/// No compression: the picture itself, reported at its raw RGB size (24 bpp, so that
/// rate-task curves stay on a log axis).
#[derive(Debug, Clone, Copy, Default)]
pub struct Uncompressed;

impl RateCodec for Uncompressed {
    fn codec(&self) -> &str {
        "none"
    }
    fn label(&self) -> String {
        "uncompressed".into()
    }
    fn quality(&self) -> f64 {
        0.0
    }
    fn identity(&self) -> String {
        "none".into()
    }
    fn code(&self, img: &RgbImage) -> Result<Coded<'_>, TaskError> {
        Ok(Coded {
            bytes: img.data.len(),
            stream: Stream::Picture(img.clone()),
        })
    }
}

/// icm with one model (a rate point of the zoo).
pub struct IcmCodec {
    /// The model (shared: the Python package hands out its built-in zoo).
    pub model: Arc<Model>,
    /// Zoo quality it is reported under.
    pub quality: u8,
    /// Global quantisation step, units of `2^-8` (256: none; spec 12.7).
    pub step: u16,
    /// Region-of-interest steps from a task network's view of the original picture.
    pub roi: Option<Arc<RoiCoding>>,
}

impl IcmCodec {
    /// Model `model` at step 1, without regions of interest.
    pub fn new(model: Arc<Model>, quality: u8) -> Self {
        Self {
            model,
            quality,
            step: 256,
            roi: None,
        }
    }
}

/// Region-of-interest coding for the rate points of an evaluation (spec 12.7, `icm encode
/// --roi`): the importance map of each original picture, computed once and shared by every
/// rate point, becomes steps `G^(1 - w)` times the rate point's step.
pub struct RoiCoding {
    /// The task whose network gives the map.
    pub task: RoiTask,
    /// `G`, the step factor of the least important cells.
    pub background: f64,
    /// The mapping's parameters.
    pub params: RoiParams,
    /// What identifies the network (its file's SHA-256), for the record cache.
    pub network: String,
    nets: Mutex<RoiNetworks>,
    maps: Mutex<HashMap<[u8; 32], ImportanceMap>>,
}

impl RoiCoding {
    /// ROI coding with the network of `task` from `nets`, identified as `network`.
    pub fn new(task: RoiTask, background: f64, nets: RoiNetworks, network: String) -> Self {
        Self {
            task,
            background,
            params: RoiParams::default(),
            network,
            nets: Mutex::new(nets),
            maps: Mutex::new(HashMap::new()),
        }
    }

    /// The steps of `img` (shape; the rate point scales them).
    fn steps(&self, img: &RgbImage) -> Result<Steps, TaskError> {
        let key: [u8; 32] = Sha256::digest(&img.data).into();
        let cached = self.maps.lock().ok().and_then(|m| m.get(&key).cloned());
        let map = match cached {
            Some(map) => map,
            None => {
                let map = {
                    let mut nets = self.nets.lock().map_err(|_| TaskError::Codec {
                        what: "roi".into(),
                        why: "a thread panicked holding the task network".into(),
                    })?;
                    importance(self.task, img, &mut nets, &self.params)?
                };
                if let Ok(mut m) = self.maps.lock() {
                    // one map per picture of the evaluation: small
                    m.insert(key, map.clone());
                }
                map
            }
        };
        Steps::from_importance(map.cols, map.rows, &map.values, self.background).map_err(|e| {
            TaskError::Codec {
                what: "roi steps".into(),
                why: e.to_string(),
            }
        })
    }
}

impl RateCodec for IcmCodec {
    fn codec(&self) -> &str {
        "icm"
    }
    fn label(&self) -> String {
        let mut label = self.model.name.clone();
        if let Some(roi) = &self.roi {
            label += &format!("+roi-{}-g{}", roi.task.name(), roi.background);
        }
        if self.step != 256 {
            label += &format!("@{}", codec::step_of(self.step));
        }
        label
    }
    fn quality(&self) -> f64 {
        f64::from(self.quality)
    }
    fn identity(&self) -> String {
        let mut id = format!(
            "icm-eval {} model {} sha256 {}",
            env!("CARGO_PKG_VERSION"),
            self.model.name,
            self.model.sha256_hex()
        );
        if self.step != 256 {
            id += &format!(" step {}", self.step);
        }
        if let Some(roi) = &self.roi {
            id += &format!(
                " roi {} background {} params {:?} network {}",
                roi.task.name(),
                roi.background,
                roi.params,
                roi.network
            );
        }
        id
    }
    fn code(&self, img: &RgbImage) -> Result<Coded<'_>, TaskError> {
        let shape = match &self.roi {
            Some(roi) => roi.steps(img)?,
            None => Steps::UNIT,
        };
        let opts = EncodeOptions {
            steps: shape.scaled(self.step),
            ..EncodeOptions::default()
        };
        let bytes = codec::encode(img, &self.model, &opts).map_err(|e| TaskError::Codec {
            what: format!("encode with {}", self.model.name),
            why: e.to_string(),
        })?;
        Ok(Coded {
            bytes: bytes.len(),
            stream: Stream::Icm {
                bytes,
                model: &self.model,
            },
        })
    }
}

/// A conventional codec at one rate parameter through the anchor path of `icm anchor`
/// (ffmpeg, the colour conversion of [`crate::anchor::colour`], and its cache); ffmpeg
/// decodes too, so the stream is the decoded picture.
pub struct AnchorRateCodec {
    /// Codec and tools.
    pub config: crate::anchor::AnchorConfig,
    /// Cache, or `None` to encode every time.
    pub cache: Option<crate::anchor::AnchorCache>,
    /// QP, CRF, qscale, distance or quality.
    pub level: f64,
}

impl RateCodec for AnchorRateCodec {
    fn codec(&self) -> &str {
        self.config.codec.name()
    }
    fn label(&self) -> String {
        format!(
            "{}-{}{}",
            self.config.codec,
            self.config.codec.level_name(),
            crate::anchor::format_level(self.level)
        )
    }
    fn quality(&self) -> f64 {
        self.level
    }
    fn identity(&self) -> String {
        self.config.settings(self.level)
    }
    fn code(&self, img: &RgbImage) -> Result<Coded<'_>, TaskError> {
        let coded = match &self.cache {
            Some(c) => c.code(&self.config, img, self.level).map(|(c, _)| c),
            None => self.config.code(img, self.level),
        }
        .map_err(|e| TaskError::Codec {
            what: self.label(),
            why: e.to_string(),
        })?;
        Ok(Coded {
            bytes: coded.bitstream.len(),
            stream: Stream::Picture(coded.decoded),
        })
    }
}

/// JPEG at one IJG quality (libjpeg's scaling of the Annex K tables, 4:2:0), coded in
/// process: the DCT-domain evaluation codes the classifier's input crop with it.
#[derive(Debug, Clone, Copy)]
pub struct JpegIjg {
    /// IJG quality 1..=100.
    pub quality: u8,
}

impl RateCodec for JpegIjg {
    fn codec(&self) -> &str {
        "jpeg-ijg"
    }
    fn label(&self) -> String {
        format!("jpeg-q{}", self.quality)
    }
    fn quality(&self) -> f64 {
        f64::from(self.quality)
    }
    fn identity(&self) -> String {
        format!(
            "jpeg-ijg q{} icm-eval {}",
            self.quality,
            env!("CARGO_PKG_VERSION")
        )
    }
    fn code(&self, img: &RgbImage) -> Result<Coded<'_>, TaskError> {
        let jpeg = encode_jpeg(img, self.quality)?;
        Ok(Coded {
            bytes: jpeg.len(),
            stream: Stream::Jpeg(jpeg),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_hand_back_their_streams() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../conformance/models/test-seed1-small.safetensors");
        let model = Model::from_path(&path).expect("test model");
        let img = icm::testimage::synthetic(200, 130, 3);
        let icm = IcmCodec::new(Arc::new(model), 1);
        let coded = icm.code(&img).expect("code");
        let Stream::Icm { bytes, .. } = &coded.stream else {
            panic!("icm gave no icm stream");
        };
        assert_eq!(coded.bytes, bytes.len());
        assert!(bytes.starts_with(&icm::container::MAGIC));
        let none = Uncompressed.code(&img).expect("none");
        assert_eq!(none.bytes, 200 * 130 * 3);
        assert!(matches!(none.stream, Stream::Picture(ref p) if *p == img));
        let jpeg = JpegIjg { quality: 50 }.code(&img).expect("jpeg");
        assert!(matches!(jpeg.stream, Stream::Jpeg(ref b) if b.starts_with(&[0xFF, 0xD8])));
        assert_eq!(JpegIjg { quality: 50 }.label(), "jpeg-q50");
    }
}
