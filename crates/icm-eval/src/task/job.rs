//! A task evaluation set up from the arguments of `icm task-eval`, shared by the command
//! and by `python -m icm.dist task-eval` (the Python package), so that both build the same
//! [`Evaluation`] from the same arguments, cut it into the same [`Record`]s (one picture at
//! one rate point) and merge and score them with the same [`Evaluation::merge`].
//!
//! - [`TaskEvalSpec`]: the arguments (the strings of the command line, parsed here).
//! - [`TaskJob`]: the evaluation, its dataset and what names its results: built once per
//!   process ([`TaskJob::new`]), then [`TaskJob::evaluate`] per picture and rate point and
//!   [`TaskJob::finish`] once on all records.
//! - [`RecordCache`]: records stored under the SHA-256 of everything that decides them
//!   (the picture file's bytes, its ground-truth id, the rate point's model or encoder
//!   settings, the task networks' files, the crate version), so that a rerun, or a run
//!   resumed after an interruption, evaluates only what is missing. Entries are written to
//!   a temporary name and renamed: a process killed while writing leaves no entry.

use super::classification::MobileNetV2;
use super::coco::DetBox;
use super::dataset::Dataset;
use super::domain::InputDomain;
use super::evaluate::{Evaluation, Observer, Outcome, Picture, Record, TaskPath};
use super::network::load_network;
use super::rate::{AnchorRateCodec, IcmCodec, JpegIjg, RateCodec, RoiCoding, Uncompressed};
use super::roi::{RoiNetworks, RoiTask};
use super::score::Score;
use super::{resolve_task_model, TaskError, TaskKind};
use crate::anchor::{default_cache_root, AnchorCache, AnchorCodec, AnchorConfig, AnchorError};
use crate::results::ResultsFile;
use icm::model::{self, Model, ModelError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Errors of setting up, running and finishing a task evaluation, an anchor run
/// ([`crate::anchor::job`]) or a rate-distortion evaluation ([`crate::eval_job`]).
#[derive(Debug, Error)]
pub enum JobError {
    /// Arguments that do not go together or do not parse.
    #[error("{0}")]
    Usage(String),
    /// The evaluation itself (dataset, networks, codec, records).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A model of a rate point.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A conventional codec's set-up (ffmpeg).
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// A conventional codec failed on a picture.
    #[error("{what}: {source}")]
    AnchorCoding {
        /// Picture and rate point.
        what: String,
        /// Cause.
        source: AnchorError,
    },
    /// The icm codec failed on a picture (`icm eval`).
    #[error("{what}: {source}")]
    Codec {
        /// Picture, step and model: `kodim01.png (encode, model icm-psnr-q1)`.
        what: String,
        /// Cause.
        source: icm::codec::CodecError,
    },
    /// A model without encoder transforms was given to an evaluation that encodes.
    #[error("{path}: model {model} has no encoder transforms (decoder-only)")]
    DecoderOnly {
        /// Model file (or where it was found).
        path: String,
        /// Model name.
        model: String,
    },
    /// A decoded picture could not be measured (`icm anchor`, `icm eval`).
    #[error(transparent)]
    Rd(#[from] crate::rd::RdError),
    /// A model lookup of another front end (the Python package's zoo) failed.
    #[error("{0}")]
    Lookup(String),
    /// The record cache could not be written.
    #[error("{path}: {source}")]
    Cache {
        /// File or folder.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// The codec of `--codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCodec {
    /// The icm zoo (or the models of --model).
    Icm,
    /// No compression: the task's ceiling.
    None,
    /// A conventional codec through the `icm anchor` path.
    Anchor(AnchorCodec),
    /// JPEG of the classifier's input crop at IJG qualities, coded in process.
    JpegIjg,
}

impl TaskCodec {
    /// Its name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Icm => "icm",
            Self::None => "none",
            Self::Anchor(c) => c.name(),
            Self::JpegIjg => "jpeg-ijg",
        }
    }
}

impl std::str::FromStr for TaskCodec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "icm" => Ok(Self::Icm),
            "none" => Ok(Self::None),
            "jpeg-ijg" => Ok(Self::JpegIjg),
            _ => AnchorCodec::parse(s).map(Self::Anchor).ok_or_else(|| {
                format!(
                    "unknown codec {s:?} (icm, none, vvc, hevc, av1, jpeg, jxl, webp, jpeg-ijg)"
                )
            }),
        }
    }
}

/// The default IJG quality ladder of `--codec jpeg-ijg`.
pub const DEFAULT_IJG_QUALITIES: &str = "10,20,30,40,50,60,70,80,90,95";

/// Parses a comma-separated list of IJG qualities (1..=100).
pub fn parse_ijg_qualities(spec: &str) -> Result<Vec<u8>, JobError> {
    spec.split(',')
        .map(|part| {
            part.trim()
                .parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| {
                    JobError::Usage(format!("--qps {spec:?}: {part:?} is not a quality 1..100"))
                })
        })
        .collect()
}

/// Parses zoo qualities: `1..6` (inclusive, also `1..=6`), `1,3,5` or `4`.
pub fn parse_qualities(s: &str) -> Result<Vec<u8>, JobError> {
    let bad = || {
        JobError::Usage(format!(
            "--qualities {s:?}: expected a range 1..6 or a list 1,3,5 of values in 1..=6"
        ))
    };
    let q = |v: &str| {
        v.trim()
            .parse::<u8>()
            .ok()
            .filter(|v| (1..=6).contains(v))
            .ok_or_else(bad)
    };
    if let Some((lo, hi)) = s.split_once("..") {
        let (lo, hi) = (q(lo)?, q(hi.strip_prefix('=').unwrap_or(hi))?);
        if lo > hi {
            return Err(bad());
        }
        Ok((lo..=hi).collect())
    } else {
        s.split(',').map(q).collect()
    }
}

/// One icm rate point of `--qualities`: a zoo quality and a global quantisation step
/// (spec 12.7; 256 = a step of 1, no step map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZooPoint {
    /// Zoo quality, 1 to 6.
    pub quality: u8,
    /// Global step in units of `2^-8`.
    pub step: u16,
}

impl ZooPoint {
    /// The step as a number (1 = the model's own rate).
    pub fn step_value(&self) -> f64 {
        icm::codec::step_of(self.step)
    }

    /// The rate point's label: the model name, with `@STEP` when the step is not 1.
    pub fn label(&self, model: &str) -> String {
        if self.step == 256 {
            model.to_string()
        } else {
            format!("{model}@{}", self.step_value())
        }
    }
}

/// Parses icm rate points: a comma-separated list of zoo qualities (`4`), ranges (`1..6`,
/// `1..=6`) and qualities at a global quantisation step (`1@2`: model 1 with step 2, spec
/// 12.7; steps from 1/256 to 16), e.g. `1@3,1@2,1..6`.
pub fn parse_rate_points(s: &str) -> Result<Vec<ZooPoint>, JobError> {
    let bad = || {
        JobError::Usage(format!(
            "--qualities {s:?}: expected qualities in 1..=6 as a range 1..6, a list 1,3,5, or              Q@STEP for quality Q at a global step (1/256 to 16), e.g. 1@2,1..6"
        ))
    };
    let mut points = Vec::new();
    for item in s.split(',') {
        match item.split_once('@') {
            Some((q, step)) => {
                let [quality] = parse_qualities(q)?[..] else {
                    return Err(bad());
                };
                let step = step
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(|v| icm::codec::step_units(v).ok())
                    .ok_or_else(bad)?;
                points.push(ZooPoint { quality, step });
            }
            None => points.extend(
                parse_qualities(item)
                    .map_err(|_| bad())?
                    .into_iter()
                    .map(|quality| ZooPoint { quality, step: 256 }),
            ),
        }
    }
    Ok(points)
}

/// Parses a conventional codec's rate parameters (`--qps`): the list replaces the default
/// ladder, or extends it when it starts with '+'. Sorted from the highest quality down,
/// duplicates removed.
pub fn parse_levels(codec: AnchorCodec, spec: Option<&str>) -> Result<Vec<f64>, JobError> {
    let mut levels = codec.default_levels();
    if let Some(spec) = spec {
        let (extend, list) = match spec.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (lo, hi) = codec.level_range();
        let parsed: Vec<f64> = list
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|l| {
                        (lo..=hi).contains(l) && (!codec.integer_levels() || l.fract() == 0.0)
                    })
                    .ok_or_else(|| {
                        JobError::Usage(format!(
                            "--qps {spec:?}: {v:?} is not a valid {} for {codec} ({lo}..={hi}{})",
                            codec.level_name(),
                            if codec.integer_levels() {
                                ", integer"
                            } else {
                                ""
                            }
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        if extend {
            levels.extend(parsed);
        } else {
            levels = parsed;
        }
    }
    // Highest quality first: ascending QP/CRF/qscale/distance, descending WebP quality.
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup();
    if codec == AnchorCodec::Webp {
        levels.reverse();
    }
    Ok(levels)
}

/// Where the models of `--qualities` and `--model` come from.
pub trait ModelSource {
    /// The model `spec` (a name or a file) when given, else the zoo model of `quality`.
    fn load(&self, spec: Option<&str>, quality: Option<u8>) -> Result<Arc<Model>, JobError>;

    /// As [`ModelSource::load`], with the file the model was read from (`None`: a model
    /// built into the program), which results files report.
    fn locate(
        &self,
        spec: Option<&str>,
        quality: Option<u8>,
    ) -> Result<(Arc<Model>, Option<PathBuf>), JobError> {
        Ok((self.load(spec, quality)?, None))
    }
}

/// Models looked up in a model directory, as the `icm` command does.
#[derive(Debug, Clone)]
pub struct ModelDir(pub PathBuf);

impl ModelSource for ModelDir {
    fn load(&self, spec: Option<&str>, quality: Option<u8>) -> Result<Arc<Model>, JobError> {
        Ok(self.locate(spec, quality)?.0)
    }

    fn locate(
        &self,
        spec: Option<&str>,
        quality: Option<u8>,
    ) -> Result<(Arc<Model>, Option<PathBuf>), JobError> {
        let path = model::resolve_model(spec, quality, &self.0)?;
        Ok((Arc::new(Model::from_path(&path)?), Some(path)))
    }
}

/// The arguments of a task evaluation (those of `icm task-eval`, parsed).
#[derive(Debug, Clone)]
pub struct TaskEvalSpec {
    /// `--task`.
    pub task: TaskKind,
    /// `--dataset`.
    pub dataset: PathBuf,
    /// `--codec`.
    pub codec: TaskCodec,
    /// `--input-domain`.
    pub input_domain: InputDomain,
    /// `--qualities`.
    pub qualities: Option<String>,
    /// `--model`, repeated.
    pub models: Vec<String>,
    /// `--qps`.
    pub qps: Option<String>,
    /// `--ffmpeg`.
    pub ffmpeg: Option<PathBuf>,
    /// `--limit`.
    pub limit: Option<usize>,
    /// `--task-model`.
    pub task_model: Option<PathBuf>,
    /// `--annotations`.
    pub annotations: Option<PathBuf>,
    /// The anchor cache (conventional codecs); `None`: [`crate::anchor::default_cache_dir`].
    pub anchor_cache: Option<PathBuf>,
    /// `--roi`: icm codes each picture with the steps of this task's importance map.
    pub roi: Option<RoiTask>,
    /// `--roi-background`: the step factor of the least important cells (`None`: the
    /// task's, [`super::roi::default_background`]).
    pub roi_background: Option<f64>,
}

impl TaskEvalSpec {
    /// A spec of `task` on `dataset` with the defaults of `icm task-eval` (icm, rgb, the
    /// six zoo qualities).
    pub fn new(task: TaskKind, dataset: PathBuf) -> Self {
        Self {
            task,
            dataset,
            codec: TaskCodec::Icm,
            input_domain: InputDomain::Rgb,
            qualities: None,
            models: Vec::new(),
            qps: None,
            ffmpeg: None,
            limit: None,
            task_model: None,
            annotations: None,
            anchor_cache: None,
            roi: None,
            roi_background: None,
        }
    }

    /// Refuses options that the codec does not take.
    pub fn check(&self) -> Result<(), JobError> {
        let icm_options = self.qualities.is_some() || !self.models.is_empty();
        match self.codec {
            TaskCodec::Icm if self.qps.is_some() => Err(JobError::Usage(
                "--qps needs a conventional --codec or jpeg-ijg (icm takes --qualities)".into(),
            )),
            TaskCodec::None | TaskCodec::Anchor(_) | TaskCodec::JpegIjg if icm_options => {
                Err(JobError::Usage(format!(
                    "--qualities and --model need --codec icm, not {}",
                    self.codec.name()
                )))
            }
            TaskCodec::None if self.qps.is_some() => {
                Err(JobError::Usage("--qps needs a conventional --codec".into()))
            }
            TaskCodec::Icm if self.qualities.is_some() && !self.models.is_empty() => Err(
                JobError::Usage("--qualities and --model exclude each other".into()),
            ),
            _ => Ok(()),
        }?;
        if self.roi.is_some() && self.codec != TaskCodec::Icm {
            return Err(JobError::Usage(format!(
                "--roi needs --codec icm, not {}",
                self.codec.name()
            )));
        }
        let domain_ok = match self.input_domain {
            InputDomain::Rgb => true,
            InputDomain::Dct192 | InputDomain::Dct24 => self.codec == TaskCodec::JpegIjg,
            InputDomain::Latents => self.codec == TaskCodec::Icm,
        };
        if !domain_ok {
            return Err(JobError::Usage(format!(
                "--input-domain {} needs --codec {} (not {})",
                self.input_domain,
                if self.input_domain == InputDomain::Latents {
                    "icm (y^ of the icm zoo)"
                } else {
                    "jpeg-ijg (the DCT networks read JPEG coefficients of the 224x224 input crop)"
                },
                self.codec.name()
            )));
        }
        if self.codec == TaskCodec::JpegIjg && self.task != TaskKind::Classification {
            return Err(JobError::Usage(
                "--codec jpeg-ijg: only with --task classification (the DCT networks are \
                 classifiers)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The rate points of `--codec`.
    fn rate_codecs(&self, models: &dyn ModelSource) -> Result<Vec<Box<dyn RateCodec>>, JobError> {
        let mut codecs: Vec<Box<dyn RateCodec>> = Vec::new();
        match self.codec {
            TaskCodec::None => codecs.push(Box::new(Uncompressed)),
            TaskCodec::Anchor(codec) => {
                let config = AnchorConfig::new(codec, self.ffmpeg.as_deref(), None, None)?;
                let cache = AnchorCache::new(
                    self.anchor_cache
                        .clone()
                        .unwrap_or_else(crate::anchor::default_cache_dir),
                );
                for level in parse_levels(codec, self.qps.as_deref())? {
                    codecs.push(Box::new(AnchorRateCodec {
                        config: config.clone(),
                        cache: Some(cache.clone()),
                        level,
                    }));
                }
            }
            TaskCodec::JpegIjg => {
                let spec = self.qps.as_deref().unwrap_or(DEFAULT_IJG_QUALITIES);
                for quality in parse_ijg_qualities(spec)? {
                    codecs.push(Box::new(JpegIjg { quality }));
                }
            }
            TaskCodec::Icm => {
                let roi = self.roi_coding()?;
                let mut push = |model, quality, step| {
                    codecs.push(Box::new(IcmCodec {
                        model,
                        quality,
                        step,
                        roi: roi.clone(),
                    }))
                };
                if self.models.is_empty() {
                    for p in parse_rate_points(self.qualities.as_deref().unwrap_or("1..6"))? {
                        push(models.load(None, Some(p.quality))?, p.quality, p.step);
                    }
                }
                for spec in &self.models {
                    let model = models.load(Some(spec), None)?;
                    let quality = model.quality;
                    push(model, quality, 256);
                }
            }
        }
        Ok(codecs)
    }

    /// The region-of-interest coding of `--roi`, with its network loaded.
    fn roi_coding(&self) -> Result<Option<Arc<RoiCoding>>, JobError> {
        let Some(task) = self.roi else {
            return Ok(None);
        };
        let nets = RoiNetworks::load(None, task)?;
        let path = nets.model_path(task);
        let network = icm::hex::hex(&sha256_file(&path)?);
        Ok(Some(Arc::new(RoiCoding::new(
            task,
            self.roi_background
                .unwrap_or_else(|| super::roi::default_background(task)),
            nets,
            network,
        ))))
    }

    /// The networks of the evaluation and the file of the first.
    fn task_paths(&self) -> Result<(Vec<TaskPath>, PathBuf), JobError> {
        let (task, domain) = (self.task, self.input_domain);
        let explicit = self.task_model.as_deref();
        if self.codec == TaskCodec::JpegIjg && domain == InputDomain::Rgb {
            // The coded picture is already the classifier's input crop.
            let path = resolve_task_model(task, explicit)?;
            let net = MobileNetV2::load(&path)?.on_crops();
            let first = TaskPath {
                prefix: "",
                domain,
                network: Box::new(net),
                file: Some(path.clone()),
                network_macs: None,
                count_synthesis: false,
                input_bytes: domain.crop_input_values().map(|v| 4.0 * v as f64),
            };
            return Ok((vec![first], path));
        }
        let net = load_network(task, domain, explicit)?;
        let path = net.path.clone();
        let mut first = TaskPath {
            prefix: "",
            domain,
            network: net.decoder,
            file: Some(path.clone()),
            network_macs: None,
            count_synthesis: false,
            input_bytes: None,
        };
        match domain {
            InputDomain::Dct192 | InputDomain::Dct24 => {
                first.input_bytes = domain.crop_input_values().map(|v| 4.0 * v as f64);
                Ok((vec![first], path))
            }
            InputDomain::Latents => {
                let (Some(macs), Some(pixel_macs)) = (net.macs, net.pixel_macs) else {
                    return Err(TaskError::Model {
                        path: path.display().to_string(),
                        why: "no icm.macs metadata of the latent and the pixel network; \
                              compose it again with scripts/compose_latent_tasks.py"
                            .into(),
                    }
                    .into());
                };
                first.network_macs = Some(macs as f64);
                // Decode-then-infer beside it: full decode with g_s, then the pixel network.
                let pixel = load_network(task, InputDomain::Rgb, None)?;
                let second = TaskPath {
                    prefix: "rgb_",
                    domain: InputDomain::Rgb,
                    network: pixel.decoder,
                    file: Some(pixel.path),
                    network_macs: Some(pixel_macs as f64),
                    count_synthesis: true,
                    input_bytes: None,
                };
                Ok((vec![first, second], path))
            }
            InputDomain::Rgb => Ok((vec![first], path)),
        }
    }

    /// The `name` of a results file: the codec, and for `jpeg-ijg` or the latent domain
    /// the input domain too (`jpeg-ijg-dct24`, `icm-latents`).
    pub fn results_name(&self) -> String {
        if self.codec == TaskCodec::JpegIjg || self.input_domain == InputDomain::Latents {
            format!("{}-{}", self.codec.name(), self.input_domain)
        } else {
            self.codec.name().to_string()
        }
    }
}

/// The SHA-256 of a file's bytes.
pub(crate) fn sha256_file(path: &Path) -> Result<[u8; 32], TaskError> {
    let bytes = std::fs::read(path).map_err(|source| TaskError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Sha256::digest(&bytes).into())
}

/// A task evaluation ready to run: the networks and codecs loaded, the dataset read.
pub struct TaskJob {
    /// Its arguments.
    pub spec: TaskEvalSpec,
    /// The evaluation.
    pub evaluation: Evaluation,
    /// The pictures (after `--limit`) and their ground truth.
    pub data: Dataset,
    /// The first network's file.
    pub model_path: PathBuf,
    /// SHA-256 of what decides every record besides its picture and rate point.
    fingerprint: [u8; 32],
}

impl TaskJob {
    /// Sets up the evaluation of `spec`, with the models of `models`: checks the
    /// arguments, loads the networks and models, reads the dataset. Fails when the dataset
    /// has no picture.
    pub fn new(spec: TaskEvalSpec, models: &dyn ModelSource) -> Result<Self, JobError> {
        spec.check()?;
        let (paths, model_path) = spec.task_paths()?;
        let evaluation = Evaluation {
            task: spec.task,
            picture: if spec.codec == TaskCodec::JpegIjg {
                Picture::ClassifierCrop
            } else {
                Picture::Whole
            },
            codecs: spec.rate_codecs(models)?,
            paths,
        };
        let mut data = Dataset::load(spec.task, &spec.dataset, spec.annotations.as_deref())?;
        if let Some(n) = spec.limit {
            data.truncate(n);
        }
        if data.items.is_empty() {
            return Err(TaskError::Dataset {
                path: spec.dataset.display().to_string(),
                why: "no images to evaluate".into(),
            }
            .into());
        }
        evaluation.check()?;
        let mut h = Sha256::new();
        h.update(b"icm-task-record-v1\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0]);
        h.update(spec.task.name().as_bytes());
        h.update([
            u8::from(evaluation.picture == Picture::ClassifierCrop),
            u8::from(spec.task == TaskKind::Segmentation && data.coco.is_some()),
            u8::from(spec.codec != TaskCodec::None),
        ]);
        for p in &evaluation.paths {
            h.update(p.prefix.as_bytes());
            h.update([0]);
            h.update(p.domain.to_string().as_bytes());
            h.update([0, u8::from(p.count_synthesis)]);
            h.update(p.network_macs.unwrap_or(-1.0).to_le_bytes());
            if let Some(f) = &p.file {
                h.update(sha256_file(f)?);
            }
        }
        Ok(Self {
            spec,
            evaluation,
            data,
            model_path,
            fingerprint: h.finalize().into(),
        })
    }

    /// Pictures to evaluate.
    pub fn pictures(&self) -> usize {
        self.data.items.len()
    }

    /// The label of each rate point (`icm-psnr-q1`, `vvc-qp32`, ...).
    pub fn labels(&self) -> Vec<String> {
        self.evaluation.codecs.iter().map(|c| c.label()).collect()
    }

    /// The record cache key of picture `item` at rate point `point`: the SHA-256 of the
    /// set-up's fingerprint, the rate point's identity, the picture file's bytes and its
    /// ground-truth ids.
    pub fn record_key(&self, item: usize, point: usize) -> Result<String, JobError> {
        let bad = || TaskError::Records {
            why: format!(
                "picture {item} at rate point {point}: the evaluation has {} pictures and {} \
                 rate points",
                self.pictures(),
                self.evaluation.codecs.len()
            ),
        };
        let it = self.data.items.get(item).ok_or_else(bad)?;
        let codec = self.evaluation.codecs.get(point).ok_or_else(bad)?;
        let mut h = Sha256::new();
        h.update(self.fingerprint);
        h.update(codec.identity().as_bytes());
        h.update([0]);
        h.update(sha256_file(&it.path)?);
        h.update(it.image_id.to_le_bytes());
        h.update((it.class as u64).to_le_bytes());
        // Segmentation is scored against the picture's masks in the annotations.
        if self.spec.task == TaskKind::Segmentation {
            if let Some(coco) = &self.data.coco {
                h.update(format!("{:?}", coco.segments.get(&it.image_id)).as_bytes());
            }
        }
        Ok(icm::hex::hex(&h.finalize()))
    }

    /// Picture `item` at the rate points `points`: one record each, read from `cache` when
    /// it holds them (the flag is `true` then) and stored there when evaluated.
    pub fn evaluate(
        &mut self,
        item: usize,
        points: &[usize],
        cache: Option<&RecordCache>,
        observer: &dyn Observer,
    ) -> Result<Vec<(Record, bool)>, JobError> {
        let mut out: Vec<Option<(Record, bool)>> = vec![None; points.len()];
        let mut keys = Vec::with_capacity(points.len());
        let mut todo = Vec::new();
        for (j, &k) in points.iter().enumerate() {
            let key = match cache {
                Some(_) => Some(self.record_key(item, k)?),
                None => None,
            };
            match (cache, &key) {
                (Some(c), Some(key)) => match c.load::<Record>(key) {
                    Some(mut r) if r.paths.len() == self.evaluation.paths.len() => {
                        r.item = item;
                        r.point = k;
                        observer.begin("cached");
                        observer.end();
                        out[j] = Some((r, true));
                    }
                    _ => todo.push(j),
                },
                _ => todo.push(j),
            }
            keys.push(key);
        }
        if !todo.is_empty() {
            let wanted: Vec<usize> = todo.iter().map(|&j| points[j]).collect();
            let records = self
                .evaluation
                .evaluate_picture(&self.data, item, &wanted, observer)?;
            for (j, r) in todo.into_iter().zip(records) {
                if let (Some(c), Some(key)) = (cache, &keys[j]) {
                    c.store(key, &r)?;
                }
                out[j] = Some((r, false));
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Merges the records of every picture at every rate point ([`Evaluation::merge`]) and
    /// makes the results file; `total_s` is the wall time reported.
    pub fn finish(
        &self,
        records: Vec<Record>,
        total_s: f64,
    ) -> Result<(Outcome, ResultsFile), JobError> {
        let outcome = self.evaluation.merge(&self.data, records, total_s)?;
        let file = outcome.results_file(
            self.spec.results_name(),
            self.description(&outcome),
            self.spec.task,
            self.model_path.display().to_string(),
        );
        Ok((outcome, file))
    }

    /// The results file's description.
    fn description(&self, outcome: &Outcome) -> String {
        let has_truth = outcome.columns.get("miou").is_some();
        let note = match (self.spec.task, has_truth) {
            (TaskKind::Segmentation, true) => {
                "; miou against VOC-mapped COCO instance masks (MODEL.md), miou_agreement \
                 against the prediction on the uncompressed image"
            }
            (TaskKind::Segmentation, false) => {
                "; no segmentation ground truth: miou_agreement is the mIoU against the \
                 prediction on the uncompressed image"
            }
            _ => "",
        };
        format!(
            "Task {} ({}; icm {}, {} images of {}{note})",
            self.spec.task.name(),
            self.model_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            env!("CARGO_PKG_VERSION"),
            outcome.images,
            self.spec.dataset.display(),
        )
    }
}

/// Every rate point's detections (first network) in COCO results format
/// (`[{image_id, category_id, bbox, score}]`): `(label, JSON)`, what `--save-detections`
/// writes to `PREFIX-<label>.json`.
pub fn detections_json(outcome: &Outcome) -> Vec<(String, String)> {
    let one = |d: &DetBox| {
        serde_json::json!({"image_id": d.image_id, "category_id": d.category_id,
                           "bbox": d.bbox, "score": d.score})
    };
    outcome
        .points
        .iter()
        .filter_map(|p| match &p.paths.first()?.score {
            Score::Detection(dets) => Some((
                p.info.label.clone(),
                serde_json::Value::from(dets.iter().map(one).collect::<Vec<_>>()).to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// The results as a table: one row per rate point, then the total time.
pub fn results_table(file: &ResultsFile) -> String {
    let mut out = format!("{:<16} {:>4} {:>7}", "rate point", "q", "images");
    for name in file.results.names() {
        let width = name.len().max(12);
        let _ = write!(out, " {name:>width$}");
    }
    out.push('\n');
    let images = file.images.unwrap_or(0);
    for (k, p) in file.rate_points.iter().enumerate() {
        let _ = write!(
            out,
            "{:<16} {:>4} {:>7}",
            p.label,
            p.quality.to_string(),
            images
        );
        for (name, values) in file.results.iter() {
            let width = name.len().max(12);
            match values.get(k).copied().flatten() {
                Some(v) if v.abs() >= 1e5 => {
                    let _ = write!(out, " {v:>width$.3e}");
                }
                Some(v) => {
                    let _ = write!(out, " {v:>width$.4}");
                }
                None => {
                    let _ = write!(out, " {:>width$}", "-");
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "total {:.1} s", file.total_time.unwrap_or(0.0));
    out
}

/// The default record cache: `records/` in [`default_cache_root`].
pub fn default_record_dir() -> PathBuf {
    default_cache_root().join("records")
}

/// Records stored by key (module documentation): task-evaluation [`Record`]s and the
/// rows of `icm eval` ([`crate::eval_job`]), each under keys of their own. The folder may be on a
/// shared filesystem that every worker of a cluster sees: entries are whole files renamed
/// into place, so concurrent writers of one key leave one complete entry.
#[derive(Debug, Clone)]
pub struct RecordCache {
    dir: PathBuf,
}

impl RecordCache {
    /// A cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(key.get(..2).unwrap_or("__"))
            .join(format!("{key}.json"))
    }

    /// The record of `key`, if stored and readable as a `T` (anything else is treated as
    /// absent).
    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `record` under `key`.
    pub fn store<T: Serialize>(&self, key: &str, record: &T) -> Result<(), JobError> {
        let path = self.path(key);
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| JobError::Cache { path: p, source }
        };
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let text = serde_json::to_vec(record).map_err(|e| JobError::Cache {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        // Unique per host, process and thread: writers on a shared filesystem never share
        // a temporary file.
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let tmp = path.with_extension(format!(
            "tmp-{host}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(&path)(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_lists() {
        assert_eq!(
            parse_ijg_qualities(DEFAULT_IJG_QUALITIES).expect("default"),
            vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
        );
        assert_eq!(parse_ijg_qualities(" 5, 100").expect("list"), vec![5, 100]);
        for bad in ["0", "101", "10..20", "", "a"] {
            assert!(parse_ijg_qualities(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_qualities("1..6").ok(), Some(vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(parse_qualities("2..=3").ok(), Some(vec![2, 3]));
        assert_eq!(parse_qualities("1,3,5").ok(), Some(vec![1, 3, 5]));
        assert_eq!(parse_qualities("4").ok(), Some(vec![4]));
        let p = |quality, step| ZooPoint { quality, step };
        assert_eq!(
            parse_rate_points("1@2, 1@1.5,2..3").ok(),
            Some(vec![p(1, 512), p(1, 384), p(2, 256), p(3, 256)])
        );
        assert_eq!(p(1, 384).label("m"), "m@1.5");
        assert_eq!(p(1, 256).label("m"), "m");
        for bad in ["1@0", "1@17", "1@x", "7@2", "1..2@2", "1@"] {
            assert!(parse_rate_points(bad).is_err(), "{bad}");
        }
        for bad in ["0..6", "1..7", "5..2", "1,,3", "x", ""] {
            assert!(parse_qualities(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn level_lists() {
        let vvc = AnchorCodec::Vvc;
        assert_eq!(
            parse_levels(vvc, None).ok(),
            Some(vec![22.0, 27.0, 32.0, 37.0, 42.0, 47.0])
        );
        assert_eq!(
            parse_levels(vvc, Some("37,22")).ok(),
            Some(vec![22.0, 37.0])
        );
        assert_eq!(
            parse_levels(vvc, Some("+17,52")).ok().map(|l| l.len()),
            Some(8)
        );
        assert!(parse_levels(vvc, Some("64")).is_err());
        assert!(parse_levels(vvc, Some("30.5")).is_err());
        assert!(parse_levels(vvc, Some("")).is_err());
        assert_eq!(
            parse_levels(AnchorCodec::Jxl, Some("1.5")).ok(),
            Some(vec![1.5])
        );
        let webp = parse_levels(AnchorCodec::Webp, None).unwrap_or_default();
        assert!(webp.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn options_of_other_codecs_refused() {
        let mut s = TaskEvalSpec::new(TaskKind::Detection, "d".into());
        s.qps = Some("32".into());
        assert!(matches!(s.check(), Err(JobError::Usage(_))));
        s.codec = TaskCodec::JpegIjg;
        assert!(s.check().is_err(), "jpeg-ijg is for classification");
        s.task = TaskKind::Classification;
        s.input_domain = InputDomain::Dct24;
        assert!(s.check().is_ok());
        s.codec = TaskCodec::Icm;
        s.qps = None;
        assert!(s.check().is_err(), "dct24 needs jpeg-ijg");
    }

    #[test]
    fn record_cache_round_trip() {
        let dir = std::env::temp_dir().join(format!("icm-records-{}", std::process::id()));
        let cache = RecordCache::new(&dir);
        let r = Record {
            item: 3,
            point: 1,
            bytes: 1234,
            pixels: 640 * 480,
            coding_s: 0.25,
            paths: vec![super::super::evaluate::PathOutcome {
                score: Score::Detection(vec![DetBox {
                    image_id: 9,
                    category_id: 3,
                    bbox: [1.5, 2.0, 3.25, f64::from(0.1f32)],
                    score: f64::from(0.7f32),
                }]),
                decode_s: 0.1,
                infer_s: 0.2,
                macs: 0.0,
            }],
        };
        assert!(cache.load::<Record>("ab12").is_none());
        cache.store("ab12", &r).expect("store");
        let back: Record = cache.load("ab12").expect("load");
        assert_eq!((back.item, back.point, back.bytes), (3, 1, 1234));
        let (Score::Detection(a), Score::Detection(b)) = (&back.paths[0].score, &r.paths[0].score)
        else {
            panic!("not detections");
        };
        assert_eq!(a, b);
        std::fs::write(dir.join("ab").join("ab12.json"), b"{trunc").expect("corrupt");
        assert!(
            cache.load::<Record>("ab12").is_none(),
            "a damaged entry is absent"
        );
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
