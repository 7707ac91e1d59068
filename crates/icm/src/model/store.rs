//! Where model files are found: by path, by name in the model directory, or by zoo quality.

use super::ModelError;
use std::path::{Path, PathBuf};

/// Quality index used when none is given (about 0.4-0.5 bpp on Kodak).
pub const ZOO_DEFAULT_QUALITY: u8 = 3;

/// The model directory: `$ICM_MODEL_DIR`, else `models/` next to the executable's
/// repository (`target/*/icm` -> `../../models`), else the source tree's `models/`.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ICM_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            let candidate = up.join("models");
            if candidate.join("MANIFEST.json").is_file() {
                return candidate;
            }
        }
    }
    // crates/icm in the source tree: the repository root is two folders up
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .unwrap_or(crate_dir)
        .join("models")
}

/// The zoo name of quality `q`.
pub fn zoo_name(q: u8) -> String {
    format!("icm-psnr-q{q}")
}

/// Resolves `--model NAME|PATH` / `--quality Q` to a model file path.
pub fn resolve_model(
    model: Option<&str>,
    quality: Option<u8>,
    dir: &Path,
) -> Result<PathBuf, ModelError> {
    let name = match model {
        Some(m) => {
            let p = Path::new(m);
            if p.is_file() {
                return Ok(p.to_path_buf());
            }
            m.trim_end_matches(".safetensors").to_string()
        }
        None => zoo_name(quality.unwrap_or(ZOO_DEFAULT_QUALITY)),
    };
    let path = dir.join(format!("{name}.safetensors"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(ModelError::NotFound {
            name,
            searched: dir.display().to_string(),
        })
    }
}
