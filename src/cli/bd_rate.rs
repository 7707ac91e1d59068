//! `icm bd-rate`: Bjøntegaard-delta rate and metric between two results files.
//!
//! Inputs are CSV (header row; rate column `bpp`, quality column named by `--metric`,
//! other columns ignored) or the JSON written by `icm eval -o` (CompressAI layout,
//! `{"results": {"bpp": [..], "psnr-rgb": [..], ..}}`), told apart by the `.json`
//! extension. Rows may come in any order. A CSV with an `image` column, as written by
//! `icm eval --csv`, contributes only its `mean` rows when it has any.

use super::args::BdRateArgs;
use super::error::CliError;
use super::io::read;
use icm_eval::bdrate::{self, Curve, Method};
use serde_json::{json, Value};
use std::path::Path;

/// Runs `icm bd-rate`.
pub fn run(a: BdRateArgs) -> Result<(), CliError> {
    let method: Method = a
        .method
        .parse()
        .map_err(|e: bdrate::BdError| CliError::Usage(format!("--method: {e}")))?;
    let mut anchor = load_curve(&a.anchor, &a.metric)?;
    let mut test = load_curve(&a.test, &a.metric)?;
    let mut dropped = (Vec::new(), Vec::new());
    if a.envelope {
        (anchor, dropped.0) = anchor.upper_envelope();
        (test, dropped.1) = test.upper_envelope();
    }
    let r = bdrate::bd(&anchor, &test, method).map_err(|e| {
        let hint = if a.envelope {
            ""
        } else {
            " (for task curves that are not monotone: --envelope, or --method cubic)"
        };
        CliError::Usage(format!("bd-rate ({method}, {}): {e}{hint}", a.metric))
    })?;
    if a.json {
        let pairs = |v: &[(f64, f64)]| v.iter().map(|&(r, q)| json!([r, q])).collect::<Vec<_>>();
        let mut doc = json!({
            "bd_rate_percent": r.bd_rate_percent,
            "bd_metric": r.bd_metric,
            "method": method.name(),
            "metric": a.metric,
        });
        if a.envelope {
            doc["envelope_dropped"] = json!({
                "anchor": pairs(&dropped.0),
                "test": pairs(&dropped.1),
            });
        }
        println!("{doc}");
    } else {
        for (side, d) in [("anchor", &dropped.0), ("test", &dropped.1)] {
            for (rate, q) in d.iter() {
                println!("envelope: {side} point bpp {rate} {} {q} left out (a cheaper point does at least as well)", a.metric);
            }
        }
        println!("BD-rate: {:.6} %", r.bd_rate_percent);
        println!("BD-{}: {:.4}", a.metric, r.bd_metric);
    }
    Ok(())
}

/// Reads one curve (rates, qualities) from a CSV or eval-JSON file.
fn load_curve(path: &Path, metric: &str) -> Result<Curve, CliError> {
    let (rates, qualities) = read_columns(path, metric)?;
    Curve::new(&rates, &qualities).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// The `bpp` and `<metric>` columns of a CSV or results-JSON file, in file order.
pub(super) fn read_columns(path: &Path, metric: &str) -> Result<(Vec<f64>, Vec<f64>), CliError> {
    let bytes = read(path)?;
    let shown = path.display().to_string();
    let bad = |what: String| CliError::Usage(format!("{shown}: {what}"));
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        from_json(&text, metric)
    } else {
        from_csv(&text, metric)
    }
    .map_err(&bad)
}

/// Key spellings tried for a metric: as given, `_` and `-` swapped, and `psnr` as
/// CompressAI's `psnr-rgb`.
fn metric_keys(metric: &str) -> Vec<String> {
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

/// `results.bpp` and `results.<metric>` of a CompressAI-style results file.
fn from_json(text: &str, metric: &str) -> Result<(Vec<f64>, Vec<f64>), String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let results = doc
        .get("results")
        .and_then(Value::as_object)
        .ok_or("no \"results\" object (expected the layout written by `icm eval -o`)")?;
    let column = |key: &str| -> Result<Vec<f64>, String> {
        let arr = results
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("results.{key} is not an array"))?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64()
                    .ok_or_else(|| format!("results.{key}[{i}] is not a number: {v}"))
            })
            .collect()
    };
    let key = metric_keys(metric)
        .into_iter()
        .find(|k| results.contains_key(k.as_str()))
        .ok_or_else(|| {
            let have: Vec<&str> = results.keys().map(String::as_str).collect();
            format!("no results.{metric} (have: {})", have.join(", "))
        })?;
    Ok((column("bpp")?, column(&key)?))
}

/// Splits one CSV record (RFC 4180 quoting, no embedded line breaks).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Columns `bpp` and `<metric>` of a CSV file with a header row.
fn from_csv(text: &str, metric: &str) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty file (expected a header row)")?;
    let header: Vec<String> = csv_fields(header)
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    let find = |names: &[String]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
    };
    let rate_col = find(&["bpp".to_string()])
        .ok_or_else(|| format!("no bpp column in the header ({})", header.join(",")))?;
    let metric_col = find(&metric_keys(metric))
        .ok_or_else(|| format!("no {metric} column in the header ({})", header.join(",")))?;
    let image_col = header.iter().position(|h| h == "image");
    let rows: Vec<(usize, Vec<String>)> = lines.map(|(n, l)| (n, csv_fields(l))).collect();
    // `icm eval --csv` output: per-image rows plus one `mean` row per rate point.
    let only_means = image_col.is_some_and(|c| {
        rows.iter()
            .any(|(_, f)| f.get(c).is_some_and(|v| v.trim() == "mean"))
    });
    let mut rates = Vec::new();
    let mut qualities = Vec::new();
    for (n, fields) in &rows {
        if let (true, Some(c)) = (only_means, image_col) {
            if fields.get(c).is_none_or(|v| v.trim() != "mean") {
                continue;
            }
        }
        let cell = |col: usize, name: &str| -> Result<f64, String> {
            let v = fields
                .get(col)
                .map(|s| s.trim())
                .ok_or_else(|| format!("line {n}: no {name} field"))?;
            v.parse::<f64>()
                .map_err(|_| format!("line {n}: {name} {v:?} is not a number"))
        };
        rates.push(cell(rate_col, "bpp")?);
        qualities.push(cell(metric_col, metric)?);
    }
    Ok((rates, qualities))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_fields(r#"a,"b,c","d""e",,f"#),
            ["a", "b,c", "d\"e", "", "f"]
        );
    }

    #[test]
    fn eval_csv_uses_mean_rows() {
        let text = "model,quality,image,bpp,psnr,ms_ssim,enc_s,dec_s\n\
                    m1,1,a.png,0.1,28,,1,1\nm1,1,mean,0.2,29,,1,1\n\
                    m2,2,a.png,0.3,30,,1,1\nm2,2,mean,0.4,31,,1,1\n";
        let (r, q) = from_csv(text, "psnr").expect("csv");
        assert_eq!(r, [0.2, 0.4]);
        assert_eq!(q, [29.0, 31.0]);
        assert!(from_csv(text, "ms_ssim").is_err());
    }

    #[test]
    fn json_psnr_maps_to_psnr_rgb() {
        let text =
            r#"{"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30, 32], "ms-ssim": [0.9, null]}}"#;
        let (r, q) = from_json(text, "psnr").expect("json");
        assert_eq!(r, [0.1, 0.2]);
        assert_eq!(q, [30.0, 32.0]);
        assert!(from_json(text, "ms_ssim").is_err());
        assert!(from_json(text, "vmaf").is_err());
    }
}
