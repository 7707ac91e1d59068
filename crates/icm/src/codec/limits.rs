//! Resource limits of decoding, in the manner of image-png's `Limits`: a stream of a few
//! bytes may declare a picture of 2^28 pixels (level 2) whose empty payloads are conforming,
//! so a decoder that serves untrusted streams needs bounds it can set. They are checked
//! against the header before any entropy decoding or synthesis, and the number of tiles
//! synthesised at once is chosen to fit the memory limit.

use super::CodecError;
use crate::container::Header;
use crate::model::Model;

/// Working memory of the synthesis g_s per padded pixel of a tile in flight. Measured with
/// the zoo's models (g_s widths 128/96/64, release build): 135 bytes per pixel of a
/// 1024x1024 tile (peak RSS of one against two tiles decoded at once); rounded up.
pub const SYNTHESIS_BYTES_PER_PIXEL: u64 = 160;

/// Limits of one decode. The default sets none beyond the spec's levels (6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most pixels (`width * height`) of a picture.
    pub max_pixels: u64,
    /// Most bytes of memory the decode may use: the latents of all tiles, the picture, and
    /// [`SYNTHESIS_BYTES_PER_PIXEL`] for every tile synthesised at once (an estimate of
    /// the float working memory, not counting the model).
    pub max_memory: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: u64::MAX,
            max_memory: u64::MAX,
        }
    }
}

/// How much of the reconstructed picture a decode holds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// None: latents only.
    None,
    /// All of it ([`super::decode_stream_limited`]).
    Whole,
    /// One band of rows of tiles ([`super::decode_stream_rows`]), counted as one row of
    /// tiles: a band of more rows (when more tiles are in flight than a row has) adds 3
    /// bytes per pixel of tiles whose synthesis is already counted at
    /// [`SYNTHESIS_BYTES_PER_PIXEL`] (measured 135, rounded up to 160).
    RowBands,
}

/// What a decode of a header needs and may do under [`DecodeLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodePlan {
    /// Tiles synthesised at once (at least 1).
    pub tiles_in_flight: usize,
    /// Estimated peak memory in bytes.
    pub memory: u64,
}

impl DecodeLimits {
    /// Checks `header` against the limits before any work: its pixels, and the memory of a
    /// decode with `synthesis` (else latents only) by `model` on up to `threads` tiles at
    /// once. Returns the plan, with as many tiles in flight as fit (at most `threads`).
    pub fn plan(
        &self,
        header: &Header,
        model: &Model,
        synthesis: bool,
        threads: usize,
    ) -> Result<DecodePlan, CodecError> {
        let picture = if synthesis {
            Picture::Whole
        } else {
            Picture::None
        };
        self.plan_for(header, model, picture, threads)
    }

    /// [`Self::plan`] for a decode that holds the `picture` as given.
    pub fn plan_for(
        &self,
        header: &Header,
        model: &Model,
        synthesis: Picture,
        threads: usize,
    ) -> Result<DecodePlan, CodecError> {
        let pixels = u64::from(header.width) * u64::from(header.height);
        if pixels > self.max_pixels {
            return Err(CodecError::LimitExceeded {
                what: "pixels",
                needed: pixels,
                limit: self.max_pixels,
            });
        }
        let tiling = header.tiling();
        let (n, m) = (
            model.hyper_channels() as u64,
            model.latent_channels() as u64,
        );
        let mut fixed = 0u64;
        let mut largest_tile = 0u64;
        for r in tiling.tiles() {
            let (hz, wz) = r.hyper_size();
            let (hy, wy) = r.latent_size();
            fixed = fixed.saturating_add(4 * (n * (hz * wz) as u64 + m * (hy * wy) as u64));
            largest_tile =
                largest_tile.max(u64::from(r.padded_width()) * u64::from(r.padded_height()));
        }
        // never more tiles at once than there are tiles or threads
        let parallel = threads.clamp(1, tiling.count().max(1));
        let picture = match synthesis {
            Picture::None => return self.fits(fixed, 0, parallel),
            Picture::Whole => 3 * pixels,
            // one row of tiles, as decode_stream_rows hands it over
            Picture::RowBands => 3 * u64::from(header.width) * u64::from(header.tile_height),
        };
        fixed = fixed.saturating_add(picture);
        self.fits(
            fixed,
            largest_tile.saturating_mul(SYNTHESIS_BYTES_PER_PIXEL),
            parallel,
        )
    }

    fn fits(&self, fixed: u64, per_tile: u64, parallel: usize) -> Result<DecodePlan, CodecError> {
        let needed = fixed.saturating_add(per_tile);
        if needed > self.max_memory {
            return Err(CodecError::LimitExceeded {
                what: "memory (bytes)",
                needed,
                limit: self.max_memory,
            });
        }
        let room = (self.max_memory - fixed)
            .checked_div(per_tile)
            .unwrap_or(u64::MAX);
        let tiles_in_flight = room.clamp(1, parallel as u64) as usize;
        Ok(DecodePlan {
            tiles_in_flight,
            memory: fixed.saturating_add(per_tile.saturating_mul(tiles_in_flight as u64)),
        })
    }
}
