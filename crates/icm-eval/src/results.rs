//! The results files of the evaluation tools: one typed schema written by `icm eval`,
//! `icm anchor` and `icm task-eval`, and read by `icm bd-rate`, `icm plot` and the report
//! scripts.
//!
//! JSON ([`ResultsFile`]): CompressAI's `eval_model` layout (`name`, `description`,
//! `results` with one value per rate point in each column) plus `rate_points` (what each
//! point is), `per_image` (the rate-distortion tools) and the task fields (`task-eval`).
//!
//! CSV ([`ResultsFile::to_csv`], through the `csv` crate): one row per image and rate
//! point plus a `mean` row per rate point when the file has per-image figures
//! (`model,quality,image,bpp,psnr,ms_ssim,enc_s,dec_s`), else one row per rate point
//! (`codec,label,quality,images,bpp,<the other columns>`).
//!
//! Reading ([`read_curve`]): the `bpp` column and a metric column of either format.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::Path;
use thiserror::Error;

/// Errors of reading or writing a results file.
#[derive(Debug, Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The JSON does not have the results layout.
    #[error("{path}: {source}")]
    Json {
        /// File path.
        path: String,
        /// Cause, with its line and column.
        source: serde_json::Error,
    },
    /// The CSV is malformed.
    #[error("{path}: {source}")]
    Csv {
        /// File path.
        path: String,
        /// Cause, with its record.
        source: csv::Error,
    },
    /// A column is missing or holds something else than numbers.
    #[error("{path}: {why}")]
    Content {
        /// File path.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// Named columns with one value per rate point (`None` where a value is undefined, JSON
/// `null`), kept in the order they were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns(Vec<(String, Vec<Option<f64>>)>);

impl Columns {
    /// Adds (or replaces) a column.
    pub fn set(&mut self, name: &str, values: Vec<Option<f64>>) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = values,
            None => self.0.push((name.to_string(), values)),
        }
    }

    /// Adds a column of finite-or-undefined values (non-finite ones become `None`).
    pub fn set_f64(&mut self, name: &str, values: impl IntoIterator<Item = f64>) {
        self.set(
            name,
            values
                .into_iter()
                .map(|v| v.is_finite().then_some(v))
                .collect(),
        );
    }

    /// A column by name.
    pub fn get(&self, name: &str) -> Option<&[Option<f64>]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Column names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// `(name, values)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Option<f64>])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

impl Serialize for Columns {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, values) in &self.0 {
            map.serialize_entry(name, values)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ColumnsVisitor;
        impl<'de> Visitor<'de> for ColumnsVisitor {
            type Value = Columns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of columns, each an array of numbers or nulls")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Columns, A::Error> {
                let mut out = Columns::default();
                while let Some((name, values)) = map.next_entry::<String, Vec<Option<f64>>>()? {
                    out.0.push((name, values));
                }
                Ok(out)
            }
        }
        d.deserialize_map(ColumnsVisitor)
    }
}

/// A quality index (integer) or a rate parameter (integer or not) as JSON writes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quality {
    /// Integer: a zoo quality, a QP, an IJG quality.
    Int(i64),
    /// Fractional: a JPEG XL distance, for instance.
    Real(f64),
}

impl Default for Quality {
    fn default() -> Self {
        Self::Int(0)
    }
}

impl Quality {
    /// `v` as an integer when it is one.
    pub fn from_f64(v: f64) -> Self {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            Self::Int(v as i64)
        } else {
            Self::Real(v)
        }
    }
}

impl std::fmt::Display for Quality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Real(v) => write!(f, "{v}"),
        }
    }
}

/// What one rate point is. Reading is lenient (files of other tools and of earlier icm
/// versions): missing fields take their defaults, unknown ones are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatePointInfo {
    /// Codec: `icm`, `none`, `vvc`, `jpeg-ijg-dct24`, ...
    #[serde(default)]
    pub codec: String,
    /// The point's name: the model's name, `vvc-qp32`, `jpeg-q50`, `uncompressed`.
    #[serde(default, alias = "model")]
    pub label: String,
    /// Quality index or rate parameter.
    #[serde(default)]
    pub quality: Quality,
    /// What `quality` is for a conventional codec: `qp`, `crf`, `qscale`, `distance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_parameter: Option<String>,
    /// Coded bytes over all pictures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// SHA-256 of the model file (icm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Model file (icm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Encoder settings (conventional codecs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
}

/// The rate-distortion figures of one picture at one rate point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRow {
    /// The rate point's label.
    #[serde(alias = "model")]
    pub label: String,
    /// Its quality.
    pub quality: Quality,
    /// File name.
    pub image: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bitstream size in bytes.
    pub bytes: u64,
    /// Bits per pixel: bytes x 8 / pixels.
    pub bpp: f64,
    /// PSNR over the R, G and B samples, dB.
    #[serde(rename = "psnr-rgb")]
    pub psnr: f64,
    /// MS-SSIM on RGB; `None` for pictures too small for its five scales.
    #[serde(rename = "ms-ssim")]
    pub ms_ssim: Option<f64>,
    /// Encoding time, seconds.
    #[serde(rename = "encoding_time")]
    pub enc_s: f64,
    /// Decoding time, seconds.
    #[serde(rename = "decoding_time")]
    pub dec_s: f64,
}

/// A results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsFile {
    /// Codec (and input domain) name; the curve's default label in `icm plot`.
    #[serde(default)]
    pub name: String,
    /// What was measured, on what, with which version.
    #[serde(default)]
    pub description: String,
    /// One value per rate point in each column: `bpp` first, then the metrics and times.
    pub results: Columns,
    /// The task of `icm task-eval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The task network's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_model: Option<String>,
    /// Pictures evaluated (`icm task-eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<usize>,
    /// Wall time of the whole evaluation, seconds (`icm task-eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_time: Option<f64>,
    /// What each rate point is, in the order of the columns.
    #[serde(default)]
    pub rate_points: Vec<RatePointInfo>,
    /// Per-picture figures (`icm eval`, `icm anchor`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_image: Vec<ImageRow>,
    /// How a conventional-codec anchor was made (`icm anchor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorInfo>,
}

/// How an anchor was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorInfo {
    /// Codec name.
    pub codec: String,
    /// Its rate parameter (`qp`, `crf`, ...).
    pub rate_parameter: String,
    /// The ffmpeg run.
    pub ffmpeg: String,
    /// Its version line.
    pub ffmpeg_version: String,
    /// The encoder command, when an external encoder was used.
    #[serde(default)]
    pub encoder_cmd: Option<String>,
    /// How colour was converted to and from the codec's format.
    pub colour_conversion: String,
    /// What the times measure.
    pub timing: String,
}

/// The CSV header of files with per-image figures.
const IMAGE_HEADER: [&str; 8] = [
    "model", "quality", "image", "bpp", "psnr", "ms_ssim", "enc_s", "dec_s",
];

fn cell(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

impl ResultsFile {
    /// The JSON text (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses the JSON of a results file; `path` names it in errors.
    pub fn from_json(text: &str, path: &str) -> Result<Self, ResultsError> {
        serde_json::from_str(text).map_err(|source| ResultsError::Json {
            path: path.to_string(),
            source,
        })
    }

    /// Reads a results JSON file.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&text, &shown)
    }

    /// The CSV text: per image and rate point plus `mean` rows when the file has per-image
    /// figures, else one row per rate point.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let result = if self.per_image.is_empty() {
            self.write_point_rows(&mut w)
        } else {
            self.write_image_rows(&mut w)
        };
        // Writing to a Vec cannot fail.
        let bytes = result.and_then(|()| w.into_inner().map_err(|e| e.into_error().into()));
        String::from_utf8(bytes.unwrap_or_default()).unwrap_or_default()
    }

    fn write_image_rows(&self, w: &mut csv::Writer<Vec<u8>>) -> Result<(), csv::Error> {
        w.write_record(IMAGE_HEADER)?;
        let col = |name: &str, k: usize| self.results.get(name).and_then(|c| c.get(k).copied()?);
        for (k, p) in self.rate_points.iter().enumerate() {
            let quality = p.quality.to_string();
            for r in self.per_image.iter().filter(|r| r.label == p.label) {
                w.write_record([
                    &p.label,
                    &quality,
                    &r.image,
                    &r.bpp.to_string(),
                    &r.psnr.to_string(),
                    &cell(r.ms_ssim),
                    &r.enc_s.to_string(),
                    &r.dec_s.to_string(),
                ])?;
            }
            w.write_record([
                p.label.clone(),
                quality,
                "mean".into(),
                cell(col("bpp", k)),
                cell(col("psnr-rgb", k)),
                cell(col("ms-ssim", k)),
                cell(col("encoding_time", k)),
                cell(col("decoding_time", k)),
            ])?;
        }
        Ok(())
    }

    fn write_point_rows(&self, w: &mut csv::Writer<Vec<u8>>) -> Result<(), csv::Error> {
        let mut header = vec!["codec", "label", "quality", "images"];
        header.extend(self.results.names());
        w.write_record(&header)?;
        let images = self.images.map_or_else(String::new, |n| n.to_string());
        for (k, p) in self.rate_points.iter().enumerate() {
            let mut row = vec![
                p.codec.clone(),
                p.label.clone(),
                p.quality.to_string(),
                images.clone(),
            ];
            row.extend(
                self.results
                    .iter()
                    .map(|(_, v)| cell(v.get(k).copied().flatten())),
            );
            w.write_record(&row)?;
        }
        Ok(())
    }
}

/// Key spellings tried for a metric: as given, `_` and `-` swapped, and `psnr` as
/// CompressAI's `psnr-rgb`.
pub fn metric_keys(metric: &str) -> Vec<String> {
    let mut keys = vec![metric.to_string()];
    for alt in [metric.replace('_', "-"), metric.replace('-', "_")] {
        if !keys.contains(&alt) {
            keys.push(alt);
        }
    }
    if metric.eq_ignore_ascii_case("psnr") {
        keys.push("psnr-rgb".into());
    }
    keys
}

/// A rate-quality curve read from a results file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveColumns {
    /// Bits per pixel.
    pub bpp: Vec<f64>,
    /// The metric.
    pub quality: Vec<f64>,
    /// The file's `name` (JSON), when it has one.
    pub name: Option<String>,
}

/// The `bpp` and `metric` columns of a results file: JSON when the name ends in `.json`,
/// else CSV with a header row (rows in any order; a CSV with an `image` column contributes
/// only its `mean` rows when it has any). Every value must be a number.
pub fn read_curve(path: &Path, metric: &str) -> Result<CurveColumns, ResultsError> {
    let shown = path.display().to_string();
    let content = |why: String| ResultsError::Content {
        path: shown.clone(),
        why,
    };
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_json {
        let bytes = std::fs::read(path).map_err(|source| ResultsError::Io {
            path: shown.clone(),
            source,
        })?;
        let (bpp, quality) = curve_from_csv(&bytes, metric).map_err(|e| match e {
            CsvCurveError::Csv(source) => ResultsError::Csv {
                path: shown.clone(),
                source,
            },
            CsvCurveError::Content(why) => content(why),
        })?;
        return Ok(CurveColumns {
            bpp,
            quality,
            name: None,
        });
    }
    let file = ResultsFile::read(path)?;
    let column = |key: &str| -> Result<Vec<f64>, ResultsError> {
        let values = file
            .results
            .get(key)
            .ok_or_else(|| content(format!("no results.{key}")))?;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| content(format!("results.{key}[{i}] is null"))))
            .collect()
    };
    let key = metric_keys(metric)
        .into_iter()
        .find(|k| file.results.get(k).is_some())
        .ok_or_else(|| {
            let have: Vec<&str> = file.results.names().collect();
            content(format!("no results.{metric} (have: {})", have.join(", ")))
        })?;
    Ok(CurveColumns {
        bpp: column("bpp")?,
        quality: column(&key)?,
        name: Some(file.name),
    })
}

enum CsvCurveError {
    Csv(csv::Error),
    Content(String),
}

impl From<csv::Error> for CsvCurveError {
    fn from(e: csv::Error) -> Self {
        Self::Csv(e)
    }
}

fn curve_from_csv(bytes: &[u8], metric: &str) -> Result<(Vec<f64>, Vec<f64>), CsvCurveError> {
    let bad = |why: String| CsvCurveError::Content(why);
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    if header.iter().all(String::is_empty) {
        return Err(bad("empty file (expected a header row)".into()));
    }
    let find = |names: &[String]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
    };
    let rate_col = find(&["bpp".to_string()]).ok_or_else(|| {
        bad(format!(
            "no bpp column in the header ({})",
            header.join(",")
        ))
    })?;
    let metric_col = find(&metric_keys(metric)).ok_or_else(|| {
        bad(format!(
            "no {metric} column in the header ({})",
            header.join(",")
        ))
    })?;
    let image_col = header.iter().position(|h| h == "image");
    let mut rows = Vec::new();
    for record in r.records() {
        let record = record?;
        let line = record.position().map_or(0, csv::Position::line);
        rows.push((line, record));
    }
    // `icm eval --csv` output: per-image rows plus one `mean` row per rate point.
    let only_means =
        image_col.is_some_and(|c| rows.iter().any(|(_, rec)| rec.get(c) == Some("mean")));
    let (mut rates, mut qualities) = (Vec::new(), Vec::new());
    for (line, rec) in &rows {
        if let (true, Some(c)) = (only_means, image_col) {
            if rec.get(c) != Some("mean") {
                continue;
            }
        }
        let value = |col: usize, name: &str| -> Result<f64, CsvCurveError> {
            let v = rec
                .get(col)
                .ok_or_else(|| bad(format!("line {line}: no {name} field")))?;
            v.parse::<f64>()
                .map_err(|_| bad(format!("line {line}: {name} {v:?} is not a number")))
        };
        rates.push(value(rate_col, "bpp")?);
        qualities.push(value(metric_col, metric)?);
    }
    Ok((rates, qualities))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResultsFile {
        let mut results = Columns::default();
        results.set_f64("bpp", [0.5, 1.0]);
        results.set("top1", vec![Some(0.7), None]);
        ResultsFile {
            name: "icm".into(),
            description: "test".into(),
            results,
            task: Some("classification".into()),
            task_model: None,
            images: Some(3),
            total_time: Some(1.5),
            rate_points: ["a,b", "c"]
                .iter()
                .enumerate()
                .map(|(i, l)| RatePointInfo {
                    codec: "icm".into(),
                    label: (*l).into(),
                    quality: Quality::Int(i as i64 + 1),
                    rate_parameter: None,
                    bytes: Some(10),
                    sha256: None,
                    path: None,
                    settings: None,
                })
                .collect(),
            per_image: Vec::new(),
            anchor: None,
        }
    }

    #[test]
    fn json_round_trip_keeps_column_order_and_nulls() {
        let f = sample();
        let text = f.to_json();
        assert!(text.find("\"bpp\"") < text.find("\"top1\""), "{text}");
        assert!(text.contains("null"), "{text}");
        assert_eq!(ResultsFile::from_json(&text, "x").expect("parse"), f);
        // A column holding a string is refused with its place.
        let bad = text.replace("0.7", "\"0.7\"");
        let e = ResultsFile::from_json(&bad, "x.json").expect_err("string value");
        assert!(e.to_string().starts_with("x.json: "), "{e}");
    }

    #[test]
    fn csv_of_rate_points_quotes_and_leaves_undefined_empty() {
        let text = sample().to_csv();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "codec,label,quality,images,bpp,top1");
        assert_eq!(lines[1], "icm,\"a,b\",1,3,0.5,0.7");
        assert_eq!(lines[2], "icm,c,2,3,1,");
    }

    #[test]
    fn csv_curve_uses_mean_rows_and_names_bad_lines() {
        let text = "model,quality,image,bpp,psnr\nm,1,a.png,0.1,30\nm,1,mean,0.2,31\n\
                    m,2,a.png,0.5,35\nm,2,mean,0.6,36\n";
        let (r, q) = curve_from_csv(text.as_bytes(), "psnr").ok().expect("curve");
        assert_eq!((r, q), (vec![0.2, 0.6], vec![31.0, 36.0]));
        let Err(CsvCurveError::Content(why)) = curve_from_csv(b"bpp,psnr\n0.1,x\n", "psnr") else {
            panic!("accepted a non-number");
        };
        assert!(why.contains("line 2"), "{why}");
        assert!(curve_from_csv(b"bpp\n0.1\n", "psnr").is_err());
    }

    #[test]
    fn json_curve_maps_psnr_and_refuses_nulls() {
        let dir = std::env::temp_dir().join(format!("icm-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("r.json");
        let text = r#"{"name": "x", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [30, 32],
                       "ms-ssim": [0.9, null]}}"#;
        std::fs::write(&path, text).expect("write");
        let c = read_curve(&path, "psnr").expect("curve");
        assert_eq!((c.bpp, c.quality), (vec![0.1, 0.2], vec![30.0, 32.0]));
        assert_eq!(c.name.as_deref(), Some("x"));
        let e = read_curve(&path, "ms_ssim").expect_err("null value");
        assert!(e.to_string().contains("results.ms-ssim[1] is null"), "{e}");
        let e = read_curve(&path, "vmaf").expect_err("no column");
        assert!(
            e.to_string().contains("have: bpp, psnr-rgb, ms-ssim"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn every_results_file_of_the_repository_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("docs/results") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let f = ResultsFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
                let bpp = f.results.get("bpp").expect("bpp").len();
                assert!(bpp > 0, "{}", path.display());
                assert!(
                    f.rate_points.is_empty() || f.rate_points.len() == bpp,
                    "{}",
                    path.display()
                );
                n += 1;
            }
        }
        assert!(n >= 20, "{n} files");
    }

    #[test]
    fn metric_spellings() {
        assert_eq!(metric_keys("psnr"), ["psnr", "psnr-rgb"]);
        assert_eq!(metric_keys("ms-ssim"), ["ms-ssim", "ms_ssim"]);
    }
}
