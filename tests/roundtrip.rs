//! Encode -> decode round trips with seeded models (spec 3, 12).

use icm::codec::{decode, decode_latents, encode, EncodeOptions, RgbImage};
use icm::model::{build_model_file, random_float_export, BuildOptions, Model};
use std::sync::OnceLock;

fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let export = random_float_export(1, (16, 24, [16, 16, 16]));
        let bytes = build_model_file(
            &export,
            &BuildOptions {
                name: "test-seed1".into(),
                quality: Some(1),
                ..Default::default()
            },
        )
        .expect("build");
        Model::from_bytes(&bytes).expect("load")
    })
}

/// A smooth synthetic image with an edge, deterministic.
fn synthetic(width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    for y in 0..height {
        for x in 0..width {
            let i = ((y * width + x) * 3) as usize;
            img.data[i] = ((x * 255) / width.max(1)) as u8;
            img.data[i + 1] = ((y * 255) / height.max(1)) as u8;
            img.data[i + 2] = if (x / 8 + y / 8) % 2 == 0 { 200 } else { 40 };
        }
    }
    img
}

fn round_trip(width: u32, height: u32, tile: u32) {
    let img = synthetic(width, height);
    let bytes = encode(&img, model(), &EncodeOptions { tile: (tile, tile) }).expect("encode");
    let dec = decode(&bytes, model()).expect("decode");
    assert_eq!((dec.image.width, dec.image.height), (width, height));
    let lat = decode_latents(&bytes, model()).expect("latents");
    assert_eq!(lat, dec.latents);
}

#[test]
fn sizes_round_trip() {
    for (w, h) in [(1, 1), (17, 33), (1, 70), (70, 1), (130, 65)] {
        round_trip(w, h, 1024);
    }
}

#[test]
fn tiles_round_trip() {
    round_trip(200, 140, 64);
}

#[test]
fn model_file_is_deterministic() {
    let export = random_float_export(1, (16, 24, [16, 16, 16]));
    let opts = BuildOptions {
        name: "x".into(),
        ..Default::default()
    };
    assert_eq!(
        build_model_file(&export, &opts).unwrap(),
        build_model_file(&export, &opts).unwrap()
    );
}
