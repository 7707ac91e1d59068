//! An anchor run set up from the arguments of `icm anchor`, shared by the command and by
//! `python -m icm.dist anchor`: [`AnchorJob::new`] once per process, then
//! [`AnchorJob::evaluate`] per picture and rate point (code through ffmpeg, or read the
//! [`AnchorCache`]; measure with [`crate::rd::measure`]), and [`AnchorJob::finish`] once on
//! all rows, which makes the same results file as the command.

use super::{
    colour, default_cache_dir, format_level, AnchorCache, AnchorCodec, AnchorConfig, Coded, Family,
};
use crate::picture::read_rgb;
use crate::rd::{group_rows, list_pngs, measure, rd_results, RowRecord};
use crate::results::{AnchorInfo, ImageRow, Quality, RatePointInfo, ResultsFile};
use crate::task::job::{parse_levels, JobError};
use crate::task::TaskError;
use std::path::PathBuf;

/// The arguments of an anchor run (those of `icm anchor`, parsed).
#[derive(Debug, Clone)]
pub struct AnchorSpec {
    /// `--codec`.
    pub codec: AnchorCodec,
    /// `--dataset`: a folder of PNGs.
    pub dataset: PathBuf,
    /// `--qps`.
    pub qps: Option<String>,
    /// `--limit`.
    pub limit: Option<usize>,
    /// `--ffmpeg`.
    pub ffmpeg: Option<PathBuf>,
    /// `--preset`.
    pub preset: String,
    /// `--encoder-cmd`.
    pub encoder_cmd: Option<String>,
    /// `--cache-dir`; `None`: [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `--no-cache`.
    pub no_cache: bool,
}

/// One picture at one rate point.
pub struct AnchorOutcome {
    /// Its figures.
    pub row: ImageRow,
    /// Whether the coded picture came from the cache.
    pub cached: bool,
    /// A warning to show (MS-SSIM left out of a small picture).
    pub warning: Option<String>,
    /// The coded picture (`--keep`).
    pub coded: Coded,
}

/// An anchor run ready to go: ffmpeg found, the rate points and pictures listed.
pub struct AnchorJob {
    /// Its arguments.
    pub spec: AnchorSpec,
    /// The codec's configuration.
    pub config: AnchorConfig,
    /// The rate parameters, highest quality first.
    pub levels: Vec<f64>,
    /// What each rate point is.
    pub infos: Vec<RatePointInfo>,
    /// The pictures (after `--limit`).
    pub images: Vec<PathBuf>,
    /// The cache, unless `--no-cache`.
    pub cache: Option<AnchorCache>,
}

impl AnchorJob {
    /// Sets up the run: parses the rate parameters, finds ffmpeg, lists the pictures.
    /// Fails when the folder has no PNG.
    pub fn new(spec: AnchorSpec) -> Result<Self, JobError> {
        let codec = spec.codec;
        let levels = parse_levels(codec, spec.qps.as_deref())?;
        let config = AnchorConfig::new(
            codec,
            spec.ffmpeg.as_deref(),
            Some(spec.preset.clone()),
            spec.encoder_cmd.clone(),
        )?;
        let cache = (!spec.no_cache)
            .then(|| AnchorCache::new(spec.cache_dir.clone().unwrap_or_else(default_cache_dir)));
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
                why: "no PNG images to code".into(),
            }
            .into());
        }
        let infos = levels
            .iter()
            .map(|&l| RatePointInfo {
                codec: codec.name().to_string(),
                label: format!("{codec}-{}{}", codec.level_name(), format_level(l)),
                quality: Quality::from_f64(l),
                rate_parameter: Some(codec.level_name().to_string()),
                bytes: None,
                sha256: None,
                path: None,
                settings: Some(config.settings(l)),
            })
            .collect();
        Ok(Self {
            spec,
            config,
            levels,
            infos,
            images,
            cache,
        })
    }

    /// Pictures to code.
    pub fn pictures(&self) -> usize {
        self.images.len()
    }

    /// The rate points' labels (`vvc-qp22`, ...).
    pub fn labels(&self) -> Vec<String> {
        self.infos.iter().map(|i| i.label.clone()).collect()
    }

    /// The base name of a kept file of picture `item` at rate point `point`
    /// (`kodim01.vvc-qp22`), without extension.
    pub fn keep_name(&self, item: usize, point: usize) -> Option<String> {
        let path = self.images.get(item)?;
        let level = *self.levels.get(point)?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let codec = self.spec.codec;
        Some(format!(
            "{stem}.{codec}-{}{}",
            codec.level_name(),
            format_level(level)
        ))
    }

    /// Codes picture `item` at rate point `point` (or reads it from the cache) and
    /// measures it.
    pub fn evaluate(&self, item: usize, point: usize) -> Result<AnchorOutcome, JobError> {
        let (Some(path), Some(&level), Some(info)) = (
            self.images.get(item),
            self.levels.get(point),
            self.infos.get(point),
        ) else {
            return Err(TaskError::Records {
                why: format!(
                    "picture {item} at rate point {point}: there are {} pictures and {} rate \
                     points",
                    self.images.len(),
                    self.levels.len()
                ),
            }
            .into());
        };
        let img = read_rgb(path).map_err(TaskError::from)?;
        let coding = |source| JobError::AnchorCoding {
            what: format!("{}: {}", path.display(), info.label),
            source,
        };
        let (coded, cached) = match &self.cache {
            Some(c) => c.code(&self.config, &img, level).map_err(coding)?,
            None => (self.config.code(&img, level).map_err(coding)?, false),
        };
        let (row, warning) = measure(
            info,
            path,
            &img,
            &coded.decoded,
            coded.bitstream.len(),
            coded.encode_s,
            coded.decode_s,
        )?;
        Ok(AnchorOutcome {
            row,
            cached,
            warning,
            coded,
        })
    }

    /// The results file of the rows of every picture at every rate point, in any order.
    pub fn finish(&self, records: Vec<RowRecord>) -> Result<ResultsFile, JobError> {
        let rows = group_rows(records, &self.infos, self.images.len())
            .map_err(|why| TaskError::Records { why })?;
        let codec = self.spec.codec;
        let colour_conversion = match codec.family() {
            Family::Video => colour::FORWARD_DESCRIPTION,
            Family::Image => {
                "8-bit RGB given to the encoder, which converts colour itself; \
                decoded to 8-bit RGB by ffmpeg (swscale flags accurate_rnd, full_chroma_int)"
            }
        };
        let description = format!(
            "{codec} anchor ({}; {} images of {})",
            self.config.ffmpeg_version,
            self.images.len(),
            self.spec.dataset.display()
        );
        let anchor = AnchorInfo {
            codec: codec.name().to_string(),
            rate_parameter: codec.level_name().to_string(),
            ffmpeg: self.config.ffmpeg.display().to_string(),
            ffmpeg_version: self.config.ffmpeg_version.clone(),
            encoder_cmd: self.config.encoder_cmd.clone(),
            colour_conversion: colour_conversion.to_string(),
            timing: "wall time of the encoder and decoder processes, including process start"
                .into(),
        };
        Ok(rd_results(
            codec.name(),
            description,
            self.infos.clone(),
            rows,
            Some(anchor),
        ))
    }
}
