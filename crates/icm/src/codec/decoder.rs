use super::limits::Picture;
use super::{CodecError, DecodeLimits, Latents, RgbImage, StepMap, TileLatents};
use crate::container::{self, Stream, TilePayload, TileRect};
use crate::entropy::{decode_value, AnsDecoder};
use crate::hyper::MEAN_FRAC_BITS;
use crate::model::Model;
use crate::transform::Tensor;
use rayon::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The result of decoding a stream.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The reconstruction (spec 11, informative).
    pub image: RgbImage,
    /// The decoded latents (spec 10, normative).
    pub latents: Latents,
}

/// Time spent in each stage of a decode, summed over tiles (tiles run in parallel, so the
/// sum can exceed the wall time). For benchmarks: `icm bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Container parsing and the model check (spec 4-7).
    pub parse: Duration,
    /// rANS decoding of z^ (spec 8.6).
    pub z_entropy: Duration,
    /// Integer hyper-synthesis h_s (spec 9).
    pub hyper: Duration,
    /// rANS decoding of y^ (spec 8.7, 10).
    pub y_entropy: Duration,
    /// Synthesis g_s and the conversion to 8-bit RGB (spec 11).
    pub synthesis: Duration,
    /// Latent values decoded by the entropy stages (z^ and y^ elements).
    pub symbols: u64,
}

/// Where a decode records its [`StageTimes`], if anywhere.
type Clock<'a> = Option<&'a Mutex<StageTimes>>;

/// Runs `f` and adds its duration to the stage `pick` selects.
fn timed<T>(
    clock: Clock<'_>,
    pick: fn(&mut StageTimes) -> &mut Duration,
    f: impl FnOnce() -> T,
) -> T {
    let Some(m) = clock else { return f() };
    let t = Instant::now();
    let v = f();
    let d = t.elapsed();
    if let Ok(mut times) = m.lock() {
        *pick(&mut times) += d;
    }
    v
}

fn check_model(stream: &Stream<'_>, model: &Model) -> Result<(), CodecError> {
    let h = &stream.header;
    if h.model_sha256 != model.sha256 || h.model_name != model.name {
        return Err(CodecError::ModelMismatch {
            stream_name: h.model_name.clone(),
            stream_sha: h.model_sha256_hex(),
            model_name: model.name.clone(),
            model_sha: model.sha256_hex(),
        });
    }
    Ok(())
}

/// Decodes z^ and y^ of one tile (spec 8.6, 9, 8.7, 10).
fn decode_tile(
    model: &Model,
    index: usize,
    payload: &TilePayload<'_>,
    rect: TileRect,
    clock: Clock<'_>,
) -> Result<TileLatents, CodecError> {
    let err = |which: &'static str| {
        move |source| CodecError::Entropy {
            tile: index,
            payload: which,
            offset: payload.offset,
            source,
        }
    };
    // spec 8.8: the block indices of the step map come first (13.1).
    let (hy, wy) = rect.latent_size();
    let steps = match &payload.steps {
        None => None,
        Some(chunk) => Some(
            StepMap::decode(chunk, hy, wy)
                .map_err(|source| CodecError::Entropy {
                    tile: index,
                    payload: "step map index",
                    offset: chunk.offset,
                    source,
                })?
                .steps(hy, wy),
        ),
    };
    // spec 8.6: z^, channel by channel, raster order within a channel.
    let (hz, wz) = rect.hyper_size();
    let n = model.hyper_channels();
    let z = timed(
        clock,
        |t| &mut t.z_entropy,
        || {
            let mut z = Vec::with_capacity(n * hz * wz);
            let mut dec = AnsDecoder::new(payload.z).map_err(err("z"))?;
            for (offset, table) in &model.z_tables {
                for _ in 0..hz * wz {
                    z.push(
                        decode_value(&mut dec, table, *offset, &model.uniform).map_err(err("z"))?,
                    );
                }
            }
            dec.finish().map_err(err("z"))?;
            Ok::<_, CodecError>(z)
        },
    )?;

    // spec 9: integer hyper-synthesis.
    let hs = timed(
        clock,
        |t| &mut t.hyper,
        || model.h_s.run_with_steps(&z, hz, wz, steps.as_deref()),
    )?;

    // spec 8.7 and 10: y^ = q * D + mean (D = 2^8 without a step map).
    let m = hs.channels;
    let plane = hs.height * hs.width;
    let y = timed(
        clock,
        |t| &mut t.y_entropy,
        || {
            let mut y = Vec::with_capacity(m * plane);
            let mut dec = AnsDecoder::new(payload.y).map_err(err("y"))?;
            for (k, (&idx, &mean)) in hs.scale_index.iter().zip(&hs.mean).enumerate() {
                let (offset, table) = &model.y_tables[usize::from(idx)];
                let q = decode_value(&mut dec, table, *offset, &model.uniform).map_err(err("y"))?;
                y.push(match &steps {
                    None => (q << MEAN_FRAC_BITS) + mean,
                    Some(d) => q * i32::from(d[k % plane]) + mean,
                });
            }
            dec.finish().map_err(err("y"))?;
            Ok::<_, CodecError>(y)
        },
    )?;
    if let Some(Ok(mut t)) = clock.map(Mutex::lock) {
        t.symbols += (z.len() + y.len()) as u64;
    }
    Ok(TileLatents {
        z,
        y,
        z_shape: (n, hz, wz),
        y_shape: (m, hs.height, hs.width),
    })
}

fn parse_checked<'a>(bytes: &'a [u8], model: &Model) -> Result<Stream<'a>, CodecError> {
    let stream = container::parse(bytes)?;
    check_model(&stream, model)?;
    Ok(stream)
}

/// Decodes only the latents (the normative part, spec 3 steps 1-4). Tiles are decoded in
/// parallel; the result does not depend on the thread count.
pub fn decode_latents(bytes: &[u8], model: &Model) -> Result<Latents, CodecError> {
    latents_of(&parse_checked(bytes, model)?, model, None)
}

/// [`decode_latents`] of a stream already parsed with [`container::parse`] (a caller that
/// reads the header first parses the bytes once).
pub fn decode_stream_latents(stream: &Stream<'_>, model: &Model) -> Result<Latents, CodecError> {
    decode_stream_latents_limited(stream, model, &DecodeLimits::default())
}

/// [`decode_stream_latents`] under `limits`, checked against the header before any work.
pub fn decode_stream_latents_limited(
    stream: &Stream<'_>,
    model: &Model,
    limits: &DecodeLimits,
) -> Result<Latents, CodecError> {
    check_model(stream, model)?;
    limits.plan(&stream.header, model, false, rayon::current_num_threads())?;
    latents_of(stream, model, None)
}

/// [`decode`] of a stream already parsed with [`container::parse`].
pub fn decode_stream(stream: &Stream<'_>, model: &Model) -> Result<Decoded, CodecError> {
    decode_stream_limited(stream, model, &DecodeLimits::default())
}

/// [`decode_stream`] under `limits`, checked against the header before any work; tiles are
/// synthesised as many at a time as the memory limit allows.
pub fn decode_stream_limited(
    stream: &Stream<'_>,
    model: &Model,
    limits: &DecodeLimits,
) -> Result<Decoded, CodecError> {
    check_model(stream, model)?;
    let plan = limits.plan(&stream.header, model, true, rayon::current_num_threads())?;
    decode_parsed(stream, model, None, plan.tiles_in_flight)
}

/// Decodes the latents of every tile of a parsed, model-checked stream.
fn latents_of(stream: &Stream<'_>, model: &Model, clock: Clock<'_>) -> Result<Latents, CodecError> {
    let tiling = stream.header.tiling();
    let results: Vec<Result<TileLatents, CodecError>> = stream
        .tiles
        .par_iter()
        .enumerate()
        .map(|(i, p)| decode_tile(model, i, p, tiling.tile(i), clock))
        .collect();
    // The first failing tile in raster order decides the error (spec 13.1), whatever the
    // number of threads: rayon's collect into a Result would return any failing tile's.
    let tiles = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(Latents { tiles })
}

/// Runs g_s on one tile and returns the RGB bytes of its visible part (spec 11).
fn synthesise_tile(model: &Model, t: &TileLatents, rect: TileRect) -> Result<Vec<u8>, CodecError> {
    let (m, h, w) = t.y_shape;
    let scale = 1.0 / f32::from(1u16 << MEAN_FRAC_BITS);
    let data = t.y.iter().map(|&v| v as f32 * scale).collect();
    let g_s = |source| CodecError::Transform {
        stage: "g_s",
        source,
    };
    let y = Tensor::new(m, h, w, data).map_err(g_s)?;
    let x = model.g_s.forward(&y).map_err(g_s)?;
    let (tw, th) = (rect.width as usize, rect.height as usize);
    let mut out = vec![0u8; tw * th * 3];
    let plane = x.h * x.w;
    for yy in 0..th {
        for xx in 0..tw {
            for c in 0..3 {
                let v = x.data[c * plane + yy * x.w + xx];
                out[(yy * tw + xx) * 3 + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    Ok(out)
}

/// Decodes a stream to latents and the reconstructed image (spec 3).
pub fn decode(bytes: &[u8], model: &Model) -> Result<Decoded, CodecError> {
    decode_clocked(bytes, model, None)
}

/// [`decode`], also reporting the time of every stage.
pub fn decode_with_times(bytes: &[u8], model: &Model) -> Result<(Decoded, StageTimes), CodecError> {
    let clock = Mutex::new(StageTimes::default());
    let decoded = decode_clocked(bytes, model, Some(&clock))?;
    let times = clock.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok((decoded, times))
}

fn decode_clocked(bytes: &[u8], model: &Model, clock: Clock<'_>) -> Result<Decoded, CodecError> {
    let stream = timed(clock, |t| &mut t.parse, || parse_checked(bytes, model))?;
    decode_parsed(&stream, model, clock, rayon::current_num_threads())
}

/// A band of whole rows of the decoded picture: one or more rows of tiles.
#[derive(Debug, Clone, Copy)]
pub struct RowBand<'a> {
    /// Its first row in the picture.
    pub y: u32,
    /// Rows in the band.
    pub rows: u32,
    /// `rows * width * 3` bytes of RGB, row-major.
    pub data: &'a [u8],
}

/// Synthesises the picture of decoded `latents`, `in_flight` tiles at once, and hands it to
/// `sink` top to bottom in bands of whole rows of tiles (as many rows of tiles as
/// `in_flight` covers, at least one).
fn synthesise_rows(
    stream: &Stream<'_>,
    model: &Model,
    latents: &Latents,
    clock: Clock<'_>,
    in_flight: usize,
    sink: &mut dyn FnMut(RowBand<'_>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let tiling = stream.header.tiling();
    let (columns, width) = (tiling.columns(), tiling.width as usize);
    let in_flight = in_flight.max(1);
    let per_band = columns * (in_flight / columns).max(1);
    for (b, tiles) in latents.tiles.chunks(per_band).enumerate() {
        let first = b * per_band;
        let mut pixels = Vec::with_capacity(tiles.len());
        for (c, chunk) in tiles.chunks(in_flight).enumerate() {
            let synthesised = chunk
                .par_iter()
                .enumerate()
                .map(|(i, t)| {
                    let rect = tiling.tile(first + c * in_flight + i);
                    timed(
                        clock,
                        |t| &mut t.synthesis,
                        || synthesise_tile(model, t, rect),
                    )
                })
                .collect::<Vec<_>>();
            // the first failing tile in raster order decides (spec 13.1)
            pixels.extend(synthesised.into_iter().collect::<Result<Vec<_>, _>>()?);
        }
        let top = tiling.tile(first).y;
        let last = tiling.tile(first + tiles.len() - 1);
        let rows = last.y + last.height - top;
        let mut band = vec![0u8; rows as usize * width * 3];
        for (i, tile) in pixels.iter().enumerate() {
            let r = tiling.tile(first + i);
            let line = r.width as usize * 3;
            for yy in 0..r.height as usize {
                let dst = ((r.y - top) as usize + yy) * width * 3 + r.x as usize * 3;
                band[dst..dst + line].copy_from_slice(&tile[yy * line..(yy + 1) * line]);
            }
        }
        sink(RowBand {
            y: top,
            rows,
            data: &band,
        })?;
    }
    Ok(())
}

/// Latents and picture of a parsed, model-checked stream.
/// Synthesises `in_flight` tiles at a time.
fn decode_parsed(
    stream: &Stream<'_>,
    model: &Model,
    clock: Clock<'_>,
    in_flight: usize,
) -> Result<Decoded, CodecError> {
    let latents = latents_of(stream, model, clock)?;
    let tiling = stream.header.tiling();
    let mut image = RgbImage::new(tiling.width, tiling.height);
    let stride = tiling.width as usize * 3;
    synthesise_rows(stream, model, &latents, clock, in_flight, &mut |band| {
        let at = band.y as usize * stride;
        image.data[at..at + band.data.len()].copy_from_slice(band.data);
        Ok(())
    })?;
    Ok(Decoded { image, latents })
}

/// [`decode_stream_limited`] that hands the picture to `sink` one row of tiles at a time,
/// top to bottom, instead of returning it, so that a decoder writing PNG or PPM never holds
/// the whole picture: the memory limit counts one band instead of the picture. Returns the
/// latents. An error of `sink` stops the decode ([`CodecError::Sink`]).
pub fn decode_stream_rows(
    stream: &Stream<'_>,
    model: &Model,
    limits: &DecodeLimits,
    sink: &mut dyn FnMut(RowBand<'_>) -> std::io::Result<()>,
) -> Result<Latents, CodecError> {
    check_model(stream, model)?;
    let plan = limits.plan_for(
        &stream.header,
        model,
        Picture::RowBands,
        rayon::current_num_threads(),
    )?;
    let latents = latents_of(stream, model, None)?;
    synthesise_rows(
        stream,
        model,
        &latents,
        None,
        plan.tiles_in_flight,
        &mut |band| sink(band).map_err(CodecError::Sink),
    )?;
    Ok(latents)
}
