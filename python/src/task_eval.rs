//! `icm.TaskEvaluation`: the task evaluation of `icm task-eval` ([`icm_eval::task::job`])
//! cut into records, one picture at one rate point, for `python -m icm.dist` (Ray).
//!
//! Nothing of the evaluation is done here: [`TaskJob::new`] builds it from the same
//! arguments as the command, [`TaskJob::evaluate`] codes, decodes and runs the network on
//! one picture (reading and filling the record cache), and [`TaskJob::finish`] merges the
//! records and scores them with the command's own function. Records cross the boundary as
//! opaque bytes (their JSON, floats as bit patterns).

use crate::errors::{Failure, IntoPyResult, Result};
use crate::models::Lookup;
use icm::model::Model;
use icm_eval::anchor::default_cache_root;
use icm_eval::task::evaluate::{Quiet, Record};
use icm_eval::task::job::{
    detections_json, results_table, JobError, ModelSource, RecordCache, TaskEvalSpec, TaskJob,
};
use icm_eval::task::TaskError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

impl From<JobError> for Failure {
    fn from(e: JobError) -> Self {
        let message = e.to_string();
        match e {
            JobError::Usage(_) => Failure::usage(message),
            JobError::Model(m) => m.into(),
            JobError::Lookup(_) => Failure::new("model", message),
            JobError::Cache { path, .. } | JobError::Task(TaskError::Io { path, .. }) => {
                let mut f = Failure::new("io", message);
                f.path = Some(path);
                f
            }
            JobError::DecoderOnly { .. } => Failure::new("model", message),
            JobError::Codec { source, .. } => Failure {
                message,
                ..Failure::from(source)
            },
            JobError::Task(_)
            | JobError::Anchor(_)
            | JobError::AnchorCoding { .. }
            | JobError::Rd(_) => Failure::new("task", message),
        }
    }
}

/// The models of the package: the model directory, then the zoo built in.
pub(crate) struct PackageModels(pub(crate) Lookup);

impl ModelSource for PackageModels {
    fn load(
        &self,
        spec: Option<&str>,
        quality: Option<u8>,
    ) -> std::result::Result<Arc<Model>, JobError> {
        Ok(self.locate(spec, quality)?.0)
    }

    fn locate(
        &self,
        spec: Option<&str>,
        quality: Option<u8>,
    ) -> std::result::Result<(Arc<Model>, Option<PathBuf>), JobError> {
        let found = match (spec, quality) {
            (Some(s), _) => self.0.locate(Path::new(s)),
            (None, Some(q)) => self.0.locate_quality(q),
            (None, None) => self.0.locate_quality(icm::model::ZOO_DEFAULT_QUALITY),
        };
        found.map_err(|f| JobError::Lookup(f.message))
    }
}

fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    v.parse::<T>()
        .map_err(|e| Failure::usage(format!("{what} {v:?}: {e}")))
}

/// A task evaluation (``icm task-eval``) cut into records, one picture at one rate point,
/// for ``python -m icm.dist``: set it up once per process with the arguments of the
/// command, :meth:`evaluate` each picture at each rate point (anywhere: each record is
/// independent), and :meth:`finish` all records in one place, which merges and scores
/// them as the command does (COCO mAP once on all detections). Records are read from and
/// written to the record cache (``cache_dir/records``) unless ``use_cache`` is false.
///
/// Args:
///     task: ``"detection"``, ``"classification"`` or ``"segmentation"``.
///     dataset: the dataset folder (as ``icm task-eval --dataset``).
///     codec, input_domain, qualities, models, qps, ffmpeg, limit, task_model,
///         annotations: ``--codec``, ``--input-domain``, ``--qualities``, ``--model``
///         (a list), ``--qps``, ``--ffmpeg``, ``--limit``, ``--task-model``,
///         ``--annotations`` of ``icm task-eval``.
///     model_dir: where models are looked up by name before the zoo built into the package
///         (default ``$ICM_MODEL_DIR``).
///     cache_dir: the cache root: records in ``records/``, anchors in ``anchors/`` (default
///         ``$ICM_CACHE_DIR``, else ``~/.cache/icm``).
///     use_cache: read and write the record cache.
///     roi: with codec ``icm``, region-of-interest steps from this task's network
///         (``detection``, ``classification``, ``segmentation``; ``icm task-eval --roi``).
///     roi_background: the step factor of the least important cells (default 16 for
///         classification, 3 for detection and segmentation).
///
/// Raises:
///     UsageError: arguments that do not parse or go together; ``TaskError``: a dataset,
///         network, ONNX Runtime or codec that fails; ``ModelError``: a model not found.
#[pyclass(name = "TaskEvaluation", module = "icm")]
pub struct PyTaskEvaluation {
    job: Mutex<TaskJob>,
    cache: Option<RecordCache>,
    pictures: usize,
    labels: Vec<String>,
    names: Vec<String>,
}

impl PyTaskEvaluation {
    fn locked(&self) -> Result<std::sync::MutexGuard<'_, TaskJob>> {
        self.job
            .lock()
            .map_err(|_| Failure::new("task", "an earlier evaluation in this process panicked"))
    }
}

#[pymethods]
impl PyTaskEvaluation {
    /// Sets up the evaluation: loads the dataset, the models and the task networks.
    #[new]
    #[pyo3(signature = (task, dataset, *, codec = "icm", input_domain = "rgb", qualities = None,
        models = None, qps = None, ffmpeg = None, limit = None, task_model = None,
        annotations = None, model_dir = None, cache_dir = None, use_cache = true, roi = None,
        roi_background = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        task: &str,
        dataset: PathBuf,
        codec: &str,
        input_domain: &str,
        qualities: Option<String>,
        models: Option<Vec<String>>,
        qps: Option<String>,
        ffmpeg: Option<PathBuf>,
        limit: Option<usize>,
        task_model: Option<PathBuf>,
        annotations: Option<PathBuf>,
        model_dir: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        use_cache: bool,
        roi: Option<&str>,
        roi_background: Option<f64>,
    ) -> PyResult<Self> {
        py.detach(|| -> Result<Self> {
            let root = cache_dir.unwrap_or_else(default_cache_root);
            let spec = TaskEvalSpec {
                task: parse("task", task)?,
                dataset,
                codec: parse("codec", codec)?,
                input_domain: parse("input_domain", input_domain)?,
                qualities,
                models: models.unwrap_or_default(),
                qps,
                ffmpeg,
                limit,
                task_model,
                annotations,
                anchor_cache: Some(root.join("anchors")),
                roi: roi.map(|r| parse("roi", r)).transpose()?,
                roi_background,
            };
            let job = TaskJob::new(spec, &PackageModels(Lookup::new(model_dir)))?;
            let names = job
                .data
                .items
                .iter()
                .map(|i| {
                    i.path.file_name().map_or_else(
                        || i.path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            Ok(Self {
                pictures: job.pictures(),
                labels: job.labels(),
                names,
                cache: use_cache.then(|| RecordCache::new(root.join("records"))),
                job: Mutex::new(job),
            })
        })
        .or_raise(py)
    }

    /// Pictures to evaluate (after ``limit``).
    #[getter]
    fn pictures(&self) -> usize {
        self.pictures
    }

    /// The rate points' labels.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    /// The pictures' file names, in evaluation order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// The record cache's folder, or ``None`` without cache.
    #[getter]
    fn records_dir(&self) -> Option<PathBuf> {
        self.cache.as_ref().map(|c| c.dir().to_path_buf())
    }

    /// Evaluates picture ``item`` (0-based, dataset order) at rate point ``point``.
    ///
    /// Returns:
    ///     ``(record, cached)``: the record (opaque bytes for :meth:`finish`) and whether it
    ///     came from the record cache. A record evaluated here is stored in the cache
    ///     before it is returned (whole or not at all).
    ///
    /// Raises:
    ///     TaskError: the picture or its coding fails, or the indices are out of range.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        item: usize,
        point: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let (bytes, cached) = py
            .detach(|| -> Result<(Vec<u8>, bool)> {
                let mut job = self.locked()?;
                let mut done = job.evaluate(item, &[point], self.cache.as_ref(), &Quiet)?;
                let (record, cached) = done
                    .pop()
                    .ok_or_else(|| Failure::new("task", "no record evaluated"))?;
                let bytes = serde_json::to_vec(&record)
                    .map_err(|e| Failure::new("task", format!("record: {e}")))?;
                Ok((bytes, cached))
            })
            .or_raise(py)?;
        Ok((PyBytes::new(py, &bytes), cached))
    }

    /// Merges and scores the records of every picture at every rate point, in any order,
    /// as ``icm task-eval`` does.
    ///
    /// Args:
    ///     records: one record of :meth:`evaluate` per picture and rate point.
    ///     total_s: the wall time to report (``total_time``).
    ///
    /// Returns:
    ///     A dict: ``json`` and ``csv``, the results files of ``icm task-eval -o`` and
    ///     ``--csv``; ``table``, its table; ``detections``, ``{label: json}`` of
    ///     ``--save-detections`` (detection).
    ///
    /// Raises:
    ///     TaskError: a record missing, given twice, or unreadable.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        records: Vec<Vec<u8>>,
        total_s: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (json, csv, table, dets) = py
            .detach(|| -> Result<_> {
                let parsed = records
                    .iter()
                    .map(|r| {
                        serde_json::from_slice::<Record>(r).map_err(|e| {
                            Failure::new("task", format!("a record that does not read: {e}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let job = self.locked()?;
                let (outcome, file) = job.finish(parsed, total_s)?;
                Ok((
                    file.to_json(),
                    file.to_csv(),
                    results_table(&file),
                    detections_json(&outcome),
                ))
            })
            .or_raise(py)?;
        let out = PyDict::new(py);
        out.set_item("json", json)?;
        out.set_item("csv", csv)?;
        out.set_item("table", table)?;
        let d = PyDict::new(py);
        for (label, j) in dets {
            d.set_item(label, j)?;
        }
        out.set_item("detections", d)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "TaskEvaluation({} pictures x {} rate points)",
            self.pictures,
            self.labels.len()
        )
    }
}
