//! An `icm eval` run (the icm codec's rate and distortion on a folder of PNGs), shared by
//! the command and by `python -m icm.dist eval`: [`EvalJob::new`] once per process (the
//! models of the rate points loaded once), then [`EvalJob::evaluate`] per picture and rate
//! point (encode, decode, measure with [`crate::rd::measure`]; or read the
//! [`RecordCache`]), and [`EvalJob::finish`] once on all rows, which makes the command's
//! results file. The command and the distributed run are the same functions, so their
//! results are equal by construction (times aside).
//!
//! A row is cached under the SHA-256 of what decides it: the picture file's bytes, the
//! model's SHA-256, the encoder options (effort, lambda, tiles, checksums) and the crate
//! version. A cached row keeps the times of the run that measured it.

use crate::picture::read_rgb;
use crate::rd::{group_rows, list_pngs, measure, rd_results, RowRecord};
use crate::results::{ImageRow, Quality, RatePointInfo, ResultsFile};
use crate::task::job::{
    parse_rate_points, sha256_file, JobError, ModelSource, RecordCache, ZooPoint,
};
use crate::task::TaskError;
use icm::codec::{self, EncodeOptions, Steps};
use icm::model::Model;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The arguments of an `icm eval` run (those of the command, parsed).
#[derive(Debug, Clone)]
pub struct EvalSpec {
    /// `--dataset`: a folder of PNGs, evaluated in sorted file-name order.
    pub dataset: PathBuf,
    /// `--qualities`: zoo qualities (`1..6`, `1,3,5`); default 1..6 when `models` is
    /// empty.
    pub qualities: Option<String>,
    /// `--model`, repeated: model names or files, after the qualities.
    pub models: Vec<String>,
    /// `--limit`: the first N pictures only.
    pub limit: Option<usize>,
    /// `--effort` (0 to 3) and `--lambda` of the encoder's search.
    pub options: EncodeOptions,
}

impl EvalSpec {
    /// A run of `dataset` with the defaults of `icm eval`.
    pub fn new(dataset: PathBuf) -> Self {
        Self {
            dataset,
            qualities: None,
            models: Vec::new(),
            limit: None,
            options: EncodeOptions::default(),
        }
    }
}

/// One picture at one rate point.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    /// Its figures.
    pub row: ImageRow,
    /// Whether the row came from the record cache.
    pub cached: bool,
    /// A warning to show (MS-SSIM left out of a small picture).
    pub warning: Option<String>,
}

/// An `icm eval` run ready to go: the models loaded, the pictures listed.
pub struct EvalJob {
    /// Its arguments.
    pub spec: EvalSpec,
    /// The model of each rate point.
    pub models: Vec<Arc<Model>>,
    /// The global quantisation step of each rate point (units of `2^-8`, spec 12.7).
    pub steps: Vec<u16>,
    /// What each rate point is.
    pub infos: Vec<RatePointInfo>,
    /// The pictures (after `--limit`).
    pub images: Vec<PathBuf>,
    /// The record cache, if any (`icm eval` has none).
    pub cache: Option<RecordCache>,
}

/// What a results file says of a rate point: the model, its quality, file and settings.
fn point_info(
    model: &Model,
    path: Option<&Path>,
    point: ZooPoint,
    opts: &EncodeOptions,
) -> RatePointInfo {
    let mut settings = Vec::new();
    if point.step != 256 {
        settings.push(format!("step {}", point.step_value()));
    }
    if opts.effort > 0 {
        settings.push(format!("effort {}", opts.effort));
        if let Some(l) = opts.lambda {
            settings.push(format!("lambda {l}"));
        }
    }
    RatePointInfo {
        codec: "icm".into(),
        label: point.label(&model.name),
        quality: Quality::Int(i64::from(point.quality)),
        rate_parameter: (point.step != 256).then(|| format!("step {}", point.step_value())),
        bytes: None,
        sha256: Some(model.sha256_hex()),
        path: path.map(|p| p.display().to_string()),
        settings: (!settings.is_empty()).then(|| settings.join(", ")),
    }
}

impl EvalJob {
    /// Sets up the run: loads the models of the qualities, then those of `models`, from
    /// `source` (refusing a decoder-only model), and lists the pictures. Fails on an
    /// effort above [`icm::codec::rdo::MAX_EFFORT`], a lambda that is not positive, or a
    /// folder without PNG.
    pub fn new(
        spec: EvalSpec,
        source: &dyn ModelSource,
        cache: Option<RecordCache>,
    ) -> Result<Self, JobError> {
        let opts = &spec.options;
        if opts.effort > icm::codec::rdo::MAX_EFFORT {
            return Err(JobError::Usage(format!(
                "effort {}: expected 0 to {}",
                opts.effort,
                icm::codec::rdo::MAX_EFFORT
            )));
        }
        if let Some(l) = opts.lambda.filter(|l| !(l.is_finite() && *l > 0.0)) {
            return Err(JobError::Usage(format!(
                "lambda {l}: expected a positive number, e.g. 0.013"
            )));
        }
        let points = match (&spec.qualities, spec.models.is_empty()) {
            (Some(s), _) => parse_rate_points(s)?,
            (None, true) => parse_rate_points("1..6")?,
            (None, false) => Vec::new(),
        };
        let wanted = points
            .iter()
            .map(|p| (None, Some(p.quality), p.step))
            .chain(spec.models.iter().map(|m| (Some(m.as_str()), None, 256)));
        let mut models = Vec::new();
        let mut steps = Vec::new();
        let mut infos = Vec::new();
        for (name, quality, step) in wanted {
            let (model, path) = source.locate(name, quality)?;
            if model.g_a.is_none() || model.h_a.is_none() {
                return Err(JobError::DecoderOnly {
                    path: path.map_or_else(|| "<built in>".into(), |p| p.display().to_string()),
                    model: model.name.clone(),
                });
            }
            let quality = quality.unwrap_or(model.quality);
            let point = ZooPoint { quality, step };
            infos.push(point_info(&model, path.as_deref(), point, opts));
            models.push(model);
            steps.push(step);
        }
        let mut images = list_pngs(&spec.dataset).map_err(|source| TaskError::Io {
            path: spec.dataset.display().to_string(),
            source,
        })?;
        if let Some(n) = spec.limit {
            images.truncate(n);
        }
        if images.is_empty() {
            return Err(TaskError::Dataset {
                path: spec.dataset.display().to_string(),
                why: "no PNG images to evaluate".into(),
            }
            .into());
        }
        Ok(Self {
            spec,
            models,
            steps,
            infos,
            images,
            cache,
        })
    }

    /// Pictures to evaluate.
    pub fn pictures(&self) -> usize {
        self.images.len()
    }

    /// The rate points' labels (the models' names).
    pub fn labels(&self) -> Vec<String> {
        self.infos.iter().map(|i| i.label.clone()).collect()
    }

    fn point(
        &self,
        item: usize,
        point: usize,
    ) -> Result<(&Path, &Arc<Model>, &RatePointInfo), JobError> {
        match (
            self.images.get(item),
            self.models.get(point),
            self.infos.get(point),
        ) {
            (Some(path), Some(model), Some(info)) => Ok((path, model, info)),
            _ => Err(TaskError::Records {
                why: format!(
                    "picture {item} at rate point {point}: there are {} pictures and {} rate \
                     points",
                    self.images.len(),
                    self.models.len()
                ),
            }
            .into()),
        }
    }

    /// The record cache key of picture `item` at rate point `point`: the SHA-256 of the
    /// crate version, the model's SHA-256, the encoder options and the picture file's
    /// bytes.
    pub fn record_key(&self, item: usize, point: usize) -> Result<String, JobError> {
        let (path, model, _) = self.point(item, point)?;
        let mut h = Sha256::new();
        h.update(b"icm-eval-rd-record-v1\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0]);
        h.update(model.sha256_hex().as_bytes());
        h.update([0]);
        // Every field of the options, effort and lambda included.
        h.update(format!("{:?}", self.spec.options).as_bytes());
        h.update([0]);
        h.update(self.steps.get(point).copied().unwrap_or(256).to_le_bytes());
        h.update(sha256_file(path)?);
        Ok(icm::hex::hex(&h.finalize()))
    }

    /// Encodes and decodes picture `item` at rate point `point` and measures it, or reads
    /// its row from the record cache (and stores it there when measured).
    pub fn evaluate(&self, item: usize, point: usize) -> Result<EvalOutcome, JobError> {
        let (path, model, info) = self.point(item, point)?;
        let key = match &self.cache {
            Some(_) => Some(self.record_key(item, point)?),
            None => None,
        };
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(record) = cache.load::<RowRecord>(key) {
                // The key is the picture's content: its name and place are this run's.
                let mut row = record.row(info);
                row.image = file_name(path);
                let warning = row.ms_ssim.is_none().then(|| {
                    format!(
                        "{}: too small for MS-SSIM; MS-SSIM left out",
                        path.display()
                    )
                });
                return Ok(EvalOutcome {
                    row,
                    cached: true,
                    warning,
                });
            }
        }
        let img = read_rgb(path).map_err(TaskError::from)?;
        let codec_err = |what: &str| {
            let what = format!("{} ({what}, model {})", path.display(), model.name);
            move |source| JobError::Codec { what, source }
        };
        let start = Instant::now();
        let opts = EncodeOptions {
            steps: Steps::Uniform(self.steps.get(point).copied().unwrap_or(256)),
            ..self.spec.options.clone()
        };
        let bytes = codec::encode(&img, model, &opts).map_err(codec_err("encode"))?;
        let enc_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let decoded = codec::decode(&bytes, model).map_err(codec_err("decode"))?;
        let dec_s = start.elapsed().as_secs_f64();
        let (row, warning) = measure(info, path, &img, &decoded.image, bytes.len(), enc_s, dec_s)?;
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            cache.store(key, &RowRecord::new(item, point, &row))?;
        }
        Ok(EvalOutcome {
            row,
            cached: false,
            warning,
        })
    }

    /// The results file of the rows of every picture at every rate point, in any order:
    /// that of `icm eval`.
    pub fn finish(&self, records: Vec<RowRecord>) -> Result<ResultsFile, JobError> {
        let rows = group_rows(records, &self.infos, self.images.len())
            .map_err(|why| TaskError::Records { why })?;
        let description = format!(
            "Inference (ans; icm {}, {} images of {})",
            env!("CARGO_PKG_VERSION"),
            self.images.len(),
            self.spec.dataset.display()
        );
        Ok(rd_results(
            "icm",
            description,
            self.infos.clone(),
            rows,
            None,
        ))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::job::ModelDir;

    fn fresh(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("icm-eval-job-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn rows_are_cached_by_content_and_finish_as_the_command() {
        let dir = fresh("cache");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data");
        for (k, name) in ["a.png", "b.png"].iter().enumerate() {
            let img = icm::testimage::synthetic(192, 160, k as u64 + 1);
            let png = crate::picture::OutputFormat::Png.encode(&img).expect("png");
            std::fs::write(data.join(name), png).expect("write");
        }
        let model = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../conformance/models/test-seed1-small.safetensors");
        let mut spec = EvalSpec::new(data.clone());
        spec.models = vec![model.display().to_string()];
        let source = ModelDir(dir.clone());
        let cache = RecordCache::new(dir.join("records"));
        let job = EvalJob::new(spec.clone(), &source, Some(cache.clone())).expect("job");
        assert_eq!((job.pictures(), job.labels().len()), (2, 1));
        let first: Vec<EvalOutcome> = (0..2)
            .map(|i| job.evaluate(i, 0).expect("evaluate"))
            .collect();
        assert!(first.iter().all(|o| !o.cached));
        let again = job.evaluate(1, 0).expect("cached");
        assert!(again.cached);
        assert_eq!(again.row, first[1].row, "bit for bit, times included");
        let records: Vec<RowRecord> = first
            .iter()
            .enumerate()
            .rev()
            .map(|(i, o)| RowRecord::new(i, 0, &o.row))
            .collect();
        let file = job.finish(records).expect("finish");
        assert_eq!(file.per_image.len(), 2);
        assert_eq!(file.per_image[0].image, "a.png");
        // Other encoder options are another key.
        spec.options.effort = 1;
        let other = EvalJob::new(spec.clone(), &source, Some(cache)).expect("job");
        assert_ne!(
            other.record_key(0, 0).expect("key"),
            job.record_key(0, 0).expect("key")
        );
        assert!(other.evaluate(5, 0).is_err(), "out of range");
        spec.options.effort = 9;
        assert!(matches!(
            EvalJob::new(spec, &source, None),
            Err(JobError::Usage(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stepped_rate_points_are_their_own_points() {
        let dir = fresh("steps");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data");
        let img = icm::testimage::synthetic(128, 96, 4);
        let png = crate::picture::OutputFormat::Png.encode(&img).expect("png");
        std::fs::write(data.join("a.png"), png).expect("write");
        let mut spec = EvalSpec::new(data);
        spec.qualities = Some("1@2,1".into());
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let job = EvalJob::new(spec, &ModelDir(models), None).expect("job");
        assert_eq!(job.labels(), vec!["icm-psnr-q1@2", "icm-psnr-q1"]);
        assert_eq!(job.infos[0].settings.as_deref(), Some("step 2"));
        assert_eq!(job.infos[1].settings, None);
        assert_ne!(
            job.record_key(0, 0).expect("key"),
            job.record_key(0, 1).expect("key")
        );
        let (coarse, fine) = (
            job.evaluate(0, 0).expect("q1@2").row,
            job.evaluate(0, 1).expect("q1").row,
        );
        assert!(coarse.bpp < fine.bpp && coarse.psnr < fine.psnr);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
