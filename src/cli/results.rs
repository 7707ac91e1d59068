//! Rate-distortion results shared by `icm eval` and `icm anchor`: per-image figures and
//! their means per rate point in the results file of [`icm_eval::results`], and the
//! table on standard output.

use super::error::CliError;
use super::io::write_atomic;
use super::progress::Progress;
use icm::codec::RgbImage;
use icm_eval::metrics::{ms_ssim_rgb8, psnr_rgb8, MetricError};
use icm_eval::results::{AnchorInfo, Columns, ImageRow, RatePointInfo, ResultsFile};
use std::path::{Path, PathBuf};

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The results file of `icm eval` or `icm anchor`: per rate point (`points`, with the
/// figures of each image in `images`) the means over images (PSNR is the mean of
/// per-image PSNRs, as CompressAI reports; MS-SSIM of the images that have one).
pub fn rd_results(
    name: &str,
    description: String,
    points: Vec<RatePointInfo>,
    images: Vec<Vec<ImageRow>>,
    anchor: Option<AnchorInfo>,
) -> ResultsFile {
    let column = |f: fn(&ImageRow) -> f64| -> Vec<Option<f64>> {
        images.iter().map(|rs| mean(rs.iter().map(f))).collect()
    };
    let mut results = Columns::default();
    results.set("bpp", column(|r| r.bpp));
    results.set("psnr-rgb", column(|r| r.psnr));
    results.set(
        "ms-ssim",
        images
            .iter()
            .map(|rs| mean(rs.iter().filter_map(|r| r.ms_ssim)))
            .collect(),
    );
    results.set("encoding_time", column(|r| r.enc_s));
    results.set("decoding_time", column(|r| r.dec_s));
    ResultsFile {
        name: name.to_string(),
        description,
        results,
        task: None,
        task_model: None,
        images: None,
        total_time: None,
        rate_points: points,
        per_image: images.into_iter().flatten().collect(),
        anchor,
    }
}

/// Measures a decoded image against its original. `warned` makes the "too small for
/// MS-SSIM" warning appear once per image.
#[allow(clippy::too_many_arguments)]
pub fn image_result(
    point: &RatePointInfo,
    path: &Path,
    original: &RgbImage,
    decoded: &RgbImage,
    bytes: usize,
    enc_s: f64,
    dec_s: f64,
    warned: &mut bool,
    bar: &Progress,
) -> Result<ImageRow, CliError> {
    if (decoded.width, decoded.height) != (original.width, original.height) {
        return Err(CliError::SizeMismatch {
            path: path.display().to_string(),
            got: format!("{}x{}", decoded.width, decoded.height),
            expected: format!("{}x{}", original.width, original.height),
        });
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
        Err(source) => {
            return Err(CliError::Metric {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let pixels = f64::from(original.width) * f64::from(original.height);
    Ok(ImageRow {
        label: point.label.clone(),
        quality: point.quality,
        image: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        width: original.width,
        height: original.height,
        bytes: bytes as u64,
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

/// Prints the means as a table on standard output.
pub fn print_table(file: &ResultsFile, images: usize) {
    println!(
        "{:<24} {:>7} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "model", "quality", "images", "bpp", "PSNR-RGB", "MS-SSIM", "enc s", "dec s"
    );
    let value = |name: &str, k: usize| file.results.get(name).and_then(|c| c.get(k).copied()?);
    for (k, p) in file.rate_points.iter().enumerate() {
        let num = |name: &str| value(name, k).unwrap_or(f64::NAN);
        let ms = value("ms-ssim", k).map_or_else(|| "-".to_string(), |v| format!("{v:.5}"));
        println!(
            "{:<24} {:>7} {:>7} {:>8.4} {:>9.3} {:>8} {:>8.3} {:>8.3}",
            p.label,
            p.quality.to_string(),
            images,
            num("bpp"),
            num("psnr-rgb"),
            ms,
            num("encoding_time"),
            num("decoding_time")
        );
    }
}

/// Writes the JSON (`json_path`) and CSV (`csv_path`) of a results file where asked.
pub fn write_outputs(
    json_path: Option<&Path>,
    csv_path: Option<&Path>,
    file: &ResultsFile,
) -> Result<(), CliError> {
    if let Some(path) = json_path {
        write_atomic(path, file.to_json().as_bytes())?;
    }
    if let Some(path) = csv_path {
        write_atomic(path, file.to_csv().as_bytes())?;
    }
    Ok(())
}
