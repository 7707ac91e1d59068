//! Rate-distortion results shared by `icm eval` and `icm anchor`: per-image figures and
//! their means per rate point ([`icm_eval::rd`], shared with `python -m icm.dist`) in the
//! results file of [`icm_eval::results`], and the table on standard output.

use super::error::CliError;
use super::io::write_atomic;
use super::progress::Progress;
use icm::codec::RgbImage;
use icm_eval::rd::measure;
use icm_eval::results::{ImageRow, RatePointInfo, ResultsFile};
use std::path::{Path, PathBuf};

pub use icm_eval::rd::rd_results;

/// Measures a decoded image against its original ([`icm_eval::rd::measure`]). `warned`
/// makes the "too small for MS-SSIM" warning appear once per image.
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
    let (row, warning) = measure(point, path, original, decoded, bytes, enc_s, dec_s)
        .map_err(icm_eval::task::job::JobError::from)?;
    warn_once(warning, warned, bar);
    Ok(row)
}

/// Prints `warning` above the progress bar unless `warned` (then sets it).
pub fn warn_once(warning: Option<String>, warned: &mut bool, bar: &Progress) {
    if let Some(w) = warning {
        if !*warned {
            *warned = true;
            bar.suspend(|| eprintln!("icm: warning: {w}"));
        }
    }
}

/// The PNG files of `dir`, sorted by path ([`icm_eval::rd::list_pngs`]).
pub fn list_pngs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    icm_eval::rd::list_pngs(dir).map_err(|source| CliError::Io {
        path: dir.display().to_string(),
        source,
    })
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
