//! `icm.AnchorEvaluation`: `icm anchor` ([`icm_eval::anchor::job`]) cut into one row per
//! picture and rate point, for `python -m icm.dist anchor`. Rows cross the boundary as
//! opaque bytes (their JSON, floats as bit patterns); [`AnchorJob::finish`] makes the
//! command's results file from them.

use crate::errors::{Failure, IntoPyResult, Result};
use icm_eval::anchor::job::{AnchorJob, AnchorSpec};
use icm_eval::anchor::AnchorCodec;
use icm_eval::rd::RowRecord;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::path::PathBuf;

/// A conventional-codec anchor run (``icm anchor``) cut into rows, one picture at one rate
/// point, for ``python -m icm.dist anchor``: set it up once per process with the arguments
/// of the command, :meth:`evaluate` each picture at each rate point, and :meth:`finish` all
/// rows in one place, which makes the command's results file. Coded pictures are read from
/// and stored in the anchor cache (``cache_dir``) unless ``no_cache``.
///
/// Args:
///     codec: ``"vvc"``, ``"hevc"``, ``"av1"``, ``"jpeg"``, ``"jxl"`` or ``"webp"``.
///     dataset: a folder of PNG pictures.
///     qps, limit, ffmpeg, preset, encoder_cmd, cache_dir, no_cache: ``--qps``,
///         ``--limit``, ``--ffmpeg``, ``--preset``, ``--encoder-cmd``, ``--cache-dir``,
///         ``--no-cache`` of ``icm anchor``.
///
/// Raises:
///     UsageError: arguments that do not parse; ``TaskError``: no ffmpeg, no PNG, a codec
///         that fails.
#[pyclass(name = "AnchorEvaluation", module = "icm")]
pub struct PyAnchorEvaluation {
    job: AnchorJob,
}

#[pymethods]
impl PyAnchorEvaluation {
    /// Sets up the run: parses the rate parameters, finds ffmpeg, lists the pictures.
    #[new]
    #[pyo3(signature = (codec, dataset, *, qps = None, limit = None, ffmpeg = None,
        preset = "medium", encoder_cmd = None, cache_dir = None, no_cache = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        codec: &str,
        dataset: PathBuf,
        qps: Option<String>,
        limit: Option<usize>,
        ffmpeg: Option<PathBuf>,
        preset: &str,
        encoder_cmd: Option<String>,
        cache_dir: Option<PathBuf>,
        no_cache: bool,
    ) -> PyResult<Self> {
        py.detach(|| -> Result<Self> {
            let codec = AnchorCodec::parse(codec).ok_or_else(|| {
                let all: Vec<&str> = AnchorCodec::ALL.iter().map(|c| c.name()).collect();
                Failure::usage(format!(
                    "codec {codec:?}: expected one of {}",
                    all.join(", ")
                ))
            })?;
            let job = AnchorJob::new(AnchorSpec {
                codec,
                dataset,
                qps,
                limit,
                ffmpeg,
                preset: preset.to_string(),
                encoder_cmd,
                cache_dir,
                no_cache,
            })?;
            Ok(Self { job })
        })
        .or_raise(py)
    }

    /// Pictures to code (after ``limit``).
    #[getter]
    fn pictures(&self) -> usize {
        self.job.pictures()
    }

    /// The rate points' labels.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.job.labels()
    }

    /// Codes picture ``item`` (0-based, sorted file names) at rate point ``point``, or
    /// reads it from the anchor cache, and measures it.
    ///
    /// Returns:
    ///     ``(row, cached, warning)``: the row (opaque bytes for :meth:`finish`), whether
    ///     the coded picture came from the cache, and a warning or ``None``.
    ///
    /// Raises:
    ///     TaskError: the picture or its coding fails, or the indices are out of range.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        item: usize,
        point: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, bool, Option<String>)> {
        let (bytes, cached, warning) = py
            .detach(|| -> Result<_> {
                let done = self.job.evaluate(item, point)?;
                let bytes = serde_json::to_vec(&RowRecord::new(item, point, &done.row))
                    .map_err(|e| Failure::new("task", format!("row: {e}")))?;
                Ok((bytes, done.cached, done.warning))
            })
            .or_raise(py)?;
        Ok((PyBytes::new(py, &bytes), cached, warning))
    }

    /// Makes the results file of the rows of every picture at every rate point, in any
    /// order, as ``icm anchor`` does.
    ///
    /// Returns:
    ///     A dict: ``json`` and ``csv``, the results files of ``icm anchor -o`` and
    ///     ``--csv``.
    ///
    /// Raises:
    ///     TaskError: a row missing, given twice, or unreadable.
    fn finish<'py>(&self, py: Python<'py>, rows: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyDict>> {
        let (json, csv) = py
            .detach(|| -> Result<_> {
                let records = rows
                    .iter()
                    .map(|r| {
                        serde_json::from_slice::<RowRecord>(r).map_err(|e| {
                            Failure::new("task", format!("a row that does not read: {e}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let file = self.job.finish(records)?;
                Ok((file.to_json(), file.to_csv()))
            })
            .or_raise(py)?;
        let out = PyDict::new(py);
        out.set_item("json", json)?;
        out.set_item("csv", csv)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "AnchorEvaluation({} pictures x {} rate points)",
            self.job.pictures(),
            self.job.infos.len()
        )
    }
}
