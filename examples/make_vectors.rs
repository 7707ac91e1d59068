//! Regenerates the conformance suite: `cargo run --release --example make_vectors`.
//!
//! Writes, from inputs the project makes itself (synthetic images, a seeded model):
//! - `conformance/models/test-seed1-small.safetensors`: a seeded model built through the
//!   same path as trained weights (small, so vectors stay small);
//! - `bitstreams/*.icm`: decodable vectors (`v1-*`) and must-fail vectors (`x-*`);
//! - `conformance/reference/*.png`: reference reconstructions of the decodable vectors;
//! - `conformance/vectors.json`: the records (expected latent hash or error class);
//! - `conformance/README.md`: the table of what each vector is for.
//!
//! Changing anything normative changes these files: bump the version as spec 14 says.

use icm::codec::{decode, encode, EncodeOptions, RgbImage, StepField, StepMap, Steps};
use icm::container;
use icm::model::{build_model_file, random_float_export, BuildOptions, Model};
use icm::testimage::synthetic;
use icm_import::compressai::{self, CompressaiArch, ImportOptions};
use icm_import::seeded::seeded_state_dict;
use serde_json::{json, Value};
use std::fmt::Write as _;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A synthetic-image vector: name, width, height, tile size, purpose, spec sections.
type Geometry = (
    &'static str,
    u32,
    u32,
    (u32, u32),
    &'static str,
    &'static [&'static str],
);

const SMALL: &str = "conformance/models/test-seed1-small.safetensors";

struct Suite {
    records: Vec<Value>,
}

fn write_png(path: &str, img: &RgbImage) -> Res<()> {
    let buf =
        image::RgbImage::from_raw(img.width, img.height, img.data.clone()).ok_or("image size")?;
    buf.save_with_format(path, image::ImageFormat::Png)?;
    Ok(())
}

/// Counts values coded with the escape (spec 8.5) in a decoded stream.
fn escapes(model: &Model, stream: &[u8]) -> Res<(usize, usize)> {
    let d = decode(stream, model)?;
    let info = container::parse(stream)?;
    let (mut ez, mut ey) = (0, 0);
    for (i, t) in d.latents.tiles.iter().enumerate() {
        let (n, hz, wz) = t.z_shape;
        for c in 0..n {
            let (off, table) = &model.z_tables[c];
            for &v in &t.z[c * hz * wz..(c + 1) * hz * wz] {
                let s = i64::from(v) - i64::from(*off);
                if s < 0 || s + 1 >= table.len() as i64 {
                    ez += 1;
                }
            }
        }
        let (_, hy, wy) = t.y_shape;
        let steps = match &info.tiles[i].steps {
            Some(chunk) => StepMap::decode(chunk, hy, wy)?.steps(hy, wy),
            None => vec![256; hy * wy],
        };
        let hs = model.h_s.run_with_steps(&t.z, hz, wz, Some(&steps))?;
        for (k, ((&y, &idx), &mean)) in t.y.iter().zip(&hs.scale_index).zip(&hs.mean).enumerate() {
            let q = (y - mean) / i32::from(steps[k % (hy * wy)]);
            let r = -model.y_tables[usize::from(idx)].0;
            if q < -r || q > r {
                ey += 1;
            }
        }
    }
    Ok((ez, ey))
}

impl Suite {
    fn decodable(
        &mut self,
        name: &str,
        model_path: &str,
        stream: &[u8],
        exercises: &str,
        sections: &[&str],
    ) -> Res<()> {
        let model = Model::from_path(std::path::Path::new(model_path))?;
        let file = format!("bitstreams/{name}.icm");
        std::fs::write(&file, stream)?;
        let d = decode(stream, &model)?;
        let reference = format!("conformance/reference/{name}.png");
        write_png(&reference, &d.image)?;
        let (ez, ey) = escapes(&model, stream)?;
        let info = container::parse(stream)?;
        println!("{file}: {} bytes, escapes z {ez} y {ey}", stream.len());
        self.records.push(json!({
            "name": name,
            "stream": file,
            "model": model_path,
            "exercises": exercises,
            "sections": sections,
            "profile": info.header.profile,
            "level": info.header.level,
            "version": format!("{}.{}", info.header.major, info.header.minor),
            "width": info.header.width,
            "height": info.header.height,
            "tiles": info.tiles.len(),
            "bytes": stream.len(),
            "escapes": {"z": ez, "y": ey},
            "latents_sha256": d.latents.sha256_hex(),
            "reference": reference,
            "tolerance": "every sample within 2 of the reference, PSNR >= 50 dB (spec 11.3)",
        }));
        Ok(())
    }

    /// A must-fail model vector: a valid stream with a model file that fails spec 7.5.
    fn failing_model(
        &mut self,
        name: &str,
        stream_file: &str,
        model_bytes: &[u8],
        exercises: &str,
        sections: &[&str],
    ) -> Res<()> {
        let class = match Model::from_bytes(model_bytes) {
            Err(e) => e.class().ok_or("model error without a class")?,
            Ok(_) => return Err(format!("{name}: the model loads but must fail").into()),
        };
        let file = format!("conformance/models/{name}.safetensors");
        std::fs::write(&file, model_bytes)?;
        println!("{file}: {} bytes, fails with {class}", model_bytes.len());
        self.records.push(json!({
            "name": name,
            "stream": stream_file,
            "model": file,
            "exercises": exercises,
            "sections": sections,
            "bytes": std::fs::metadata(stream_file)?.len(),
            "error_class": class,
        }));
        Ok(())
    }

    fn failing(
        &mut self,
        name: &str,
        stream: &[u8],
        exercises: &str,
        sections: &[&str],
        model: &Model,
    ) -> Res<()> {
        let class = match decode(stream, model) {
            Err(e) => e.class(),
            Ok(_) => return Err(format!("{name} decodes but must fail").into()),
        };
        let file = format!("bitstreams/{name}.icm");
        std::fs::write(&file, stream)?;
        println!("{file}: {} bytes, fails with {class}", stream.len());
        self.records.push(json!({
            "name": name,
            "stream": file,
            "model": SMALL,
            "exercises": exercises,
            "sections": sections,
            "bytes": stream.len(),
            "error_class": class,
        }));
        Ok(())
    }
}

/// Byte offset of the first chunk (spec 4.1).
fn chunks_start(stream: &[u8]) -> usize {
    59 + usize::from(stream[26])
}

/// Offsets of every chunk: (offset, type, length).
fn chunk_list(stream: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut p = chunks_start(stream);
    while p + 8 <= stream.len() {
        let kind: [u8; 4] = [stream[p], stream[p + 1], stream[p + 2], stream[p + 3]];
        let len = u32::from_le_bytes([stream[p + 4], stream[p + 5], stream[p + 6], stream[p + 7]])
            as usize;
        out.push((p, kind, len));
        p += 8 + len;
    }
    out
}

fn with_chunk_before_first_tile(stream: &[u8], kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let at = chunks_start(stream);
    let mut s = stream[..at].to_vec();
    s.extend_from_slice(kind);
    s.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    s.extend_from_slice(payload);
    s.extend_from_slice(&stream[at..]);
    s
}

/// `stream` with the payload of the chunk at `at` (from [`chunk_list`]) replaced.
fn with_chunk_payload(stream: &[u8], at: usize, payload: &[u8]) -> Vec<u8> {
    let len = u32::from_le_bytes([
        stream[at + 4],
        stream[at + 5],
        stream[at + 6],
        stream[at + 7],
    ]) as usize;
    let mut s = stream[..at + 4].to_vec();
    s.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    s.extend_from_slice(payload);
    s.extend_from_slice(&stream[at + 8 + len..]);
    s
}

/// `width x height` cells of steps, `step(row, col)` each (spec 12.7's field).
fn field(width: u32, height: u32, block_log2: u8, step: impl Fn(usize, usize) -> u16) -> Steps {
    let cols = width.div_ceil(64) as usize * 4;
    let rows = height.div_ceil(64) as usize * 4;
    Steps::Field(StepField {
        cols,
        rows,
        steps: (0..rows * cols).map(|p| step(p / cols, p % cols)).collect(),
        block_log2,
    })
}

/// A safetensors file taken apart: its JSON header and data section.
struct ModelFile {
    header: serde_json::Map<String, Value>,
    data: Vec<u8>,
}

impl ModelFile {
    fn parse(bytes: &[u8]) -> Res<Self> {
        let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
        let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n])?;
        Ok(Self {
            header,
            data: bytes[8 + n..].to_vec(),
        })
    }

    /// The bytes of tensor `name`.
    fn tensor(&self, name: &str) -> Res<&[u8]> {
        let o = &self.header.get(name).ok_or(name.to_string())?["data_offsets"];
        let (a, b) = (
            o[0].as_u64().ok_or("offset")? as usize,
            o[1].as_u64().ok_or("offset")? as usize,
        );
        Ok(&self.data[a..b])
    }

    /// Replaces (or adds, or with `None` removes) a tensor and lays the data out again, in
    /// name order, as a valid safetensors file would.
    fn set(&mut self, name: &str, tensor: Option<(&str, Vec<usize>, Vec<u8>)>) -> Res<()> {
        let mut tensors: Vec<(String, Value, Vec<u8>)> = Vec::new();
        for (k, v) in &self.header {
            if k != "__metadata__" && k != name {
                tensors.push((k.clone(), v.clone(), self.tensor(k)?.to_vec()));
            }
        }
        if let Some((dtype, shape, bytes)) = tensor {
            tensors.push((
                name.to_string(),
                json!({"dtype": dtype, "shape": shape}),
                bytes,
            ));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let meta = self.header.get("__metadata__").cloned();
        self.header.clear();
        if let Some(m) = meta {
            self.header.insert("__metadata__".into(), m);
        }
        self.data.clear();
        for (k, mut v, bytes) in tensors {
            v["data_offsets"] = json!([self.data.len(), self.data.len() + bytes.len()]);
            self.data.extend_from_slice(&bytes);
            self.header.insert(k, v);
        }
        Ok(())
    }

    fn bytes(&self) -> Res<Vec<u8>> {
        let h = serde_json::to_vec(&self.header)?;
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(&self.data);
        Ok(out)
    }

    fn shape(&self, name: &str) -> Res<Vec<usize>> {
        let v = self.header.get(name).ok_or(name.to_string())?;
        Ok(v["shape"]
            .as_array()
            .ok_or("shape")?
            .iter()
            .map(|d| d.as_u64().unwrap_or(0) as usize)
            .collect())
    }
}

fn set_u32(s: &mut [u8], at: usize, v: u32) {
    s[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A one-tile stream whose latents are chosen directly rather than by an encoder: z^ and
/// q cycle through the edge values of spec 8.5 and 9.1 (table ends, first escaped values,
/// the largest escapes, values clipped at the input of h_s).
fn latent_stream(model: &Model, width: u32, height: u32) -> Res<Vec<u8>> {
    use icm::container::{Header, COLOUR_RGB8, MAJOR_VERSION, PROFILE_MAIN};
    use icm::entropy::SymbolWriter;
    let header = Header {
        major: MAJOR_VERSION,
        minor: 0, // a 1.0 stream (no tile checksums)
        profile: PROFILE_MAIN,
        level: 1,
        width,
        height,
        tile_width: width.div_ceil(64) * 64,
        tile_height: height.div_ceil(64) * 64,
        colour_format: COLOUR_RGB8,
        quality: model.quality,
        model_name: model.name.clone(),
        model_sha256: model.sha256,
    };
    let rect = header.tiling().tile(0);
    let (hz, wz) = rect.hyper_size();
    let limit = 65_535;
    let mut z = Vec::new();
    let mut zw = SymbolWriter::new();
    for (c, (off, table)) in model.z_tables.iter().enumerate() {
        let last = off + table.len() as i32 - 2;
        let cycle = [
            -limit,
            limit,
            127,
            128,
            -128,
            -129,
            *off,
            last,
            off - 1,
            last + 1,
            0,
            1000,
        ];
        for p in 0..hz * wz {
            let v = cycle[(c + p) % cycle.len()];
            z.push(v);
            zw.push_value(table, *off, v, &model.uniform)?;
        }
    }
    let hs = model.h_s.run(&z, hz, wz)?;
    let mut yw = SymbolWriter::new();
    for (i, &idx) in hs.scale_index.iter().enumerate() {
        let (off, table) = &model.y_tables[usize::from(idx)];
        let r = -off;
        let cycle = [0, r, -r, r + 1, -r - 1, limit, -limit, 1, -1, 2 * r + 3];
        yw.push_value(table, *off, cycle[i % cycle.len()], &model.uniform)?;
    }
    Ok(container::write(
        &header,
        &[(zw.finish()?, yw.finish()?).into()],
        false,
    ))
}

fn main() -> Res<()> {
    std::fs::create_dir_all("conformance/models")?;
    std::fs::create_dir_all("conformance/reference")?;
    std::fs::create_dir_all("bitstreams")?;
    for dir in ["bitstreams", "conformance/reference"] {
        for e in std::fs::read_dir(dir)? {
            std::fs::remove_file(e?.path())?;
        }
    }
    for e in std::fs::read_dir("conformance/models")? {
        let path = e?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("x-"))
        {
            std::fs::remove_file(path)?;
        }
    }
    let export = random_float_export(1, (16, 24, [16, 16, 16]));
    let opts = BuildOptions {
        name: "test-seed1-small".into(),
        quality: Some(1),
        ..Default::default()
    };
    std::fs::write(SMALL, build_model_file(&export, &opts)?)?;
    let small = Model::from_path(std::path::Path::new(SMALL))?;
    let enc = |img: &RgbImage, model: &Model, tile: (u32, u32)| {
        // The vectors of 1.0 stay 1.0 streams (no tile checksums).
        encode(
            img,
            model,
            &EncodeOptions {
                tile,
                checksums: false,
                ..EncodeOptions::default()
            },
        )
    };
    let mut suite = Suite {
        records: Vec::new(),
    };

    // Decodable vectors with the seeded model.
    let geometry: [Geometry; 7] = [
        (
            "v1-1x1",
            1,
            1,
            (1024, 1024),
            "smallest image; padding to 64x64",
            &["4.1", "5.3"],
        ),
        (
            "v1-17x33",
            17,
            33,
            (1024, 1024),
            "odd size, padding in both directions",
            &["5.3"],
        ),
        (
            "v1-1x70",
            1,
            70,
            (1024, 1024),
            "one column, two hyperlatent rows",
            &["5.3"],
        ),
        (
            "v1-70x1",
            70,
            1,
            (1024, 1024),
            "one row, two hyperlatent columns",
            &["5.3"],
        ),
        (
            "v1-200x140-tiles64",
            200,
            140,
            (64, 64),
            "12 tiles of 64x64 with partial edge tiles",
            &["5.2", "4.3"],
        ),
        (
            "v1-300x130-tiles128x64",
            300,
            130,
            (128, 64),
            "non-square tiles, 3x3 grid",
            &["5.2"],
        ),
        (
            "v1-noise-96x96",
            96,
            96,
            (1024, 1024),
            "noise image: escapes in y and z",
            &["8.5"],
        ),
    ];
    for (i, (name, w, h, tile, what, sections)) in geometry.iter().enumerate() {
        let mut img = synthetic(*w, *h, i as u64 + 1);
        if name.contains("noise") {
            let mut s = 12345u32;
            for v in img.data.iter_mut() {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *v = (s >> 24) as u8;
            }
        }
        let stream = enc(&img, &small, *tile)?;
        suite.decodable(name, SMALL, &stream, what, sections)?;
    }
    let base = enc(&synthetic(17, 33, 2), &small, (1024, 1024))?;
    suite.decodable(
        "v1-optional-chunk",
        SMALL,
        &with_chunk_before_first_tile(&base, b"meta", b"unknown optional data"),
        "unknown optional chunk before the tiles, must be skipped",
        &["4.2"],
    )?;
    let mut minor = with_chunk_before_first_tile(&base, b"xtra", &[1, 2, 3]);
    minor[5] = 1;
    suite.decodable(
        "v1-minor-1",
        SMALL,
        &minor,
        "minor version 1 with an optional chunk: decodes as 1.0",
        &["14", "4.2"],
    )?;
    let wide = enc(&synthetic(32768, 1, 9), &small, (2048, 64))?;
    suite.decodable(
        "v1-level2-32768x1",
        SMALL,
        &wide,
        "largest dimension of level 2, 16 tiles of 2048 (the tile limit)",
        &["6.2", "5.2"],
    )?;
    suite.decodable(
        "v1-edge-values-128x128",
        SMALL,
        &latent_stream(&small, 128, 128)?,
        "chosen latents: table ends, first escaped values, escapes of +-65535, z clipped at the h_s input",
        &["8.5", "9.1", "9.5"],
    )?;
    let zoo3 = Model::from_path(std::path::Path::new("models/icm-psnr-q3.safetensors"))?;
    suite.decodable(
        "v1-edge-values-zoo-q3",
        "models/icm-psnr-q3.safetensors",
        &latent_stream(&zoo3, 130, 70)?,
        "chosen latents with a trained model: escapes, clipping, extreme means",
        &["8.5", "9.1", "9.5"],
    )?;
    // One vector per zoo model.
    for q in 1..=6u8 {
        let path = format!("models/icm-psnr-q{q}.safetensors");
        let model = Model::from_path(std::path::Path::new(&path))?;
        let stream = enc(&synthetic(96, 64, 100 + u64::from(q)), &model, (1024, 1024))?;
        suite.decodable(
            &format!("v1-zoo-q{q}"),
            &path,
            &stream,
            &format!("zoo model icm-psnr-q{q}"),
            &["7", "9"],
        )?;
    }

    // The encoder's rate-distortion search (spec 12.6) makes ordinary streams.
    let zoo1_path = "models/icm-psnr-q1.safetensors";
    let zoo1 = Model::from_path(std::path::Path::new(zoo1_path))?;
    let searched = encode(
        &synthetic(128, 128, 120),
        &zoo1,
        &EncodeOptions {
            tile: (64, 64),
            effort: 1,
            ..EncodeOptions::default()
        },
    )?;
    suite.decodable(
        "v1-1-zoo-q1-effort1",
        zoo1_path,
        &searched,
        "latents chosen by the encoder's search at effort 1 (four tiles of 64, with tsum)",
        &["12.6", "10"],
    )?;

    // Must-fail vectors, derived from a valid stream (spec 13).
    let tiles = enc(&synthetic(200, 140, 5), &small, (64, 64))?;
    let mut f = |name: &str, s: Vec<u8>, what: &str, sections: &[&str]| {
        suite.failing(name, &s, what, sections, &small)
    };
    let mut s = base.clone();
    s[0] = 0x88;
    f(
        "x-bad-magic",
        s,
        "first byte of the magic changed",
        &["4.1", "13"],
    )?;
    let mut s = base.clone();
    s[4] = 2;
    f("x-major-2", s, "unknown major version", &["14"])?;
    let mut s = base.clone();
    s[6] = 1;
    f("x-profile-1", s, "undefined profile", &["6.1"])?;
    let mut s = base.clone();
    s[7] = 9;
    f("x-level-9", s, "undefined level", &["6.2"])?;
    let mut s = base.clone();
    set_u32(&mut s, 8, 9000);
    f("x-width-over-level", s, "width 9000 at level 1", &["6.2"])?;
    let mut s = base.clone();
    set_u32(&mut s, 8, 0);
    f("x-width-0", s, "zero width", &["4.1"])?;
    let mut s = base.clone();
    set_u32(&mut s, 16, 100);
    f(
        "x-tile-width-100",
        s,
        "tile width not a multiple of 64",
        &["5.2"],
    )?;
    let mut s = base.clone();
    s[24] = 1;
    f("x-colour-format-1", s, "undefined colour format", &["4.1"])?;
    let mut s = base.clone();
    s[26] = 0;
    f("x-model-name-empty", s, "model_name_length 0", &["4.1"])?;
    let mut s = base.clone();
    let sha_at = chunks_start(&base) - 32;
    s[sha_at] ^= 1;
    f(
        "x-wrong-model",
        s,
        "model_sha256 of another model",
        &["7.1"],
    )?;
    for cut in [
        3,
        20,
        chunks_start(&base) - 5,
        chunks_start(&base) + 6,
        base.len() - 30,
        base.len() - 8,
        base.len() - 1,
    ] {
        f(
            &format!("x-truncated-{cut}"),
            base[..cut].to_vec(),
            &format!("stream cut after {cut} bytes"),
            &["13", "4"],
        )?;
    }
    let mut s = base.clone();
    let (tile_at, _, _) = chunk_list(&base)[0];
    set_u32(&mut s, tile_at + 4, 0xFFFF_FF00);
    f(
        "x-chunk-length-past-end",
        s,
        "TILE length beyond the end of data",
        &["4.2"],
    )?;
    let mut s = base.clone();
    set_u32(&mut s, tile_at + 12, 0xFFFF_0000);
    f(
        "x-z-length-past-chunk",
        s,
        "z_length beyond the TILE chunk",
        &["4.3"],
    )?;
    f(
        "x-unknown-required-chunk",
        with_chunk_before_first_tile(&base, b"XTRA", &[0; 4]),
        "unknown required chunk",
        &["4.2"],
    )?;
    let mut s = base.clone();
    s.push(0);
    f("x-trailing-data", s, "a byte after IEND", &["4.4"])?;
    let mut s = base.clone();
    s.truncate(base.len() - 8);
    s.extend_from_slice(b"IEND");
    s.extend_from_slice(&4u32.to_le_bytes());
    s.extend_from_slice(&[0; 4]);
    f("x-iend-with-payload", s, "IEND with a payload", &["4.4"])?;
    // Tiles: one missing, one out of order.
    let list = chunk_list(&tiles);
    let (t_last, _, l_last) = list[list.len() - 2];
    let mut s = tiles[..t_last].to_vec();
    s.extend_from_slice(&tiles[t_last + 8 + l_last..]);
    f(
        "x-missing-tile",
        s,
        "11 TILE chunks for 12 tiles",
        &["4.3", "5.2"],
    )?;
    let mut s = tiles.clone();
    set_u32(&mut s, list[0].0 + 8, 1);
    f(
        "x-tile-index",
        s,
        "tile_index out of raster order",
        &["4.3"],
    )?;
    // Entropy payloads.
    let (t0, _, len0) = chunk_list(&base)[0];
    let z_len =
        u32::from_le_bytes([base[t0 + 12], base[t0 + 13], base[t0 + 14], base[t0 + 15]]) as usize;
    let y_start = t0 + 16 + z_len;
    let y_end = t0 + 8 + len0;
    let mut s = base.clone();
    s[(y_start + y_end) / 2] ^= 0x10;
    f(
        "x-corrupt-y",
        s,
        "one bit flipped inside the y payload",
        &["8.4"],
    )?;
    let mut s = base.clone();
    s[t0 + 16 + z_len / 2] ^= 0x01;
    f(
        "x-corrupt-z",
        s,
        "one bit flipped inside the z payload",
        &["8.4"],
    )?;
    let mut s = base.clone();
    set_u32(&mut s, t0 + 12, z_len as u32 + 1);
    f(
        "x-partial-word",
        s,
        "z payload not a whole number of words",
        &["8.2"],
    )?;
    let mut s = base[..y_end].to_vec();
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&base[y_end..]);
    set_u32(&mut s, t0 + 4, (len0 + 4) as u32);
    f(
        "x-zero-last-word",
        s,
        "y payload ending in a zero word",
        &["8.2"],
    )?;
    let mut s = base.clone();
    s.truncate(y_start + 4);
    let mut tail = base[y_start + 4..].to_vec();
    tail.drain(..4.min(tail.len().saturating_sub(8)));
    s.extend_from_slice(&tail);
    set_u32(&mut s, t0 + 4, (len0 - 4) as u32);
    f(
        "x-y-word-missing",
        s,
        "a word removed from the y payload",
        &["8.4"],
    )?;

    // Optional chunks between and after TILE chunks (spec 4.2).
    let mut s = Vec::new();
    let list = chunk_list(&tiles);
    s.extend_from_slice(&tiles[..list[0].0]);
    for (i, &(at, _, len)) in list.iter().enumerate() {
        if i == 5 || i + 1 == list.len() {
            s.extend_from_slice(b"note");
            s.extend_from_slice(&3u32.to_le_bytes());
            s.extend_from_slice(b"abc");
        }
        s.extend_from_slice(&tiles[at..at + 8 + len]);
    }
    suite.decodable(
        "v1-optional-chunks-between-tiles",
        SMALL,
        &s,
        "optional chunks between two TILE chunks and before IEND, skipped",
        &["4.2"],
    )?;

    // Streams with two faults: the first check in the order of spec 13.1 decides.
    let mut f = |name: &str, s: Vec<u8>, what: &str, sections: &[&str]| {
        suite.failing(name, &s, what, sections, &small)
    };
    let mut s = base.clone();
    set_u32(&mut s, 8, 0);
    s.truncate(20);
    f(
        "x-order-width-0-cut-20",
        s,
        "width 0, stream cut at 20 (inside tile_height): width is read whole first",
        &["13.1"],
    )?;
    let mut s = base.clone();
    s[0] = 0;
    s[4] = 2;
    f(
        "x-order-magic-and-major",
        s,
        "bad magic and major version 2",
        &["13.1"],
    )?;
    let mut s = base.clone();
    s[27] = 0xFF;
    f(
        "x-order-name-not-utf8",
        s,
        "model_name not UTF-8 (and so not the model's name)",
        &["4.1", "13"],
    )?;
    let at = chunks_start(&base);
    let mut s = base[..at].to_vec();
    s.extend_from_slice(b"TILE");
    s.extend_from_slice(&4u32.to_le_bytes());
    s.extend_from_slice(&7u32.to_le_bytes());
    s.extend_from_slice(b"IEND");
    s.extend_from_slice(&0u32.to_le_bytes());
    f(
        "x-order-tile-index-in-4-byte-payload",
        s,
        "4-byte TILE payload holding a wrong tile_index: the index is read and checked before z_length",
        &["4.3", "13.1"],
    )?;
    let mut s = base[..at].to_vec();
    s.extend_from_slice(b"TILE");
    s.extend_from_slice(&4u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(b"IEND");
    s.extend_from_slice(&0u32.to_le_bytes());
    f(
        "x-order-tile-payload-ends-in-z-length",
        s,
        "4-byte TILE payload with the right tile_index: z_length cannot be read",
        &["4.3", "13.1"],
    )?;
    let mut s = base[..at].to_vec();
    s.extend_from_slice(b"XTRA");
    s.extend_from_slice(&1000u32.to_le_bytes());
    s.extend_from_slice(&[0; 10]);
    f(
        "x-order-unknown-required-past-end",
        s,
        "unknown required chunk whose length runs past the end: its type is checked first",
        &["4.2", "13.1"],
    )?;
    let mut s = base[..base.len() - 8].to_vec();
    s.extend_from_slice(b"TILE");
    s.extend_from_slice(&1000u32.to_le_bytes());
    s.extend_from_slice(&[0; 6]);
    f(
        "x-order-extra-tile-truncated",
        s,
        "a second TILE chunk for a one-tile stream, cut short: its type is checked first",
        &["4.3", "13.1"],
    )?;
    let list = chunk_list(&tiles);
    let mut s = tiles[..list[3].0].to_vec();
    s.extend_from_slice(b"IEND");
    s.extend_from_slice(&4u32.to_le_bytes());
    s.extend_from_slice(&[0; 4]);
    f(
        "x-order-early-iend-with-payload",
        s,
        "IEND with a payload after 3 of 12 tiles: the tile count is checked at its type",
        &["4.4", "13.1"],
    )?;
    let mut s = base[..base.len() - 8].to_vec();
    s.extend_from_slice(b"IEND");
    s.extend_from_slice(&4u32.to_le_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&[1, 2, 3]);
    f(
        "x-order-iend-payload-and-trailing-data",
        s,
        "IEND with a payload, then trailing bytes",
        &["4.4", "13.1"],
    )?;
    let mut s = base.clone();
    s[chunks_start(&base) - 32] ^= 1;
    s.truncate(base.len() - 20);
    f(
        "x-order-wrong-model-truncated",
        s,
        "model_sha256 of another model and the stream cut inside the TILE chunk: the container is checked before the model",
        &["7.1", "13.1"],
    )?;
    let mut s = base.clone();
    s[chunks_start(&base) - 32] ^= 1;
    s[(y_start + y_end) / 2] ^= 0x10;
    f(
        "x-order-wrong-model-corrupt-y",
        s,
        "model_sha256 of another model and a corrupt y payload: the model is checked before the payloads",
        &["7.1", "13.1"],
    )?;
    let list = chunk_list(&tiles);
    let mut s = tiles.clone();
    let (t0, _, _) = list[0];
    let z0 = u32::from_le_bytes([s[t0 + 12], s[t0 + 13], s[t0 + 14], s[t0 + 15]]);
    set_u32(&mut s, t0 + 12, z0 + 1);
    set_u32(&mut s, list[7].0 + 8, 9);
    f(
        "x-order-corrupt-tile-0-bad-index-tile-7",
        s,
        "tile 0's z payload not whole words, tile 7's tile_index wrong: the container is checked before any payload",
        &["4.3", "8.2", "13.1"],
    )?;

    // Version 1.1: tile checksums (spec 4.5).
    let summed = encode(
        &synthetic(200, 140, 5),
        &small,
        &EncodeOptions {
            tile: (64, 64),
            checksums: true,
            ..EncodeOptions::default()
        },
    )?;
    suite.decodable(
        "v1-1-checksums-tiles64",
        SMALL,
        &summed,
        "version 1.1: 12 tiles, each followed by its tsum chunk",
        &["4.5", "14"],
    )?;
    let mut f = |name: &str, s: Vec<u8>, what: &str, sections: &[&str]| {
        suite.failing(name, &s, what, sections, &small)
    };
    let list = chunk_list(&summed);
    let tiles_at: Vec<_> = list.iter().filter(|c| &c.1 == b"TILE").copied().collect();
    let sums_at: Vec<_> = list.iter().filter(|c| &c.1 == b"tsum").copied().collect();
    let (t4, _, l4) = tiles_at[4];
    let mut s = summed.clone();
    s[t4 + 8 + l4 - 3] ^= 0x04;
    f(
        "x-checksum-y-bit",
        s,
        "one bit flipped in tile 4's y payload of a 1.1 stream",
        &["4.5", "13"],
    )?;
    let mut s = summed.clone();
    s[sums_at[0].0 + 8] ^= 0x80;
    f(
        "x-checksum-stored-bit",
        s,
        "one bit flipped in the stored CRC of tile 0",
        &["4.5"],
    )?;
    let at = chunks_start(&summed);
    let mut s = summed[..at].to_vec();
    s.extend_from_slice(&summed[sums_at[0].0..sums_at[0].0 + 12]);
    s.extend_from_slice(&summed[at..]);
    f(
        "x-checksum-before-tiles",
        s,
        "a tsum chunk before the first TILE chunk",
        &["4.5"],
    )?;
    let mut s = summed.clone();
    let (c0, _, _) = sums_at[0];
    s.splice(c0 + 8..c0 + 8, [0u8; 4]);
    set_u32(&mut s, c0 + 4, 8);
    f(
        "x-checksum-length-8",
        s,
        "a tsum chunk of 8 bytes",
        &["4.5"],
    )?;
    let mut s = summed.clone();
    s[t4 + 8 + l4 - 3] ^= 0x04;
    s.truncate(s.len() - 40);
    f(
        "x-order-checksum-then-truncated",
        s,
        "tile 4 corrupt (checksum) and the stream cut in a later tile: the checksum is read first",
        &["4.5", "13.1"],
    )?;

    // Model files that fail spec 7.5, each with a valid stream.
    let small_bytes = std::fs::read(SMALL)?;
    let stream_file = "bitstreams/v1-17x33.icm";
    let mut m = |name: &str, what: &str, change: &dyn Fn(&mut ModelFile) -> Res<()>| -> Res<()> {
        let mut mf = ModelFile::parse(&small_bytes)?;
        change(&mut mf)?;
        suite.failing_model(name, stream_file, &mf.bytes()?, what, &["7.5", "13.1"])
    };
    m(
        "x-model-hs0-kernel-3",
        "h_s.0.weight with 3x3 kernels",
        &|mf| {
            let sh = mf.shape("h_s.0.weight")?;
            let n = sh[0] * sh[1] * 9;
            let data = mf.tensor("h_s.0.weight")?[..n].to_vec();
            mf.set("h_s.0.weight", Some(("I8", vec![sh[0], sh[1], 3, 3], data)))
        },
    )?;
    m(
        "x-model-hs2-bias-short",
        "h_s.2.bias one entry short",
        &|mf| {
            let sh = mf.shape("h_s.2.bias")?;
            let data = mf.tensor("h_s.2.bias")?[4..].to_vec();
            mf.set("h_s.2.bias", Some(("I32", vec![sh[0] - 1], data)))
        },
    )?;
    m(
        "x-model-hs4-shift-rank-2",
        "h_s.4.shift of shape [2M, 1]",
        &|mf| {
            let sh = mf.shape("h_s.4.shift")?;
            let data = mf.tensor("h_s.4.shift")?.to_vec();
            mf.set("h_s.4.shift", Some(("U8", vec![sh[0], 1], data)))
        },
    )?;
    m(
        "x-model-f64-tensor",
        "an informative tensor of dtype F64 (not one of 7.1)",
        &|mf| {
            mf.set(
                "entropy_bottleneck.quantiles",
                Some(("F64", vec![1], 1.0f64.to_le_bytes().to_vec())),
            )
        },
    )?;
    m(
        "x-model-no-g-s",
        "no g_s tensors (required even by a latents-only decoder)",
        &|mf| {
            let names: Vec<String> = mf
                .header
                .keys()
                .filter(|k| k.starts_with("g_s."))
                .cloned()
                .collect();
            for k in names {
                mf.set(&k, None)?;
            }
            Ok(())
        },
    )?;
    m(
        "x-model-g-s-gamma-rank-1",
        "g_s.1.gamma stored as [C*C]",
        &|mf| {
            let sh = mf.shape("g_s.1.gamma")?;
            let data = mf.tensor("g_s.1.gamma")?.to_vec();
            let dtype = mf.header["g_s.1.gamma"]["dtype"]
                .as_str()
                .unwrap_or("F32")
                .to_string();
            mf.set("g_s.1.gamma", Some((&dtype, vec![sh[0] * sh[1]], data)))
        },
    )?;
    m(
        "x-model-thresholds-not-increasing",
        "y.scale_threshold with two equal values",
        &|mf| {
            let mut data = mf.tensor("y.scale_threshold")?.to_vec();
            let first: [u8; 4] = data[..4].try_into()?;
            data[4..8].copy_from_slice(&first);
            let sh = mf.shape("y.scale_threshold")?;
            mf.set("y.scale_threshold", Some(("I32", sh, data)))
        },
    )?;
    m(
        "x-model-z-table-sum",
        "a z frequency table summing to 2^16 + 1",
        &|mf| {
            let mut data = mf.tensor("z.frequency")?.to_vec();
            let v = u16::from_le_bytes([data[0], data[1]]) + 1;
            data[..2].copy_from_slice(&v.to_le_bytes());
            let sh = mf.shape("z.frequency")?;
            mf.set("z.frequency", Some(("U16", sh, data)))
        },
    )?;
    // Offsets that do not tile the data section: edited in the header after layout.
    let mut raw = |name: &str, what: &str, change: &dyn Fn(&mut ModelFile) -> Res<()>| -> Res<()> {
        let mut mf = ModelFile::parse(&small_bytes)?;
        change(&mut mf)?;
        suite.failing_model(
            name,
            stream_file,
            &mf.bytes()?,
            what,
            &["7.1", "7.5", "13.1"],
        )
    };
    raw(
        "x-model-offsets-overlap",
        "two tensors' data_offsets overlap",
        &|mf| {
            let o = mf.header["z.offset"]["data_offsets"].clone();
            let (a, b) = (o[0].as_u64().unwrap_or(0), o[1].as_u64().unwrap_or(0));
            mf.header["z.offset"]["data_offsets"] = json!([a - 4, b - 4]);
            Ok(())
        },
    )?;
    raw(
        "x-model-offsets-past-data",
        "data_offsets of the last tensor run past the file",
        &|mf| {
            mf.data.truncate(mf.data.len() - 2);
            Ok(())
        },
    )?;
    raw(
        "x-model-data-gap",
        "four unused bytes between two tensors",
        &|mf| {
            let last = mf
                .header
                .iter()
                .filter(|(k, _)| *k != "__metadata__")
                .max_by_key(|(_, v)| v["data_offsets"][0].as_u64().unwrap_or(0))
                .map(|(k, _)| k.clone())
                .ok_or("no tensor")?;
            let o = mf.header[&last]["data_offsets"].clone();
            let (a, b) = (o[0].as_u64().unwrap_or(0), o[1].as_u64().unwrap_or(0));
            let at = a as usize;
            mf.data.splice(at..at, [0u8; 4]);
            mf.header[&last]["data_offsets"] = json!([a + 4, b + 4]);
            Ok(())
        },
    )?;

    // Version 1.2: the architectures of CompressAI's families (spec 7.2.1), with seeded
    // CompressAI-shaped models imported as a user's checkpoint is (spec 12.5).
    let calibration: Vec<RgbImage> = (0..4).map(|i| synthetic(128, 128, 300 + i)).collect();
    for (arch, tag) in [
        (CompressaiArch::Bmshj2018Hyperprior, "bmshj2018"),
        (CompressaiArch::Mbt2018Mean, "mbt2018-mean"),
    ] {
        let path = format!("conformance/models/compressai-{tag}-seed1.safetensors");
        let (bytes, _, _) = compressai::import(
            &seeded_state_dict(arch, 16, 24, 1),
            &ImportOptions {
                arch,
                name: format!("compressai-{tag}-seed1"),
                quality: Some(1),
                calibration: calibration.clone(),
                calibration_source: "synthetic".into(),
                f16: true,
                extra: Default::default(),
            },
        )?;
        std::fs::write(&path, bytes)?;
        let model = Model::from_path(std::path::Path::new(&path))?;
        let stream = encode(
            &synthetic(200, 140, 7),
            &model,
            &EncodeOptions {
                tile: (64, 64),
                checksums: true,
                ..EncodeOptions::default()
            },
        )?;
        let what = match arch {
            CompressaiArch::Bmshj2018Hyperprior => "scale-only h_s (M outputs, means 0), z medians",
            CompressaiArch::Mbt2018Mean => "clipped LeakyReLU in h_s, z medians",
        };
        suite.decodable(
            &format!("v1-2-{tag}-tiles64"),
            &path,
            &stream,
            &format!(
                "version 1.2, architecture {}: {what}; 12 tiles",
                arch.name()
            ),
            &["7.2.1", "9.2", "9.3", "9.4"],
        )?;
        suite.decodable(
            &format!("v1-2-{tag}-edge-values"),
            &path,
            &latent_stream(&model, 128, 128)?,
            &format!(
                "version 1.2, architecture {}: chosen latents (escapes, clipped z, large negative accumulators)",
                arch.name()
            ),
            &["8.5", "9.1", "9.2", "9.3", "9.5"],
        )?;
    }
    // Models of 1.2 that fail spec 7.5.
    let mbt_path = "conformance/models/compressai-mbt2018-mean-seed1.safetensors";
    let mbt_bytes = std::fs::read(mbt_path)?;
    let mbt_stream = "bitstreams/v1-2-mbt2018-mean-tiles64.icm";
    let mut m12 = |name: &str, what: &str, change: &dyn Fn(&mut ModelFile) -> Res<()>| -> Res<()> {
        let mut mf = ModelFile::parse(&mbt_bytes)?;
        change(&mut mf)?;
        suite.failing_model(name, mbt_stream, &mf.bytes()?, what, &["7.2.1", "7.5"])
    };
    m12(
        "x-model-mbt-no-negative-multiplier",
        "mbt2018-mean without h_s.2.negative_multiplier",
        &|mf| mf.set("h_s.2.negative_multiplier", None),
    )?;
    m12(
        "x-model-median-over-range",
        "a z.median of 2^15 + 1",
        &|mf| {
            let mut data = mf.tensor("z.median")?.to_vec();
            data[..4].copy_from_slice(&(32_769i32).to_le_bytes());
            let sh = mf.shape("z.median")?;
            mf.set("z.median", Some(("I32", sh, data)))
        },
    )?;
    m12(
        "x-model-unknown-architecture",
        "architecture `mbt2018` (not in table 7-1)",
        &|mf| {
            let meta = mf.header["__metadata__"]["icm"]
                .as_str()
                .ok_or("metadata")?
                .replace("\"mbt2018-mean\"", "\"mbt2018\"");
            mf.header["__metadata__"]["icm"] = Value::String(meta);
            Ok(())
        },
    )?;

    // Version 1.3: step maps (spec 4.6, 5.4, 8.8, 9.4, 10).
    let stepped = |img: &RgbImage, model: &Model, tile: (u32, u32), steps: Steps, sums: bool| {
        encode(
            img,
            model,
            &EncodeOptions {
                tile,
                checksums: sums,
                steps,
                ..EncodeOptions::default()
            },
        )
    };
    let uniform = stepped(
        &synthetic(200, 140, 5),
        &small,
        (64, 64),
        Steps::Uniform(384),
        true,
    )?;
    suite.decodable(
        "v1-3-uniform-step",
        SMALL,
        &uniform,
        "version 1.3: a step of 1.5 everywhere (one-step palettes), 12 tiles with tsum over STEP and TILE",
        &["4.5", "4.6", "5.4", "9.4", "10"],
    )?;
    let blocks = stepped(
        &synthetic(200, 140, 6),
        &small,
        (1024, 1024),
        field(200, 140, 3, |r, c| {
            [256, 200, 640, 1024][(r / 8) * 2 + c / 8]
        }),
        false,
    )?;
    suite.decodable(
        "v1-3-step-blocks",
        SMALL,
        &blocks,
        "version 1.3: four steps in 2 x 2 blocks of 8 positions, the last row of blocks cut by the grid",
        &["4.6", "5.4", "8.8", "9.4", "10"],
    )?;
    let extreme = stepped(
        &synthetic(128, 128, 7),
        &zoo1,
        (1024, 1024),
        field(128, 128, 0, |r, c| [1, 4096, 256, 2][(r + 2 * c) % 4]),
        false,
    )?;
    suite.decodable(
        "v1-3-zoo-q1-extreme-steps",
        zoo1_path,
        &extreme,
        "version 1.3: steps 1/256, 16, 1 and 1/128 on single positions of zoo q1 (escapes)",
        &["4.6", "8.5", "9.4", "9.5", "10"],
    )?;
    let zoo3_path = "models/icm-psnr-q3.safetensors";
    let zoo3 = Model::from_path(std::path::Path::new(zoo3_path))?;
    let roi = stepped(
        &synthetic(192, 128, 8),
        &zoo3,
        (1024, 1024),
        field(192, 128, 0, |r, c| {
            if (2..5).contains(&r) && (3..8).contains(&c) {
                256
            } else {
                768
            }
        }),
        true,
    )?;
    suite.decodable(
        "v1-3-zoo-q3-roi",
        zoo3_path,
        &roi,
        "version 1.3: a region-of-interest map (step 1 in a rectangle, 3 elsewhere) on zoo q3",
        &["4.6", "8.8", "12.7"],
    )?;
    for (tag, step) in [("bmshj2018", 192u16), ("mbt2018-mean", 448)] {
        let path = format!("conformance/models/compressai-{tag}-seed1.safetensors");
        let model = Model::from_path(std::path::Path::new(&path))?;
        let stream = stepped(
            &synthetic(128, 128, 9),
            &model,
            (64, 64),
            Steps::Uniform(step),
            false,
        )?;
        suite.decodable(
            &format!("v1-3-{tag}-step-{step}"),
            &path,
            &stream,
            &format!("version 1.3: architecture {tag} at a step of {step}/256, four tiles"),
            &["4.6", "9.4", "10"],
        )?;
    }
    // Must-fail streams of 1.3, from the uniform and block streams.
    let mut f = |name: &str, s: Vec<u8>, what: &str, sections: &[&str]| {
        suite.failing(name, &s, what, sections, &small)
    };
    let list = chunk_list(&blocks);
    let (step_at, _, step_len) = *list.iter().find(|c| &c.1 == b"STEP").ok_or("no STEP")?;
    let step_payload = blocks[step_at + 8..step_at + 8 + step_len].to_vec();
    let edit = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut p = step_payload.clone();
        change(&mut p);
        with_chunk_payload(&blocks, step_at, &p)
    };
    f(
        "x-step-block-log2-8",
        edit(&|p| p[0] = 8),
        "STEP block_log2 8",
        &["4.6", "13"],
    )?;
    f(
        "x-step-palette-0",
        edit(&|p| {
            p[1] = 0;
            p.truncate(2);
        }),
        "STEP palette_size 0",
        &["4.6", "13"],
    )?;
    f(
        "x-step-0",
        edit(&|p| p[2..4].copy_from_slice(&0u16.to_le_bytes())),
        "a step of 0 in the palette",
        &["4.6", "13"],
    )?;
    f(
        "x-step-4097",
        edit(&|p| p[4..6].copy_from_slice(&4097u16.to_le_bytes())),
        "a step of 4097 in the palette",
        &["4.6", "13"],
    )?;
    f(
        "x-step-frequency-sum",
        edit(&|p| {
            let at = 2 + 2 * usize::from(p[1]);
            let v = u16::from_le_bytes([p[at], p[at + 1]]) + 1;
            p[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }),
        "STEP frequencies summing to 65537",
        &["4.6", "7.4", "13"],
    )?;
    f(
        "x-step-truncated-in-palette",
        edit(&|p| p.truncate(5)),
        "a STEP payload that ends inside the palette",
        &["4.6", "13"],
    )?;
    f(
        "x-step-corrupt-index",
        edit(&|p| {
            let n = p.len();
            p[n - 2] ^= 0x10;
        }),
        "a bit flipped in the index payload (8.4 fails)",
        &["8.8", "8.4", "13"],
    )?;
    f(
        "x-step-index-partial-word",
        edit(&|p| p.push(1)),
        "an index payload that is not whole words",
        &["8.8", "8.2", "13"],
    )?;
    let list_u = chunk_list(&uniform);
    let (ustep_at, _, _) = *list_u.iter().find(|c| &c.1 == b"STEP").ok_or("no STEP")?;
    let mut s = uniform.clone();
    s[ustep_at + 8 + 2] ^= 0x01; // 384 -> 385: in range
    f(
        "x-checksum-step-bit",
        s,
        "one bit of tile 0's step changed in a stream with tsum: the CRC covers the STEP payload",
        &["4.5", "4.6", "13"],
    )?;
    let mut s = uniform[..ustep_at + 12].to_vec();
    s.extend_from_slice(&uniform[ustep_at..]);
    f(
        "x-step-twice",
        s,
        "two STEP chunks before tile 0",
        &["4.6", "13.1"],
    )?;
    let mut s = uniform[..ustep_at].to_vec();
    s.extend_from_slice(b"STEP\x04\x00\x00\x00\x00\x01\x00\x02");
    s.extend_from_slice(b"zzzz\x00\x00\x00\x00");
    s.extend_from_slice(&uniform[ustep_at..]);
    f(
        "x-step-then-optional-chunk",
        s,
        "a STEP chunk followed by an optional chunk",
        &["4.2", "4.6", "13.1"],
    )?;
    let end = uniform.len() - 8;
    let mut s = uniform[..end].to_vec();
    s.extend_from_slice(b"STEP\x04\x00\x00\x00\x00\x01\x00\x02");
    s.extend_from_slice(&uniform[end..]);
    f(
        "x-step-after-last-tile",
        s,
        "a STEP chunk after the last TILE chunk",
        &["4.6", "13"],
    )?;
    let mut s = blocks[..step_at].to_vec();
    s.extend_from_slice(b"STEP\x05\x00\x00\x00\x00\x01\x00\x02\x00");
    s.extend_from_slice(&blocks[step_at + 8 + step_len..]);
    f(
        "x-step-one-step-long",
        s,
        "a one-step STEP payload of 5 bytes",
        &["4.6", "13"],
    )?;

    // Records and the README table.
    let json = serde_json::to_string_pretty(&json!({
        "suite": "icm conformance, spec version 1.3",
        "generated_by": "cargo run --release --example make_vectors",
        "vectors": suite.records,
    }))?;
    std::fs::write("conformance/vectors.json", json + "\n")?;
    let mut md = String::from(
        "# Conformance suite\n\nGenerated by `cargo run --release --example make_vectors` from synthetic images and a\n\
         seeded model; do not edit by hand. Run it with `icm conformance` (built-in decoder) or\n\
         `icm conformance --decoder 'CMD {in} {model} {out_latents} {out_image}'` (any decoder: it\n\
         writes the latents in the serialisation of spec Annex A and the reconstruction as PNG,\n\
         and exits non-zero on must-fail streams).\n\n\
         Decodable vectors (`v1-*`) must give latents whose SHA-256 is `latents_sha256` exactly and\n\
         a reconstruction within spec 11.3 of `reference` (every sample within 2, PSNR >= 50 dB).\n\
         Must-fail vectors (`x-*`) must be refused; the built-in decoder must report the error\n\
         class of spec 13 given.\n\n\
         A decoder run with `--decoder` reports the error class of a stream it refuses on its\n\
         standard error: the first line of stderr that starts with `error: ` (lower case, one\n\
         space) gives the class, as the rest of that line with surrounding whitespace removed,\n\
         spelled as in the table below (`bad-magic`, `unsupported-version`, `truncated`,\n\
         `invalid-field`, `unknown-required-chunk`, `tile-count`, `trailing-data`,\n\
         `model-mismatch`, `corrupt-payload`, `invalid-model`). A must-fail vector passes when the\n\
         decoder exits non-zero and that class is the expected one; any other class fails it. When\n\
         no line of stderr starts with `error: ` only the exit status is checked: the vector passes\n\
         as \"exit only\", and `icm conformance` counts those (the `must-fail:` line before the\n\
         summary; `exit_only` and each vector's `fail_check` in `--json`). A decoder that exits 0\n\
         on a must-fail vector fails it. `icm decode` reports its class this way.\n\n| vector | exercises | spec | expected |\n|---|---|---|---|\n",
    );
    for r in &suite.records {
        let expected = match r.get("error_class") {
            Some(c) => format!("fail: {}", c.as_str().unwrap_or("")),
            None => format!(
                "decode {}x{}, {} tile(s), latents {}...",
                r["width"],
                r["height"],
                r["tiles"],
                &r["latents_sha256"].as_str().unwrap_or("")[..12]
            ),
        };
        let sections: Vec<String> = r["sections"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            r["name"].as_str().unwrap_or(""),
            r["exercises"].as_str().unwrap_or(""),
            sections.join(", "),
            expected
        )?;
    }
    std::fs::write("conformance/README.md", md)?;
    Ok(())
}
