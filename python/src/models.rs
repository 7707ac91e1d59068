//! Models: the zoo built into the extension, the lookup of a model by name or path, and the
//! Python class `icm.Model`.
//!
//! A name is looked up as the CLI looks it up (`icm::model::resolve_model` for a name or
//! path the user gives, `icm::model::find_named_model` for a name read from a stream) in the
//! model directory: `model_dir=` when given, else `$ICM_MODEL_DIR` when set
//! (`icm::model::default_model_dir`). A name found in neither is taken from the zoo built
//! into the extension (`models/icm-psnr-q1..6.safetensors` of the repository, embedded at
//! build time), so `icm.encode(x)` and the decoding of zoo streams work with no repository
//! and no model directory. The zoo's models are parsed once per process and shared.

use crate::errors::{Failure, IntoPyResult, Result};
use icm::model::{self, Model, ModelError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One model file of the zoo, embedded in the extension.
struct ZooEntry {
    /// The model's name (its file name without `.safetensors`).
    name: &'static str,
    /// The model file.
    bytes: &'static [u8],
    /// The model, once parsed.
    loaded: OnceLock<std::result::Result<Arc<Model>, Failure>>,
}

macro_rules! zoo {
    ($($q:literal),+) => {
        [$(ZooEntry {
            name: concat!("icm-psnr-q", $q),
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../models/icm-psnr-q",
                $q,
                ".safetensors"
            )),
            loaded: OnceLock::new(),
        }),+]
    };
}

/// The zoo of the repository's `models/` (models/MANIFEST.json), qualities 1 to 6.
static ZOO: [ZooEntry; 6] = zoo!("1", "2", "3", "4", "5", "6");

/// The names of the models built into the extension.
pub fn zoo_names() -> Vec<&'static str> {
    ZOO.iter().map(|e| e.name).collect()
}

/// The zoo's model `name`, parsed on first use; `None` when the zoo has no such model.
fn zoo_model(name: &str) -> Option<Result<Arc<Model>>> {
    let entry = ZOO.iter().find(|e| e.name == name)?;
    let loaded = entry.loaded.get_or_init(|| {
        let m = Model::from_bytes(entry.bytes).map_err(|source| ModelError::InFile {
            path: format!("<zoo {}>", entry.name),
            source: Box::new(source),
        })?;
        if m.name != entry.name {
            return Err(Failure::new(
                "invalid-model",
                format!(
                    "the zoo's {}.safetensors holds model {:?}",
                    entry.name, m.name
                ),
            ));
        }
        Ok(Arc::new(m))
    });
    Some(loaded.clone())
}

/// Where models are looked up by name: the model directory, then the zoo.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// `model_dir=`, else `$ICM_MODEL_DIR` when set.
    dir: Option<PathBuf>,
}

impl Lookup {
    /// The lookup of a call given `model_dir` (or not).
    pub fn new(model_dir: Option<PathBuf>) -> Self {
        let dir = model_dir.or_else(|| {
            std::env::var_os("ICM_MODEL_DIR")
                .is_some()
                .then(model::default_model_dir)
        });
        Self { dir }
    }

    fn not_found(&self, name: &str) -> Failure {
        let zoo = "the models built into the package";
        let searched = match &self.dir {
            Some(d) => format!("{} nor in {zoo}", d.display()),
            None => format!("{zoo} (set model_dir= or $ICM_MODEL_DIR for others)"),
        };
        ModelError::NotFound {
            name: name.to_string(),
            searched,
        }
        .into()
    }

    /// The model the user names: a path to a model file, or a name (with or without
    /// `.safetensors`) in the model directory or the zoo.
    pub fn load(&self, spec: &Path) -> Result<Arc<Model>> {
        Ok(self.locate(spec)?.0)
    }

    /// As [`Lookup::load`], with the file the model was read from (`None`: the zoo built
    /// in).
    pub fn locate(&self, spec: &Path) -> Result<(Arc<Model>, Option<PathBuf>)> {
        let name = spec.to_str().map(|s| s.trim_end_matches(".safetensors"));
        if let Some(dir) = &self.dir {
            match spec
                .to_str()
                .map(|s| model::resolve_model(Some(s), None, dir))
            {
                Some(Ok(path)) => return located(path),
                Some(Err(ModelError::NotFound { .. })) | None => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
        if spec.is_file() {
            return located(spec.to_path_buf());
        }
        let zoo = match name {
            Some(n) => zoo_model(n).unwrap_or_else(|| Err(self.not_found(n))),
            None => Err(self.not_found(&spec.to_string_lossy())),
        };
        Ok((zoo?, None))
    }

    /// The zoo model of quality `q` (1 to 6): `icm-psnr-qQ` in the model directory, else in
    /// the zoo.
    pub fn load_quality(&self, q: u8) -> Result<Arc<Model>> {
        Ok(self.locate_quality(q)?.0)
    }

    /// As [`Lookup::load_quality`], with the file the model was read from (`None`: the zoo
    /// built in).
    pub fn locate_quality(&self, q: u8) -> Result<(Arc<Model>, Option<PathBuf>)> {
        if !(1..=6).contains(&q) {
            return Err(Failure::usage(format!(
                "quality {q}: the zoo has qualities 1 to 6"
            )));
        }
        let name = model::zoo_name(q);
        if let Some(dir) = &self.dir {
            match model::resolve_model(None, Some(q), dir) {
                Ok(path) => return located(path),
                Err(ModelError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let zoo = zoo_model(&name).unwrap_or_else(|| Err(self.not_found(&name)));
        Ok((zoo?, None))
    }

    /// The model a stream names (hostile input: it only selects among the model files of
    /// the directory and the zoo, never a path).
    pub fn load_named(&self, name: &str) -> Result<Arc<Model>> {
        if let Some(dir) = &self.dir {
            match model::find_named_model(name, dir) {
                Ok(path) => return load_file(&path),
                Err(ModelError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        } else if !model::is_plain_model_name(name) {
            return Err(ModelError::UnsafeName {
                name: name.to_string(),
            }
            .into());
        }
        zoo_model(name).unwrap_or_else(|| Err(self.not_found(name)))
    }
}

fn load_file(path: &Path) -> Result<Arc<Model>> {
    Ok(Arc::new(Model::from_path(path)?))
}

/// The model file `path`, with its path.
fn located(path: PathBuf) -> Result<(Arc<Model>, Option<PathBuf>)> {
    Ok((load_file(&path)?, Some(path)))
}

/// How a call chooses its model.
#[derive(Clone)]
pub enum Choice {
    /// An `icm.Model` given.
    Loaded(Arc<Model>),
    /// A name or path given.
    Spec(PathBuf),
    /// A zoo quality given (or the default).
    Quality(u8),
    /// The model the stream names.
    Named,
}

impl Choice {
    /// `model=` as given: an `icm.Model`, or a name or path (`str` or `os.PathLike`).
    pub fn from_arg(model: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Choice>> {
        let Some(m) = model else { return Ok(None) };
        if let Ok(m) = m.cast::<PyModel>() {
            return Ok(Some(Choice::Loaded(m.get().model.clone())));
        }
        Ok(Some(Choice::Spec(m.extract::<PathBuf>()?)))
    }

    /// The model, loaded if need be; `stream_name` is the name the stream gives, for
    /// [`Choice::Named`].
    pub fn resolve(&self, lookup: &Lookup, stream_name: Option<&str>) -> Result<Arc<Model>> {
        match self {
            Choice::Loaded(m) => Ok(m.clone()),
            Choice::Spec(p) => lookup.load(p),
            Choice::Quality(q) => lookup.load_quality(*q),
            Choice::Named => match stream_name {
                Some(n) => lookup.load_named(n),
                None => Err(Failure::usage("no model given")),
            },
        }
    }
}

/// A loaded model file (spec 7): load it once with :meth:`Model.load` and pass it to
/// :func:`encode`, :func:`decode` and :func:`decode_latents` as ``model=``, so that it is
/// not looked up and validated again on every call. Immutable; one model may serve several
/// threads at once.
#[pyclass(frozen, name = "Model", module = "icm")]
pub struct PyModel {
    pub model: Arc<Model>,
}

#[pymethods]
impl PyModel {
    /// Loads a model file and validates it (spec 7.5).
    ///
    /// Args:
    ///     name_or_path: a model file, or the name of a model (with or without
    ///         ``.safetensors``): looked up in ``model_dir``, then in the zoo built into the
    ///         package (``icm-psnr-q1`` .. ``icm-psnr-q6``).
    ///     model_dir: the folder names are looked up in (default ``$ICM_MODEL_DIR``).
    ///
    /// Returns:
    ///     The model.
    ///
    /// Raises:
    ///     InvalidModelError: the file fails spec 7.5 (``field`` names the tensor or
    ///         metadata key, ``path`` the file).
    ///     ModelError: no model of that name; ``IoError``: the file cannot be read.
    #[staticmethod]
    #[pyo3(signature = (name_or_path, *, model_dir = None))]
    fn load(py: Python<'_>, name_or_path: PathBuf, model_dir: Option<PathBuf>) -> PyResult<Self> {
        let lookup = Lookup::new(model_dir);
        let model = py.detach(|| lookup.load(&name_or_path)).or_raise(py)?;
        Ok(Self { model })
    }

    /// The model's name, as streams made with it name it.
    #[getter]
    fn name(&self) -> &str {
        &self.model.name
    }

    /// SHA-256 of the model file, lower-case hex (streams carry it, spec 7.1).
    #[getter]
    fn sha256(&self) -> String {
        self.model.sha256_hex()
    }

    /// The zoo quality index the model was built for (0 when none).
    #[getter]
    fn quality(&self) -> u8 {
        self.model.quality
    }

    /// The architecture (spec 7.2.1): ``"hyperprior-v1"`` for the zoo,
    /// ``"bmshj2018-hyperprior"`` or ``"mbt2018-mean"`` for imported CompressAI models.
    #[getter]
    fn architecture(&self) -> &'static str {
        self.model.architecture.name()
    }

    /// Channels of the hyper-latents z^.
    #[getter(N)]
    fn hyper_channels(&self) -> usize {
        self.model.hyper_channels()
    }

    /// Channels of the latents y^.
    #[getter(M)]
    fn latent_channels(&self) -> usize {
        self.model.latent_channels()
    }

    /// Whether the model has the analysis transforms g_a and h_a (False: decoder only).
    #[getter]
    fn encoder(&self) -> bool {
        self.model.g_a.is_some() && self.model.h_a.is_some()
    }

    /// The model file's metadata (name, quality, format and the build's own entries).
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.model.metadata {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "icm.Model(name={:?}, sha256={:?}, quality={}, N={}, M={})",
            self.model.name,
            self.model.sha256_hex(),
            self.model.quality,
            self.model.hyper_channels(),
            self.model.latent_channels()
        )
    }
}
