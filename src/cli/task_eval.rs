//! `icm task-eval`: sets up the evaluation ([`icm_eval::task::job`], shared with
//! `python -m icm.dist task-eval`) from the command line, runs it in this process one
//! picture at a time and writes its results.
//!
//! What is evaluated follows from `--codec` and `--input-domain`:
//! - `rgb` with icm, none or a conventional codec: the whole picture coded at each rate
//!   point, decoded, and the task's pixel network;
//! - `jpeg-ijg` (classification): the classifier's 224x224 input crop JPEG-coded at IJG
//!   qualities; the decoded crop (`rgb`) or its DCT coefficients (`dct192`, `dct24`; spec
//!   Annex B) given to the classifier of that domain;
//! - `latents` with icm (classification, detection): y^ of each stream (no g_s) given to
//!   the latent network, and decode-then-infer beside it (`rgb_*` columns, with g_s's
//!   multiply-adds in `rgb_macs`).

use super::args::TaskEvalArgs;
use super::error::CliError;
use super::io::write_atomic;
use super::progress::Progress;
use icm_eval::task::evaluate::Observer;
use icm_eval::task::job::{detections_json, results_table, ModelDir, TaskEvalSpec, TaskJob};
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Observer for Progress {
    fn begin(&self, what: &str) {
        self.set_message(what.to_string());
    }
    fn end(&self) {
        self.inc(1);
    }
}

/// The evaluation's arguments.
fn spec(a: TaskEvalArgs) -> TaskEvalSpec {
    TaskEvalSpec {
        task: a.task,
        dataset: a.dataset,
        codec: a.codec,
        input_domain: a.input_domain,
        qualities: a.qualities,
        models: a.models,
        qps: a.qps,
        ffmpeg: a.ffmpeg,
        limit: a.limit,
        task_model: a.task_model,
        annotations: a.annotations,
        anchor_cache: None,
        roi: a.roi,
        roi_background: a.roi_background,
    }
}

/// Runs `icm task-eval`.
pub fn run(a: TaskEvalArgs, model_dir: &Path) -> Result<(), CliError> {
    let (output, csv, save) = (a.output.clone(), a.csv.clone(), a.save_detections.clone());
    let mut job = TaskJob::new(spec(a), &ModelDir(model_dir.to_path_buf()))?;
    let points: Vec<usize> = (0..job.evaluation.codecs.len()).collect();
    let bar = Progress::new(job.pictures() * points.len());
    let start = Instant::now();
    let mut records = Vec::with_capacity(job.pictures() * points.len());
    for item in 0..job.pictures() {
        let done = job.evaluate(item, &points, None, &bar)?;
        records.extend(done.into_iter().map(|(r, _)| r));
    }
    let (outcome, file) = job.finish(records, start.elapsed().as_secs_f64())?;
    bar.finish_and_clear();
    if let Some(prefix) = &save {
        for (label, json) in detections_json(&outcome) {
            let path = PathBuf::from(format!("{}-{label}.json", prefix.display()));
            write_atomic(&path, json.as_bytes())?;
        }
    }
    if let Some(path) = &output {
        write_atomic(path, file.to_json().as_bytes())?;
    }
    if let Some(path) = &csv {
        write_atomic(path, file.to_csv().as_bytes())?;
    }
    print!("{}", results_table(&file));
    Ok(())
}
