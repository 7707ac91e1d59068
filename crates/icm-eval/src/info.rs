//! What `icm info --json` and the Python package's `icm.info` report about a stream: its
//! header, tiling, model and size, without decoding it.

use icm::container::Stream;
use serde_json::{json, Value};

/// The summary of a parsed stream as one JSON object: version, profile, level, size,
/// tiling and the bytes of each tile, the model's name and SHA-256, bits per pixel, the
/// optional chunks skipped and the tiles whose checksum was verified (spec 4.5).
pub fn stream_info(stream: &Stream<'_>) -> Value {
    let h = &stream.header;
    let tiling = h.tiling();
    let bpp = stream.bytes as f64 * 8.0 / (f64::from(h.width) * f64::from(h.height));
    let tile_bytes: Vec<usize> = stream.tiles.iter().map(|t| t.z.len() + t.y.len()).collect();
    let skipped: Vec<String> = stream
        .skipped
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    // The STEP chunks (spec 4.6): per tile with one, its block size and palette of steps.
    let step_maps: Vec<Value> = stream
        .tiles
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.steps.as_ref().map(|c| {
                json!({
                    "tile": i,
                    "block_log2": c.block_log2,
                    "steps": c.steps.iter().map(|&d| f64::from(d) / 256.0).collect::<Vec<_>>(),
                })
            })
        })
        .collect();
    json!({
        "version": format!("{}.{}", h.major, h.minor),
        "major_version": h.major,
        "minor_version": h.minor,
        "profile": h.profile,
        "profile_name": "Main",
        "level": h.level,
        "width": h.width,
        "height": h.height,
        "colour_format": "rgb8",
        "tile_width": h.tile_width,
        "tile_height": h.tile_height,
        "tiles": tiling.count(),
        "tile_columns": tiling.columns(),
        "tile_rows": tiling.rows(),
        "tile_bytes": tile_bytes,
        "model": h.model_name,
        "model_sha256": h.model_sha256_hex(),
        "quality": h.quality,
        "bytes": stream.bytes,
        "bpp": bpp,
        "skipped_chunks": skipped,
        "verified_tiles": stream.verified_tiles,
        "step_maps": step_maps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use icm::codec::{encode, EncodeOptions, RgbImage};
    use icm::model::{seeded_model, SMALL_WIDTHS};

    #[test]
    fn summarises_header_tiling_and_size() {
        let model = seeded_model(1, SMALL_WIDTHS, "info-test", None).expect("model");
        let img = RgbImage::new(100, 70);
        let opts = EncodeOptions {
            tile: (64, 64),
            ..EncodeOptions::default()
        };
        let bytes = encode(&img, &model, &opts).expect("encode");
        let stream = icm::container::parse(&bytes).expect("parse");
        let v = stream_info(&stream);
        assert_eq!(v["width"], 100);
        assert_eq!(v["height"], 70);
        assert_eq!(v["tiles"], 4);
        assert_eq!(v["tile_columns"], 2);
        assert_eq!(v["tile_bytes"].as_array().map(Vec::len), Some(4));
        assert_eq!(v["model"], model.name.as_str());
        assert_eq!(v["model_sha256"], model.sha256_hex());
        assert_eq!(v["bytes"], bytes.len());
        assert_eq!(v["step_maps"], json!([]));
        let stepped = EncodeOptions {
            steps: icm::codec::Steps::Uniform(384),
            ..opts
        };
        let bytes = encode(&img, &model, &stepped).expect("encode");
        let v = stream_info(&icm::container::parse(&bytes).expect("parse"));
        assert_eq!(v["minor_version"], 3);
        assert_eq!(
            v["step_maps"][3],
            json!({"tile": 3, "block_log2": 7, "steps": [1.5]})
        );
    }
}
