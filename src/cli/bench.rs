//! `icm bench`: encode and decode speed on a directory of images, stage by stage.
//!
//! Every image is coded once untimed (warm-up: model pages, thread pool, scratch buffers),
//! then `--repeat` times timed; the per-image figure is the median of the repeats and the
//! reported figure the median over images. Everything runs in memory: file reading and
//! writing are not timed. `benches/compare.sh` runs this next to CompressAI and the VVC
//! decoder and writes `docs/results/speed.md`.

use super::args::BenchArgs;
use super::error::CliError;
use super::io::read_image;
use super::progress::Progress;
use super::results::list_pngs;
use icm::codec::{self, EncodeOptions, RgbImage, StageTimes};
use icm::model::{self, Model};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The timed quantities, in milliseconds per image.
const COLUMNS: [(&str, &str); 10] = [
    ("encode", "encode (RGB -> bytes)"),
    ("decode", "decode (bytes -> RGB)"),
    ("parse", "  container and model check"),
    ("z_entropy", "  z^ entropy decoding"),
    ("hyper", "  h_s (integer)"),
    ("y_entropy", "  y^ entropy decoding"),
    ("synthesis", "  g_s and RGB conversion"),
    ("latents", "decode latents only (--latents)"),
    ("png", "PNG encoding of the decoded picture"),
    ("entropy", "  entropy decoding (z^ + y^)"),
];

/// Median of `v` (mean of the two middle values for an even count); 0 when empty.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `f` once.
fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, ms(t.elapsed()))
}

/// The figures of one image: per column, the median over the repeats.
struct ImageFigures {
    name: String,
    pixels: u64,
    bytes: usize,
    symbols: u64,
    ms: Vec<f64>,
}

fn bench_image(path: &Path, model: &Model, repeat: usize) -> Result<ImageFigures, CliError> {
    let img = read_image(path)?;
    let codec_err = |source| CliError::Codec {
        path: path.display().to_string(),
        source,
    };
    let opts = EncodeOptions::default();
    // Warm-up, and the stream every timed decode reads.
    let stream = codec::encode(&img, model, &opts).map_err(codec_err)?;
    let (decoded, first) = codec::decode_with_times(&stream, model).map_err(codec_err)?;
    png_bytes(&decoded.image)?;
    codec::decode_latents(&stream, model).map_err(codec_err)?;

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); COLUMNS.len()];
    for _ in 0..repeat {
        let (r, t) = time(|| codec::encode(&img, model, &opts));
        r.map_err(codec_err)?;
        samples[0].push(t);
        let (r, t) = time(|| codec::decode_with_times(&stream, model));
        let (decoded, st) = r.map_err(codec_err)?;
        samples[1].push(t);
        let StageTimes {
            parse,
            z_entropy,
            hyper,
            y_entropy,
            synthesis,
            ..
        } = st;
        for (i, d) in [parse, z_entropy, hyper, y_entropy, synthesis]
            .into_iter()
            .enumerate()
        {
            samples[2 + i].push(ms(d));
        }
        let (r, t) = time(|| codec::decode_latents(&stream, model));
        r.map_err(codec_err)?;
        samples[7].push(t);
        let (r, t) = time(|| png_bytes(&decoded.image));
        r?;
        samples[8].push(t);
        samples[9].push(ms(z_entropy + y_entropy));
    }
    Ok(ImageFigures {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        pixels: u64::from(img.width) * u64::from(img.height),
        bytes: stream.len(),
        symbols: first.symbols,
        ms: samples.iter_mut().map(|v| median(v)).collect(),
    })
}

/// The decoded picture as PNG bytes, as `icm decode` writes it.
fn png_bytes(img: &RgbImage) -> Result<Vec<u8>, CliError> {
    icm_eval::picture::OutputFormat::Png
        .encode(img)
        .map_err(|source| CliError::Image {
            path: "(decoded picture)".into(),
            source,
        })
}

/// Runs `icm bench`.
pub fn run(a: BenchArgs, dir: &Path) -> Result<(), CliError> {
    if a.repeat == 0 {
        return Err(CliError::Usage("--repeat must be at least 1".into()));
    }
    let path: PathBuf = model::resolve_model(a.model.as_deref(), a.quality.or(Some(3)), dir)?;
    let model = Model::from_path(&path)?;
    if model.g_a.is_none() {
        return Err(CliError::DecoderOnly {
            path: path.display().to_string(),
            model: model.name,
        });
    }
    let mut images = list_pngs(&a.dataset)?;
    if let Some(n) = a.limit {
        images.truncate(n);
    }
    if images.is_empty() {
        return Err(CliError::Dataset {
            path: a.dataset.display().to_string(),
            why: "no PNG images".into(),
        });
    }
    let threads = rayon::current_num_threads();
    let bar = Progress::new(images.len());
    let mut figures = Vec::with_capacity(images.len());
    for p in &images {
        bar.set_message(p.display().to_string());
        figures.push(bench_image(p, &model, a.repeat)?);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let column = |i: usize| -> f64 {
        let mut v: Vec<f64> = figures.iter().map(|f| f.ms[i]).collect();
        median(&mut v)
    };
    let medians: Vec<f64> = (0..COLUMNS.len()).map(column).collect();
    let mut rates: Vec<f64> = figures
        .iter()
        .map(|f| f.symbols as f64 / (f.ms[9] * 1e-3) / 1e6)
        .collect();
    let msym = median(&mut rates);
    let mut bpp: Vec<f64> = figures
        .iter()
        .map(|f| 8.0 * f.bytes as f64 / f.pixels as f64)
        .collect();
    let bpp = median(&mut bpp);

    println!(
        "icm bench: {} image(s) of {}, model {}, {} thread(s), median of {} run(s) per image, \
         median over images",
        figures.len(),
        a.dataset.display(),
        model.name,
        threads,
        a.repeat
    );
    println!("{:<40} {:>10}", "stage", "ms/image");
    for ((_, label), v) in COLUMNS.iter().zip(&medians) {
        println!("{label:<40} {v:>10.2}");
    }
    println!(
        "{:<40} {:>10.1}",
        "entropy decoding, Msym/s (one thread)", msym
    );
    println!("{:<40} {:>10.4}", "bpp", bpp);
    println!(
        "{:<40} {:>10.1}",
        "full decode / latents-only decode",
        medians[1] / medians[7].max(1e-9)
    );

    if let Some(out) = &a.output {
        let per_image: Vec<_> = figures
            .iter()
            .map(|f| {
                let mut o = json!({
                    "image": f.name,
                    "pixels": f.pixels,
                    "bytes": f.bytes,
                    "symbols": f.symbols,
                });
                for ((key, _), v) in COLUMNS.iter().zip(&f.ms) {
                    o[format!("{key}_ms")] = json!(v);
                }
                o
            })
            .collect();
        let mut median_ms = serde_json::Map::new();
        for ((key, _), v) in COLUMNS.iter().zip(&medians) {
            median_ms.insert((*key).into(), json!(v));
        }
        let doc = json!({
            "tool": format!("icm {}", env!("CARGO_PKG_VERSION")),
            "dataset": a.dataset.display().to_string(),
            "model": model.name,
            "threads": threads,
            "repeat": a.repeat,
            "median_ms": median_ms,
            "entropy_msym_per_s": msym,
            "bpp": bpp,
            "images": per_image,
        });
        super::io::write_atomic(out, format!("{doc:#}\n").as_bytes())?;
    }
    Ok(())
}
