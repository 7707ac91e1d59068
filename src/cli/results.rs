//! Rate-distortion results shared by `icm eval` and `icm anchor`: per-image figures and
//! their means per rate point ([`icm_eval::rd`], shared with `python -m icm.dist`) in the
//! results file of [`icm_eval::results`], and the table on standard output.

use super::error::CliError;
use super::io::write_atomic;
use super::progress::Progress;
use icm_eval::results::ResultsFile;
use std::path::{Path, PathBuf};

/// Prints `warning` above the progress bar unless `warned` (then sets it).
pub fn warn_once(warning: Option<String>, warned: &mut bool, bar: &Progress) {
    if let Some(w) = warning {
        if !*warned {
            *warned = true;
            bar.suspend(|| eprintln!("icm: warning: {w}"));
        }
    }
}

/// The PNG files of `dir`, sorted by path ([`icm_eval::rd::list_pngs`]).
pub fn list_pngs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    icm_eval::rd::list_pngs(dir).map_err(|source| CliError::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// Prints the means as a table on standard output ([`icm_eval::rd::rd_table`]).
pub fn print_table(file: &ResultsFile, images: usize) {
    print!("{}", icm_eval::rd::rd_table(file, images));
}

/// Writes the JSON (`json_path`) and CSV (`csv_path`) of a results file where asked.
pub fn write_outputs(
    json_path: Option<&Path>,
    csv_path: Option<&Path>,
    file: &ResultsFile,
) -> Result<(), CliError> {
    if let Some(path) = json_path {
        write_atomic(path, file.to_json().as_bytes())?;
    }
    if let Some(path) = csv_path {
        write_atomic(path, file.to_csv().as_bytes())?;
    }
    Ok(())
}
