use super::error::CliError;
use icm::codec::RgbImage;
use icm_eval::picture::OutputFormat;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so a
/// failed run never leaves a half-written output.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Reads a picture file as 8-bit RGB ([`icm_eval::picture::read_rgb`]).
pub fn read_image(path: &Path) -> Result<RgbImage, CliError> {
    Ok(icm_eval::picture::read_rgb(path)?)
}

/// Encodes a picture in the format of `path`'s extension ([`OutputFormat::from_path`]:
/// PNG, PPM or JPEG; any other extension is an error) and writes it atomically.
pub fn write_image(path: &Path, img: &RgbImage) -> Result<(), CliError> {
    let bytes = OutputFormat::from_path(path)?
        .encode(img)
        .map_err(|source| CliError::Image {
            path: path.display().to_string(),
            source,
        })?;
    write_atomic(path, &bytes)
}

/// Checks, before any work starts, that `path` can be written: its folder exists and takes a
/// new file, and `path` is not a folder. A run that would compute for hours and then fail
/// on its output path fails at once instead.
pub fn check_output(path: &Path) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a folder, not a file",
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("folder {} does not exist", dir.display()),
        )));
    }
    let probe = dir.join(format!(".icm-write-probe.{}.tmp", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| {
        io(std::io::Error::new(
            e.kind(),
            format!("cannot write in {}: {e}", dir.display()),
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// [`check_output`] for every path given.
pub fn check_outputs(paths: &[Option<PathBuf>]) -> Result<(), CliError> {
    paths.iter().flatten().try_for_each(|p| check_output(p))
}
