//! `icm task-run`: one task network on one input, in any input domain: a picture or an
//! .icm stream (rgb), a JPEG file's DCT coefficients (dct192, dct24), or an .icm stream's
//! latents y^ without g_s (latents).

use super::args::TaskRunArgs;
use super::error::CliError;
use super::io::{read, write_atomic};
use icm::codec::{self, RgbImage};
use icm::container::{self, Stream};
use icm::model::{self, Model};
use icm_eval::jpeg::decode_coefficients;
use icm_eval::picture::read_rgb;
use icm_eval::task::domain::InputDomain;
use icm_eval::task::network::{labels_file, load_network};
use icm_eval::task::{read_labels, LatentTensor, TaskInput, TaskKind, TaskOutput};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

/// The .icm stream of `bytes` and its model, or `None` when `bytes` is not a stream.
fn icm_stream<'a>(
    bytes: &'a [u8],
    path: &Path,
    model_dir: &Path,
) -> Result<Option<(Stream<'a>, Model)>, CliError> {
    if !bytes.starts_with(&container::MAGIC) {
        return Ok(None);
    }
    let stream = container::parse(bytes).map_err(|source| CliError::Container {
        path: path.display().to_string(),
        source,
    })?;
    let model = Model::from_path(&model::find_named_model(
        &stream.header.model_name,
        model_dir,
    )?)?;
    Ok(Some((stream, model)))
}

fn codec_error(path: &Path) -> impl Fn(codec::CodecError) -> CliError + '_ {
    |source| CliError::Codec {
        path: path.display().to_string(),
        source,
    }
}

/// What the network reads, decoded from the input.
enum Input {
    Pixels(RgbImage),
    Latents(LatentTensor),
    Dct(icm_eval::task::DctCoefficients),
}

fn read_input(a: &TaskRunArgs, model_dir: &Path) -> Result<(Input, (u32, u32)), CliError> {
    let path = &a.input;
    let bytes = read(path)?;
    let stream = icm_stream(&bytes, path, model_dir)?;
    Ok(match (a.input_domain, stream) {
        (InputDomain::Rgb, Some((s, m))) => {
            let d = codec::decode_stream_limited(&s, &m, &a.limits.decode_limits())
                .map_err(codec_error(path))?;
            let size = (d.image.width, d.image.height);
            (Input::Pixels(d.image), size)
        }
        (InputDomain::Rgb, None) => {
            let img = read_rgb(path)?;
            let size = (img.width, img.height);
            (Input::Pixels(img), size)
        }
        (InputDomain::Latents, Some((s, m))) => {
            // No g_s: only the latents are decoded (spec 3 steps 1-4).
            let l = codec::decode_stream_latents_limited(&s, &m, &a.limits.decode_limits())
                .map_err(codec_error(path))?;
            let y = LatentTensor::from_latents(&s.header.tiling(), &l);
            let size = (y.image_width, y.image_height);
            (Input::Latents(y), size)
        }
        (InputDomain::Latents, None) => {
            return Err(CliError::Usage(format!(
                "{}: --input-domain latents reads an .icm stream (icm encode), not a picture",
                path.display()
            )))
        }
        (InputDomain::Dct192 | InputDomain::Dct24, _) => {
            // No pixel decoding: the coefficients go to the network (spec Annex B).
            let c = decode_coefficients(&bytes, &a.limits.jpeg_options()).map_err(|source| {
                CliError::Jpeg {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            let size = (c.width, c.height);
            (Input::Dct(c), size)
        }
    })
}

/// Runs `icm task-run`.
pub fn run(a: TaskRunArgs, model_dir: &Path) -> Result<(), CliError> {
    let task = a.task;
    // The input first: a stream or JPEG over the limits is refused before anything loads.
    let (input, (width, height)) = read_input(&a, model_dir)?;
    let mut net = load_network(task, a.input_domain, a.task_model.as_deref())?;
    let t = Instant::now();
    let out = net.decoder.run(match &input {
        Input::Pixels(p) => TaskInput::Pixels(p),
        Input::Latents(l) => TaskInput::Latents(l),
        Input::Dct(c) => TaskInput::Dct(c),
    })?;
    let secs = t.elapsed().as_secs_f64();
    let labels = net
        .labels_dir
        .and_then(|d| read_labels(&d.join(labels_file(task))))
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
            json!({"task": task.name(), "input_domain": a.input_domain.name(),
                   "detections": shown, "candidates": dets.len()})
        }
        TaskOutput::ClassScores(s) => {
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
            let top: Vec<Value> = idx
                .iter()
                .take(5)
                .map(|&i| json!({"class": i, "label": name(i), "score": s[i]}))
                .collect();
            json!({"task": task.name(), "input_domain": a.input_domain.name(), "top5": top})
        }
        TaskOutput::SegmentationMap(m) => {
            if let Some(p) = &a.output {
                let grey = image::GrayImage::from_raw(m.width, m.height, m.labels.clone())
                    .ok_or_else(|| {
                        CliError::Task(icm_eval::task::TaskError::Output {
                            model: net.decoder.name().to_string(),
                            why: format!(
                                "class map of {} values for {}x{}",
                                m.labels.len(),
                                m.width,
                                m.height
                            ),
                        })
                    })?;
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
        net.decoder.name(),
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
