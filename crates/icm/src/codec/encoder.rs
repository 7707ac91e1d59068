use super::rdo::{self, RdoParams, Search, TileTarget};
use super::steps::Steps;
use super::{CodecError, RgbImage, StepMap};
use crate::container::{
    self, CodedTile, Header, Level, TileRect, COLOUR_RGB8, MAJOR_VERSION, MINOR_VERSION,
    MINOR_VERSION_STEPS, PROFILE_MAIN, TILE_ALIGN,
};
use crate::entropy::{SymbolWriter, MAX_ESCAPE_BITS};
use crate::hyper::MEAN_FRAC_BITS;
use crate::model::Model;
use crate::transform::Tensor;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default largest tile side: images up to 1024x1024 are one tile.
pub const DEFAULT_TILE: u32 = 1024;

/// Encoder options.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// Requested tile width and height in pixels (rounded up to a multiple of 64 and
    /// capped at the image size and the level limit).
    pub tile: (u32, u32),
    /// Follow every TILE chunk with its CRC-32C (`tsum`, spec 4.5; 12 bytes per tile), so
    /// that a 1.1 decoder detects a corrupted tile; the stream is then version 1.1. Without
    /// it the stream is a 1.0 stream. Default true.
    pub checksums: bool,
    /// Rate-distortion optimisation of the latents ([`super::rdo`]): 0 sends the latents
    /// g_a predicts; 1 to [`rdo::MAX_EFFORT`] search for better ones, each effort slower.
    /// The stream is decoded by any decoder as before. Default 0.
    pub effort: u8,
    /// The rate-distortion weight of the search (`bpp + lambda * 255^2 * MSE`); `None`
    /// takes the model's `lambda` metadata entry. Unused at effort 0.
    pub lambda: Option<f32>,
    /// Annealing parameters to use instead of those of `effort` (experiments); applies
    /// when `effort` is above 0.
    pub rdo_params: Option<RdoParams>,
    /// Quantisation steps (spec 5.4, 12.7): [`Steps::UNIT`] (the default) writes no step
    /// map, so the stream is one that a decoder before 1.3 decodes.
    pub steps: Steps,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            tile: (DEFAULT_TILE, DEFAULT_TILE),
            checksums: true,
            effort: 0,
            lambda: None,
            rdo_params: None,
            steps: Steps::UNIT,
        }
    }
}

/// The search of `opts`, prepared once for every tile: `None` at effort 0.
fn search_of<'m>(model: &'m Model, opts: &EncodeOptions) -> Result<Option<Search<'m>>, CodecError> {
    if opts.effort == 0 {
        return Ok(None);
    }
    let params = opts
        .rdo_params
        .or_else(|| RdoParams::for_effort(opts.effort))
        .ok_or_else(|| {
            CodecError::Input(format!(
                "effort {} is not one of 0 to {}",
                opts.effort,
                rdo::MAX_EFFORT
            ))
        })?;
    let lambda = match opts.lambda {
        Some(l) => l,
        None => model
            .metadata
            .get("lambda")
            .and_then(|v| v.trim().parse::<f32>().ok())
            .ok_or_else(|| {
                CodecError::Input(format!(
                    "effort {} needs the model's rate-distortion weight, and model {:?} has \
                     no lambda metadata entry: pass one (--lambda), or record it in the \
                     model file (icm model import ... --meta lambda=0.0130); CompressAI's \
                     qualities 1-8 were trained with 0.0018, 0.0035, 0.0067, 0.0130, \
                     0.0250, 0.0483, 0.0932, 0.1800",
                    opts.effort, model.name
                ))
            })?,
    };
    Search::new(model, params, lambda).map(Some)
}

/// Tile pixels padded by edge replication to the padded size, as a [0,1] CHW tensor
/// (spec 12.1).
fn tile_tensor(img: &RgbImage, r: TileRect) -> Tensor {
    let (pw, ph) = (r.padded_width() as usize, r.padded_height() as usize);
    let mut t = Tensor::zeros(3, ph, pw);
    let stride = img.width as usize * 3;
    for y in 0..ph {
        let sy = r.y as usize + y.min(r.height as usize - 1);
        for x in 0..pw {
            let sx = r.x as usize + x.min(r.width as usize - 1);
            for c in 0..3 {
                t.data[(c * ph + y) * pw + x] =
                    f32::from(img.data[sy * stride + sx * 3 + c]) / 255.0;
            }
        }
    }
    t
}

const LIMIT: f32 = ((1u32 << MAX_ESCAPE_BITS) - 1) as f32;

/// One tile after analysis: what every coding of it at any steps shares.
struct AnalysedTile {
    rect: TileRect,
    /// The padded tile in [0, 1] (the search's target).
    x: Tensor,
    /// g_a's output.
    y: Tensor,
    /// z^ and its payload (spec 8.6).
    z_hat: Vec<i32>,
    z_bytes: Vec<u8>,
}

/// Analysis of one tile: g_a, h_a and the coding of z^ (spec 12.1).
fn analyse_tile(model: &Model, img: &RgbImage, r: TileRect) -> Result<AnalysedTile, CodecError> {
    let tr = |stage: &'static str| {
        move |source: crate::transform::TransformError| CodecError::Transform { stage, source }
    };
    let g_a = model
        .g_a
        .as_ref()
        .ok_or_else(|| CodecError::NoEncoder(model.name.clone()))?;
    let h_a = model
        .h_a
        .as_ref()
        .ok_or_else(|| CodecError::NoEncoder(model.name.clone()))?;
    let x = tile_tensor(img, r);
    let y = g_a.forward(&x).map_err(tr("g_a"))?;
    let z = if model.architecture.hyper_analysis_of_abs() {
        let mut abs = y.clone();
        abs.data.iter_mut().for_each(|v| *v = v.abs());
        h_a.forward(&abs)
    } else {
        h_a.forward(&y)
    }
    .map_err(tr("h_a"))?;
    let (hz, wz) = r.hyper_size();
    let (hy, wy) = r.latent_size();
    if (y.h, y.w) != (hy, wy) {
        return Err(tr("g_a")(crate::transform::TransformError::OutputSize {
            h: hy,
            w: wy,
            got_h: y.h,
            got_w: y.w,
        }));
    }
    if (z.h, z.w) != (hz, wz) {
        return Err(tr("h_a")(crate::transform::TransformError::OutputSize {
            h: hz,
            w: wz,
            got_h: z.h,
            got_w: z.w,
        }));
    }
    // z^ = round(z - Med / 256) (spec 12.1; Med = 0 without z.median).
    let plane_z = hz * wz;
    let median = |c: usize| {
        model
            .h_s
            .median()
            .map_or(0.0, |m| m[c] as f32 / f32::from(1u16 << MEAN_FRAC_BITS))
    };
    let z_hat: Vec<i32> = z
        .data
        .iter()
        .enumerate()
        .map(|(j, v)| (v - median(j / plane_z)).round().clamp(-LIMIT, LIMIT) as i32)
        .collect();

    let mut zw = SymbolWriter::new();
    for (c, (offset, table)) in model.z_tables.iter().enumerate() {
        for &v in &z_hat[c * plane_z..(c + 1) * plane_z] {
            zw.push_value(table, *offset, v, &model.uniform)
                .map_err(|e| CodecError::Input(e.to_string()))?;
        }
    }
    let z_bytes = zw.finish().map_err(|e| CodecError::Input(e.to_string()))?;
    Ok(AnalysedTile {
        rect: r,
        x,
        y,
        z_hat,
        z_bytes,
    })
}

/// Codes one analysed tile's y at its steps: integer h_s, quantisation (and the search of
/// `search`), entropy coding (spec 12.1, 12.4, 12.6, 12.7).
fn code_tile(
    model: &Model,
    tile: &AnalysedTile,
    steps: Option<&StepMap>,
    search: Option<&Search<'_>>,
    index: usize,
    on_step: &(dyn Fn() + Sync),
) -> Result<CodedTile, CodecError> {
    let r = tile.rect;
    let (hz, wz) = r.hyper_size();
    let (hy, wy) = r.latent_size();
    let d = steps.map(|m| m.steps(hy, wy));
    let hs = model
        .h_s
        .run_with_steps(&tile.z_hat, hz, wz, d.as_deref())?;
    let scale = f32::from(1u16 << MEAN_FRAC_BITS);
    let plane = hy * wy;
    let rounded: Vec<i32> = tile
        .y
        .data
        .iter()
        .zip(&hs.mean)
        .enumerate()
        .map(|(k, (&v, &mean))| {
            let q = match &d {
                None => v - mean as f32 / scale,
                Some(d) => (v * scale - mean as f32) / f32::from(d[k % plane]),
            };
            q.round().clamp(-LIMIT, LIMIT) as i32
        })
        .collect();
    let q = match search {
        None => rounded,
        Some(search) => {
            let target = TileTarget {
                pixels: &tile.x,
                width: r.width as usize,
                height: r.height as usize,
            };
            search
                .refine_tile(
                    target,
                    &tile.y,
                    rounded,
                    &hs.mean,
                    &hs.scale_index,
                    d.as_deref(),
                    index as u64,
                    on_step,
                )?
                .0
        }
    };
    let mut yw = SymbolWriter::new();
    for (&q, &idx) in q.iter().zip(&hs.scale_index) {
        let (offset, table) = &model.y_tables[usize::from(idx)];
        yw.push_value(table, *offset, q, &model.uniform)
            .map_err(|e| CodecError::Input(e.to_string()))?;
    }
    let input = |e: crate::entropy::EntropyError| CodecError::Input(e.to_string());
    Ok(CodedTile {
        steps: steps.map(StepMap::to_payload).transpose().map_err(input)?,
        z: tile.z_bytes.clone(),
        y: yw.finish().map_err(input)?,
    })
}

/// An image analysed with one model (g_a, h_a and z^ of every tile, spec 12.1), ready to be
/// coded at any steps and effort: rate control ([`super::rate_control`]) codes it many
/// times and analyses it once.
pub struct Analysis<'m> {
    model: &'m Model,
    header: Header,
    tiles: Vec<AnalysedTile>,
}

impl<'m> Analysis<'m> {
    /// Analyses `img` with `model` in tiles of `tile` pixels (rounded up to a multiple of
    /// 64 and capped at the image size and the level limit). Tiles run in parallel.
    pub fn new(img: &RgbImage, model: &'m Model, tile: (u32, u32)) -> Result<Self, CodecError> {
        if img.width == 0
            || img.height == 0
            || img.data.len() != img.width as usize * img.height as usize * 3
        {
            return Err(CodecError::Input(format!(
                "bad image {}x{}",
                img.width, img.height
            )));
        }
        let level = Level::lowest_for(img.width, img.height).ok_or_else(|| {
            CodecError::Input(format!(
                "{}x{} exceeds the largest level",
                img.width, img.height
            ))
        })?;
        let side = |req: u32, dim: u32| -> u32 {
            let req = req.max(1).div_ceil(TILE_ALIGN) * TILE_ALIGN;
            req.min(dim.div_ceil(TILE_ALIGN) * TILE_ALIGN)
                .min(level.max_tile_dimension)
        };
        let header = Header {
            major: MAJOR_VERSION,
            minor: 0,
            profile: PROFILE_MAIN,
            level: level.idc,
            width: img.width,
            height: img.height,
            tile_width: side(tile.0, img.width),
            tile_height: side(tile.1, img.height),
            colour_format: COLOUR_RGB8,
            quality: model.quality,
            model_name: model.name.clone(),
            model_sha256: model.sha256,
        };
        let tiling = header.tiling();
        let tiles = (0..tiling.count())
            .into_par_iter()
            .map(|i| analyse_tile(model, img, tiling.tile(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            model,
            header,
            tiles,
        })
    }

    /// Codes the analysed image with `opts`'s steps, effort and checksums (its tile size
    /// is the analysis's), calling `progress(done, total)` after every search step as
    /// [`encode_with_progress`] does.
    pub fn code(
        &self,
        opts: &EncodeOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        let tiling = self.header.tiling();
        let maps = (0..tiling.count())
            .map(|i| opts.steps.tile_map(&tiling, i))
            .collect::<Result<Vec<_>, _>>()?;
        let search = search_of(self.model, opts)?;
        let total = search
            .as_ref()
            .map_or(0, |s| u64::from(s.steps()) * tiling.count() as u64);
        let done = AtomicU64::new(0);
        let on_step = || progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        let tiles = self
            .tiles
            .par_iter()
            .zip(&maps)
            .enumerate()
            .map(|(i, (t, m))| code_tile(self.model, t, m.as_ref(), search.as_ref(), i, &on_step))
            .collect::<Result<Vec<_>, _>>()?;
        let mut header = self.header.clone();
        header.minor = if maps.iter().any(Option::is_some) {
            MINOR_VERSION_STEPS
        } else if opts.checksums {
            MINOR_VERSION
        } else {
            0
        };
        Ok(container::write(&header, &tiles, opts.checksums))
    }
}

/// Encodes an image with `model` (spec 12, informative). Tiles are encoded in parallel.
pub fn encode(img: &RgbImage, model: &Model, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    encode_with_progress(img, model, opts, &|_, _| {})
}

/// [`encode`], calling `progress(done, total)` as the work advances: `total` is the number
/// of search steps (`EncodeOptions::effort`'s steps times the tiles; 0 at effort 0), and
/// the call comes after every step of every tile, from the thread that made it.
pub fn encode_with_progress(
    img: &RgbImage,
    model: &Model,
    opts: &EncodeOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<u8>, CodecError> {
    Analysis::new(img, model, opts.tile)?.code(opts, progress)
}
