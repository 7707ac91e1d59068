//! `icm anchor`: conventional codecs through ffmpeg, measured like `icm eval`.

use super::args::AnchorArgs;
use super::error::CliError;
use super::io::{write_atomic, write_image};
use super::progress::Progress;
use super::results::{print_table, warn_once, write_outputs};
use icm_eval::anchor::job::{AnchorJob, AnchorSpec};
use icm_eval::anchor::{format_level, AnchorCodec};
use icm_eval::rd::RowRecord;

/// Runs `icm anchor`: the run of [`AnchorJob`] (shared with `python -m icm.dist anchor`),
/// one picture at a time.
pub fn run(a: AnchorArgs) -> Result<(), CliError> {
    let codec = AnchorCodec::parse(&a.codec).ok_or_else(|| {
        let all: Vec<&str> = AnchorCodec::ALL.iter().map(|c| c.name()).collect();
        CliError::Usage(format!(
            "--codec {:?}: expected one of {}",
            a.codec,
            all.join(", ")
        ))
    })?;
    let job = AnchorJob::new(AnchorSpec {
        codec,
        dataset: a.dataset.clone(),
        qps: a.qps.clone(),
        limit: a.limit,
        ffmpeg: a.ffmpeg.clone(),
        preset: a.preset.clone(),
        encoder_cmd: a.encoder_cmd.clone(),
        cache_dir: a.cache_dir.clone(),
        no_cache: a.no_cache,
    })?;
    if let Some(dir) = &a.keep {
        std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }

    let points = job.levels.len();
    let bar = Progress::new(job.pictures() * points);
    let mut records = Vec::with_capacity(job.pictures() * points);
    let mut cached = 0usize;
    for (item, path) in job.images.iter().enumerate() {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut warned = false;
        for (point, &level) in job.levels.iter().enumerate() {
            bar.set_message(format!(
                "{name} / {codec} {} {}",
                codec.level_name(),
                format_level(level)
            ));
            let done = job.evaluate(item, point)?;
            cached += usize::from(done.cached);
            if let (Some(dir), Some(base)) = (&a.keep, job.keep_name(item, point)) {
                write_atomic(
                    &dir.join(format!("{base}.{}", codec.extension())),
                    &done.coded.bitstream,
                )?;
                write_image(&dir.join(format!("{base}.png")), &done.coded.decoded)?;
            }
            warn_once(done.warning, &mut warned, &bar);
            records.push(RowRecord::new(item, point, &done.row));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let file = job.finish(records)?;
    write_outputs(a.output.as_deref(), a.csv.as_deref(), &file)?;
    print_table(&file, job.pictures());
    if let Some(c) = &job.cache {
        eprintln!(
            "icm: {cached} of {} codings read from the cache {}",
            job.pictures() * points,
            c.dir().display()
        );
    }
    Ok(())
}
