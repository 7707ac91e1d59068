//! Helpers shared by the integration tests that call Python: where the project's virtual
//! environment is, and the rule for a missing tool (skip locally, fail under `CI=true`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The project venv: `$ICM_VENV`, else `~/.cache/icm-venv` (what the set-up scripts make).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("ICM_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/icm-venv"),
    }
}

/// The venv's interpreter (it may not exist).
pub fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// `Ok(())` when `python -c "import <modules>"` succeeds, else a one-line reason.
pub fn imports(python: &std::path::Path, modules: &str) -> Result<(), String> {
    match Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
    {
        Err(e) => Err(format!("{} not runnable: {e}", python.display())),
        Ok(out) if !out.status.success() => Err(format!(
            "{} cannot import {modules}: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => Ok(()),
    }
}

/// True when the test runs under CI (`CI=true`), where a missing tool is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}
