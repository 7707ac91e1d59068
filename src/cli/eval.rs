//! `icm eval`: encode and decode every PNG of a directory with one or more models and
//! report rate (bpp), PSNR-RGB, MS-SSIM and timings, as CompressAI's
//! `compressai.utils.eval_model` does.

use super::args::EvalArgs;
use super::error::CliError;
use super::progress::Progress;
use super::results::{print_table, warn_once, write_outputs};
use icm::codec::EncodeOptions;
use icm_eval::eval_job::{EvalJob, EvalSpec};
use icm_eval::rd::RowRecord;
use icm_eval::task::job::ModelDir;
use std::path::Path;

/// Runs `icm eval`: the run of [`EvalJob`] (shared with `python -m icm.dist eval`), one
/// picture at a time, every rate point of it, without a record cache.
pub fn run(a: EvalArgs, dir: &Path) -> Result<(), CliError> {
    let spec = EvalSpec {
        dataset: a.dataset.clone(),
        qualities: a.qualities.clone(),
        models: a.models.clone(),
        limit: a.limit,
        options: EncodeOptions {
            effort: a.search.effort,
            lambda: a.search.lambda,
            ..EncodeOptions::default()
        },
    };
    let job = EvalJob::new(spec, &ModelDir(dir.to_path_buf()), None)?;

    let points = job.infos.len();
    let bar = Progress::new(job.pictures() * points);
    let mut records = Vec::with_capacity(job.pictures() * points);
    for (item, path) in job.images.iter().enumerate() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut warned = false;
        for (point, info) in job.infos.iter().enumerate() {
            bar.set_message(format!("{name} / {}", info.label));
            let done = job.evaluate(item, point)?;
            warn_once(done.warning, &mut warned, &bar);
            records.push(RowRecord::new(item, point, &done.row));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let file = job.finish(records)?;
    write_outputs(a.output.as_deref(), a.csv.as_deref(), &file)?;
    print_table(&file, job.pictures());
    Ok(())
}
