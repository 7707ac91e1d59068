//! Regenerates the determinism vectors: `cargo run --release --example make_vectors`.
//!
//! Writes `conformance/models/test-seed1-small.safetensors` (a seeded model built through
//! the same path as trained weights), streams of synthetic images under `bitstreams/`, and
//! `conformance/vectors.json` with the SHA-256 of each stream's decoded latents (Annex A).

use icm::codec::{decode_latents, encode, EncodeOptions};
use icm::model::{build_model_file, random_float_export, BuildOptions, Model};
use icm::testimage::synthetic;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let export = random_float_export(1, (16, 24, [16, 16, 16]));
    let model_bytes = build_model_file(
        &export,
        &BuildOptions {
            name: "test-seed1-small".into(),
            quality: Some(1),
            ..Default::default()
        },
    )?;
    std::fs::write(
        "conformance/models/test-seed1-small.safetensors",
        &model_bytes,
    )?;
    let model = Model::from_bytes(&model_bytes)?;
    let cases: [(&str, u32, u32, u32, &str); 6] = [
        ("v1-1x1", 1, 1, 1024, "smallest image"),
        (
            "v1-17x33",
            17,
            33,
            1024,
            "odd size, padding in both directions",
        ),
        (
            "v1-1x70",
            1,
            70,
            1024,
            "one column, two rows of hyperlatents",
        ),
        ("v1-70x1", 70, 1, 1024, "one row"),
        (
            "v1-200x140-tiles64",
            200,
            140,
            64,
            "12 tiles of 64x64 with partial edge tiles",
        ),
        ("v1-768x512", 768, 512, 1024, "Kodak-sized single tile"),
    ];
    let mut records = Vec::new();
    for (i, (name, w, h, tile, what)) in cases.iter().enumerate() {
        let img = synthetic(*w, *h, i as u64 + 1);
        let stream = encode(
            &img,
            &model,
            &EncodeOptions {
                tile: (*tile, *tile),
            },
        )?;
        let file = format!("bitstreams/{name}.icm");
        std::fs::write(&file, &stream)?;
        let latents = decode_latents(&stream, &model)?;
        records.push(serde_json::json!({
            "name": name,
            "stream": file,
            "model": "conformance/models/test-seed1-small.safetensors",
            "exercises": what,
            "width": w,
            "height": h,
            "bytes": stream.len(),
            "latents_sha256": latents.sha256_hex(),
        }));
        println!(
            "{file}: {} bytes, latents {}",
            stream.len(),
            latents.sha256_hex()
        );
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({ "vectors": records }))?;
    std::fs::write("conformance/vectors.json", json + "\n")?;
    Ok(())
}
