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
        self.mosaic(tiling, 16, |t| (&t.y, t.y_shape))
    }

    /// z^ of every tile placed at its position in one CHW array of shape `(N, ceil(H /
    /// 64), ceil(W / 64))`, as [`y_mosaic`](Self::y_mosaic) places y^ (z^ is at 1/64 of the
    /// pixel resolution).
    pub fn z_mosaic(&self, tiling: &Tiling) -> LatentMosaic {
        self.mosaic(tiling, TILE_ALIGN, |t| (&t.z, t.z_shape))
    }

    /// The planes `pick` selects of every tile, placed on the picture's grid at `1 /
    /// stride` of the pixel resolution.
    fn mosaic(
        &self,
        tiling: &Tiling,
        stride: u32,
        pick: impl Fn(&TileLatents) -> (&Vec<i32>, (usize, usize, usize)),
    ) -> LatentMosaic {
        let per_block = (TILE_ALIGN / stride) as usize;
        let channels = self.tiles.first().map(|t| pick(t).1 .0).unwrap_or(0);
        let height = tiling.height.div_ceil(TILE_ALIGN) as usize * per_block;
        let width = tiling.width.div_ceil(TILE_ALIGN) as usize * per_block;
        let mut data = vec![0i32; channels * height * width];
        for (i, t) in self.tiles.iter().enumerate() {
            let r = tiling.tile(i);
            let (y0, x0) = ((r.y / stride) as usize, (r.x / stride) as usize);
            let (values, (tm, th, tw)) = pick(t);
            if y0 + th > height || x0 + tw > width || values.len() < tm * th * tw {
                continue; // not a tile of this tiling: nothing to place
            }
            for c in 0..channels.min(tm) {
                for yy in 0..th {
                    let src = &values[(c * th + yy) * tw..(c * th + yy + 1) * tw];
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

/// y^ or z^ of a whole picture in one array ([`Latents::y_mosaic`], [`Latents::z_mosaic`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatentMosaic {
    /// Channels (M for y^, N for z^).
    pub channels: usize,
    /// Rows: `4 * ceil(H / 64)` for y^, `ceil(H / 64)` for z^.
    pub height: usize,
    /// Columns: `4 * ceil(W / 64)` for y^, `ceil(W / 64)` for z^.
    pub width: usize,
    /// `channels * height * width` values, CHW: y^ in units of `2^-8`, z^ integers.
    pub data: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tiles side by side, 128 + 72 pixels wide (the second padded to 128), 64 high;
    /// every value names its tile, channel, row and column.
    fn two_tiles() -> (Latents, Tiling) {
        let tiling = Tiling {
            width: 200,
            height: 64,
            tile_width: 128,
            tile_height: 64,
        };
        let plane = |tile: i32, (c, h, w): (usize, usize, usize)| -> Vec<i32> {
            let mut v = Vec::new();
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        v.push(tile * 10000 + ch as i32 * 1000 + y as i32 * 100 + x as i32);
                    }
                }
            }
            v
        };
        let tiles = (0..2)
            .map(|i| {
                let r = tiling.tile(i);
                let (hz, wz) = r.hyper_size();
                let (hy, wy) = r.latent_size();
                let (z_shape, y_shape) = ((2, hz, wz), (3, hy, wy));
                TileLatents {
                    z: plane(i as i32, z_shape),
                    y: plane(i as i32, y_shape),
                    z_shape,
                    y_shape,
                }
            })
            .collect();
        (Latents { tiles }, tiling)
    }

    #[test]
    fn mosaics_place_every_tile_at_its_position() {
        let (latents, tiling) = two_tiles();
        let z = latents.z_mosaic(&tiling);
        assert_eq!((z.channels, z.height, z.width), (2, 1, 4));
        // tile 0 covers z columns 0-1, tile 1 (padded to 128) columns 2-3
        assert_eq!(&z.data[..4], &[0, 1, 10000, 10001]);
        assert_eq!(&z.data[4..], &[1000, 1001, 11000, 11001]);
        let y = latents.y_mosaic(&tiling);
        assert_eq!((y.channels, y.height, y.width), (3, 4, 16));
        let at = |c: usize, r: usize, x: usize| y.data[(c * 4 + r) * 16 + x];
        assert_eq!(at(0, 0, 7), 7);
        assert_eq!(at(0, 0, 8), 10000);
        assert_eq!(at(2, 3, 15), 12307);
    }
}
