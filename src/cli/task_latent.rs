//! `icm task-eval --codec icm --input-domain latents` and `icm task-run --input-domain
//! latents`: the classifier and the detector on the decoded latents y^, without g_s
//! (issue 8).
//!
//! The evaluation codes every whole picture with each zoo model (the streams of
//! `--codec icm`, so the same bitrates) and decodes each stream twice:
//! - decode-then-infer (`rgb_*` columns): [`codec::decode`] (entropy decoding, h_s, g_s),
//!   then the pixel classifier through the plug-in interface;
//! - latents (`top1`, `top5`, `decode_s`, `infer_s`, `macs`): [`codec::decode_latents`]
//!   (entropy decoding and h_s, spec 3 steps 1-4), y^ placed as `icm decode --latents`
//!   writes it, then [`LatentMobileNetV2`] or [`LatentYolox`] through the plug-in
//!   interface.
//!
//! `decode_s` is the time from stream to what the task decoder reads (the picture, or y^);
//! `infer_s` the task decoder's run (its pre-processing and network); `task_s` their sum
//! for the latent path. `macs` per picture: g_s ([`transform_macs`] on each tile's y^) plus
//! the pixel network, against the composed latent network; both networks' counts come
//! from their graphs (`scripts/compose_latent_tasks.py` records them).

use super::args::{TaskEvalArgs, TaskRunArgs};
use super::error::CliError;
use super::eval::parse_qualities;
use super::io::read;
use super::progress::Progress;
use super::task::{
    add_score, dataset_error, load_dataset, new_score, score_columns, write_outputs, PointResult,
};
use icm::codec::{self, EncodeOptions};
use icm::container;
use icm::model::{self, Model};
use icm_eval::picture::read_rgb;
use icm_eval::task::latent::{
    resolve_latent_model, transform_macs, LatentMobileNetV2, CLASSIFIER_FILE,
};
use icm_eval::task::latent_detection::{LatentYolox, DETECTOR_FILE};
use icm_eval::task::rate::latent_tensor;
use icm_eval::task::{
    default_task_model_dir, load_decoder, resolve_task_model, LatentTensor, TaskDecoder, TaskInput,
    TaskKind, TaskOutput,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// y^ of a stream (latents only, no g_s), placed as `icm decode --latents` writes it.
fn stream_latents(bytes: &[u8], model: &Model, what: &str) -> Result<LatentTensor, CliError> {
    let stream = container::parse(bytes).map_err(|source| CliError::Container {
        path: what.to_string(),
        source,
    })?;
    let latents = codec::decode_latents(bytes, model).map_err(|source| CliError::Codec {
        path: what.to_string(),
        source,
    })?;
    Ok(latent_tensor(&stream.header.tiling(), &latents))
}

/// Multiply-adds of g_s on every tile of decoded latents.
fn synthesis_macs(model: &Model, latents: &codec::Latents) -> u64 {
    latents
        .tiles
        .iter()
        .map(|t| transform_macs(&model.g_s, t.y_shape.1, t.y_shape.2))
        .sum()
}

/// The latent network of a task and its multiply-adds per picture, and the same for the
/// shared pixel network it replaces (without g_s), as the composition recorded them.
struct Networks {
    latent: Box<dyn TaskDecoder>,
    latent_path: PathBuf,
    latent_macs: Option<u64>,
    pixel_macs: Option<u64>,
}

fn no_latent_decoder(task: TaskKind) -> CliError {
    CliError::Usage(format!(
        "--input-domain latents: the {} task has no latent-domain decoder (classification \
         and detection have)",
        task.name()
    ))
}

/// Loads the latent network of `task`: `explicit`, else the composed one.
fn latent_network(task: TaskKind, explicit: Option<&Path>) -> Result<Networks, CliError> {
    Ok(match task {
        TaskKind::Classification => {
            let latent_path = resolve_latent_model(CLASSIFIER_FILE, explicit)?;
            let net = LatentMobileNetV2::load(&latent_path)?;
            Networks {
                latent_macs: net.macs(),
                pixel_macs: net.classifier_macs(),
                latent: Box::new(net),
                latent_path,
            }
        }
        TaskKind::Detection => {
            let latent_path = resolve_latent_model(DETECTOR_FILE, explicit)?;
            let net = LatentYolox::load(&latent_path)?;
            Networks {
                latent_macs: net.macs(),
                pixel_macs: net.detector_macs(),
                latent: Box::new(net),
                latent_path,
            }
        }
        TaskKind::Segmentation => return Err(no_latent_decoder(task)),
    })
}

/// Per rate point, sums over pictures of one path's times and multiply-adds.
#[derive(Default, Clone, Copy)]
struct PathCost {
    decode_s: f64,
    infer_s: f64,
    macs: f64,
}

/// Runs the evaluation.
pub fn eval(a: TaskEvalArgs, model_dir: &Path) -> Result<(), CliError> {
    let task: TaskKind = a.task.parse().map_err(CliError::Usage)?;
    if a.qps.is_some() {
        return Err(CliError::Usage(
            "--qps needs a conventional --codec (icm takes --qualities)".into(),
        ));
    }
    let nets = latent_network(task, a.task_model.as_deref())?;
    let (mut latent_net, latent_path) = (nets.latent, nets.latent_path);
    let mut pixel_net = load_decoder(task, &resolve_task_model(task, None)?)?;
    let (latent_macs, pixel_macs) = match (nets.latent_macs, nets.pixel_macs) {
        (Some(l), Some(p)) => (l as f64, p as f64),
        _ => {
            return Err(CliError::Usage(format!(
                "{}: no icm.macs metadata of the latent and the pixel network; compose it \
                 again with scripts/compose_latent_tasks.py",
                latent_path.display()
            )))
        }
    };
    // The rate points of `--codec icm`: zoo qualities, or the models of --model.
    let mut models = Vec::new();
    if a.models.is_empty() {
        for q in parse_qualities(a.qualities.as_deref().unwrap_or("1..6"))? {
            let p = model::resolve_model(None, Some(q), model_dir)?;
            models.push((q, Model::from_path(&p)?));
        }
    }
    for spec in &a.models {
        let p = model::resolve_model(Some(spec), None, model_dir)?;
        let m = Model::from_path(&p)?;
        models.push((m.quality, m));
    }
    let mut data = load_dataset(task, &a)?;
    if let Some(n) = a.limit {
        data.items.truncate(n);
    }
    if data.items.is_empty() {
        return Err(dataset_error(&a.dataset, "no images to evaluate"));
    }
    let name = super::task::results_name(&a);
    let mut latent: Vec<PointResult> = models
        .iter()
        .map(|(q, m)| PointResult {
            codec: name.clone(),
            label: m.name.clone(),
            quality: u32::from(*q),
            bytes: Vec::new(),
            bpp: Vec::new(),
            coding_s: 0.0,
            task_s: 0.0,
            score: new_score(task, false, false),
        })
        .collect();
    let mut pixel_scores: Vec<_> = models
        .iter()
        .map(|_| new_score(task, false, false))
        .collect();
    let mut cost = vec![(PathCost::default(), PathCost::default()); models.len()];
    let start_all = Instant::now();
    let bar = Progress::new(data.items.len() * models.len());
    let opts = EncodeOptions::default();
    for item in &data.items {
        let img = read_rgb(&item.path)?;
        let shown = item.path.display().to_string();
        let pixels = f64::from(img.width) * f64::from(img.height);
        for (k, (_, m)) in models.iter().enumerate() {
            let r = &mut latent[k];
            let what = format!("{shown} with {}", m.name);
            bar.set_message(what.clone());
            let t = Instant::now();
            let bytes = codec::encode(&img, m, &opts).map_err(|source| CliError::Codec {
                path: what.clone(),
                source,
            })?;
            r.coding_s += t.elapsed().as_secs_f64();
            r.bytes.push(bytes.len());
            r.bpp.push(bytes.len() as f64 * 8.0 / pixels);
            let (lat_cost, pix_cost) = &mut cost[k];

            // Decode-then-infer.
            let t = Instant::now();
            let decoded = codec::decode(&bytes, m).map_err(|source| CliError::Codec {
                path: what.clone(),
                source,
            })?;
            pix_cost.decode_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = pixel_net.run(TaskInput::Pixels(&decoded.image))?;
            pix_cost.infer_s += t.elapsed().as_secs_f64();
            pix_cost.macs += synthesis_macs(m, &decoded.latents) as f64 + pixel_macs;
            add_score(
                &mut pixel_scores[k],
                item,
                out,
                None,
                None,
                pixel_net.as_ref(),
            )?;

            // Latents, no g_s.
            let t = Instant::now();
            let y = stream_latents(&bytes, m, &what)?;
            let dt = t.elapsed().as_secs_f64();
            lat_cost.decode_s += dt;
            let t = Instant::now();
            let out = latent_net.run(TaskInput::Latents(&y))?;
            let it = t.elapsed().as_secs_f64();
            lat_cost.infer_s += it;
            lat_cost.macs += latent_macs;
            r.task_s += dt + it;
            add_score(&mut r.score, item, out, None, None, latent_net.as_ref())?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let total_s = start_all.elapsed().as_secs_f64();
    let n = data.items.len();
    let per = |v: f64| v / n as f64;
    let ids: Vec<u64> = data.items.iter().map(|i| i.image_id).collect();
    let columns: Vec<Vec<(&'static str, f64)>> = latent
        .iter()
        .zip(&pixel_scores)
        .zip(&cost)
        .map(|((r, ps), (lc, pc))| {
            let mut c = score_columns(&r.score, data.coco.as_ref(), &ids);
            c.push(("decode_s", per(lc.decode_s)));
            c.push(("infer_s", per(lc.infer_s)));
            c.push(("macs", per(lc.macs)));
            for (key, v) in score_columns(ps, data.coco.as_ref(), &ids) {
                c.push((
                    match key {
                        "top1" => "rgb_top1",
                        "top5" => "rgb_top5",
                        "map" => "rgb_map",
                        "map50" => "rgb_map50",
                        _ => "rgb_score",
                    },
                    v,
                ));
            }
            c.push(("rgb_decode_s", per(pc.decode_s)));
            c.push(("rgb_infer_s", per(pc.infer_s)));
            c.push(("rgb_macs", per(pc.macs)));
            c
        })
        .collect();
    write_outputs(&a, task, &latent_path, &latent, &columns, n, total_s)
}

/// What one `icm task-run` produced: the output, the network's seconds, the picture size
/// (width, height), the decoder's name and the folder of the label file.
pub type RunResult = (TaskOutput, f64, (u32, u32), String, Option<PathBuf>);

/// `icm task-run --input-domain latents`: decodes an .icm stream to y^ only and runs the
/// latent classifier or detector.
pub fn run_one(a: &TaskRunArgs, task: TaskKind, model_dir: &Path) -> Result<RunResult, CliError> {
    let mut net = latent_network(task, a.task_model.as_deref())?.latent;
    let shown = a.input.display().to_string();
    let bytes = read(&a.input)?;
    if !bytes.starts_with(&container::MAGIC) {
        return Err(CliError::Usage(format!(
            "{shown}: --input-domain latents reads an .icm stream (icm encode), not a picture"
        )));
    }
    let stream = container::parse(&bytes).map_err(|source| CliError::Container {
        path: shown.clone(),
        source,
    })?;
    let m = model::find_named_model(&stream.header.model_name, model_dir)?;
    let model = Model::from_path(&m)?;
    // No g_s: only the latents are decoded (spec 3 steps 1-4).
    let y = stream_latents(&bytes, &model, &shown)?;
    let t = Instant::now();
    let out = net.run(TaskInput::Latents(&y))?;
    let secs = t.elapsed().as_secs_f64();
    let sub = match task {
        TaskKind::Detection => "yolox_nano",
        _ => "classification",
    };
    let dir = Some(default_task_model_dir().join(sub));
    Ok((
        out,
        secs,
        (y.image_width, y.image_height),
        net.name().to_string(),
        dir,
    ))
}
