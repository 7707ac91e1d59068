//! ONNX Runtime for the task networks (cargo feature `tasks`).
//!
//! The runtime is not linked: `ort` (2.0.0-rc.15, `load-dynamic`, API 31) opens
//! `libonnxruntime.so` at run time. [`find_library`] looks for it in `ORT_DYLIB_PATH`, then
//! in the project venv (`${ICM_VENV:-$HOME/.cache/icm-venv}`, where
//! `scripts/setup_onnxruntime.sh` installs the PyPI `onnxruntime` 1.32 wheel), and fails
//! with a typed error, never a panic, when there is none. `ort` panics when it is used
//! without a library, and an ONNX Runtime 1.22 library aborted at load
//! (`../shared/NOTES.md`), so the file is checked (exists, ELF shared object, version in
//! the name when there is one) before `ort::init_from` opens it.

use super::TaskError;
use std::path::{Path, PathBuf};

/// The venv `scripts/setup_onnxruntime.sh` installs into.
pub fn venv_dir() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("ICM_VENV") {
        return Some(PathBuf::from(v));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("icm-venv"))
}

/// `libonnxruntime.so*` files under `<venv>/lib/python*/site-packages/onnxruntime/capi/`,
/// newest name last.
fn venv_libraries(venv: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(lib) = std::fs::read_dir(venv.join("lib")) else {
        return found;
    };
    for py in lib.flatten() {
        let capi = py
            .path()
            .join("site-packages")
            .join("onnxruntime")
            .join("capi");
        let Ok(entries) = std::fs::read_dir(&capi) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("libonnxruntime.so") && e.path().is_file() {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

/// The ONNX Runtime library to load: `$ORT_DYLIB_PATH` when set, else the newest
/// `libonnxruntime.so*` of the project venv.
pub fn find_library() -> Result<PathBuf, TaskError> {
    let mut searched = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        searched.push(format!("ORT_DYLIB_PATH={}", p.display()));
    }
    if let Some(venv) = venv_dir() {
        if let Some(p) = venv_libraries(&venv).pop() {
            return Ok(p);
        }
        searched.push(format!(
            "{}/lib/python*/site-packages/onnxruntime/capi/libonnxruntime.so*",
            venv.display()
        ));
    }
    Err(TaskError::RuntimeNotFound {
        searched: searched.join(", "),
    })
}

/// Checks that `path` looks like a usable ONNX Runtime library before it is opened: an ELF
/// file, and when its name carries a version (`libonnxruntime.so.1.32.0`), 1.31 or later.
pub fn check_library(path: &Path) -> Result<(), TaskError> {
    let bad = |why: String| TaskError::RuntimeLoad {
        path: path.display().to_string(),
        why,
    };
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        f.read_exact(&mut head)
            .map_err(|_| bad("file too short to be a shared library".into()))?;
    }
    if cfg!(target_os = "linux") && head != *b"\x7fELF" {
        return Err(bad("not an ELF shared library".into()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(version) = name.split(".so.").nth(1) {
        let mut parts = version.split('.').map(|v| v.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            if (major, minor) < (1, 31) {
                return Err(bad(format!(
                    "version {major}.{minor} is too old (ort rc.15 needs API 31, ONNX Runtime \
                     1.31 or later; the PyPI 1.32 wheel works)"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(feature = "tasks")]
mod imp {
    use super::{check_library, find_library, TaskError};
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    /// The process-wide environment, created once with the library found then.
    static ENV: OnceLock<Result<(ort::environment::Environment, PathBuf), String>> =
        OnceLock::new();

    fn environment() -> Result<ort::environment::Environment, TaskError> {
        let lib = find_library()?;
        let (env, _) = ENV
            .get_or_init(|| {
                check_library(&lib).map_err(|e| e.to_string())?;
                let builder = ort::init_from(&lib).map_err(|e| {
                    TaskError::RuntimeLoad {
                        path: lib.display().to_string(),
                        why: e.to_string(),
                    }
                    .to_string()
                })?;
                let env = builder.with_name("icm").build().map_err(|e| {
                    TaskError::RuntimeLoad {
                        path: lib.display().to_string(),
                        why: e.to_string(),
                    }
                    .to_string()
                })?;
                Ok((env, lib.clone()))
            })
            .as_ref()
            .map_err(|why| TaskError::RuntimeLoad {
                path: lib.display().to_string(),
                why: why.clone(),
            })?;
        Ok(env.clone())
    }

    /// One ONNX model with a single float32 input and a single float32 output.
    pub struct OnnxModel {
        session: ort::session::Session,
        path: PathBuf,
    }

    impl OnnxModel {
        /// Loads `path` (after finding and loading the runtime).
        pub fn load(path: &Path) -> Result<Self, TaskError> {
            if !path.is_file() {
                return Err(TaskError::ModelNotFound {
                    path: path.display().to_string(),
                });
            }
            let env = environment()?;
            let err = |e: String| TaskError::Model {
                path: path.display().to_string(),
                why: e,
            };
            let session = ort::session::Session::builder(&env)
                .map_err(|e| err(e.to_string()))?
                .commit_from_file(path)
                .map_err(|e| err(e.to_string()))?;
            Ok(Self {
                session,
                path: path.to_path_buf(),
            })
        }

        /// A custom metadata value of the model file (ONNX `metadata_props`), or `None`
        /// when the key is absent or cannot be read.
        pub fn metadata(&self, key: &str) -> Option<String> {
            self.session.metadata().ok()?.custom(key)
        }

        /// Runs the model on one float32 tensor; returns the first output's shape and data.
        pub fn run(
            &mut self,
            shape: &[usize],
            data: Vec<f32>,
        ) -> Result<(Vec<usize>, Vec<f32>), TaskError> {
            let path = self.path.display().to_string();
            let err = |e: ort::Error| TaskError::Model {
                path: path.clone(),
                why: e.to_string(),
            };
            let tensor = ort::value::Tensor::from_array((shape.to_vec(), data)).map_err(err)?;
            let outputs = self
                .session
                .run(ort::inputs![tensor])
                .map_err(|e| TaskError::Model {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            if outputs.len() == 0 {
                return Err(TaskError::Model {
                    path,
                    why: "the model has no output".into(),
                });
            }
            let (shape, values) =
                outputs[0]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| TaskError::Model {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
            let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
            Ok((shape, values.to_vec()))
        }
    }
}

#[cfg(not(feature = "tasks"))]
mod imp {
    use super::TaskError;
    use std::path::Path;

    /// Stand-in when built without the `tasks` feature: loading always fails.
    pub struct OnnxModel;

    impl OnnxModel {
        /// Always [`TaskError::FeatureDisabled`].
        pub fn load(_path: &Path) -> Result<Self, TaskError> {
            Err(TaskError::FeatureDisabled)
        }

        /// Always `None`.
        pub fn metadata(&self, _key: &str) -> Option<String> {
            None
        }

        /// Always [`TaskError::FeatureDisabled`].
        pub fn run(
            &mut self,
            _shape: &[usize],
            _data: Vec<f32>,
        ) -> Result<(Vec<usize>, Vec<f32>), TaskError> {
            Err(TaskError::FeatureDisabled)
        }
    }
}

pub use imp::OnnxModel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_libraries_and_old_versions() {
        let dir = std::env::temp_dir().join(format!("icm-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let text = dir.join("libonnxruntime.so.1.32.0");
        std::fs::write(&text, b"not a library").expect("write");
        assert!(matches!(
            check_library(&text),
            Err(TaskError::RuntimeLoad { .. })
        ));
        let old = dir.join("libonnxruntime.so.1.22.0");
        std::fs::write(&old, b"\x7fELF....").expect("write");
        let e = check_library(&old).expect_err("1.22 must be refused");
        assert!(e.to_string().contains("too old"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
