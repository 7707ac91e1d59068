//! `icm.RdEvaluation`: `icm eval` ([`icm_eval::eval_job`]) cut into one row per picture
//! and rate point, for `python -m icm.dist eval`. Nothing of the evaluation is done here:
//! [`EvalJob::evaluate`] encodes, decodes and measures (reading and filling the record
//! cache), [`EvalJob::finish`] makes the command's results file. Rows cross the boundary as
//! opaque bytes (their JSON, floats as bit patterns).

use crate::errors::{Failure, IntoPyResult, Result};
use crate::models::Lookup;
use crate::task_eval::PackageModels;
use icm::codec::EncodeOptions;
use icm_eval::anchor::default_cache_root;
use icm_eval::eval_job::{EvalJob, EvalSpec};
use icm_eval::rd::{rd_table, RowRecord};
use icm_eval::task::job::RecordCache;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::path::PathBuf;

/// The rate-distortion evaluation of ``icm eval`` (the icm codec on a folder of PNGs: bpp,
/// PSNR-RGB, MS-SSIM, times) cut into rows, one picture at one rate point, for
/// ``python -m icm.dist eval``: set it up once per process with the arguments of the
/// command (the models are loaded once), :meth:`evaluate` each picture at each rate point
/// (anywhere: each row is independent), and :meth:`finish` all rows in one place, which
/// makes the command's results file. Rows are read from and written to the record cache
/// (``cache_dir/records``, keyed by the picture's bytes, the model's SHA-256, the encoder
/// options and the icm version) unless ``use_cache`` is false.
///
/// Args:
///     dataset: a folder of PNG pictures (sorted file names).
///     qualities, models, limit: ``--qualities``, ``--model`` (a list), ``--limit`` of
///         ``icm eval``; without either, qualities 1 to 6.
///     effort, lambda_: ``--effort`` (0 to 3) and ``--lambda`` of the encoder's search.
///     model_dir: where models are looked up by name before the zoo built into the package
///         (default ``$ICM_MODEL_DIR``).
///     cache_dir: the cache root, rows in ``records/`` (default ``$ICM_CACHE_DIR``, else
///         ``~/.cache/icm``).
///     use_cache: read and write the record cache.
///
/// Raises:
///     UsageError: arguments that do not parse; ``ModelError``: a model not found or
///         without encoder; ``TaskError``: no PNG in the folder.
#[pyclass(name = "RdEvaluation", module = "icm")]
pub struct PyRdEvaluation {
    job: EvalJob,
}

#[pymethods]
impl PyRdEvaluation {
    /// Sets up the evaluation: loads the models, lists the pictures.
    #[new]
    #[pyo3(signature = (dataset, *, qualities = None, models = None, limit = None, effort = 0,
        lambda_ = None, model_dir = None, cache_dir = None, use_cache = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        dataset: PathBuf,
        qualities: Option<String>,
        models: Option<Vec<String>>,
        limit: Option<usize>,
        effort: u8,
        lambda_: Option<f32>,
        model_dir: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        use_cache: bool,
    ) -> PyResult<Self> {
        py.detach(|| -> Result<Self> {
            let root = cache_dir.unwrap_or_else(default_cache_root);
            let spec = EvalSpec {
                dataset,
                qualities,
                models: models.unwrap_or_default(),
                limit,
                options: EncodeOptions {
                    effort,
                    lambda: lambda_,
                    ..EncodeOptions::default()
                },
            };
            let cache = use_cache.then(|| RecordCache::new(root.join("records")));
            let job = EvalJob::new(spec, &PackageModels(Lookup::new(model_dir)), cache)?;
            Ok(Self { job })
        })
        .or_raise(py)
    }

    /// Pictures to evaluate (after ``limit``).
    #[getter]
    fn pictures(&self) -> usize {
        self.job.pictures()
    }

    /// The rate points' labels (the models' names).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.job.labels()
    }

    /// The record cache's folder, or ``None`` without cache.
    #[getter]
    fn records_dir(&self) -> Option<PathBuf> {
        self.job.cache.as_ref().map(|c| c.dir().to_path_buf())
    }

    /// Encodes and decodes picture ``item`` (0-based, sorted file names) at rate point
    /// ``point`` and measures it, or reads its row from the record cache.
    ///
    /// Returns:
    ///     ``(row, cached, warning)``: the row (opaque bytes for :meth:`finish`), whether
    ///     it came from the cache, and a warning or ``None``.
    ///
    /// Raises:
    ///     TaskError: the picture does not read, or the indices are out of range;
    ///         :class:`Error` (the subclass of its class): the codec fails.
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
    /// order, as ``icm eval`` does.
    ///
    /// Returns:
    ///     A dict: ``json`` and ``csv``, the results files of ``icm eval -o`` and ``--csv``,
    ///     and ``table``, the table ``icm eval`` prints.
    ///
    /// Raises:
    ///     TaskError: a row missing, given twice, or unreadable.
    fn finish<'py>(&self, py: Python<'py>, rows: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyDict>> {
        let (json, csv, table) = py
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
                let table = rd_table(&file, self.job.pictures());
                Ok((file.to_json(), file.to_csv(), table))
            })
            .or_raise(py)?;
        let out = PyDict::new(py);
        out.set_item("json", json)?;
        out.set_item("csv", csv)?;
        out.set_item("table", table)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "RdEvaluation({} pictures x {} rate points)",
            self.job.pictures(),
            self.job.infos.len()
        )
    }
}
