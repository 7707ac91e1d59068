//! The task-evaluation engine of `icm task-eval`: one loop over dataset x rate point x
//! task path.
//!
//! For every picture of a [`Dataset`], every [`RateCodec`] codes it (the whole picture, or
//! the classifier's input crop); every [`TaskPath`] decodes the coded picture into its
//! [`InputDomain`] (the picture, the DCT coefficients of a JPEG, or the latents y^ of an
//! icm stream) and runs its network; the network's output goes to the path's [`Score`].
//! The first path gives the main columns (`top1`, `map`, ...); another path, such as
//! decode-then-infer beside a latent network, gives the same columns under its prefix
//! (`rgb_top1`).
//!
//! The work is cut into [`Record`]s, one picture at one rate point
//! ([`Evaluation::evaluate_picture`]), which [`Evaluation::merge`] sums in dataset order
//! into the [`Outcome`]: [`Evaluation::run`] does both in one process (`icm task-eval`),
//! and `python -m icm.dist task-eval` runs the records as Ray tasks and merges them with
//! the same function, so that the two give the same scores (COCOeval runs once, on every
//! detection of the dataset, in the same order).
//!
//! Times per picture, means over the dataset: `coding_time` (the codec's encoder; for
//! conventional codecs through ffmpeg, its encoder and decoder processes), per path
//! `decode_s` (coded picture to what the network reads) and `infer_s` (the network with
//! its pre-processing), and `task_time` (`decode_s + infer_s` of the first path).

use super::dataset::Dataset;
use super::domain::InputDomain;
use super::latent::transform_macs;
use super::rate::{Coded, RateCodec, Stream};
use super::score::Score;
use super::segmentation::coco_voc_truth;
use super::{
    DctCoefficients, LatentTensor, TaskDecoder, TaskError, TaskInput, TaskKind, TaskOutput,
};
use crate::jpeg::{decode_coefficients, DecodeOptions};
use crate::picture::read_rgb;
use crate::results::{Columns, Quality, RatePointInfo, ResultsFile};
use icm::codec::{self, RgbImage};
use icm::container;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Instant;

/// One network of an evaluation and how coded pictures reach it.
pub struct TaskPath {
    /// Prefix of its columns: `""` for the first path, e.g. `"rgb_"` for another.
    pub prefix: &'static str,
    /// What the network reads.
    pub domain: InputDomain,
    /// The network.
    pub network: Box<dyn TaskDecoder>,
    /// Its file, when it has one: its content is part of the record cache's key.
    pub file: Option<std::path::PathBuf>,
    /// Its multiply-adds per picture when known (a `macs` column).
    pub network_macs: Option<f64>,
    /// Add the multiply-adds of g_s on the decoded tiles to `macs` (decode-then-infer
    /// of icm streams).
    pub count_synthesis: bool,
    /// Bytes of the float32 tensor the network reads, when fixed (an `input_bytes`
    /// column).
    pub input_bytes: Option<f64>,
}

/// What the evaluation codes of each picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// The whole picture.
    Whole,
    /// The classifier's 224x224 input crop
    /// ([`super::classification::input_crop`]).
    ClassifierCrop,
}

/// A task evaluation.
pub struct Evaluation {
    /// The task.
    pub task: TaskKind,
    /// What is coded.
    pub picture: Picture,
    /// One codec per rate point.
    pub codecs: Vec<Box<dyn RateCodec>>,
    /// The networks; the first gives the main columns.
    pub paths: Vec<TaskPath>,
}

/// Told of the evaluation's progress (a progress bar).
pub trait Observer {
    /// Before one picture at one rate point; `what` names both.
    fn begin(&self, what: &str);
    /// After it.
    fn end(&self);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn begin(&self, _: &str) {}
    fn end(&self) {}
}

/// One path's sums at one rate point (in a [`Record`], of one picture).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathOutcome {
    /// Its scores.
    pub score: Score,
    /// Seconds from coded picture to network input, summed over pictures.
    pub decode_s: f64,
    /// Seconds of the network, summed.
    pub infer_s: f64,
    /// Multiply-adds, summed (0 when unknown).
    pub macs: f64,
}

/// One picture at one rate point: what [`Evaluation::merge`] sums. Serialisable (JSON),
/// to cross process boundaries and to be cached ([`super::job::RecordCache`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The picture's index in the dataset.
    pub item: usize,
    /// The rate point's index.
    pub point: usize,
    /// Coded bytes.
    pub bytes: usize,
    /// Pixels of the coded picture (for its bits per pixel).
    pub pixels: u64,
    /// Coding seconds.
    pub coding_s: f64,
    /// One per [`TaskPath`]: its score of this picture, times and multiply-adds.
    pub paths: Vec<PathOutcome>,
}

/// The figures of one rate point.
#[derive(Debug, Clone)]
pub struct PointOutcome {
    /// What the point is.
    pub info: RatePointInfo,
    /// Coded bytes per picture.
    pub bytes: Vec<usize>,
    /// Bits per pixel per picture.
    pub bpp: Vec<f64>,
    /// Coding seconds, summed over pictures.
    pub coding_s: f64,
    /// One per [`TaskPath`].
    pub paths: Vec<PathOutcome>,
}

/// The figures of an evaluation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// One per rate point.
    pub points: Vec<PointOutcome>,
    /// Pictures evaluated.
    pub images: usize,
    /// Wall time, seconds.
    pub total_s: f64,
    /// The columns of the results file, one value per rate point.
    pub columns: Columns,
}

/// A network's input decoded from a coded picture, and g_s's multiply-adds when it ran.
enum Input<'a> {
    Pixels(Cow<'a, RgbImage>),
    Latents(LatentTensor),
    Dct(DctCoefficients),
}

fn wrong_stream(domain: InputDomain, stream: &Stream<'_>) -> TaskError {
    let what = match stream {
        Stream::Picture(_) => "decoded pictures",
        Stream::Icm { .. } => "icm streams",
        Stream::Jpeg(_) => "JPEG files",
    };
    TaskError::Codec {
        what: format!("input domain {domain}"),
        why: format!("cannot be read from {what}"),
    }
}

/// Decodes `coded` into what a network of `domain` reads; the second value is g_s's
/// multiply-adds when the picture was synthesised from an icm stream.
fn decode_input<'a>(
    domain: InputDomain,
    coded: &'a Coded<'_>,
) -> Result<(Input<'a>, u64), TaskError> {
    let fail = |why: String| TaskError::Codec {
        what: format!("decoding to {domain}"),
        why,
    };
    Ok(match (domain, &coded.stream) {
        (InputDomain::Rgb, Stream::Picture(p)) => (Input::Pixels(Cow::Borrowed(p)), 0),
        (InputDomain::Rgb, Stream::Icm { bytes, model }) => {
            let d = codec::decode(bytes, model).map_err(|e| fail(e.to_string()))?;
            let macs = d
                .latents
                .tiles
                .iter()
                .map(|t| transform_macs(&model.g_s, t.y_shape.1, t.y_shape.2))
                .sum();
            (Input::Pixels(Cow::Owned(d.image)), macs)
        }
        (InputDomain::Rgb, Stream::Jpeg(b)) => (
            Input::Pixels(Cow::Owned(super::dct::decode_jpeg_rgb(b)?)),
            0,
        ),
        (InputDomain::Latents, Stream::Icm { bytes, model }) => {
            // Entropy decoding and h_s only (spec 3 steps 1-4), the container parsed once.
            let stream = container::parse(bytes).map_err(|e| fail(e.to_string()))?;
            let latents =
                codec::decode_stream_latents(&stream, model).map_err(|e| fail(e.to_string()))?;
            (
                Input::Latents(LatentTensor::from_latents(
                    &stream.header.tiling(),
                    &latents,
                )),
                0,
            )
        }
        (InputDomain::Dct192 | InputDomain::Dct24, Stream::Jpeg(b)) => {
            // No pixel decoding: the coefficients go to the network (spec Annex B).
            let c = decode_coefficients(b, &DecodeOptions::default())
                .map_err(|e| fail(e.to_string()))?;
            (Input::Dct(c), 0)
        }
        (d, s) => return Err(wrong_stream(d, s)),
    })
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

impl Evaluation {
    /// Segmentation of coded pictures is also scored against the prediction on the
    /// uncompressed picture.
    fn needs_reference(&self) -> bool {
        self.task == TaskKind::Segmentation && self.codecs.iter().any(|c| c.codec() != "none")
    }

    /// Refuses an evaluation without rate point or network.
    pub fn check(&self) -> Result<(), TaskError> {
        if self.paths.is_empty() || self.codecs.is_empty() {
            return Err(TaskError::Dataset {
                path: String::new(),
                why: "an evaluation needs a rate point and a task network".into(),
            });
        }
        Ok(())
    }

    /// Segmentation is scored against COCO masks when the dataset has them.
    fn with_truth(&self, data: &Dataset) -> bool {
        self.task == TaskKind::Segmentation && data.coco.is_some()
    }

    /// An empty score of one path at one rate point.
    fn empty_score(&self, data: &Dataset) -> Score {
        Score::new(self.task, self.with_truth(data), self.needs_reference())
    }

    /// Runs the evaluation on `data` in this process: every picture at every rate point
    /// ([`Self::evaluate_picture`]), then [`Self::merge`].
    pub fn run(&mut self, data: &Dataset, observer: &dyn Observer) -> Result<Outcome, TaskError> {
        self.check()?;
        let points: Vec<usize> = (0..self.codecs.len()).collect();
        let start = Instant::now();
        let mut records = Vec::with_capacity(data.items.len() * points.len());
        for item in 0..data.items.len() {
            records.extend(self.evaluate_picture(data, item, &points, observer)?);
        }
        self.merge(data, records, start.elapsed().as_secs_f64())
    }

    /// Sums the records of every picture at every rate point into the outcome, in dataset
    /// order whatever the order of `records`; `total_s` is the wall time reported. Fails
    /// when a record is missing, given twice, or out of range.
    pub fn merge(
        &self,
        data: &Dataset,
        mut records: Vec<Record>,
        total_s: f64,
    ) -> Result<Outcome, TaskError> {
        self.check()?;
        let (n, p) = (data.items.len(), self.codecs.len());
        let bad = |why: String| TaskError::Records { why };
        records.sort_by_key(|r| (r.item, r.point));
        if let Some(r) = records.iter().find(|r| r.item >= n || r.point >= p) {
            return Err(bad(format!(
                "picture {} at rate point {}: the evaluation has {n} pictures and {p} rate points",
                r.item, r.point
            )));
        }
        if let Some(w) = records
            .windows(2)
            .find(|w| (w[0].item, w[0].point) == (w[1].item, w[1].point))
        {
            return Err(bad(format!(
                "picture {} at rate point {} given twice",
                w[0].item, w[0].point
            )));
        }
        if records.len() != n * p {
            let have: std::collections::HashSet<(usize, usize)> =
                records.iter().map(|r| (r.item, r.point)).collect();
            let missing = (0..n)
                .flat_map(|i| (0..p).map(move |k| (i, k)))
                .find(|x| !have.contains(x))
                .unwrap_or_default();
            return Err(bad(format!(
                "{} of {} missing, the first picture {} ({}) at rate point {}",
                n * p - records.len(),
                n * p,
                missing.0,
                data.items
                    .get(missing.0)
                    .map_or_else(String::new, |i| i.path.display().to_string()),
                missing.1
            )));
        }
        let mut points: Vec<PointOutcome> = self
            .codecs
            .iter()
            .map(|c| PointOutcome {
                info: RatePointInfo {
                    codec: c.codec().to_string(),
                    label: c.label(),
                    quality: Quality::from_f64(c.quality()),
                    rate_parameter: None,
                    bytes: None,
                    sha256: None,
                    path: None,
                    settings: None,
                },
                bytes: Vec::new(),
                bpp: Vec::new(),
                coding_s: 0.0,
                paths: self
                    .paths
                    .iter()
                    .map(|_| PathOutcome {
                        score: self.empty_score(data),
                        decode_s: 0.0,
                        infer_s: 0.0,
                        macs: 0.0,
                    })
                    .collect(),
            })
            .collect();
        for r in records {
            let point = &mut points[r.point];
            if r.paths.len() != point.paths.len() {
                return Err(bad(format!(
                    "picture {} at rate point {}: {} networks, the evaluation has {}",
                    r.item,
                    r.point,
                    r.paths.len(),
                    point.paths.len()
                )));
            }
            point.bytes.push(r.bytes);
            point.bpp.push(r.bytes as f64 * 8.0 / r.pixels as f64);
            point.coding_s += r.coding_s;
            for (sum, one) in point.paths.iter_mut().zip(r.paths) {
                sum.decode_s += one.decode_s;
                sum.infer_s += one.infer_s;
                sum.macs += one.macs;
                sum.score.merge(one.score)?;
            }
        }
        let columns = self.columns(&points, data);
        for p in &mut points {
            p.info.bytes = Some(p.bytes.iter().map(|&b| b as u64).sum());
        }
        Ok(Outcome {
            points,
            images: n,
            total_s,
            columns,
        })
    }

    /// Picture `item` of `data` at the rate points `points` (indices into the codecs): one
    /// [`Record`] each. The picture is read, and for segmentation its reference prediction
    /// made, once for all of them.
    pub fn evaluate_picture(
        &mut self,
        data: &Dataset,
        item_index: usize,
        points: &[usize],
        observer: &dyn Observer,
    ) -> Result<Vec<Record>, TaskError> {
        self.check()?;
        let item = data
            .items
            .get(item_index)
            .ok_or_else(|| TaskError::Records {
                why: format!(
                    "picture {item_index}: the dataset has {} pictures",
                    data.items.len()
                ),
            })?;
        if let Some(&k) = points.iter().find(|&&k| k >= self.codecs.len()) {
            return Err(TaskError::Records {
                why: format!(
                    "rate point {k}: the evaluation has {} rate points",
                    self.codecs.len()
                ),
            });
        }
        let needs_reference = self.needs_reference();
        let with_truth = self.with_truth(data);
        let original = read_rgb(&item.path)?;
        let img = match self.picture {
            Picture::Whole => original,
            Picture::ClassifierCrop => super::classification::input_crop(&original),
        };
        let shown = item.path.display().to_string();
        let name = item
            .path
            .file_name()
            .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
        let reference = if needs_reference {
            let first = &mut self.paths[0];
            match first.network.run(TaskInput::Pixels(&img))? {
                TaskOutput::SegmentationMap(m) => Some(m.labels),
                _ => {
                    return Err(TaskError::Output {
                        model: first.network.name().to_string(),
                        why: "result of another task".into(),
                    })
                }
            }
        } else {
            None
        };
        let truth = match (&data.coco, with_truth) {
            (Some(coco), true) => Some(coco_voc_truth(
                coco.segments
                    .get(&item.image_id)
                    .map_or(&[][..], Vec::as_slice),
                img.width,
                img.height,
            )),
            _ => None,
        };
        let pixels = u64::from(img.width) * u64::from(img.height);
        let mut records = Vec::with_capacity(points.len());
        for &k in points {
            let codec = &self.codecs[k];
            let label = codec.label();
            let what = format!("{shown} at {label}");
            let context = |e: TaskError| match e {
                TaskError::Codec { what: w, why } => TaskError::Codec {
                    what: format!("{what}: {w}"),
                    why,
                },
                e => e,
            };
            observer.begin(&format!("{name} / {label}"));
            let t = Instant::now();
            let coded = codec.code(&img).map_err(context)?;
            let mut record = Record {
                item: item_index,
                point: k,
                bytes: coded.bytes,
                pixels,
                coding_s: t.elapsed().as_secs_f64(),
                paths: Vec::with_capacity(self.paths.len()),
            };
            for path in self.paths.iter_mut() {
                let mut out = PathOutcome {
                    score: Score::new(self.task, with_truth, needs_reference),
                    decode_s: 0.0,
                    infer_s: 0.0,
                    macs: 0.0,
                };
                let t = Instant::now();
                let (input, synthesis_macs) = decode_input(path.domain, &coded).map_err(context)?;
                out.decode_s = t.elapsed().as_secs_f64();
                let task_input = match &input {
                    Input::Pixels(p) => {
                        if (p.width, p.height) != (img.width, img.height) {
                            return Err(context(TaskError::Codec {
                                what: "decoded picture".into(),
                                why: format!(
                                    "{}x{}, expected {}x{}",
                                    p.width, p.height, img.width, img.height
                                ),
                            }));
                        }
                        TaskInput::Pixels(p)
                    }
                    Input::Latents(l) => TaskInput::Latents(l),
                    Input::Dct(c) => TaskInput::Dct(c),
                };
                let t = Instant::now();
                let result = path.network.run(task_input)?;
                out.infer_s = t.elapsed().as_secs_f64();
                if path.count_synthesis {
                    out.macs += synthesis_macs as f64;
                }
                out.macs += path.network_macs.unwrap_or(0.0);
                out.score.add(
                    item,
                    result,
                    reference.as_deref(),
                    truth.as_deref(),
                    path.network.name(),
                )?;
                record.paths.push(out);
            }
            records.push(record);
            observer.end();
        }
        Ok(records)
    }

    /// The results columns: `bpp`, then per path its scores, `input_bytes`, `decode_s`,
    /// `infer_s` and `macs` (under its prefix), then `coding_time` and `task_time`.
    fn columns(&self, points: &[PointOutcome], data: &Dataset) -> Columns {
        let ids = data.image_ids();
        let per = |v: f64, p: &PointOutcome| v / p.bpp.len().max(1) as f64;
        let mut columns = Columns::default();
        columns.set_f64("bpp", points.iter().map(|p| mean(&p.bpp)));
        for (k, path) in self.paths.iter().enumerate() {
            let scores: Vec<Vec<(&str, f64)>> = points
                .iter()
                .map(|p| p.paths[k].score.columns(data.coco.as_ref(), &ids))
                .collect();
            let col = |name: &str| format!("{}{name}", path.prefix);
            if let Some(first) = scores.first() {
                for (j, (name, _)) in first.iter().enumerate() {
                    columns.set_f64(&col(name), scores.iter().map(|s| s[j].1));
                }
            }
            if let Some(b) = path.input_bytes {
                columns.set_f64(&col("input_bytes"), points.iter().map(|_| b));
            }
            columns.set_f64(
                &col("decode_s"),
                points.iter().map(|p| per(p.paths[k].decode_s, p)),
            );
            columns.set_f64(
                &col("infer_s"),
                points.iter().map(|p| per(p.paths[k].infer_s, p)),
            );
            if path.network_macs.is_some() {
                columns.set_f64(&col("macs"), points.iter().map(|p| per(p.paths[k].macs, p)));
            }
        }
        columns.set_f64("coding_time", points.iter().map(|p| per(p.coding_s, p)));
        columns.set_f64(
            "task_time",
            points
                .iter()
                .map(|p| per(p.paths[0].decode_s + p.paths[0].infer_s, p)),
        );
        columns
    }
}

impl Outcome {
    /// The results file; `name` is the codec (and domain) name, `task_model` the first
    /// path's network file.
    pub fn results_file(
        &self,
        name: String,
        description: String,
        task: TaskKind,
        task_model: String,
    ) -> ResultsFile {
        ResultsFile {
            name,
            description,
            results: self.columns.clone(),
            task: Some(task.name().to_string()),
            task_model: Some(task_model),
            images: Some(self.images),
            total_time: Some(self.total_s),
            rate_points: self.points.iter().map(|p| p.info.clone()).collect(),
            per_image: Vec::new(),
            anchor: None,
        }
    }
}
