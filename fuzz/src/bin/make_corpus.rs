//! Writes the seed corpora of both fuzz targets: small valid streams encoded with the
//! seeded model of [`icm_fuzz::model`], plus a few variants (optional chunk, several
//! tiles, tile checksums). Run from `fuzz/`: `cargo run --release --bin make_corpus`.

use icm::codec::{encode, EncodeOptions, RgbImage, StepField, Steps};
use std::path::Path;

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

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let model = icm_fuzz::model();
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for (w, h, tile) in [(1, 1, 1024), (17, 33, 1024), (70, 1, 1024), (130, 65, 64)] {
        let bytes = encode(
            &synthetic(w, h),
            model,
            // 1.0 streams: mutations reach the entropy decoder instead of the checksums
            &EncodeOptions {
                tile: (tile, tile),
                checksums: false,
                ..EncodeOptions::default()
            },
        )
        .expect("encode");
        seeds.push((format!("{w}x{h}_t{tile}.icm"), bytes));
    }
    // One 1.1 stream with a tsum chunk after each of its 6 tiles (spec 4.5).
    let summed = encode(
        &synthetic(130, 65),
        model,
        &EncodeOptions {
            tile: (64, 64),
            checksums: true,
            ..EncodeOptions::default()
        },
    )
    .expect("encode");
    seeds.push(("130x65_t64_tsum.icm".into(), summed));
    // Two 1.3 streams with STEP chunks (spec 4.6): one step per tile, and two steps in
    // blocks of 2x2 positions with an index payload.
    let cells = |w: u32| w.div_ceil(64) as usize * 4;
    for (name, steps) in [
        ("130x65_t64_step.icm", Steps::Uniform(384)),
        (
            "130x65_t64_stepmap.icm",
            Steps::Field(StepField {
                cols: cells(130),
                rows: cells(65),
                steps: (0..cells(130) * cells(65))
                    .map(|p| if p % 3 == 0 { 256 } else { 640 })
                    .collect(),
                block_log2: 1,
            }),
        ),
    ] {
        let bytes = encode(
            &synthetic(130, 65),
            model,
            &EncodeOptions {
                tile: (64, 64),
                checksums: false,
                steps,
                ..EncodeOptions::default()
            },
        )
        .expect("encode");
        seeds.push((name.into(), bytes));
    }
    // The 1x1 stream with an optional chunk before IEND (spec 4.2).
    let mut meta = seeds[0].1.clone();
    let at = meta.len() - 8;
    let mut chunk = b"meta".to_vec();
    chunk.extend_from_slice(&4u32.to_le_bytes());
    chunk.extend_from_slice(b"seed");
    meta.splice(at..at, chunk);
    seeds.push(("1x1_meta.icm".into(), meta));

    let dir = root.join("fuzz_model");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for seed in [1, 2] {
        let bytes = icm_fuzz::tiny_model_file(seed);
        icm_fuzz::fuzz_model(&bytes);
        std::fs::write(dir.join(format!("tiny-{seed}.safetensors")), &bytes).expect("write");
        println!(
            "{}/tiny-{seed}.safetensors: {} bytes",
            dir.display(),
            bytes.len()
        );
    }

    for target in ["fuzz_container", "fuzz_decode"] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, bytes) in &seeds {
            assert!(bytes.len() < 20 * 1024, "{name} is {} bytes", bytes.len());
            icm_fuzz::fuzz_container(bytes);
            icm_fuzz::fuzz_decode(bytes);
            std::fs::write(dir.join(name), bytes).expect("write");
            println!("{}/{name}: {} bytes", dir.display(), bytes.len());
        }
    }
}
