//! DCT-coefficient decoding (`icm_eval::jpeg`, spec Annex B) against full RGB decoding of the
//! same JPEGs by the `image` crate (zune-jpeg), in Mpixel/s (criterion's elements/s, one
//! element per pixel; all images of the set per iteration, one thread).
//!
//! The JPEGs are the Kodak PNGs (`$ICM_KODAK_DIR`, default `../shared/data/kodak`) encoded
//! at quality 75, 4:2:0, baseline, with the `jpeg-encoder` crate at start-up; or, when
//! `$ICM_JPEG_DIR` is set, the `.jpg` files of that folder as they are. The Kodak set is
//! benched again encoded progressive (group `jpeg_progressive`). Without either the
//! bench prints why and does nothing. `cargo bench --bench jpeg`; results in
//! docs/results/dct-speed.md.

use criterion::{Criterion, Throughput};
use icm_eval::jpeg::channels::{frequency_tensor, TensorLayout};
use icm_eval::jpeg::{decode_coefficients, DecodeOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// JPEG files with their pixel counts.
type JpegSet = Vec<(Vec<u8>, u64)>;

/// The bench set and its description, or why there is none; with `progressive`, the
/// Kodak set is encoded progressive (jpeg-encoder: DC and 3 AC bands per component, no
/// successive approximation).
fn load(progressive: bool) -> Result<(String, JpegSet), String> {
    if let Some(dir) = std::env::var_os("ICM_JPEG_DIR") {
        let dir = PathBuf::from(dir);
        let mut set = Vec::new();
        for p in files_in(&dir, "jpg") {
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let c = decode_coefficients(&bytes, &DecodeOptions::default())
                .map_err(|e| format!("{}: {e}", p.display()))?;
            set.push((bytes, u64::from(c.width) * u64::from(c.height)));
        }
        if set.is_empty() {
            return Err(format!("no .jpg files in {}", dir.display()));
        }
        return Ok((format!("{} ({} files)", dir.display(), set.len()), set));
    }
    let dir = std::env::var_os("ICM_KODAK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/kodak"));
    let pngs = files_in(&dir, "png");
    if pngs.is_empty() {
        return Err(format!(
            "no Kodak PNGs in {} (set ICM_KODAK_DIR or ICM_JPEG_DIR)",
            dir.display()
        ));
    }
    let mut set = Vec::new();
    for p in &pngs {
        let img = image::open(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .to_rgb8();
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 75);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        enc.set_progressive(progressive);
        enc.encode(
            img.as_raw(),
            img.width() as u16,
            img.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| format!("{}: {e}", p.display()))?;
        set.push((out, u64::from(img.width()) * u64::from(img.height())));
    }
    let kind = if progressive {
        "progressive (4 spectral-selection scans per component)"
    } else {
        "baseline"
    };
    Ok((
        format!("Kodak, {} images, q75 4:2:0 {kind}", set.len()),
        set,
    ))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    match load(false) {
        Ok((name, set)) => bench_set(&mut c, "jpeg", &name, &set),
        Err(why) => {
            eprintln!("benches/jpeg.rs: skipped: {why}");
            return;
        }
    }
    if std::env::var_os("ICM_JPEG_DIR").is_none() {
        if let Ok((name, set)) = load(true) {
            bench_set(&mut c, "jpeg_progressive", &name, &set);
        }
    }
    c.final_summary();
}

fn bench_set(c: &mut Criterion, group: &str, name: &str, set: &JpegSet) {
    let pixels: u64 = set.iter().map(|(_, p)| p).sum();
    let bytes: usize = set.iter().map(|(b, _)| b.len()).sum();
    eprintln!(
        "bench set: {name}; {:.2} Mpixel, {:.3} bpp",
        pixels as f64 / 1e6,
        bytes as f64 * 8.0 / pixels as f64
    );
    let opts = DecodeOptions::default();
    let all: Vec<usize> = (0..192).collect();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(pixels));
    g.sample_size(10);
    g.bench_function("icm_jpeg_coefficients", |b| {
        b.iter(|| {
            for (jpg, _) in set {
                black_box(decode_coefficients(black_box(jpg), &opts).ok());
            }
        })
    });
    g.bench_function("icm_jpeg_192ch_tensor", |b| {
        b.iter(|| {
            for (jpg, _) in set {
                if let Ok(co) = decode_coefficients(black_box(jpg), &opts) {
                    let n = co.components.len() * 64;
                    black_box(
                        frequency_tensor(&co, &all[..n], true, TensorLayout::Chw, u64::MAX).ok(),
                    );
                }
            }
        })
    });
    g.bench_function("image_zune_jpeg_rgb", |b| {
        b.iter(|| {
            for (jpg, _) in set {
                black_box(
                    image::load_from_memory_with_format(black_box(jpg), image::ImageFormat::Jpeg)
                        .ok(),
                );
            }
        })
    });
    g.finish();
}
