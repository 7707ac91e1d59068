//! Rate-distortion figures of `icm eval` and `icm anchor`: one picture at one rate point
//! ([`measure`], an [`ImageRow`]), their means per rate point in a results file
//! ([`rd_results`], [`rd_table`]), and the PNGs of a dataset folder ([`list_pngs`]). The
//! commands and `python -m icm.dist eval|anchor` all go through these
//! ([`crate::eval_job`], [`crate::anchor::job`]), so their results are the same.

use crate::metrics::{ms_ssim_rgb8, psnr_rgb8, MetricError};
use crate::results::{AnchorInfo, Columns, ImageRow, RatePointInfo, ResultsFile};
use icm::codec::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors of measuring a decoded picture.
#[derive(Debug, Error)]
pub enum RdError {
    /// The decoded picture is not the original's size.
    #[error("{path}: decoded {got}, expected {expected}")]
    SizeMismatch {
        /// Picture.
        path: String,
        /// Decoded size, WxH.
        got: String,
        /// Original size, WxH.
        expected: String,
    },
    /// A quality metric cannot be computed.
    #[error("{path}: {source}")]
    Metric {
        /// Picture.
        path: String,
        /// Cause.
        source: MetricError,
    },
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The results file of `icm eval` or `icm anchor`: per rate point (`points`, with the
/// figures of each image in `images`, in dataset order) the means over images (PSNR is
/// the mean of per-image PSNRs, as CompressAI reports; MS-SSIM of the images that have one).
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

/// The means of a results file of [`rd_results`] as a table, one line per rate point
/// (what `icm eval` and `icm anchor` print, and `python -m icm.dist eval`).
pub fn rd_table(file: &ResultsFile, images: usize) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<24} {:>7} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
        "model", "quality", "images", "bpp", "PSNR-RGB", "MS-SSIM", "enc s", "dec s"
    );
    let value = |name: &str, k: usize| file.results.get(name).and_then(|c| c.get(k).copied()?);
    for (k, p) in file.rate_points.iter().enumerate() {
        let num = |name: &str| value(name, k).unwrap_or(f64::NAN);
        let ms = value("ms-ssim", k).map_or_else(|| "-".to_string(), |v| format!("{v:.5}"));
        let _ = writeln!(
            out,
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
    out
}

/// Measures a decoded picture against its original: the row, and a warning when the
/// picture is too small for MS-SSIM (left out of the row).
#[allow(clippy::too_many_arguments)]
pub fn measure(
    point: &RatePointInfo,
    path: &Path,
    original: &RgbImage,
    decoded: &RgbImage,
    bytes: usize,
    enc_s: f64,
    dec_s: f64,
) -> Result<(ImageRow, Option<String>), RdError> {
    if (decoded.width, decoded.height) != (original.width, original.height) {
        return Err(RdError::SizeMismatch {
            path: path.display().to_string(),
            got: format!("{}x{}", decoded.width, decoded.height),
            expected: format!("{}x{}", original.width, original.height),
        });
    }
    let mut warning = None;
    let ms_ssim = match ms_ssim_rgb8(
        &original.data,
        &decoded.data,
        original.width,
        original.height,
    ) {
        Ok(v) => Some(v),
        Err(e @ MetricError::TooSmall { .. }) => {
            warning = Some(format!("{}: {e}; MS-SSIM left out", path.display()));
            None
        }
        Err(source) => {
            return Err(RdError::Metric {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let pixels = f64::from(original.width) * f64::from(original.height);
    let row = ImageRow {
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
    };
    Ok((row, warning))
}

/// The PNG files of `dir`, sorted by path.
pub fn list_pngs(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
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

/// One [`ImageRow`] of picture `item` at rate point `point`, serialisable with its floats
/// as bit patterns (a row read back is the row written, bit for bit), without what the
/// rate point gives (label, quality).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    /// The picture's index in the dataset.
    pub item: usize,
    /// The rate point's index.
    pub point: usize,
    /// File name.
    pub image: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bitstream size in bytes.
    pub bytes: u64,
    /// `bpp`, `psnr`, `enc_s`, `dec_s` as `f64::to_bits`.
    pub figures: [u64; 4],
    /// MS-SSIM as `f64::to_bits`, when measured.
    pub ms_ssim: Option<u64>,
}

impl RowRecord {
    /// The record of `row`.
    pub fn new(item: usize, point: usize, row: &ImageRow) -> Self {
        Self {
            item,
            point,
            image: row.image.clone(),
            width: row.width,
            height: row.height,
            bytes: row.bytes,
            figures: [row.bpp, row.psnr, row.enc_s, row.dec_s].map(f64::to_bits),
            ms_ssim: row.ms_ssim.map(f64::to_bits),
        }
    }

    /// The row, at rate point `info`.
    pub fn row(&self, info: &RatePointInfo) -> ImageRow {
        let [bpp, psnr, enc_s, dec_s] = self.figures.map(f64::from_bits);
        ImageRow {
            label: info.label.clone(),
            quality: info.quality,
            image: self.image.clone(),
            width: self.width,
            height: self.height,
            bytes: self.bytes,
            bpp,
            psnr,
            ms_ssim: self.ms_ssim.map(f64::from_bits),
            enc_s,
            dec_s,
        }
    }
}

/// The rows of every picture at every rate point, grouped per rate point in dataset order
/// (what [`rd_results`] takes), from records in any order; an error names a record that
/// is missing, given twice, or out of range.
pub fn group_rows(
    records: Vec<RowRecord>,
    infos: &[RatePointInfo],
    pictures: usize,
) -> Result<Vec<Vec<ImageRow>>, String> {
    let points = infos.len();
    let mut slots: Vec<Option<ImageRow>> = vec![None; pictures * points];
    for r in &records {
        let (Some(info), true) = (infos.get(r.point), r.item < pictures) else {
            return Err(format!(
                "picture {} at rate point {}: there are {pictures} pictures and {points} rate \
                 points",
                r.item, r.point
            ));
        };
        let slot = &mut slots[r.point * pictures + r.item];
        if slot.is_some() {
            return Err(format!(
                "picture {} at rate point {} given twice",
                r.item, r.point
            ));
        }
        *slot = Some(r.row(info));
    }
    let missing = slots.iter().filter(|s| s.is_none()).count();
    if missing > 0 {
        return Err(format!("{missing} of {} missing", pictures * points));
    }
    let mut rows = slots.into_iter().flatten();
    Ok((0..points)
        .map(|_| rows.by_ref().take(pictures).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Quality;

    #[test]
    fn rows_cross_as_records_bit_for_bit_and_group_in_order() {
        let info = |k: i64| RatePointInfo {
            codec: "hevc".into(),
            label: format!("hevc-qp{k}"),
            quality: Quality::Int(k),
            rate_parameter: None,
            bytes: None,
            sha256: None,
            path: None,
            settings: None,
        };
        let infos = [info(22), info(37)];
        let a = icm::testimage::synthetic(200, 200, 1);
        let b = icm::testimage::synthetic(200, 200, 2);
        let (row, warn) =
            measure(&infos[1], Path::new("x/p.png"), &a, &b, 1234, 0.1, 0.2).expect("measure");
        assert!(warn.is_none() && row.ms_ssim.is_some());
        let text = serde_json::to_string(&RowRecord::new(1, 1, &row)).expect("json");
        let back: RowRecord = serde_json::from_str(&text).expect("back");
        assert_eq!(back.row(&infos[1]), row);
        let mut records: Vec<RowRecord> = (0..2)
            .flat_map(|p| (0..2).map(move |i| (i, p)))
            .map(|(i, p)| RowRecord::new(i, p, &row))
            .collect();
        records.reverse();
        let grouped = group_rows(records.clone(), &infos, 2).expect("group");
        assert_eq!(grouped[0][0].label, "hevc-qp22");
        assert_eq!(grouped[1].len(), 2);
        assert!(group_rows(records[1..].to_vec(), &infos, 2)
            .expect_err("missing")
            .contains("missing"));
        records.push(records[0].clone());
        assert!(group_rows(records, &infos, 2)
            .expect_err("twice")
            .contains("twice"));
        let small = icm::testimage::synthetic(64, 64, 1);
        let (_, warn) =
            measure(&infos[0], Path::new("s.png"), &small, &small, 10, 0.0, 0.0).expect("m");
        assert!(warn.is_some_and(|w| w.contains("MS-SSIM")));
    }
}
