//! The normative decoding stages of one 768x512 image (criterion): rANS decoding of y^
//! (spec 8.7), the integer hyper-synthesis h_s (spec 9), and both with the container
//! (`decode_latents`). Model and image as in `benches/codec.rs`: zoo model q3 and Kodak
//! kodim23 when present, else a seeded model and a synthetic image.
//! `cargo bench --bench entropy`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use icm::codec::{decode_latents, encode, EncodeOptions};
use icm::container;
use icm::entropy::{decode_value, AnsDecoder};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let model = common::load_model(3);
    let img = common::load_image("kodim23");
    let stream = encode(&img, &model, &EncodeOptions::default()).expect("encode");
    let latents = decode_latents(&stream, &model).expect("decode");
    let tile = &latents.tiles[0];
    let (_, hz, wz) = tile.z_shape;
    let hs = model.h_s.run(&tile.z, hz, wz).expect("h_s");
    let parsed = container::parse(&stream).expect("parse");
    let y_payload = parsed.tiles[0].y;

    let mut g = c.benchmark_group("normative_768x512");
    g.sample_size(20);
    g.throughput(Throughput::Elements(hs.mean.len() as u64));
    g.bench_function("y_entropy_decoding", |b| {
        b.iter(|| {
            let mut dec = AnsDecoder::new(black_box(y_payload)).expect("payload");
            let mut sum = 0i64;
            for &idx in &hs.scale_index {
                let (offset, table) = &model.y_tables[usize::from(idx)];
                sum += i64::from(
                    decode_value(&mut dec, table, *offset, &model.uniform).expect("value"),
                );
            }
            dec.finish().expect("end");
            sum
        })
    });
    g.finish();
    let mut g = c.benchmark_group("normative_768x512");
    g.sample_size(20);
    g.bench_function("h_s", |b| {
        b.iter(|| model.h_s.run(black_box(&tile.z), hz, wz))
    });
    g.bench_function("decode_latents", |b| {
        b.iter(|| decode_latents(black_box(&stream), &model))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
