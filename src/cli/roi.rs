//! Importance maps for `icm encode --roi` and `--roi-map` (spec 12.7): what
//! `icm_eval::task::roi` computes, read from the command line's options.

use super::error::CliError;
use super::io::read_image;
use icm::codec::RgbImage;
use icm_eval::task::roi::{importance, ImportanceMap, RoiNetworks, RoiParams, RoiTask};
use std::path::Path;

/// The importance map of `task` (detection, classification, segmentation) on `img`, from
/// the task's built-in network or `model`.
pub(super) fn task_importance(
    task: &str,
    model: Option<&Path>,
    img: &RgbImage,
) -> Result<ImportanceMap, CliError> {
    let task: RoiTask = task
        .parse()
        .map_err(|e| CliError::Usage(format!("--roi: {e}")))?;
    let mut nets = match model {
        Some(path) => RoiNetworks::load_file(task, path)?,
        None => RoiNetworks::load(None, task)?,
    };
    Ok(importance(task, img, &mut nets, &RoiParams::default())?)
}

/// A user's grey-scale importance map (white = important), stretched over `img`.
pub(super) fn map_importance(path: &Path, img: &RgbImage) -> Result<ImportanceMap, CliError> {
    let map = read_image(path)?;
    let grey: Vec<u8> = map
        .data
        .chunks_exact(3)
        .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2]) + 1) / 3) as u8)
        .collect();
    Ok(ImportanceMap::from_grey(
        &grey, map.width, map.height, img.width, img.height,
    )?)
}
