//! `icm encode`: one model, a global step, rate control (--bpp, --bytes), the continuous
//! quality scale and region-of-interest steps (spec 12.7).

use super::args::{EncodeArgs, RoiArgs};
use super::commands::{load_model, parse_tile};
use super::error::CliError;
use super::io::{read_image, write_atomic};
use super::progress::Progress;
use icm::codec::{
    self, bytes_for_bpp, step_of, step_units, EncodeOptions, RateChoice, RateControl, RgbImage,
    Steps,
};
use icm::model::{self, Model};
use icm_eval::task::roi::default_background;
use std::path::Path;
use std::time::Instant;

/// The zoo, lowest quality first (rate control and fractional qualities).
fn zoo(dir: &Path) -> Result<Vec<Model>, CliError> {
    (1..=6u8).map(|q| load_model(None, Some(q), dir)).collect()
}

/// The steps of --roi or --roi-map (their shape; rate control scales them), or a step of
/// 1, and a line that describes the map.
fn roi_steps(a: &RoiArgs, img: &RgbImage) -> Result<(Steps, Option<String>), CliError> {
    let (map, source) = match (&a.roi, &a.roi_map) {
        (None, None) => return Ok((Steps::UNIT, None)),
        (Some(task), _) => (
            super::roi::task_importance(task, a.roi_model.as_deref(), img)?,
            format!("--roi {task}"),
        ),
        (None, Some(path)) => (
            super::roi::map_importance(path, img)?,
            format!("--roi-map {}", path.display()),
        ),
    };
    let background = a
        .roi_background
        .unwrap_or_else(|| match a.roi.as_deref().map(str::parse) {
            Some(Ok(task)) => default_background(task),
            _ => 3.0,
        });
    let steps = Steps::from_importance(map.cols, map.rows, &map.values, background)
        .map_err(|e| CliError::Usage(format!("--roi-background: {e}")))?;
    let line = format!(
        "{source}: importance >= 0.5 on {:.1} % of the picture; background step factor {}",
        100.0 * map.coverage(img.width, img.height),
        background
    );
    Ok((steps, Some(line)))
}

pub(super) fn run(a: EncodeArgs, dir: &Path) -> Result<(), CliError> {
    let tile = parse_tile(a.tile.as_deref())?;
    let img = read_image(&a.input)?;
    let codec_error = |source| CliError::Codec {
        path: a.input.display().to_string(),
        source,
    };
    let (shape, roi_line) = roi_steps(&a.roi, &img)?;
    let start = Instant::now();
    // The search of --effort takes seconds to minutes: show its steps.
    let bar = (a.search.effort > 0).then(|| {
        let bar = Progress::new(0);
        bar.set_message(format!("effort {} search", a.search.effort));
        bar
    });
    let progress = |_done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.inc(1);
        }
    };
    let opts = EncodeOptions {
        tile,
        checksums: !a.no_checksums,
        effort: a.search.effort,
        lambda: a.search.lambda,
        steps: shape,
        ..EncodeOptions::default()
    };
    let target = match (a.rate.bpp, a.rate.bytes) {
        (Some(bpp), _) => Some(bytes_for_bpp(bpp, img.width, img.height).map_err(codec_error)?),
        (None, Some(n)) => Some(n),
        (None, None) => None,
    };
    let fractional = a.quality.filter(|q| q.fract() != 0.0);
    let (bytes, name, choice): (Vec<u8>, String, Option<RateChoice>) =
        if target.is_some() || fractional.is_some() {
            let models = match &a.model {
                Some(m) => vec![load_model(Some(m), None, dir)?],
                None => zoo(dir)?,
            };
            let mut rc = RateControl::new(&img, models.iter().collect(), &opts);
            let (bytes, choice) = match (target, fractional) {
                (Some(n), _) => rc.encode_to_size(n, &progress),
                (None, Some(q)) => rc.encode_at_quality(q, &progress),
                (None, None) => unreachable!("one of them is set"),
            }
            .map_err(codec_error)?;
            (bytes, models[choice.model].name.clone(), Some(choice))
        } else {
            let quality = a
                .quality
                .map(|q| q as u8)
                .or(Some(model::ZOO_DEFAULT_QUALITY));
            let model = load_model(a.model.as_deref(), quality, dir)?;
            let steps = match a.rate.step {
                Some(s) => opts.steps.scaled(step_units(s).map_err(codec_error)?),
                None => opts.steps.clone(),
            };
            let opts = EncodeOptions { steps, ..opts };
            let bytes =
                codec::encode_with_progress(&img, &model, &opts, &progress).map_err(codec_error)?;
            (bytes, model.name.clone(), None)
        };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let secs = start.elapsed().as_secs_f64();
    write_atomic(&a.output, &bytes)?;
    let pixels = f64::from(img.width) * f64::from(img.height);
    let step = match (choice, a.rate.step) {
        (Some(c), _) => format!(", step {:.4}", step_of(c.base_step)),
        (None, Some(s)) => format!(", step {s}"),
        (None, None) => String::new(),
    };
    println!(
        "{}: {}x{}, {} bytes, {:.4} bpp, model {name}{step}, {:.3} s",
        a.output.display(),
        img.width,
        img.height,
        bytes.len(),
        bytes.len() as f64 * 8.0 / pixels,
        secs
    );
    if let Some(line) = roi_line {
        println!("{line}");
    }
    if let Some(n) = target {
        println!(
            "target {n} bytes ({:.4} bpp): {:.2} % of it",
            n as f64 * 8.0 / pixels,
            100.0 * bytes.len() as f64 / n.max(1) as f64
        );
    }
    Ok(())
}
