use super::error::CliError;
use icm::codec::RgbImage;
use icm_eval::picture::OutputFormat;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `bytes` to `path` as [`write_all_atomic`] does.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_all_atomic(&[(path, bytes)])
}

/// Where an output's bytes go.
enum Destination {
    /// A regular file (or none yet): a temporary file beside it, renamed over it.
    Replace(PathBuf),
    /// An existing file that is not a regular file (a device such as /dev/null, a FIFO):
    /// written directly, never replaced by a regular file.
    Direct(PathBuf),
}

fn destination(path: &Path) -> Destination {
    match std::fs::metadata(path) {
        // metadata follows symbolic links: a link to a device or FIFO is written through
        Ok(m) if !m.is_file() && !m.is_dir() => Destination::Direct(path.to_path_buf()),
        // a link to a regular file: replace the file it points to, not the link
        Ok(_) => {
            Destination::Replace(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
        }
        Err(_) => Destination::Replace(path.to_path_buf()),
    }
}

/// The temporary files being written now, removed by [`remove_temporaries_on_signal`]'s
/// handler when the process is interrupted.
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn in_flight() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the lock leaves a list that is still valid.
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// On SIGINT, SIGTERM or SIGHUP: removes the temporary files being written and exits with
/// status 130, so that an interrupted command leaves no `.NAME.PID.tmp` behind. (SIGKILL
/// cannot be caught: [`temporary`] removes what such a run left on the next write.)
pub fn remove_temporaries_on_signal() {
    let installed = ctrlc::set_handler(|| {
        for tmp in in_flight().drain(..) {
            let _ = std::fs::remove_file(tmp);
        }
        eprintln!("icm: interrupted");
        std::process::exit(130);
    });
    // Another handler already installed (a library user): theirs stays.
    drop(installed);
}

/// Whether process `pid` is gone (Unix; elsewhere assumed alive).
fn process_is_gone(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// The temporary file beside `target`, `.NAME.PID.tmp`. Temporaries of `target` that a
/// killed run left (their PID no longer runs) are removed first.
fn temporary(target: &Path) -> PathBuf {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(pid) = file
                .to_str()
                .and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(".tmp"))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && process_is_gone(pid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    dir.join(format!("{prefix}{}.tmp", std::process::id()))
}

/// A command's outputs, committed together ([`Commit::finish`]) or not at all (dropped):
/// every output goes to a temporary file beside it, renamed over its destination only when
/// all are written, so a failed run leaves no half-written file and no temporary. An output
/// that is a device or FIFO (`-o /dev/null`) is written directly instead of being replaced,
/// and a symbolic link to a regular file keeps pointing at it.
#[derive(Default)]
pub struct Commit {
    /// (temporary, destination) of the outputs staged so far.
    staged: Vec<(PathBuf, PathBuf)>,
    /// Outputs made in memory for devices and FIFOs, written at [`Commit::finish`].
    direct: Vec<(PathBuf, Vec<u8>)>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.display().to_string();
    move |source| CliError::Io { path, source }
}

impl Commit {
    /// A file to write the output `path` into as it is made (a picture decoded band by
    /// band): a temporary beside it, or `path` itself when it is a device or FIFO.
    pub fn create(&mut self, path: &Path) -> Result<std::fs::File, CliError> {
        match destination(path) {
            Destination::Direct(p) => std::fs::File::create(&p).map_err(io_error(&p)),
            Destination::Replace(target) => {
                let tmp = temporary(&target);
                in_flight().push(tmp.clone());
                self.staged.push((tmp.clone(), target));
                std::fs::File::create(&tmp).map_err(io_error(path))
            }
        }
    }

    /// Adds an output made in memory.
    pub fn add(&mut self, path: &Path, bytes: &[u8]) -> Result<(), CliError> {
        match destination(path) {
            Destination::Direct(p) => self.direct.push((p, bytes.to_vec())),
            Destination::Replace(_) => {
                let mut f = self.create(path)?;
                f.write_all(bytes).map_err(io_error(path))?;
            }
        }
        Ok(())
    }

    /// Writes the direct outputs, then moves every staged one into place.
    pub fn finish(mut self) -> Result<(), CliError> {
        for (tmp, _) in &self.staged {
            let synced = std::fs::File::open(tmp).and_then(|f| f.sync_all());
            synced.map_err(io_error(tmp))?;
        }
        for (p, bytes) in std::mem::take(&mut self.direct) {
            std::fs::write(&p, bytes).map_err(io_error(&p))?;
        }
        while !self.staged.is_empty() {
            let (tmp, target) = self.staged.remove(0);
            let renamed = std::fs::rename(&tmp, &target);
            in_flight().retain(|p| *p != tmp);
            if let Err(e) = renamed {
                let _ = std::fs::remove_file(&tmp);
                return Err(io_error(&target)(e));
            }
        }
        Ok(())
    }
}

impl Drop for Commit {
    /// Removes the temporaries of a command that did not finish.
    fn drop(&mut self) {
        let mut flying = in_flight();
        for (tmp, _) in self.staged.drain(..) {
            let _ = std::fs::remove_file(&tmp);
            flying.retain(|p| *p != tmp);
        }
    }
}

/// Writes a command's outputs together or not at all ([`Commit`]).
pub fn write_all_atomic(outputs: &[(&Path, &[u8])]) -> Result<(), CliError> {
    let mut commit = Commit::default();
    for &(path, bytes) in outputs {
        commit.add(path, bytes)?;
    }
    commit.finish()
}

/// Reads a picture file as 8-bit RGB ([`icm_eval::picture::read_rgb`]).
pub fn read_image(path: &Path) -> Result<RgbImage, CliError> {
    Ok(icm_eval::picture::read_rgb(path)?)
}

/// Encodes a picture in the format of `path`'s extension ([`OutputFormat::from_path`]:
/// PNG, PPM or JPEG; any other extension is an error).
pub fn image_bytes(path: &Path, img: &RgbImage) -> Result<Vec<u8>, CliError> {
    OutputFormat::from_path(path)?
        .encode(img)
        .map_err(|source| CliError::Image {
            path: path.display().to_string(),
            source,
        })
}

/// [`image_bytes`] written with [`write_atomic`].
pub fn write_image(path: &Path, img: &RgbImage) -> Result<(), CliError> {
    write_atomic(path, &image_bytes(path, img)?)
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
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        // a device or FIFO: written directly (write_all_atomic), nothing to create beside it
        return Ok(());
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
