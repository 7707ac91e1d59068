//! `icm eval`: encode and decode every PNG of a directory with one or more models and
//! report rate (bpp), PSNR-RGB, MS-SSIM and timings, as CompressAI's
//! `compressai.utils.eval_model` does.

use super::args::EvalArgs;
use super::error::CliError;
use super::io::read_image;
use super::progress::Progress;
use super::results::{image_result, list_pngs, print_table, rd_results, write_outputs};
use icm::codec::{self, EncodeOptions};
use icm::model::{self, Model};
use icm_eval::results::{ImageRow, Quality, RatePointInfo};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One rate point: a model and the quality it is reported under.
struct RatePoint {
    model: Model,
    path: PathBuf,
    quality: u8,
}

/// Parses `1..6` (inclusive, also `1..=6`), `1,3,5` or `4`
/// ([`icm_eval::task::job::parse_qualities`]).
pub(super) fn parse_qualities(s: &str) -> Result<Vec<u8>, CliError> {
    Ok(icm_eval::task::job::parse_qualities(s)?)
}

fn load_point(spec: Option<&str>, quality: Option<u8>, dir: &Path) -> Result<RatePoint, CliError> {
    let path = model::resolve_model(spec, quality, dir)?;
    let model = Model::from_path(&path)?;
    if model.g_a.is_none() || model.h_a.is_none() {
        return Err(CliError::DecoderOnly {
            path: path.display().to_string(),
            model: model.name,
        });
    }
    let quality = quality.unwrap_or(model.quality);
    Ok(RatePoint {
        model,
        path,
        quality,
    })
}

/// Encodes and decodes one image with one model and measures it.
fn measure(
    img: &codec::RgbImage,
    path: &Path,
    point: &RatePoint,
    info: &RatePointInfo,
    opts: &EncodeOptions,
    warned: &mut bool,
    bar: &Progress,
) -> Result<ImageRow, CliError> {
    let codec_err = |what: &str| {
        let path = format!("{} ({what}, model {})", path.display(), point.model.name);
        move |source| CliError::Codec { path, source }
    };
    let start = Instant::now();
    let bytes = codec::encode(img, &point.model, opts).map_err(codec_err("encode"))?;
    let enc_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let decoded = codec::decode(&bytes, &point.model).map_err(codec_err("decode"))?;
    let dec_s = start.elapsed().as_secs_f64();
    image_result(
        info,
        path,
        img,
        &decoded.image,
        bytes.len(),
        enc_s,
        dec_s,
        warned,
        bar,
    )
}

fn point_info(p: &RatePoint, opts: &EncodeOptions) -> RatePointInfo {
    RatePointInfo {
        codec: "icm".into(),
        label: p.model.name.clone(),
        quality: Quality::Int(i64::from(p.quality)),
        rate_parameter: None,
        bytes: None,
        sha256: Some(p.model.sha256_hex()),
        path: Some(p.path.display().to_string()),
        settings: (opts.effort > 0).then(|| match opts.lambda {
            Some(l) => format!("effort {}, lambda {l}", opts.effort),
            None => format!("effort {}", opts.effort),
        }),
    }
}

/// Runs `icm eval`.
pub fn run(a: EvalArgs, dir: &Path) -> Result<(), CliError> {
    let qualities = match (&a.qualities, a.models.is_empty()) {
        (Some(s), _) => parse_qualities(s)?,
        (None, true) => (1..=6).collect(),
        (None, false) => Vec::new(),
    };
    let mut points = Vec::new();
    for &q in &qualities {
        points.push(load_point(None, Some(q), dir)?);
    }
    for m in &a.models {
        points.push(load_point(Some(m), None, dir)?);
    }
    let mut images = list_pngs(&a.dataset)?;
    if let Some(n) = a.limit {
        images.truncate(n);
    }
    if images.is_empty() {
        return Err(CliError::Dataset {
            path: a.dataset.display().to_string(),
            why: "no PNG images to evaluate".into(),
        });
    }

    let bar = Progress::new(images.len() * points.len());
    let opts = EncodeOptions {
        effort: a.search.effort,
        lambda: a.search.lambda,
        ..EncodeOptions::default()
    };
    let infos: Vec<RatePointInfo> = points.iter().map(|p| point_info(p, &opts)).collect();
    let mut results: Vec<Vec<ImageRow>> = points.iter().map(|_| Vec::new()).collect();
    for path in &images {
        let img = read_image(path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut warned = false;
        for ((point, info), out) in points.iter().zip(&infos).zip(results.iter_mut()) {
            bar.set_message(format!("{name} / {}", point.model.name));
            out.push(measure(&img, path, point, info, &opts, &mut warned, &bar)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let description = format!(
        "Inference (ans; icm {}, {} images of {})",
        env!("CARGO_PKG_VERSION"),
        images.len(),
        a.dataset.display()
    );
    let file = rd_results("icm", description, infos, results, None);
    write_outputs(a.output.as_deref(), a.csv.as_deref(), &file)?;
    print_table(&file, images.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualities() {
        assert_eq!(parse_qualities("1..6").ok(), Some(vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(parse_qualities("2..=3").ok(), Some(vec![2, 3]));
        assert_eq!(parse_qualities("1,3,5").ok(), Some(vec![1, 3, 5]));
        assert_eq!(parse_qualities("4").ok(), Some(vec![4]));
        for bad in ["0..6", "1..7", "5..2", "1,,3", "x", ""] {
            assert!(parse_qualities(bad).is_err(), "{bad}");
        }
    }
}
