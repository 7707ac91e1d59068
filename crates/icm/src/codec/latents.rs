use crate::container::{Tiling, TILE_ALIGN};
use sha2::{Digest, Sha256};

/// Decoded latents of one tile (spec 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileLatents {
    /// z^, CHW, `N x hz x wz`.
    pub z: Vec<i32>,
    /// y^ in units of `2^-8`, CHW, `M x hy x wy`.
    pub y: Vec<i32>,
    /// `(N, hz, wz)`.
    pub z_shape: (usize, usize, usize),
    /// `(M, hy, wy)`.
    pub y_shape: (usize, usize, usize),
}

/// Decoded latents of all tiles, raster order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latents {
    /// Per tile.
    pub tiles: Vec<TileLatents>,
}

impl Latents {
    /// The integer serialisation of Annex A: per tile in raster order, z^ then y^, every
    /// value a little-endian `i32`, CHW order.
    pub fn serialise(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for t in &self.tiles {
            for v in t.z.iter().chain(&t.y) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// SHA-256 of [`serialise`](Self::serialise), lower-case hex: the conformance hash.
    pub fn sha256_hex(&self) -> String {
        let mut h = Sha256::new();
        for t in &self.tiles {
            for v in t.z.iter().chain(&t.y) {
                h.update(v.to_le_bytes());
            }
        }
        crate::hex::hex(&h.finalize())
    }

    /// y^ of every tile placed at its position in one CHW array of shape `(M, 4 *
    /// ceil(H / 64), 4 * ceil(W / 64))` for a `W x H` picture, whatever the tiling: each
    /// tile's y^ covers its padded area (spec 5.3) at 1/16 of the pixel resolution, and only
    /// the last tile of a row or column is padded. This is the array `icm decode --latents`
    /// writes and the latent-domain task decoders read.
    pub fn y_mosaic(&self, tiling: &Tiling) -> LatentMosaic {
        const Y_STRIDE: u32 = 16;
        let per_block = (TILE_ALIGN / Y_STRIDE) as usize;
        let channels = self.tiles.first().map(|t| t.y_shape.0).unwrap_or(0);
        let height = tiling.height.div_ceil(TILE_ALIGN) as usize * per_block;
        let width = tiling.width.div_ceil(TILE_ALIGN) as usize * per_block;
        let mut data = vec![0i32; channels * height * width];
        for (i, t) in self.tiles.iter().enumerate() {
            let r = tiling.tile(i);
            let (y0, x0) = ((r.y / Y_STRIDE) as usize, (r.x / Y_STRIDE) as usize);
            let (tm, th, tw) = t.y_shape;
            if y0 + th > height || x0 + tw > width {
                continue; // not a tile of this tiling: nothing to place
            }
            for c in 0..channels.min(tm) {
                for yy in 0..th {
                    let src = &t.y[(c * th + yy) * tw..(c * th + yy + 1) * tw];
                    let dst = (c * height + y0 + yy) * width + x0;
                    data[dst..dst + tw].copy_from_slice(src);
                }
            }
        }
        LatentMosaic {
            channels,
            height,
            width,
            data,
        }
    }
}

/// y^ of a whole picture in one array ([`Latents::y_mosaic`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatentMosaic {
    /// Channels (M).
    pub channels: usize,
    /// Rows: `4 * ceil(H / 64)`.
    pub height: usize,
    /// Columns: `4 * ceil(W / 64)`.
    pub width: usize,
    /// `channels * height * width` values in units of `2^-8`, CHW.
    pub data: Vec<i32>,
}
