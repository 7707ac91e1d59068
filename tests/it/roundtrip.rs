//! Encode -> decode round trips with seeded models (spec 3, 12).

use icm::codec::{decode, decode_latents, encode, EncodeOptions, RgbImage};
use icm::model::{
    build_model_file, random_float_export, seeded_model, BuildOptions, Model, SMALL_WIDTHS,
};
use std::sync::OnceLock;

fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| seeded_model(1, SMALL_WIDTHS, "test-seed1", Some(1)).expect("seeded model"))
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
    let bytes = encode(
        &img,
        model(),
        &EncodeOptions {
            tile: (tile, tile),
            ..EncodeOptions::default()
        },
    )
    .expect("encode");
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
fn kodak_size_round_trip() {
    round_trip(768, 512, 1024);
}

#[test]
fn large_image_with_default_tiles_round_trips() {
    // 3000x2000 with the default 1024x1024 tiles: 3 x 2 tiles, partial edge tiles.
    let img = synthetic(3000, 2000);
    let bytes = encode(&img, model(), &EncodeOptions::default()).expect("encode");
    let info = icm::container::parse(&bytes).expect("parse");
    assert_eq!(info.tiles.len(), 6);
    let dec = decode(&bytes, model()).expect("decode");
    assert_eq!((dec.image.width, dec.image.height), (3000, 2000));
    // Tiles are independent: the middle tile of the bottom row, coded as an image of its
    // own, must reconstruct to exactly the same pixels at its place in the big image.
    let (x0, y0, w, h) = (1024u32, 1024u32, 1024u32, 976u32);
    let mut crop = RgbImage::new(w, h);
    for y in 0..h {
        let src = (((y0 + y) * 3000 + x0) * 3) as usize;
        let dst = (y * w * 3) as usize;
        crop.data[dst..dst + (w * 3) as usize]
            .copy_from_slice(&img.data[src..src + (w * 3) as usize]);
    }
    let crop_dec = decode(
        &encode(&crop, model(), &EncodeOptions::default()).expect("encode"),
        model(),
    )
    .expect("decode");
    for y in 0..h {
        let big = (((y0 + y) * 3000 + x0) * 3) as usize;
        let small = (y * w * 3) as usize;
        assert_eq!(
            &dec.image.data[big..big + (w * 3) as usize],
            &crop_dec.image.data[small..small + (w * 3) as usize],
            "row {y}"
        );
    }
}

#[test]
fn latents_do_not_depend_on_thread_count() {
    let img = synthetic(300, 200);
    let bytes = encode(
        &img,
        model(),
        &EncodeOptions {
            tile: (128, 128),
            ..EncodeOptions::default()
        },
    )
    .expect("encode");
    let run = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool")
            .install(|| decode_latents(&bytes, model()).expect("decode"))
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn other_model_is_refused() {
    let img = synthetic(40, 40);
    let bytes = encode(&img, model(), &EncodeOptions::default()).expect("encode");
    let other = build_model_file(
        &random_float_export(2, (16, 24, [16, 16, 16])),
        &BuildOptions {
            name: "test-seed1".into(),
            ..Default::default()
        },
    )
    .expect("build");
    let other = Model::from_bytes(&other).expect("load");
    let err = decode(&bytes, &other).expect_err("must refuse");
    assert!(err.to_string().contains("stream needs model"), "{err}");
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
