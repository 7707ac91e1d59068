//! Encode and decode of one 768x512 image (criterion).
//!
//! Uses the default zoo model when `models/` has it, else a seeded model of the same
//! architecture (speed does not depend on the weight values, only the entropy-coding
//! share does a little). The image is Kodak kodim01 when `../shared` is present, else a
//! synthetic image of the same size. `cargo bench --bench codec`.

use criterion::{criterion_group, criterion_main, Criterion};
use icm::codec::{decode, decode_latents, encode, EncodeOptions, RgbImage};
use icm::model::{build_model_file, random_float_export, BuildOptions, Model};
use std::hint::black_box;
use std::path::Path;

fn load_model() -> Model {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let zoo = root.join("models/icm-psnr-q4.safetensors");
    if let Ok(m) = Model::from_path(&zoo) {
        eprintln!("bench model: {}", m.name);
        return m;
    }
    eprintln!("bench model: seeded (no zoo model found)");
    let export = random_float_export(3, (96, 192, [128, 96, 64]));
    let opts = BuildOptions {
        name: "bench-seed3".into(),
        ..Default::default()
    };
    let bytes = build_model_file(&export, &opts).expect("seeded model builds");
    Model::from_bytes(&bytes).expect("seeded model loads")
}

fn load_image() -> RgbImage {
    let kodak = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/kodak/kodim01.png");
    if let Ok(img) = image::open(&kodak) {
        let rgb = img.to_rgb8();
        return RgbImage {
            width: rgb.width(),
            height: rgb.height(),
            data: rgb.into_raw(),
        };
    }
    icm::testimage::synthetic(768, 512, 1)
}

fn bench(c: &mut Criterion) {
    let model = load_model();
    let img = load_image();
    let opts = EncodeOptions::default();
    let stream = encode(&img, &model, &opts).expect("encode");
    let mut g = c.benchmark_group("768x512");
    g.sample_size(10);
    g.bench_function("encode", |b| {
        b.iter(|| encode(black_box(&img), &model, &opts))
    });
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&stream), &model)));
    g.bench_function("decode_latents", |b| {
        b.iter(|| decode_latents(black_box(&stream), &model))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
