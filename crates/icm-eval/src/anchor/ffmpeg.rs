//! Finding and running ffmpeg.

use super::AnchorError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's Python virtual environment: `$ICM_VENV`, else `~/.cache/icm-venv`.
pub(crate) fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("ICM_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("icm-venv")
}

/// The ffmpeg of the `imageio-ffmpeg` wheel in `venv`, if installed.
fn wheel_ffmpeg(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let mut found = Vec::new();
    for py in std::fs::read_dir(&lib).ok()?.flatten() {
        let bin = py
            .path()
            .join("site-packages")
            .join("imageio_ffmpeg")
            .join("binaries");
        for f in std::fs::read_dir(&bin).into_iter().flatten().flatten() {
            let p = f.path();
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with("ffmpeg")) && p.is_file() {
                found.push(p);
            }
        }
    }
    found.sort();
    found.pop()
}

/// Finds ffmpeg: `explicit` if given, else `$ICM_FFMPEG`, else `$IMAGEIO_FFMPEG_EXE`, else
/// the `imageio-ffmpeg` wheel in the project's virtual environment (`$ICM_VENV`, default
/// `~/.cache/icm-venv`, which `scripts/setup_ffmpeg.sh` makes).
pub fn find_ffmpeg(explicit: Option<&Path>) -> Result<PathBuf, AnchorError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    for var in ["ICM_FFMPEG", "IMAGEIO_FFMPEG_EXE"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(v));
        }
    }
    let venv = venv_dir();
    wheel_ffmpeg(&venv).ok_or(AnchorError::NoFfmpeg {
        venv: venv.display().to_string(),
    })
}

fn command_error(command: String, status: String, stderr: &[u8]) -> AnchorError {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(4)..].join(" | ");
    AnchorError::Command {
        command,
        status,
        stderr: tail,
    }
}

/// Runs `cmd` (shown as `shown` in errors) and returns its output when it exits 0.
fn checked(cmd: &mut Command, shown: String) -> Result<std::process::Output, AnchorError> {
    let out = cmd.output().map_err(|e| AnchorError::Command {
        command: shown.clone(),
        status: "not started".into(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(command_error(shown, out.status.to_string(), &out.stderr))
    }
}

/// The first line of `ffmpeg -version`; fails when ffmpeg cannot run.
pub fn ffmpeg_version(ffmpeg: &Path) -> Result<String, AnchorError> {
    let out = checked(
        Command::new(ffmpeg).arg("-version"),
        format!("{} -version", ffmpeg.display()),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("ffmpeg (unknown version)")
        .split(" Copyright")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// Checks that ffmpeg lists `encoder` among its encoders and `decoder` among its decoders.
/// With `decoder_only` the encoder is not checked.
pub(crate) fn require(
    ffmpeg: &Path,
    encoder: &str,
    decoder: &str,
    decoder_only: bool,
) -> Result<(), AnchorError> {
    let wanted: &[(&str, &str)] = if decoder_only {
        &[("-decoders", decoder)]
    } else {
        &[("-encoders", encoder), ("-decoders", decoder)]
    };
    for &(flag, name) in wanted {
        let out = Command::new(ffmpeg)
            .args(["-hide_banner", flag])
            .output()
            .map_err(|e| AnchorError::Command {
                command: format!("{} {flag}", ffmpeg.display()),
                status: "not started".into(),
                stderr: e.to_string(),
            })?;
        let listed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(name));
        if !listed {
            return Err(AnchorError::Missing {
                ffmpeg: ffmpeg.to_path_buf(),
                what: format!("{} {name}", &flag[1..flag.len() - 1]),
            });
        }
    }
    Ok(())
}

/// Runs ffmpeg quietly with `args`; a failure carries the end of its error output.
pub(crate) fn run(ffmpeg: &Path, args: &[String]) -> Result<(), AnchorError> {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args);
    checked(&mut cmd, format!("{} {}", ffmpeg.display(), args.join(" "))).map(drop)
}

/// Runs a user's command line through `sh -c`.
pub(crate) fn run_shell(cmd: &str) -> Result<(), AnchorError> {
    checked(Command::new("sh").args(["-c", cmd]), cmd.to_string()).map(drop)
}
