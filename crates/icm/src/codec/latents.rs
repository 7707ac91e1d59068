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
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}
