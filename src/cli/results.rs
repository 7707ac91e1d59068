//! Rate-distortion results shared by `icm eval` and `icm anchor`: per-image figures, means
//! per rate point, and the JSON (CompressAI `eval_model` layout), CSV and table outputs.

use super::error::CliError;
use super::io::write_atomic;
use super::progress::Progress;
use icm::codec::RgbImage;
use icm_eval::metrics::{ms_ssim_rgb8, psnr_rgb8, MetricError};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One rate point of a results file: a model, or a codec at one rate parameter.
pub struct Point {
    /// Model or codec name (`model` column).
    pub name: String,
    /// Quality index or rate parameter (`quality` column), a JSON number.
    pub quality: Value,
    /// Everything else worth recording about the point (`rate_points` entry).
    pub meta: Value,
}

/// The figures of one image at one rate point.
pub struct ImageResult {
    /// File name.
    pub image: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bitstream size in bytes.
    pub bytes: usize,
    /// Bits per pixel: bytes x 8 / pixels.
    pub bpp: f64,
    /// PSNR over the R, G and B samples, dB.
    pub psnr: f64,
    /// MS-SSIM on RGB; `None` for images too small for its five scales.
    pub ms_ssim: Option<f64>,
    /// Encoding time, seconds.
    pub enc_s: f64,
    /// Decoding time, seconds.
    pub dec_s: f64,
}

/// Means over the images of one rate point.
pub struct Means {
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

/// Means of each column (PSNR is the mean of per-image PSNRs, as CompressAI reports).
pub fn means(results: &[ImageResult]) -> Means {
    let m = |f: fn(&ImageResult) -> f64| mean(results.iter().map(f)).unwrap_or(f64::NAN);
    Means {
        bpp: m(|r| r.bpp),
        psnr: m(|r| r.psnr),
        ms_ssim: mean(results.iter().filter_map(|r| r.ms_ssim)),
        enc_s: m(|r| r.enc_s),
        dec_s: m(|r| r.dec_s),
    }
}

/// Measures a decoded image against its original. `warned` makes the "too small for
/// MS-SSIM" warning appear once per image.
#[allow(clippy::too_many_arguments)]
pub fn image_result(
    path: &Path,
    original: &RgbImage,
    decoded: &RgbImage,
    bytes: usize,
    enc_s: f64,
    dec_s: f64,
    warned: &mut bool,
    bar: &Progress,
) -> Result<ImageResult, CliError> {
    if (decoded.width, decoded.height) != (original.width, original.height) {
        return Err(CliError::Usage(format!(
            "{}: decoded {}x{}, expected {}x{}",
            path.display(),
            decoded.width,
            decoded.height,
            original.width,
            original.height
        )));
    }
    let ms_ssim = match ms_ssim_rgb8(
        &original.data,
        &decoded.data,
        original.width,
        original.height,
    ) {
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
    let pixels = f64::from(original.width) * f64::from(original.height);
    Ok(ImageResult {
        image: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        width: original.width,
        height: original.height,
        bytes,
        bpp: bytes as f64 * 8.0 / pixels,
        psnr: psnr_rgb8(&original.data, &decoded.data),
        ms_ssim,
        enc_s,
        dec_s,
    })
}

/// The PNG files of `dir`, sorted by path.
pub fn list_pngs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
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

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(out: &mut String, p: &Point, image: &str, f: [f64; 5], ms: bool) {
    let [bpp, psnr, ms_ssim, enc, dec] = f;
    let ms_ssim = if ms {
        ms_ssim.to_string()
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{},{},{},{bpp},{psnr},{ms_ssim},{enc},{dec}",
        csv_field(&p.name),
        p.quality,
        csv_field(image)
    );
}

/// One row per image and rate point, plus a `mean` row per rate point.
pub fn to_csv(points: &[Point], results: &[Vec<ImageResult>], summary: &[Means]) -> String {
    let mut out = String::from("model,quality,image,bpp,psnr,ms_ssim,enc_s,dec_s\n");
    for ((p, rs), m) in points.iter().zip(results).zip(summary) {
        for r in rs {
            let f = [r.bpp, r.psnr, r.ms_ssim.unwrap_or(0.0), r.enc_s, r.dec_s];
            csv_row(&mut out, p, &r.image, f, r.ms_ssim.is_some());
        }
        let f = [m.bpp, m.psnr, m.ms_ssim.unwrap_or(0.0), m.enc_s, m.dec_s];
        csv_row(&mut out, p, "mean", f, m.ms_ssim.is_some());
    }
    out
}

/// The results document: `name`, `description`, `results` (one value per rate point, the
/// layout of CompressAI's `eval_model`), then `rate_points`, `per_image` and `extra`.
pub fn to_json(
    name: &str,
    description: String,
    points: &[Point],
    results: &[Vec<ImageResult>],
    summary: &[Means],
    extra: Value,
) -> Value {
    let column = |f: fn(&Means) -> Value| summary.iter().map(f).collect::<Vec<_>>();
    let per_image: Vec<Value> = points
        .iter()
        .zip(results)
        .flat_map(|(p, rs)| {
            rs.iter().map(move |r| {
                json!({
                    "model": p.name,
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
    let mut doc = json!({
        "name": name,
        "description": description,
        "results": {
            "bpp": column(|m| json!(m.bpp)),
            "psnr-rgb": column(|m| json!(m.psnr)),
            "ms-ssim": column(|m| json!(m.ms_ssim)),
            "encoding_time": column(|m| json!(m.enc_s)),
            "decoding_time": column(|m| json!(m.dec_s)),
        },
        "rate_points": points.iter().map(|p| p.meta.clone()).collect::<Vec<_>>(),
        "per_image": per_image,
    });
    if let (Some(obj), Value::Object(more)) = (doc.as_object_mut(), extra) {
        obj.extend(more);
    }
    doc
}

/// Prints the means as a table on standard output.
pub fn print_table(points: &[Point], summary: &[Means], images: usize) {
    println!(
        "{:<24} {:>7} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "model", "quality", "images", "bpp", "PSNR-RGB", "MS-SSIM", "enc s", "dec s"
    );
    for (p, m) in points.iter().zip(summary) {
        let ms = m
            .ms_ssim
            .map_or_else(|| "-".to_string(), |v| format!("{v:.5}"));
        println!(
            "{:<24} {:>7} {:>7} {:>8.4} {:>9.3} {:>8} {:>8.3} {:>8.3}",
            p.name,
            p.quality.to_string(),
            images,
            m.bpp,
            m.psnr,
            ms,
            m.enc_s,
            m.dec_s
        );
    }
}

/// Writes the JSON document and the CSV where asked.
pub fn write_outputs(
    json_path: Option<&Path>,
    csv_path: Option<&Path>,
    doc: &Value,
    csv: &str,
) -> Result<(), CliError> {
    if let Some(path) = json_path {
        let mut text = serde_json::to_string_pretty(doc)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        text.push('\n');
        write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = csv_path {
        write_atomic(path, csv.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a.png"), "a.png");
        assert_eq!(csv_field("a,b\"c"), "\"a,b\"\"c\"");
    }
}
