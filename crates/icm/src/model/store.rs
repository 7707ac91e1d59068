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

/// Whether `name` may be looked up in a model directory: 1 to 64 ASCII letters, digits,
/// `.`, `_` or `-`, not starting with `.` (so no separator, no `..`, no hidden file). The
/// zoo's names and any name `icm model build` is given in practice are of this kind.
pub fn is_plain_model_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The model file of a name read from a stream: `DIR/NAME.safetensors`. The name is hostile
/// input: it only ever selects among the model files of `dir` ([`is_plain_model_name`]),
/// never opens another path; only the user's own `--model PATH` ([`resolve_model`]) is a
/// path.
pub fn find_named_model(name: &str, dir: &Path) -> Result<PathBuf, ModelError> {
    if !is_plain_model_name(name) {
        return Err(ModelError::UnsafeName {
            name: name.to_string(),
        });
    }
    let path = dir.join(format!("{name}.safetensors"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(ModelError::NotFound {
            name: name.to_string(),
            searched: dir.display().to_string(),
        })
    }
}

/// Resolves the user's `--model NAME|PATH` / `--quality Q` to a model file path (a path
/// is taken as it is: use [`find_named_model`] for names read from a stream).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_looked_up() {
        for good in [
            "icm-psnr-q3",
            "test-seed1-small",
            "a",
            "m_1.2",
            &"x".repeat(64),
        ] {
            assert!(is_plain_model_name(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../conformance/models/test-seed1-small",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "caf\u{e9}",
            "a b",
            "a\0",
            &"x".repeat(65),
        ] {
            assert!(!is_plain_model_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_stream_name_never_leaves_the_model_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        // crates/icm/Cargo.toml exists, but a name is not a path
        for name in ["../icm/Cargo", "/etc/passwd", "Cargo.toml"] {
            assert!(find_named_model(name, dir).is_err(), "{name}");
        }
        let models = dir
            .ancestors()
            .nth(2)
            .expect("repo")
            .join("conformance/models");
        assert_eq!(
            find_named_model("test-seed1-small", &models).expect("found"),
            models.join("test-seed1-small.safetensors")
        );
        assert!(matches!(
            find_named_model("../models/test-seed1-small", &models),
            Err(ModelError::UnsafeName { .. })
        ));
    }
}
