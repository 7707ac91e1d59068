//! Encode and decode of one 768x512 image (criterion).
//!
//! Uses the default zoo model when `models/` has it, else a seeded model of the same
//! architecture (speed does not depend on the weight values, only the entropy-coding
//! share does a little). The image is Kodak kodim01 when `../shared` is present, else a
//! synthetic image of the same size. `cargo bench --bench codec`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use icm::codec::{decode, decode_latents, encode, EncodeOptions};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let model = common::load_model(4);
    let img = common::load_image("kodim01");
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
