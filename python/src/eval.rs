//! `icm.bd_rate` and `icm.conformance`: `icm bd-rate` and `icm conformance --json` as
//! functions (icm_eval's `bdrate`, `results` and `conformance`).

use crate::errors::{Failure, IntoPyResult, Result};
use crate::json::to_python;
use icm_eval::bdrate::{self, Curve, Method};
use icm_eval::conformance::{load_index, run_suite, SuiteOptions};
use icm_eval::results::{metric_keys, read_curve};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::{Path, PathBuf};

/// One curve as given: a results file (path), a dict of columns (`{"bpp": [...], METRIC:
/// [...]}`, or the results file's layout `{"results": {...}}`), or a pair `(rates,
/// qualities)` of 1-D sequences or arrays (a `(2, N)` array).
fn curve_points(
    side: &str,
    c: &Bound<'_, PyAny>,
    metric: &str,
) -> PyResult<Result<(Vec<f64>, Vec<f64>)>> {
    let usage = |what: String| Ok(Err(Failure::usage(format!("{side}: {what}"))));
    if c.is_instance_of::<PyString>() || c.hasattr("__fspath__")? {
        let path: PathBuf = c.extract()?;
        return Ok(read_curve(&path, metric)
            .map(|cols| (cols.bpp, cols.quality))
            .map_err(Failure::from));
    }
    if let Ok(d) = c.cast::<PyDict>() {
        let d = match d.get_item("results")? {
            Some(r) => match r.cast_into::<PyDict>() {
                Ok(r) => r,
                Err(_) => return usage("\"results\" is not a dict".into()),
            },
            None => d.clone(),
        };
        let column = |key: &str| -> PyResult<Option<Vec<f64>>> {
            match d.get_item(key)? {
                Some(v) => Ok(Some(v.extract()?)),
                None => Ok(None),
            }
        };
        let Some(bpp) = column("bpp")? else {
            return usage("the dict has no \"bpp\"".into());
        };
        for key in metric_keys(metric) {
            if let Some(q) = column(&key)? {
                return Ok(Ok((bpp, q)));
            }
        }
        return usage(format!("the dict has no {metric:?} column"));
    }
    match c.extract::<Vec<Vec<f64>>>() {
        Ok(pair) if pair.len() == 2 => {
            let mut it = pair.into_iter();
            match (it.next(), it.next()) {
                (Some(r), Some(q)) => Ok(Ok((r, q))),
                _ => usage("expected (rates, qualities)".into()),
            }
        }
        _ => usage(format!(
            "expected a results file, a dict of columns or (rates, qualities), got {}",
            c.get_type().name()?
        )),
    }
}

/// Bjøntegaard-delta rate and metric of a test curve against an anchor, as ``icm bd-rate``
/// computes them (the definitions of the PyPI package ``bjontegaard`` 1.3, which they
/// match to 1e-6).
///
/// Args:
///     anchor: the reference curve: a results file (path; JSON as ``icm eval -o`` writes,
///         or CSV with a ``bpp`` column), a dict of columns (``{"bpp": [...], "psnr":
///         [...]}``, or a results file's layout ``{"results": {...}}``), or a pair
///         ``(rates, qualities)`` of 1-D sequences or arrays (a ``(2, N)`` array). Points
///         may come in any order.
///     test: the curve under test, given as ``anchor``.
///     metric: the quality column: ``"psnr"`` (also found as ``psnr-rgb``), ``"ms-ssim"``,
///         ``"map"``, ... Unused for pairs.
///     method: ``"pchip"``, ``"akima"`` or ``"cubic"``.
///     envelope: keep only each curve's upper envelope (points that a cheaper point matches
///         or beats are left out), as ``--envelope``.
///
/// Returns:
///     ``(bd_rate, bd_metric)``: the rate difference in percent (negative: the test needs
///     less rate for the same quality) and the quality difference in the metric's units.
///
/// Raises:
///     BdRateError: curves that do not overlap, too few points, a curve that is not
///         monotone (pchip, akima), a results file without the metric.
///     UsageError: an unknown method or a curve of another shape; ``IoError``: a results
///         file that cannot be read.
#[pyfunction]
#[pyo3(signature = (anchor, test, *, metric = "psnr", method = "pchip", envelope = false))]
pub fn bd_rate(
    py: Python<'_>,
    anchor: &Bound<'_, PyAny>,
    test: &Bound<'_, PyAny>,
    metric: &str,
    method: &str,
    envelope: bool,
) -> PyResult<(f64, f64)> {
    let method: Method = method
        .parse()
        .map_err(|e: bdrate::BdError| Failure::usage(format!("method: {e}")).into_py_err(py))?;
    let a = curve_points("anchor", anchor, metric)?;
    let t = curve_points("test", test, metric)?;
    let result = (|| -> Result<(f64, f64)> {
        let curve = |side: &str, (r, q): (Vec<f64>, Vec<f64>)| -> Result<Curve> {
            let c =
                Curve::new(&r, &q).map_err(|e| Failure::new("bd-rate", format!("{side}: {e}")))?;
            Ok(if envelope { c.upper_envelope().0 } else { c })
        };
        let (a, t) = (curve("anchor", a?)?, curve("test", t?)?);
        let r = bdrate::bd(&a, &t, method)?;
        Ok((r.bd_rate_percent, r.bd_metric))
    })();
    result.or_raise(py)
}

/// The suite of the repository this package was built from, if it is still there.
fn default_suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
        .to_path_buf()
}

/// Runs the conformance suite (spec 11.3, 13, Annex A), as ``icm conformance --json``.
///
/// Args:
///     path: the folder holding ``conformance/vectors.json`` (a checkout of the icm
///         repository). Default: the repository the package was built from, when it is
///         still there.
///     decoder: a decoder command to check instead of the built-in decoder, with ``{in}``,
///         ``{model}``, ``{out_latents}`` and ``{out_image}`` replaced by paths (run by
///         ``sh -c``; see conformance/README.md).
///     latents_only: with ``decoder``: check the latents only, not the reconstruction.
///     filter: run only the vectors whose name contains this.
///
/// Returns:
///     A dict: ``passed``, ``failed``, ``class_checked`` and ``exit_only`` (must-fail
///     vectors passed with the error class compared / by exit status only) and ``vectors``,
///     a list of ``{"name", "check", "passed", "detail", "latents_sha256",
///     "fail_check"}``.
///
/// Raises:
///     UsageError: no suite at the default path; ``IoError``: the index cannot be read.
#[pyfunction]
#[pyo3(signature = (path = None, decoder = None, *, latents_only = false, filter = None))]
pub fn conformance<'py>(
    py: Python<'py>,
    path: Option<PathBuf>,
    decoder: Option<String>,
    latents_only: bool,
    filter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let root = match path {
        Some(p) => p,
        None => {
            let root = default_suite();
            if !root.join("conformance/vectors.json").is_file() {
                return Err(Failure::usage(format!(
                    "no conformance suite at {} (the repository this package was built \
                     from): give path=, a folder holding conformance/vectors.json",
                    root.display()
                ))
                .into_py_err(py));
            }
            root
        }
    };
    let report = py
        .detach(|| -> Result<_> {
            let vectors = load_index(&root)?;
            let opts = SuiteOptions {
                decoder: decoder.as_deref(),
                latents_only,
                filter: filter.as_deref(),
            };
            Ok(run_suite(&vectors, &opts, |_| {}).to_json())
        })
        .or_raise(py)?;
    to_python(py, &report)
}
