//! `icm eval`: encode and decode every PNG of a directory with one or more models and
//! report rate (bpp), PSNR-RGB, MS-SSIM and timings, as CompressAI's
//! `compressai.utils.eval_model` does.

use super::args::EvalArgs;
use super::error::CliError;
use super::io::{read_image, write_atomic};
use icm::codec::{self, EncodeOptions};
use icm::metrics::{ms_ssim_rgb8, psnr_rgb8, MetricError};
use icm::model::{self, Model};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One rate point: a model and the quality it is reported under.
struct RatePoint {
    model: Model,
    path: PathBuf,
    quality: u8,
}

/// The figures of one image coded with one model.
struct ImageResult {
    image: String,
    width: u32,
    height: u32,
    bytes: usize,
    bpp: f64,
    psnr: f64,
    ms_ssim: Option<f64>,
    enc_s: f64,
    dec_s: f64,
}

/// Means over the images of one rate point.
struct Means {
    bpp: f64,
    psnr: f64,
    ms_ssim: Option<f64>,
    enc_s: f64,
    dec_s: f64,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn means(results: &[ImageResult]) -> Means {
    let m = |f: fn(&ImageResult) -> f64| mean(results.iter().map(f)).unwrap_or(f64::NAN);
    Means {
        bpp: m(|r| r.bpp),
        psnr: m(|r| r.psnr),
        ms_ssim: mean(results.iter().filter_map(|r| r.ms_ssim)),
        enc_s: m(|r| r.enc_s),
        dec_s: m(|r| r.dec_s),
    }
}

/// Parses `1..6` (inclusive, also `1..=6`), `1,3,5` or `4`.
pub(super) fn parse_qualities(s: &str) -> Result<Vec<u8>, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--qualities {s:?}: expected a range 1..6 or a list 1,3,5 of values in 1..=6"
        ))
    };
    let q = |v: &str| {
        v.trim()
            .parse::<u8>()
            .ok()
            .filter(|v| (1..=6).contains(v))
            .ok_or_else(bad)
    };
    if let Some((lo, hi)) = s.split_once("..") {
        let (lo, hi) = (q(lo)?, q(hi.strip_prefix('=').unwrap_or(hi))?);
        if lo > hi {
            return Err(bad());
        }
        Ok((lo..=hi).collect())
    } else {
        s.split(',').map(q).collect()
    }
}

/// The PNG files of `dir`, sorted by path.
fn list_pngs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let io = |source| CliError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let png = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if png && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn load_point(spec: Option<&str>, quality: Option<u8>, dir: &Path) -> Result<RatePoint, CliError> {
    let path = model::resolve_model(spec, quality, dir)?;
    let model = Model::from_path(&path)?;
    if model.g_a.is_none() || model.h_a.is_none() {
        return Err(CliError::Usage(format!(
            "{}: model {} has no encoder transforms (decoder-only)",
            path.display(),
            model.name
        )));
    }
    let quality = quality.unwrap_or(model.quality);
    Ok(RatePoint {
        model,
        path,
        quality,
    })
}

pub(super) fn progress_bar(total: usize) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} eta {eta} {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Encodes and decodes one image with one model and measures it.
fn measure(
    img: &codec::RgbImage,
    path: &Path,
    point: &RatePoint,
    warned: &mut bool,
    bar: &ProgressBar,
) -> Result<ImageResult, CliError> {
    let codec_err = |what: &str| {
        let path = format!("{} ({what}, model {})", path.display(), point.model.name);
        move |source| CliError::Codec { path, source }
    };
    let start = Instant::now();
    let bytes =
        codec::encode(img, &point.model, &EncodeOptions::default()).map_err(codec_err("encode"))?;
    let enc_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let decoded = codec::decode(&bytes, &point.model).map_err(codec_err("decode"))?;
    let dec_s = start.elapsed().as_secs_f64();
    let rec = decoded.image;
    if (rec.width, rec.height) != (img.width, img.height) {
        return Err(CliError::Usage(format!(
            "{}: decoded {}x{}, expected {}x{} (model {})",
            path.display(),
            rec.width,
            rec.height,
            img.width,
            img.height,
            point.model.name
        )));
    }
    let ms_ssim = match ms_ssim_rgb8(&img.data, &rec.data, img.width, img.height) {
        Ok(v) => Some(v),
        Err(e @ MetricError::TooSmall { .. }) => {
            if !*warned {
                *warned = true;
                bar.suspend(|| {
                    eprintln!("icm: warning: {}: {e}; MS-SSIM left out", path.display())
                });
            }
            None
        }
        Err(e) => return Err(CliError::Usage(format!("{}: {e}", path.display()))),
    };
    let pixels = f64::from(img.width) * f64::from(img.height);
    Ok(ImageResult {
        image: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        width: img.width,
        height: img.height,
        bytes: bytes.len(),
        bpp: bytes.len() as f64 * 8.0 / pixels,
        psnr: psnr_rgb8(&img.data, &rec.data),
        ms_ssim,
        enc_s,
        dec_s,
    })
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(out: &mut String, model: &str, quality: u8, image: &str, f: [f64; 5], ms: bool) {
    let [bpp, psnr, ms_ssim, enc, dec] = f;
    let ms_ssim = if ms {
        ms_ssim.to_string()
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{},{quality},{},{bpp},{psnr},{ms_ssim},{enc},{dec}",
        csv_field(model),
        csv_field(image)
    );
}

fn to_csv(points: &[RatePoint], results: &[Vec<ImageResult>], summary: &[Means]) -> String {
    let mut out = String::from("model,quality,image,bpp,psnr,ms_ssim,enc_s,dec_s\n");
    for ((p, rs), m) in points.iter().zip(results).zip(summary) {
        for r in rs {
            let f = [r.bpp, r.psnr, r.ms_ssim.unwrap_or(0.0), r.enc_s, r.dec_s];
            csv_row(
                &mut out,
                &p.model.name,
                p.quality,
                &r.image,
                f,
                r.ms_ssim.is_some(),
            );
        }
        let f = [m.bpp, m.psnr, m.ms_ssim.unwrap_or(0.0), m.enc_s, m.dec_s];
        csv_row(
            &mut out,
            &p.model.name,
            p.quality,
            "mean",
            f,
            m.ms_ssim.is_some(),
        );
    }
    out
}

fn to_json(
    dataset: &Path,
    points: &[RatePoint],
    results: &[Vec<ImageResult>],
    summary: &[Means],
) -> Value {
    let column = |f: fn(&Means) -> Value| summary.iter().map(f).collect::<Vec<_>>();
    let per_image: Vec<Value> = points
        .iter()
        .zip(results)
        .flat_map(|(p, rs)| {
            rs.iter().map(move |r| {
                json!({
                    "model": p.model.name,
                    "quality": p.quality,
                    "image": r.image,
                    "width": r.width,
                    "height": r.height,
                    "bytes": r.bytes,
                    "bpp": r.bpp,
                    "psnr-rgb": r.psnr,
                    "ms-ssim": r.ms_ssim,
                    "encoding_time": r.enc_s,
                    "decoding_time": r.dec_s,
                })
            })
        })
        .collect();
    let images = results.first().map_or(0, Vec::len);
    json!({
        "name": "icm",
        "description": format!(
            "Inference (ans; icm {}, {} images of {})",
            env!("CARGO_PKG_VERSION"),
            images,
            dataset.display()
        ),
        "results": {
            "bpp": column(|m| json!(m.bpp)),
            "psnr-rgb": column(|m| json!(m.psnr)),
            "ms-ssim": column(|m| json!(m.ms_ssim)),
            "encoding_time": column(|m| json!(m.enc_s)),
            "decoding_time": column(|m| json!(m.dec_s)),
        },
        "rate_points": points.iter().map(|p| json!({
            "model": p.model.name,
            "quality": p.quality,
            "sha256": p.model.sha256_hex(),
            "path": p.path.display().to_string(),
        })).collect::<Vec<_>>(),
        "per_image": per_image,
    })
}

fn print_table(points: &[RatePoint], summary: &[Means], images: usize) {
    println!(
        "{:<24} {:>2} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "model", "q", "images", "bpp", "PSNR-RGB", "MS-SSIM", "enc s", "dec s"
    );
    for (p, m) in points.iter().zip(summary) {
        let ms = m
            .ms_ssim
            .map_or_else(|| "-".to_string(), |v| format!("{v:.5}"));
        println!(
            "{:<24} {:>2} {:>7} {:>8.4} {:>9.3} {:>8} {:>8.3} {:>8.3}",
            p.model.name, p.quality, images, m.bpp, m.psnr, ms, m.enc_s, m.dec_s
        );
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
        return Err(CliError::Usage(format!(
            "{}: no PNG images to evaluate",
            a.dataset.display()
        )));
    }

    let bar = progress_bar(images.len() * points.len());
    let mut results: Vec<Vec<ImageResult>> = points.iter().map(|_| Vec::new()).collect();
    for path in &images {
        let img = read_image(path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut warned = false;
        for (point, out) in points.iter().zip(results.iter_mut()) {
            bar.set_message(format!("{name} / {}", point.model.name));
            out.push(measure(&img, path, point, &mut warned, &bar)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let summary: Vec<Means> = results.iter().map(|r| means(r)).collect();
    if let Some(path) = &a.output {
        let doc = to_json(&a.dataset, &points, &results, &summary);
        let mut text = serde_json::to_string_pretty(&doc)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        text.push('\n');
        write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = &a.csv {
        write_atomic(path, to_csv(&points, &results, &summary).as_bytes())?;
    }
    print_table(&points, &summary, images.len());
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

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a.png"), "a.png");
        assert_eq!(csv_field("a,b\"c"), "\"a,b\"\"c\"");
    }
}
