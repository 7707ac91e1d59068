//! Shared pieces of the fuzz targets: the seeded model (the same one `tests/it/robustness.rs`
//! and `tests/it/roundtrip.rs` build) and the decode harness.

use icm::codec::{decode, RgbImage};
use icm::container;
use icm::model::{seeded_model, Model, SMALL_WIDTHS};
use std::sync::OnceLock;

/// Largest image the decode target synthesises. A header may legally describe a large
/// image whose tiles have empty ANS payloads (a valid all-zero tile), which costs seconds
/// per input; larger streams are only parsed, so executions stay fast and memory bounded.
pub const MAX_DECODE_PIXELS: u64 = 1 << 16;

/// The small seeded model, built once per process.
pub fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| seeded_model(1, SMALL_WIDTHS, "test-seed1", Some(1)).expect("seeded model"))
}

/// Container target: parse, and check the invariants of an accepted stream.
pub fn fuzz_container(data: &[u8]) {
    if let Ok(stream) = container::parse(data) {
        let tiling = stream.header.tiling();
        assert_eq!(stream.tiles.len(), tiling.count());
        assert_eq!(stream.bytes, data.len());
        for (i, t) in stream.tiles.iter().enumerate() {
            let r = tiling.tile(i);
            assert!(r.x < tiling.width && r.y < tiling.height);
            assert!(t.offset < data.len());
        }
        // Re-serialising the tiles reproduces the stream minus its optional chunks (with
        // the tile checksums when every tile had one).
        let all_or_none = stream.verified_tiles == 0 || stream.verified_tiles == stream.tiles.len();
        if stream.skipped.is_empty() && all_or_none {
            let tiles: Vec<_> = stream.tiles.iter().map(|t| t.to_coded()).collect();
            let checksums = stream.verified_tiles > 0;
            assert_eq!(container::write(&stream.header, &tiles, checksums), data);
        }
    }
}

/// Decode target: full decode (latents and reconstruction) of small images.
pub fn fuzz_decode(data: &[u8]) {
    let Ok(stream) = container::parse(data) else {
        assert!(decode(data, model()).is_err());
        return;
    };
    let (w, h) = (stream.header.width, stream.header.height);
    if u64::from(w) * u64::from(h) > MAX_DECODE_PIXELS {
        return;
    }
    if let Ok(d) = decode(data, model()) {
        let RgbImage {
            width,
            height,
            data: pixels,
        } = d.image;
        assert_eq!((width, height), (w, h));
        assert_eq!(pixels.len(), w as usize * h as usize * 3);
        assert_eq!(d.latents.tiles.len(), stream.tiles.len());
    }
}

/// Largest coefficient storage (8x8 blocks) the JPEG target lets a header ask for: 2^18
/// blocks are 32 MiB, so executions stay fast and memory bounded.
pub const MAX_JPEG_BLOCKS: u64 = 1 << 18;

/// Largest frequency tensor the JPEG target lets a file ask for: 64 MiB.
pub const MAX_JPEG_TENSOR_BYTES: u64 = 1 << 26;

/// JPEG target: DCT coefficients of arbitrary bytes (`icm_eval::jpeg`), strict and lenient,
/// and the invariants of an accepted file: block grids of T.81 A.1.1, storage sizes, the
/// Annex B tensor shape; a file strict mode accepts is read the same way in lenient mode.
pub fn fuzz_jpeg(data: &[u8]) {
    use icm_eval::jpeg::{decode_coefficients, DecodeOptions};
    let strict = DecodeOptions {
        max_blocks: MAX_JPEG_BLOCKS,
        max_scans: 64,
        max_tensor_bytes: MAX_JPEG_TENSOR_BYTES,
        lenient: false,
    };
    let lenient = DecodeOptions {
        lenient: true,
        ..strict
    };
    let s = decode_coefficients(data, &strict);
    let l = decode_coefficients(data, &lenient);
    if let (Ok(s), Ok(l)) = (&s, &l) {
        assert_eq!(s.components, l.components, "strict and lenient differ");
    }
    for c in [s, l].into_iter().flatten() {
        check_coefficients(&c);
    }
}

fn check_coefficients(c: &icm_eval::jpeg::Coefficients) {
    use icm_eval::jpeg::channels::{frequency_tensor, TensorLayout};
    assert!(c.width > 0 && c.height > 0);
    assert!(!c.components.is_empty() && c.components.len() <= 4);
    for comp in &c.components {
        let (h, v) = (u64::from(comp.h), u64::from(comp.v));
        let w = (u64::from(c.width) * h).div_ceil(u64::from(c.hmax));
        let hh = (u64::from(c.height) * v).div_ceil(u64::from(c.vmax));
        assert_eq!(comp.blocks_w as u64, w.div_ceil(8));
        assert_eq!(comp.blocks_h as u64, hh.div_ceil(8));
        assert_eq!(comp.coefs.len(), comp.blocks_w * comp.blocks_h * 64);
    }
    let channels: Vec<usize> = (0..c.components.len() * 64).collect();
    let grid = u64::from(c.height.div_ceil(8)) * u64::from(c.width.div_ceil(8));
    let bytes = channels.len() as u64 * grid * 4;
    let Ok((shape, values)) = frequency_tensor(
        c,
        &channels,
        true,
        TensorLayout::Chw,
        MAX_JPEG_TENSOR_BYTES,
    ) else {
        // refused only when over the limit, and then before allocating
        assert!(bytes > MAX_JPEG_TENSOR_BYTES);
        return;
    };
    assert_eq!(
        shape,
        vec![
            channels.len(),
            c.height.div_ceil(8) as usize,
            c.width.div_ceil(8) as usize
        ]
    );
    assert_eq!(values.len(), shape.iter().product::<usize>());
}

/// Model-file target: a model directory is input too (issue 20). Any bytes given to
/// [`Model::from_bytes`] (safetensors parsing, the validation of spec 7.5, the frequency
/// tables, the integer h_s) return a model or an error, never panic; an accepted model
/// reports consistent channel counts.
pub fn fuzz_model(data: &[u8]) {
    let Ok(m) = Model::from_bytes(data) else {
        return;
    };
    assert!(m.latent_channels() > 0 && m.hyper_channels() > 0);
    assert_eq!(m.sha256_hex().len(), 64);
}

/// A tiny seeded model file (a few KB) for the model target's seed corpus.
pub fn tiny_model_file(seed: u64) -> Vec<u8> {
    let export = icm::model::random_float_export(seed, (2, 4, [2, 2, 2]));
    icm::model::build_model_file(
        &export,
        &icm::model::BuildOptions {
            name: format!("tiny-{seed}"),
            quality: Some(1),
            extra: Default::default(),
        },
    )
    .expect("tiny model")
}
