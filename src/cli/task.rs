//! `icm task-eval` and `icm task-run`: task networks on decoded pictures.

use super::args::{TaskEvalArgs, TaskRunArgs};
use super::error::CliError;
use super::eval::parse_qualities;
use super::io::{read, write_atomic};
use super::progress::Progress;
use super::results::csv_field;
use icm::codec::{self, RgbImage};
use icm::container;
use icm::model::{self, Model};
use icm_eval::anchor::{default_cache_dir, AnchorCache, AnchorCodec, AnchorConfig};
use icm_eval::jpeg::{decode_coefficients, DecodeOptions};
use icm_eval::picture::read_rgb;
use icm_eval::task::coco::{self, CocoDataset, DetBox};
use icm_eval::task::dct::{resolve_dct_model, DctMobileNetV2, InputDomain};
use icm_eval::task::detection::COCO_CATEGORY_IDS;
use icm_eval::task::rate::{AnchorRateCodec, Coded, IcmCodec, RateCodec, Uncompressed};
use icm_eval::task::scoring::{in_top_k, read_imagenet_labels, Confusion};
use icm_eval::task::segmentation::coco_voc_truth;
use icm_eval::task::{
    default_task_model_dir, load_decoder, read_labels, resolve_task_model, TaskDecoder, TaskError,
    TaskInput, TaskInputKind, TaskKind, TaskOutput,
};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One image of the dataset, with what its task needs for scoring.
pub(super) struct Item {
    pub(super) path: PathBuf,
    /// COCO image id (detection).
    pub(super) image_id: u64,
    /// ImageNet class (classification).
    class: usize,
}

/// The images and ground truth of one task's dataset.
pub(super) struct Dataset {
    pub(super) items: Vec<Item>,
    pub(super) coco: Option<CocoDataset>,
}

fn is_image(p: &Path) -> bool {
    p.is_file()
        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["png", "jpg", "jpeg", "ppm"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let io = |source| CliError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        out.push(e.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

/// The images of `dir`, or when it has none, of its sub-folders (sorted).
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = sorted_entries(dir)?;
    let direct: Vec<PathBuf> = entries.iter().filter(|p| is_image(p)).cloned().collect();
    if !direct.is_empty() {
        return Ok(direct);
    }
    let mut out = Vec::new();
    for sub in entries.iter().filter(|p| p.is_dir()) {
        out.extend(sorted_entries(sub)?.into_iter().filter(|p| is_image(p)));
    }
    Ok(out)
}

pub(super) fn dataset_error(path: &Path, why: impl Into<String>) -> CliError {
    CliError::Task(TaskError::Dataset {
        path: path.display().to_string(),
        why: why.into(),
    })
}

/// The COCO annotations of `dir` (`--annotations`, else the one `instances_*.json` in
/// `dir/annotations`), or `None` when there is none and none is required.
fn find_annotations(a: &TaskEvalArgs, required: bool) -> Result<Option<PathBuf>, CliError> {
    if let Some(p) = &a.annotations {
        return Ok(Some(p.clone()));
    }
    let ann_dir = a.dataset.join("annotations");
    if !ann_dir.is_dir() && !required {
        return Ok(None);
    }
    let found: Vec<PathBuf> = sorted_entries(&ann_dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("instances") && n.ends_with(".json"))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] if !required => Ok(None),
        [] => Err(dataset_error(&ann_dir, "no instances_*.json")),
        _ => Err(dataset_error(
            &ann_dir,
            "several instances_*.json: choose one with --annotations",
        )),
    }
}

fn load_coco(dir: &Path, ann: &Path) -> Result<Dataset, CliError> {
    let coco = CocoDataset::load(ann)?;
    let mut items = Vec::new();
    for (id, name) in &coco.images {
        let path = ["val2017", "images", ""]
            .iter()
            .map(|sub| dir.join(sub).join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| dataset_error(dir, format!("image {name} (id {id}) not found")))?;
        items.push(Item {
            path,
            image_id: *id,
            class: 0,
        });
    }
    Ok(Dataset {
        items,
        coco: Some(coco),
    })
}

pub(super) fn load_dataset(task: TaskKind, a: &TaskEvalArgs) -> Result<Dataset, CliError> {
    let dir = &a.dataset;
    match task {
        TaskKind::Detection => {
            let ann = find_annotations(a, true)?
                .ok_or_else(|| dataset_error(dir, "no COCO annotations"))?;
            load_coco(dir, &ann)
        }
        TaskKind::Classification => {
            let csv = dir.join("labels.csv");
            let labels = read_imagenet_labels(&csv)?;
            let text = std::fs::read_to_string(&csv).map_err(|source| CliError::Io {
                path: csv.display().to_string(),
                source,
            })?;
            // labels.csv order.
            let mut items = Vec::new();
            for line in text.lines().skip(1) {
                let Some(file) = line.split(',').next().map(str::trim) else {
                    continue;
                };
                let Some(&class) = labels.get(file) else {
                    continue;
                };
                let path = dir.join(file);
                if !path.is_file() {
                    return Err(dataset_error(&csv, format!("{file} not found")));
                }
                items.push(Item {
                    path,
                    image_id: 0,
                    class,
                });
            }
            Ok(Dataset { items, coco: None })
        }
        TaskKind::Segmentation => match find_annotations(a, false)? {
            Some(ann) => load_coco(dir, &ann),
            None => Ok(Dataset {
                items: list_images(dir)?
                    .into_iter()
                    .map(|path| Item {
                        path,
                        image_id: 0,
                        class: 0,
                    })
                    .collect(),
                coco: None,
            }),
        },
    }
}

/// Running scores of one rate point.
pub(super) enum Score {
    Detection(Vec<DetBox>),
    Classification {
        top1: usize,
        top5: usize,
        n: usize,
    },
    Segmentation {
        /// Against VOC-mapped COCO masks, when the dataset has annotations.
        truth: Option<Confusion>,
        /// Against the prediction on the uncompressed image (compressed codecs).
        agreement: Option<Confusion>,
    },
}

pub(super) struct PointResult {
    pub(super) codec: String,
    pub(super) label: String,
    pub(super) quality: u32,
    pub(super) bytes: Vec<usize>,
    pub(super) bpp: Vec<f64>,
    pub(super) coding_s: f64,
    pub(super) task_s: f64,
    pub(super) score: Score,
}

pub(super) fn new_score(task: TaskKind, with_truth: bool, with_agreement: bool) -> Score {
    match task {
        TaskKind::Detection => Score::Detection(Vec::new()),
        TaskKind::Classification => Score::Classification {
            top1: 0,
            top5: 0,
            n: 0,
        },
        TaskKind::Segmentation => {
            let c = || Confusion::new(icm_eval::task::segmentation::CLASSES);
            Score::Segmentation {
                truth: with_truth.then(c),
                agreement: with_agreement.then(c),
            }
        }
    }
}

/// Runs the decoder on what it reads of `coded`.
fn run_task(decoder: &mut dyn TaskDecoder, coded: &Coded) -> Result<TaskOutput, TaskError> {
    match decoder.input_kind() {
        TaskInputKind::Pixels => decoder.run(TaskInput::Pixels(&coded.image)),
        TaskInputKind::Latents => match &coded.latents {
            Some(l) => decoder.run(TaskInput::Latents(l)),
            None => Err(TaskError::WrongInput {
                decoder: decoder.name().to_string(),
                wanted: TaskInputKind::Latents,
                got: TaskInputKind::Pixels,
            }),
        },
        TaskInputKind::Dct => Err(TaskError::WrongInput {
            decoder: decoder.name().to_string(),
            wanted: TaskInputKind::Dct,
            got: TaskInputKind::Pixels,
        }),
    }
}

fn wrong_output(decoder: &dyn TaskDecoder) -> CliError {
    CliError::Task(TaskError::Output {
        model: decoder.name().to_string(),
        why: "result of another task".into(),
    })
}

/// Adds one image's result to the scores. `reference` is the segmentation of the
/// uncompressed image (the agreement target), `truth` the VOC-mapped COCO masks.
pub(super) fn add_score(
    score: &mut Score,
    item: &Item,
    out: TaskOutput,
    reference: Option<&[u8]>,
    truth_map: Option<&[u8]>,
    decoder: &dyn TaskDecoder,
) -> Result<(), CliError> {
    match (score, out) {
        (Score::Detection(all), TaskOutput::Detections(dets)) => {
            for d in dets {
                let Some(&category_id) = COCO_CATEGORY_IDS.get(d.class_id) else {
                    continue;
                };
                all.push(DetBox {
                    image_id: item.image_id,
                    category_id,
                    bbox: d.bbox.map(f64::from),
                    score: f64::from(d.score),
                });
            }
        }
        (Score::Classification { top1, top5, n }, TaskOutput::ClassScores(s)) => {
            *n += 1;
            *top1 += usize::from(in_top_k(&s, item.class, 1));
            *top5 += usize::from(in_top_k(&s, item.class, 5));
        }
        (Score::Segmentation { truth, agreement }, TaskOutput::SegmentationMap(m)) => {
            if let (Some(conf), Some(t)) = (truth.as_mut(), truth_map) {
                conf.add(t, &m.labels);
            }
            if let (Some(conf), Some(r)) = (agreement.as_mut(), reference) {
                conf.add(r, &m.labels);
            }
        }
        _ => return Err(wrong_output(decoder)),
    }
    Ok(())
}

/// `(key, value)` columns of a finished rate point.
pub(super) fn score_columns(
    score: &Score,
    coco: Option<&CocoDataset>,
    ids: &[u64],
) -> Vec<(&'static str, f64)> {
    match score {
        Score::Detection(dets) => {
            let s = coco.map(|c| coco::evaluate(c, ids, dets));
            vec![
                ("map", s.map_or(f64::NAN, |s| s.map)),
                ("map50", s.map_or(f64::NAN, |s| s.map50)),
            ]
        }
        Score::Classification { top1, top5, n } => {
            let n = (*n).max(1) as f64;
            vec![("top1", *top1 as f64 / n), ("top5", *top5 as f64 / n)]
        }
        Score::Segmentation { truth, agreement } => {
            let mut v = Vec::new();
            if let Some(c) = truth {
                v.push(("miou", c.mean_iou()));
                v.push(("pixel_accuracy", c.pixel_accuracy()));
            }
            if let Some(c) = agreement {
                v.push(("miou_agreement", c.mean_iou()));
                v.push(("pixel_agreement", c.pixel_accuracy()));
            }
            v
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// Runs `icm task-eval`.
pub fn eval(a: TaskEvalArgs, model_dir: &Path) -> Result<(), CliError> {
    if a.codec == "jpeg-ijg" {
        if a.input_domain == "latents" {
            return Err(CliError::Usage(
                "--input-domain latents needs --codec icm (y^ of the icm zoo)".into(),
            ));
        }
        return super::task_dct::eval(a);
    }
    if a.input_domain == "latents" {
        if a.codec != "icm" {
            return Err(CliError::Usage(format!(
                "--input-domain latents needs --codec icm, not {}",
                a.codec
            )));
        }
        return super::task_latent::eval(a, model_dir);
    }
    if a.input_domain != "rgb" {
        return Err(CliError::Usage(format!(
            "--input-domain {} needs --codec jpeg-ijg (the DCT networks read JPEG \
             coefficients of the 224x224 input crop)",
            a.input_domain
        )));
    }
    let task: TaskKind = a.task.parse().map_err(CliError::Usage)?;
    let model_path = resolve_task_model(task, a.task_model.as_deref())?;
    let mut decoder = load_decoder(task, &model_path)?;
    // Latent-domain decoders get y^ from the codec; the others only the picture.
    let with_latents = decoder.input_kind() == TaskInputKind::Latents;
    let codecs: Vec<Box<dyn RateCodec>> = match a.codec.as_str() {
        "none" => {
            if a.qualities.is_some() || !a.models.is_empty() {
                return Err(CliError::Usage(
                    "--qualities and --model need --codec icm".into(),
                ));
            }
            vec![Box::new(Uncompressed)]
        }
        name if name != "icm" => {
            if a.qualities.is_some() || !a.models.is_empty() {
                return Err(CliError::Usage(
                    "--qualities and --model need --codec icm (conventional codecs take --qps)"
                        .into(),
                ));
            }
            let codec = AnchorCodec::parse(name)
                .ok_or_else(|| CliError::Usage(format!("--codec {name:?}: unknown codec")))?;
            let config = AnchorConfig::new(codec, a.ffmpeg.as_deref(), None, None)
                .map_err(|e| CliError::Usage(format!("task-eval: {e}")))?;
            let cache = AnchorCache::new(default_cache_dir());
            super::anchor::parse_levels(codec, a.qps.as_deref())?
                .into_iter()
                .map(|level| {
                    Box::new(AnchorRateCodec {
                        config: config.clone(),
                        cache: Some(cache.clone()),
                        level,
                    }) as Box<dyn RateCodec>
                })
                .collect()
        }
        _ => {
            if a.qps.is_some() {
                return Err(CliError::Usage("--qps needs a conventional --codec".into()));
            }
            let mut v: Vec<Box<dyn RateCodec>> = Vec::new();
            if a.models.is_empty() {
                for q in parse_qualities(a.qualities.as_deref().unwrap_or("1..6"))? {
                    let path = model::resolve_model(None, Some(q), model_dir)?;
                    v.push(Box::new(IcmCodec {
                        model: Model::from_path(&path)?,
                        quality: q,
                        with_latents,
                    }));
                }
            }
            for spec in &a.models {
                let path = model::resolve_model(Some(spec), None, model_dir)?;
                let model = Model::from_path(&path)?;
                v.push(Box::new(IcmCodec {
                    quality: model.quality,
                    model,
                    with_latents,
                }));
            }
            v
        }
    };
    let mut data = load_dataset(task, &a)?;
    if let Some(n) = a.limit {
        data.items.truncate(n);
    }
    if data.items.is_empty() {
        return Err(dataset_error(&a.dataset, "no images to evaluate"));
    }
    // Segmentation is scored against the prediction on the uncompressed image.
    let needs_reference = task == TaskKind::Segmentation && a.codec != "none";
    // And, when the dataset has COCO annotations, against VOC-mapped instance masks.
    let with_truth = task == TaskKind::Segmentation && data.coco.is_some();

    let mut results: Vec<PointResult> = codecs
        .iter()
        .map(|c| PointResult {
            codec: c.codec().to_string(),
            label: c.label(),
            quality: c.quality(),
            bytes: Vec::new(),
            bpp: Vec::new(),
            coding_s: 0.0,
            task_s: 0.0,
            score: new_score(task, with_truth, needs_reference),
        })
        .collect();
    let start_all = Instant::now();
    let bar = Progress::new(data.items.len() * codecs.len());
    for item in &data.items {
        let img = read_rgb(&item.path)?;
        let name = item
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reference = if needs_reference {
            match decoder.run(TaskInput::Pixels(&img))? {
                TaskOutput::SegmentationMap(m) => Some(m.labels),
                _ => return Err(wrong_output(decoder.as_ref())),
            }
        } else {
            None
        };
        let truth_map = match (&data.coco, with_truth) {
            (Some(coco), true) => Some(coco_voc_truth(
                coco.segments
                    .get(&item.image_id)
                    .map_or(&[][..], Vec::as_slice),
                img.width,
                img.height,
            )),
            _ => None,
        };
        let pixels = f64::from(img.width) * f64::from(img.height);
        for (c, r) in codecs.iter().zip(results.iter_mut()) {
            bar.set_message(format!("{name} / {}", r.label));
            let t = Instant::now();
            let coded = c.encode_decode(&img).map_err(|e| match e {
                TaskError::Codec { what, why } => CliError::Task(TaskError::Codec {
                    what: format!("{}: {what}", item.path.display()),
                    why,
                }),
                e => CliError::Task(e),
            })?;
            r.coding_s += t.elapsed().as_secs_f64();
            if (coded.image.width, coded.image.height) != (img.width, img.height) {
                return Err(CliError::Usage(format!(
                    "{}: decoded {}x{}, expected {}x{} ({})",
                    item.path.display(),
                    coded.image.width,
                    coded.image.height,
                    img.width,
                    img.height,
                    r.label
                )));
            }
            let t = Instant::now();
            let out = run_task(decoder.as_mut(), &coded)?;
            r.task_s += t.elapsed().as_secs_f64();
            r.bytes.push(coded.bytes);
            r.bpp.push(coded.bytes as f64 * 8.0 / pixels);
            add_score(
                &mut r.score,
                item,
                out,
                reference.as_deref(),
                truth_map.as_deref(),
                decoder.as_ref(),
            )?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let total_s = start_all.elapsed().as_secs_f64();

    let ids: Vec<u64> = data.items.iter().map(|i| i.image_id).collect();
    let columns: Vec<Vec<(&'static str, f64)>> = results
        .iter()
        .map(|r| score_columns(&r.score, data.coco.as_ref(), &ids))
        .collect();
    let n = data.items.len();
    if let Some(prefix) = &a.save_detections {
        for r in &results {
            if let Score::Detection(dets) = &r.score {
                let doc: Vec<Value> = dets
                    .iter()
                    .map(|d| {
                        json!({"image_id": d.image_id, "category_id": d.category_id,
                               "bbox": d.bbox, "score": d.score})
                    })
                    .collect();
                let path = PathBuf::from(format!("{}-{}.json", prefix.display(), r.label));
                let text = serde_json::to_string(&doc)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                write_atomic(&path, text.as_bytes())?;
            }
        }
    }
    write_outputs(&a, task, &model_path, &results, &columns, n, total_s)
}

/// The `name` of a results file: the codec, and for `jpeg-ijg` or a latent decoder the
/// input domain (`jpeg-ijg-dct24`, `icm-latents`).
pub(super) fn results_name(a: &TaskEvalArgs) -> String {
    if a.codec == "jpeg-ijg" || a.input_domain == "latents" {
        format!("{}-{}", a.codec, a.input_domain)
    } else {
        a.codec.clone()
    }
}

/// Writes the results of `icm task-eval`: the JSON (`-o`) and CSV (`--csv`) files, each
/// through a temporary file, and the table on stdout.
pub(super) fn write_outputs(
    a: &TaskEvalArgs,
    task: TaskKind,
    model_path: &Path,
    results: &[PointResult],
    columns: &[Vec<(&'static str, f64)>],
    images: usize,
    total_s: f64,
) -> Result<(), CliError> {
    if let Some(path) = &a.output {
        let doc = to_json(a, task, model_path, results, columns, images, total_s);
        let mut text = serde_json::to_string_pretty(&doc)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        text.push('\n');
        write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = &a.csv {
        write_atomic(path, to_csv(results, columns, images).as_bytes())?;
    }
    print_table(results, columns, images, total_s);
    Ok(())
}

pub(super) fn to_json(
    a: &TaskEvalArgs,
    task: TaskKind,
    model_path: &Path,
    results: &[PointResult],
    columns: &[Vec<(&'static str, f64)>],
    images: usize,
    total_s: f64,
) -> Value {
    let mut res = serde_json::Map::new();
    res.insert(
        "bpp".into(),
        json!(results
            .iter()
            .map(|r| num(mean(&r.bpp)))
            .collect::<Vec<_>>()),
    );
    if let Some(first) = columns.first() {
        for (k, (key, _)) in first.iter().enumerate() {
            let col: Vec<Value> = columns.iter().map(|c| num(c[k].1)).collect();
            res.insert((*key).to_string(), json!(col));
        }
    }
    let per =
        |f: fn(&PointResult) -> f64| -> Vec<Value> { results.iter().map(|r| num(f(r))).collect() };
    res.insert(
        "coding_time".into(),
        json!(per(|r| r.coding_s / r.bpp.len().max(1) as f64)),
    );
    res.insert(
        "task_time".into(),
        json!(per(|r| r.task_s / r.bpp.len().max(1) as f64)),
    );
    let note = match (task, columns.first()) {
        (TaskKind::Segmentation, Some(c)) if c.iter().any(|(k, _)| *k == "miou") => {
            "; miou against VOC-mapped COCO instance masks (MODEL.md), miou_agreement \
             against the prediction on the uncompressed image"
        }
        (TaskKind::Segmentation, _) => {
            "; no segmentation ground truth: miou_agreement is the mIoU against the \
             prediction on the uncompressed image"
        }
        _ => "",
    };
    json!({
        "name": results_name(a),
        "description": format!(
            "Task {} ({}; icm {}, {} images of {}{})",
            task.name(),
            model_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            env!("CARGO_PKG_VERSION"),
            images,
            a.dataset.display(),
            note
        ),
        "task": task.name(),
        "task_model": model_path.display().to_string(),
        "images": images,
        "total_time": total_s,
        "results": res,
        "rate_points": results.iter().map(|r| json!({
            "codec": r.codec,
            "label": r.label,
            "quality": r.quality,
            "bytes": r.bytes.iter().sum::<usize>(),
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn to_csv(
    results: &[PointResult],
    columns: &[Vec<(&'static str, f64)>],
    images: usize,
) -> String {
    let mut out = String::from("codec,label,quality,images,bpp");
    if let Some(first) = columns.first() {
        for (k, _) in first {
            out.push(',');
            out.push_str(k);
        }
    }
    out.push_str(",coding_s,task_s\n");
    for (r, cols) in results.iter().zip(columns) {
        let _ = write!(
            out,
            "{},{},{},{images},{}",
            csv_field(&r.codec),
            csv_field(&r.label),
            r.quality,
            mean(&r.bpp)
        );
        for (_, v) in cols {
            let _ = write!(out, ",{v}");
        }
        let n = r.bpp.len().max(1) as f64;
        let _ = writeln!(out, ",{},{}", r.coding_s / n, r.task_s / n);
    }
    out
}

pub(super) fn print_table(
    results: &[PointResult],
    columns: &[Vec<(&'static str, f64)>],
    images: usize,
    total_s: f64,
) {
    let mut head = format!(
        "{:<16} {:>2} {:>7} {:>8}",
        "rate point", "q", "images", "bpp"
    );
    if let Some(first) = columns.first() {
        for (k, _) in first {
            let _ = write!(head, " {k:>15}");
        }
    }
    println!("{head} {:>9} {:>8}", "coding s", "task s");
    for (r, cols) in results.iter().zip(columns) {
        let mut line = format!(
            "{:<16} {:>2} {:>7} {:>8.4}",
            r.label,
            r.quality,
            images,
            mean(&r.bpp)
        );
        for (_, v) in cols {
            let _ = write!(line, " {v:>15.4}");
        }
        let n = r.bpp.len().max(1) as f64;
        println!("{line} {:>9.3} {:>8.3}", r.coding_s / n, r.task_s / n);
    }
    println!("total {total_s:.1} s");
}

/// Reads an input of `icm task-run`: a picture, or an .icm stream decoded with its model.
fn read_input(path: &Path, model_dir: &Path) -> Result<RgbImage, CliError> {
    let bytes = read(path)?;
    if bytes.starts_with(&container::MAGIC) {
        let stream = container::parse(&bytes).map_err(|source| CliError::Container {
            path: path.display().to_string(),
            source,
        })?;
        let m = model::find_named_model(&stream.header.model_name, model_dir)?;
        let model = Model::from_path(&m)?;
        let d = codec::decode(&bytes, &model).map_err(|source| CliError::Codec {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(d.image);
    }
    Ok(read_rgb(path)?)
}

/// Runs `icm task-run`.
pub fn run_one(a: TaskRunArgs, model_dir: &Path) -> Result<(), CliError> {
    let task: TaskKind = a.task.parse().map_err(CliError::Usage)?;
    let latents = a.input_domain == "latents";
    let domain: InputDomain = if latents {
        InputDomain::Rgb
    } else {
        a.input_domain.parse().map_err(CliError::Usage)?
    };
    let (out, secs, (width, height), decoder_name, labels_dir) = if latents {
        super::task_latent::run_one(&a, task, model_dir)?
    } else if domain == InputDomain::Rgb {
        let model_path = resolve_task_model(task, a.task_model.as_deref())?;
        let img = read_input(&a.input, model_dir)?;
        let mut decoder = load_decoder(task, &model_path)?;
        let t = Instant::now();
        let out = decoder.run(TaskInput::Pixels(&img))?;
        let secs = t.elapsed().as_secs_f64();
        let dir = model_path.parent().map(Path::to_path_buf);
        let name = decoder.name().to_string();
        (out, secs, (img.width, img.height), name, dir)
    } else {
        if task != TaskKind::Classification {
            return Err(CliError::Usage(format!(
                "--input-domain {}: only the classification task has DCT-domain networks",
                domain.name()
            )));
        }
        let model_path = resolve_dct_model(domain, a.task_model.as_deref())?;
        let mut decoder = DctMobileNetV2::load(&model_path)?;
        let bytes = read(&a.input)?;
        // No pixel decoding: the coefficients go to the network (spec Annex B).
        let coefs = decode_coefficients(&bytes, &DecodeOptions::default()).map_err(|source| {
            CliError::Jpeg {
                path: a.input.display().to_string(),
                source,
            }
        })?;
        let t = Instant::now();
        let out = decoder.run(TaskInput::Dct(&coefs))?;
        let secs = t.elapsed().as_secs_f64();
        let dir = Some(default_task_model_dir().join("classification"));
        let name = decoder.name().to_string();
        (out, secs, (coefs.width, coefs.height), name, dir)
    };
    let labels_file = match task {
        TaskKind::Detection => "coco80_labels.txt",
        TaskKind::Classification => "imagenet_labels_1001.txt",
        TaskKind::Segmentation => "pascal_voc_labels.txt",
    };
    let labels = labels_dir
        .and_then(|d| read_labels(&d.join(labels_file)))
        .unwrap_or_default();
    // Classification labels carry the background entry first.
    let offset = usize::from(task == TaskKind::Classification);
    let name = |i: usize| {
        labels
            .get(i + offset)
            .cloned()
            .unwrap_or_else(|| format!("class {i}"))
    };
    let doc = match &out {
        TaskOutput::Detections(dets) => {
            let shown: Vec<Value> = dets
                .iter()
                .filter(|d| d.score >= a.min_score)
                .map(|d| {
                    json!({"class_id": d.class_id, "label": name(d.class_id),
                           "score": d.score, "bbox": d.bbox})
                })
                .collect();
            json!({"task": task.name(), "input_domain": a.input_domain, "detections": shown,
                   "candidates": dets.len()})
        }
        TaskOutput::ClassScores(s) => {
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
            let top: Vec<Value> = idx
                .iter()
                .take(5)
                .map(|&i| json!({"class": i, "label": name(i), "score": s[i]}))
                .collect();
            json!({"task": task.name(), "input_domain": a.input_domain, "top5": top})
        }
        TaskOutput::SegmentationMap(m) => {
            if let Some(p) = &a.output {
                let grey = image::GrayImage::from_raw(m.width, m.height, m.labels.clone())
                    .ok_or_else(|| CliError::Usage("internal: map size".into()))?;
                let mut buf = std::io::Cursor::new(Vec::new());
                grey.write_to(&mut buf, image::ImageFormat::Png)
                    .map_err(|source| CliError::Image {
                        path: p.display().to_string(),
                        source,
                    })?;
                write_atomic(p, buf.get_ref())?;
            }
            let mut counts = vec![0usize; m.classes];
            for &l in &m.labels {
                if let Some(c) = counts.get_mut(l as usize) {
                    *c += 1;
                }
            }
            let total = m.labels.len().max(1) as f64;
            let classes: Vec<Value> = counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| json!({"class": i, "label": name(i), "fraction": c as f64 / total}))
                .collect();
            json!({"task": task.name(), "width": m.width, "height": m.height, "classes": classes})
        }
    };
    if a.json {
        println!("{doc}");
        return Ok(());
    }
    println!(
        "{}: {}x{}, {} ({:.3} s)",
        a.input.display(),
        width,
        height,
        decoder_name,
        secs
    );
    match &out {
        TaskOutput::Detections(dets) => {
            for d in dets.iter().filter(|d| d.score >= a.min_score) {
                println!(
                    "{:<16} {:.3}  x {:.1} y {:.1} w {:.1} h {:.1}",
                    name(d.class_id),
                    d.score,
                    d.bbox[0],
                    d.bbox[1],
                    d.bbox[2],
                    d.bbox[3]
                );
            }
        }
        TaskOutput::ClassScores(_) | TaskOutput::SegmentationMap(_) => {
            let key = if task == TaskKind::Classification {
                "top5"
            } else {
                "classes"
            };
            for v in doc[key].as_array().into_iter().flatten() {
                let score = v.get("score").or(v.get("fraction")).and_then(Value::as_f64);
                println!(
                    "{:<40} {:.4}",
                    v["label"].as_str().unwrap_or(""),
                    score.unwrap_or(f64::NAN)
                );
            }
        }
    }
    Ok(())
}
