//! `icm model import`: a CompressAI checkpoint as an icm model file (spec 12.5).

use super::args::{ImportArch, ModelImportArgs};
use super::error::CliError;
use super::io::{read, write_atomic};
use icm::codec::RgbImage;
use icm_import::compressai::{self, CompressaiArch, ImportOptions, TableSource};
use icm_import::torch;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Pictures of the default calibration set: synthetic, so that the command runs anywhere.
const SYNTHETIC_PICTURES: u64 = 4;

/// Folder levels [`collect_pictures`] descends.
const MAX_DEPTH: usize = 8;

/// Whether `p` has the extension of a picture format [`icm_eval::picture::read_rgb`] reads.
fn is_picture(p: &Path) -> bool {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(
        ext.as_deref(),
        Some("png" | "jpg" | "jpeg" | "ppm" | "webp" | "tif" | "tiff" | "bmp")
    )
}

/// The pictures in `dir` and its subfolders (up to [`MAX_DEPTH`] levels).
fn collect_pictures(
    dir: &Path,
    out: &mut Vec<std::path::PathBuf>,
    depth: usize,
) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            if depth < MAX_DEPTH {
                collect_pictures(&path, out, depth + 1)?;
            }
        } else if is_picture(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The pictures of `dir` and its subfolders (sorted by path, at most `count`), or the
/// synthetic set.
fn calibration_pictures(
    dir: Option<&Path>,
    count: usize,
) -> Result<(Vec<RgbImage>, String), CliError> {
    let Some(dir) = dir else {
        let pictures = (0..SYNTHETIC_PICTURES)
            .map(|seed| icm::testimage::synthetic(512, 512, seed + 1))
            .collect();
        return Ok((pictures, "synthetic".into()));
    };
    let mut paths = Vec::new();
    collect_pictures(dir, &mut paths, 0)?;
    paths.sort();
    paths.truncate(count);
    if paths.is_empty() {
        return Err(CliError::Usage(format!(
            "--calibrate {}: no pictures (PNG, JPEG, PPM, WebP, TIFF, BMP) in it or its subfolders",
            dir.display()
        )));
    }
    let pictures = paths
        .iter()
        .map(|p| icm_eval::picture::read_rgb(p))
        .collect::<Result<_, _>>()?;
    Ok((pictures, dir.display().to_string()))
}

pub fn run(a: ModelImportArgs) -> Result<(), CliError> {
    let arch = match a.arch {
        ImportArch::Bmshj2018Hyperprior => CompressaiArch::Bmshj2018Hyperprior,
        ImportArch::Mbt2018Mean => CompressaiArch::Mbt2018Mean,
    };
    let path = a.checkpoint.display().to_string();
    let fail = |source| CliError::Import {
        path: path.clone(),
        source,
    };
    let mut extra = a.file.extra()?;
    let bytes = read(&a.checkpoint)?;
    let state = torch::state_dict(&bytes).map_err(|e| fail(e.into()))?;
    extra.insert(
        "checkpoint_sha256".into(),
        icm::hex::hex(&Sha256::digest(&bytes)),
    );
    drop(bytes);
    let (calibration, calibration_source) =
        calibration_pictures(a.calibrate.as_deref(), a.calibrate_count)?;
    eprintln!(
        "calibrating h_s on {} pictures ({calibration_source})",
        calibration.len()
    );
    let (model_bytes, model, report) = compressai::import(
        &state,
        &ImportOptions {
            arch,
            name: a.file.name.clone(),
            quality: a.file.quality,
            calibration,
            calibration_source,
            f16: a.f16,
            extra,
        },
    )
    .map_err(fail)?;
    write_atomic(&a.file.output, &model_bytes)?;
    let source = |s: TableSource| match s {
        TableSource::Checkpoint => "CompressAI's CDFs from the checkpoint",
        TableSource::Rebuilt => "rebuilt from the learned densities (no CDFs in the checkpoint)",
    };
    println!(
        "{}: model {} ({}, N={}, M={}) sha256 {} ({} bytes)",
        a.file.output.display(),
        model.name,
        model.architecture,
        report.n,
        report.m,
        model.sha256_hex(),
        model_bytes.len()
    );
    println!(
        "  h_s activation ranges {:.4} {:.4}; largest |z median| {:.4}",
        report.act_max[0], report.act_max[1], report.max_abs_median
    );
    println!("  z tables: {}", source(report.z_tables));
    println!("  y tables: {}", source(report.y_tables));
    Ok(())
}
