//! `icm task-eval`: sets up the evaluation engine ([`icm_eval::task::evaluate`]) from the
//! command line and writes its results.
//!
//! What is evaluated follows from `--codec` and `--input-domain`:
//! - `rgb` with icm, none or a conventional codec: the whole picture coded at each rate
//!   point, decoded, and the task's pixel network;
//! - `jpeg-ijg` (classification): the classifier's 224x224 input crop JPEG-coded at IJG
//!   qualities; the decoded crop (`rgb`) or its DCT coefficients (`dct192`, `dct24`; spec
//!   Annex B) given to the classifier of that domain;
//! - `latents` with icm (classification, detection): y^ of each stream (no g_s) given to
//!   the latent network, and decode-then-infer beside it (`rgb_*` columns, with g_s's
//!   multiply-adds in `rgb_macs`).

use super::anchor::parse_levels;
use super::args::{TaskCodec, TaskEvalArgs};
use super::error::CliError;
use super::eval::parse_qualities;
use super::io::write_atomic;
use super::progress::Progress;
use icm::model::{self, Model};
use icm_eval::anchor::{default_cache_dir, AnchorCache, AnchorConfig};
use icm_eval::results::ResultsFile;
use icm_eval::task::dataset::Dataset;
use icm_eval::task::domain::InputDomain;
use icm_eval::task::evaluate::{Evaluation, Observer, Outcome, Picture, TaskPath};
use icm_eval::task::network::load_network;
use icm_eval::task::rate::{AnchorRateCodec, IcmCodec, JpegIjg, RateCodec, Uncompressed};
use icm_eval::task::score::Score;
use icm_eval::task::{classification::MobileNetV2, resolve_task_model, TaskKind};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The default IJG quality ladder of `--codec jpeg-ijg`.
pub const DEFAULT_IJG_QUALITIES: &str = "10,20,30,40,50,60,70,80,90,95";

/// Parses a comma-separated list of IJG qualities (1..=100).
pub fn parse_ijg_qualities(spec: &str) -> Result<Vec<u8>, CliError> {
    spec.split(',')
        .map(|part| {
            part.trim()
                .parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| {
                    CliError::Usage(format!("--qps {spec:?}: {part:?} is not a quality 1..100"))
                })
        })
        .collect()
}

impl Observer for Progress {
    fn begin(&self, what: &str) {
        self.set_message(what.to_string());
    }
    fn end(&self) {
        self.inc(1);
    }
}

/// Refuses options that the codec does not take.
fn check_options(a: &TaskEvalArgs) -> Result<(), CliError> {
    let icm_options = a.qualities.is_some() || !a.models.is_empty();
    match a.codec {
        TaskCodec::Icm if a.qps.is_some() => Err(CliError::Usage(
            "--qps needs a conventional --codec or jpeg-ijg (icm takes --qualities)".into(),
        )),
        TaskCodec::None | TaskCodec::Anchor(_) | TaskCodec::JpegIjg if icm_options => {
            Err(CliError::Usage(format!(
                "--qualities and --model need --codec icm, not {}",
                a.codec.name()
            )))
        }
        TaskCodec::None if a.qps.is_some() => {
            Err(CliError::Usage("--qps needs a conventional --codec".into()))
        }
        _ => Ok(()),
    }?;
    let domain_ok = match a.input_domain {
        InputDomain::Rgb => true,
        InputDomain::Dct192 | InputDomain::Dct24 => a.codec == TaskCodec::JpegIjg,
        InputDomain::Latents => a.codec == TaskCodec::Icm,
    };
    if !domain_ok {
        return Err(CliError::Usage(format!(
            "--input-domain {} needs --codec {} (not {})",
            a.input_domain,
            if a.input_domain == InputDomain::Latents {
                "icm (y^ of the icm zoo)"
            } else {
                "jpeg-ijg (the DCT networks read JPEG coefficients of the 224x224 input crop)"
            },
            a.codec.name()
        )));
    }
    if a.codec == TaskCodec::JpegIjg && a.task != TaskKind::Classification {
        return Err(CliError::Usage(
            "--codec jpeg-ijg: only with --task classification (the DCT networks are \
             classifiers)"
                .into(),
        ));
    }
    Ok(())
}

/// The rate points of `--codec`.
fn rate_codecs(a: &TaskEvalArgs, model_dir: &Path) -> Result<Vec<Box<dyn RateCodec>>, CliError> {
    let mut codecs: Vec<Box<dyn RateCodec>> = Vec::new();
    match a.codec {
        TaskCodec::None => codecs.push(Box::new(Uncompressed)),
        TaskCodec::Anchor(codec) => {
            let config = AnchorConfig::new(codec, a.ffmpeg.as_deref(), None, None)?;
            let cache = AnchorCache::new(default_cache_dir());
            for level in parse_levels(codec, a.qps.as_deref())? {
                codecs.push(Box::new(AnchorRateCodec {
                    config: config.clone(),
                    cache: Some(cache.clone()),
                    level,
                }));
            }
        }
        TaskCodec::JpegIjg => {
            for quality in parse_ijg_qualities(a.qps.as_deref().unwrap_or(DEFAULT_IJG_QUALITIES))? {
                codecs.push(Box::new(JpegIjg { quality }));
            }
        }
        TaskCodec::Icm => {
            if a.models.is_empty() {
                for q in parse_qualities(a.qualities.as_deref().unwrap_or("1..6"))? {
                    let path = model::resolve_model(None, Some(q), model_dir)?;
                    let model = Model::from_path(&path)?;
                    codecs.push(Box::new(IcmCodec { model, quality: q }));
                }
            }
            for spec in &a.models {
                let path = model::resolve_model(Some(spec), None, model_dir)?;
                let model = Model::from_path(&path)?;
                let quality = model.quality;
                codecs.push(Box::new(IcmCodec { model, quality }));
            }
        }
    }
    Ok(codecs)
}

/// The networks of the evaluation and the file of the first.
fn task_paths(a: &TaskEvalArgs) -> Result<(Vec<TaskPath>, PathBuf), CliError> {
    let (task, domain) = (a.task, a.input_domain);
    let explicit = a.task_model.as_deref();
    if a.codec == TaskCodec::JpegIjg && domain == InputDomain::Rgb {
        // The coded picture is already the classifier's input crop.
        let path = resolve_task_model(task, explicit)?;
        let net = MobileNetV2::load(&path)?.on_crops();
        let first = TaskPath {
            prefix: "",
            domain,
            network: Box::new(net),
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
                return Err(CliError::Task(icm_eval::task::TaskError::Model {
                    path: path.display().to_string(),
                    why: "no icm.macs metadata of the latent and the pixel network; compose \
                          it again with scripts/compose_latent_tasks.py"
                        .into(),
                }));
            };
            first.network_macs = Some(macs as f64);
            // Decode-then-infer beside it: full decode with g_s, then the pixel network.
            let pixel = load_network(task, InputDomain::Rgb, None)?;
            let second = TaskPath {
                prefix: "rgb_",
                domain: InputDomain::Rgb,
                network: pixel.decoder,
                network_macs: Some(pixel_macs as f64),
                count_synthesis: true,
                input_bytes: None,
            };
            Ok((vec![first, second], path))
        }
        InputDomain::Rgb => Ok((vec![first], path)),
    }
}

/// The `name` of a results file: the codec, and for `jpeg-ijg` or the latent domain the
/// input domain too (`jpeg-ijg-dct24`, `icm-latents`).
fn results_name(a: &TaskEvalArgs) -> String {
    if a.codec == TaskCodec::JpegIjg || a.input_domain == InputDomain::Latents {
        format!("{}-{}", a.codec.name(), a.input_domain)
    } else {
        a.codec.name().to_string()
    }
}

/// Runs `icm task-eval`.
pub fn run(a: TaskEvalArgs, model_dir: &Path) -> Result<(), CliError> {
    check_options(&a)?;
    let (paths, model_path) = task_paths(&a)?;
    let mut evaluation = Evaluation {
        task: a.task,
        picture: if a.codec == TaskCodec::JpegIjg {
            Picture::ClassifierCrop
        } else {
            Picture::Whole
        },
        codecs: rate_codecs(&a, model_dir)?,
        paths,
    };
    let mut data = Dataset::load(a.task, &a.dataset, a.annotations.as_deref())?;
    if let Some(n) = a.limit {
        data.truncate(n);
    }
    if data.items.is_empty() {
        return Err(CliError::Dataset {
            path: a.dataset.display().to_string(),
            why: "no images to evaluate".into(),
        });
    }
    let bar = Progress::new(data.items.len() * evaluation.codecs.len());
    let outcome = evaluation.run(&data, &bar)?;
    bar.finish_and_clear();
    if let Some(prefix) = &a.save_detections {
        save_detections(prefix, &outcome)?;
    }
    let file = outcome.results_file(
        results_name(&a),
        description(&a, &model_path, &outcome),
        a.task,
        model_path.display().to_string(),
    );
    if let Some(path) = &a.output {
        write_atomic(path, file.to_json().as_bytes())?;
    }
    if let Some(path) = &a.csv {
        write_atomic(path, file.to_csv().as_bytes())?;
    }
    print_table(&file);
    Ok(())
}

fn description(a: &TaskEvalArgs, model_path: &Path, outcome: &Outcome) -> String {
    let has_truth = outcome.columns.get("miou").is_some();
    let note = match (a.task, has_truth) {
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
        a.task.name(),
        model_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
        outcome.images,
        a.dataset.display(),
    )
}

/// Writes every rate point's detections in COCO results format to PREFIX-<label>.json.
fn save_detections(prefix: &Path, outcome: &Outcome) -> Result<(), CliError> {
    for p in &outcome.points {
        let Score::Detection(dets) = &p.paths[0].score else {
            continue;
        };
        let doc: Vec<_> = dets
            .iter()
            .map(|d| {
                json!({"image_id": d.image_id, "category_id": d.category_id,
                       "bbox": d.bbox, "score": d.score})
            })
            .collect();
        let path = PathBuf::from(format!("{}-{}.json", prefix.display(), p.info.label));
        write_atomic(&path, json!(doc).to_string().as_bytes())?;
    }
    Ok(())
}

/// The results as a table on standard output: one row per rate point.
fn print_table(file: &ResultsFile) {
    let mut head = format!("{:<16} {:>4} {:>7}", "rate point", "q", "images");
    for name in file.results.names() {
        let width = name.len().max(12);
        let _ = write!(head, " {name:>width$}");
    }
    println!("{head}");
    let images = file.images.unwrap_or(0);
    for (k, p) in file.rate_points.iter().enumerate() {
        let mut line = format!("{:<16} {:>4} {:>7}", p.label, p.quality.to_string(), images);
        for (name, values) in file.results.iter() {
            let width = name.len().max(12);
            match values.get(k).copied().flatten() {
                Some(v) if v.abs() >= 1e5 => {
                    let _ = write!(line, " {v:>width$.3e}");
                }
                Some(v) => {
                    let _ = write!(line, " {v:>width$.4}");
                }
                None => {
                    let _ = write!(line, " {:>width$}", "-");
                }
            }
        }
        println!("{line}");
    }
    println!("total {:.1} s", file.total_time.unwrap_or(0.0));
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
    }
}
