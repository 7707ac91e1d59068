//! `icm bd-rate`: Bjøntegaard-delta rate and metric between two results files.
//!
//! Inputs are CSV (header row; rate column `bpp`, quality column named by `--metric`,
//! other columns ignored) or the JSON written by `icm eval -o` (CompressAI layout,
//! `{"results": {"bpp": [..], "psnr-rgb": [..], ..}}`), told apart by the `.json`
//! extension. Rows may come in any order. A CSV with an `image` column, as written by
//! `icm eval --csv`, contributes only its `mean` rows when it has any.

use super::args::BdRateArgs;
use super::error::CliError;
use icm_eval::bdrate::{self, Curve, Method};
use icm_eval::results::read_curve;
use serde_json::json;
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
    let r = bdrate::bd(&anchor, &test, method).map_err(|source| {
        let hint = if a.envelope {
            ""
        } else {
            " (for task curves that are not monotone: --envelope, or --method cubic)"
        };
        CliError::BdRate {
            what: format!("bd-rate ({method}, {}){hint}", a.metric),
            source,
        }
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

/// Reads one curve (rates, qualities) from a results file (CSV or JSON).
fn load_curve(path: &Path, metric: &str) -> Result<Curve, CliError> {
    let c = read_curve(path, metric)?;
    Curve::new(&c.bpp, &c.quality).map_err(|source| CliError::BdRate {
        what: path.display().to_string(),
        source,
    })
}
