//! `icm task-eval --codec jpeg-ijg --input-domain rgb|dct192|dct24`: the classifier on
//! JPEG-coded input crops, fed decoded pixels or DCT coefficients (spec Annex B; issue 9).
//!
//! Every picture is cropped as the network's pre-processing does (shorter side 256, centre
//! 224x224; [`icm_eval::task::classification::input_crop`]) and that crop is JPEG-coded at each
//! IJG quality ([`icm_eval::task::dct::encode_jpeg`]), so that the three input domains see the
//! same JPEG files. Per rate point: bpp of the JPEG (8 * bytes / 224^2), top-1/top-5, the
//! bytes of the float32 tensor given to the network, the encoding time (`coding_s`), the
//! time from JPEG to that tensor (`decode_s`: RGB decoding and scaling, or coefficient
//! decoding and channel arrangement), the network's time (`infer_s`), and `task_s` =
//! `decode_s + infer_s`.

use super::args::TaskEvalArgs;
use super::error::CliError;
use super::progress::Progress;
use super::task::{
    add_score, dataset_error, load_dataset, new_score, results_name, score_columns, write_outputs,
    PointResult,
};
use icm_eval::jpeg::{decode_coefficients, DecodeOptions};
use icm_eval::picture::read_rgb;
use icm_eval::task::classification::{input_crop, normalise, MobileNetV2, CROP};
use icm_eval::task::dct::{
    decode_jpeg_rgb, encode_jpeg, resolve_dct_model, DctMobileNetV2, InputDomain,
};
use icm_eval::task::{resolve_task_model, TaskDecoder, TaskKind, TaskOutput};
use std::time::Instant;

/// The default quality ladder.
pub const DEFAULT_QUALITIES: &str = "10,20,30,40,50,60,70,80,90,95";

/// Parses a comma-separated list of IJG qualities (1..=100).
pub fn parse_ijg_qualities(spec: &str) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        let q: u8 = part
            .trim()
            .parse()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| {
                CliError::Usage(format!("--qps {spec:?}: {part:?} is not a quality 1..100"))
            })?;
        out.push(q);
    }
    Ok(out)
}

/// The network of one input domain.
enum Network {
    Rgb(MobileNetV2),
    Dct(DctMobileNetV2),
}

/// Runs the evaluation.
pub fn eval(a: TaskEvalArgs) -> Result<(), CliError> {
    let task: TaskKind = a.task.parse().map_err(CliError::Usage)?;
    if task != TaskKind::Classification {
        return Err(CliError::Usage(
            "--codec jpeg-ijg: only with --task classification (the DCT networks are \
             classifiers)"
                .into(),
        ));
    }
    if a.qualities.is_some() || !a.models.is_empty() {
        return Err(CliError::Usage(
            "--qualities and --model need --codec icm (jpeg-ijg takes --qps)".into(),
        ));
    }
    let domain: InputDomain = a.input_domain.parse().map_err(CliError::Usage)?;
    let qualities = parse_ijg_qualities(a.qps.as_deref().unwrap_or(DEFAULT_QUALITIES))?;
    let (model_path, mut net) = match domain {
        InputDomain::Rgb => {
            let p = resolve_task_model(task, a.task_model.as_deref())?;
            let n = MobileNetV2::load(&p)?;
            (p, Network::Rgb(n))
        }
        _ => {
            let p = resolve_dct_model(domain, a.task_model.as_deref())?;
            let n = DctMobileNetV2::load(&p)?;
            (p, Network::Dct(n))
        }
    };
    let mut data = load_dataset(task, &a)?;
    if let Some(n) = a.limit {
        data.items.truncate(n);
    }
    if data.items.is_empty() {
        return Err(dataset_error(&a.dataset, "no images to evaluate"));
    }
    let name = results_name(&a);
    let mut results: Vec<PointResult> = qualities
        .iter()
        .map(|&q| PointResult {
            codec: name.clone(),
            label: format!("jpeg-q{q}"),
            quality: u32::from(q),
            bytes: Vec::new(),
            bpp: Vec::new(),
            coding_s: 0.0,
            task_s: 0.0,
            score: new_score(task, false, false),
        })
        .collect();
    // Per rate point: decoding and inference seconds, float32 bytes given to the network.
    let mut decode_s = vec![0.0f64; qualities.len()];
    let mut infer_s = vec![0.0f64; qualities.len()];
    let mut input_bytes = vec![0usize; qualities.len()];
    let pixels = f64::from(CROP) * f64::from(CROP);
    let start_all = Instant::now();
    let bar = Progress::new(data.items.len() * qualities.len());
    for item in &data.items {
        let crop = input_crop(&read_rgb(&item.path)?);
        let shown = item.path.display().to_string();
        for (k, &q) in qualities.iter().enumerate() {
            let r = &mut results[k];
            bar.set_message(format!("{} / {}", shown, r.label));
            let t = Instant::now();
            let jpeg = encode_jpeg(&crop, q)?;
            r.coding_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (scores, bytes) = match &mut net {
                Network::Rgb(n) => {
                    let rgb = decode_jpeg_rgb(&jpeg)?;
                    let input = normalise(&rgb);
                    let dt = t.elapsed().as_secs_f64();
                    let bytes = input.len() * 4;
                    let t = Instant::now();
                    let s = n.run_input(input)?;
                    infer_s[k] += t.elapsed().as_secs_f64();
                    decode_s[k] += dt;
                    (s, bytes)
                }
                Network::Dct(n) => {
                    let coefs = decode_coefficients(&jpeg, &DecodeOptions::default()).map_err(
                        |source| CliError::Jpeg {
                            path: format!("{shown} at JPEG quality {q}"),
                            source,
                        },
                    )?;
                    let (shape, input) = n.input_tensor(&coefs)?;
                    let dt = t.elapsed().as_secs_f64();
                    let bytes = input.len() * 4;
                    let t = Instant::now();
                    let s = n.run_tensor(&shape, input)?;
                    infer_s[k] += t.elapsed().as_secs_f64();
                    decode_s[k] += dt;
                    (s, bytes)
                }
            };
            r.task_s += t.elapsed().as_secs_f64();
            input_bytes[k] = bytes;
            r.bytes.push(jpeg.len());
            r.bpp.push(jpeg.len() as f64 * 8.0 / pixels);
            let decoder: &dyn TaskDecoder = match &net {
                Network::Rgb(n) => n,
                Network::Dct(n) => n,
            };
            add_score(
                &mut r.score,
                item,
                TaskOutput::ClassScores(scores),
                None,
                None,
                decoder,
            )?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let total_s = start_all.elapsed().as_secs_f64();
    let n = data.items.len();
    let columns: Vec<Vec<(&'static str, f64)>> = results
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let mut c = score_columns(&r.score, None, &[]);
            c.push(("input_bytes", input_bytes[k] as f64));
            c.push(("decode_s", decode_s[k] / n as f64));
            c.push(("infer_s", infer_s[k] / n as f64));
            c
        })
        .collect();
    write_outputs(&a, task, &model_path, &results, &columns, n, total_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_lists() {
        assert_eq!(
            parse_ijg_qualities(DEFAULT_QUALITIES).expect("default"),
            vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
        );
        assert_eq!(parse_ijg_qualities(" 5, 100").expect("list"), vec![5, 100]);
        for bad in ["0", "101", "10..20", "", "a"] {
            assert!(parse_ijg_qualities(bad).is_err(), "{bad}");
        }
    }
}
