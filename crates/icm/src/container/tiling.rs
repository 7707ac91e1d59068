use crate::fixed::ceil_div;

/// Tile sides are multiples of this many pixels (spec 5.2); it is also the padding unit,
/// the product of the strides of g_a and h_a.
pub const TILE_ALIGN: u32 = 64;

/// The position and size of one tile in the image (spec 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRect {
    /// Left column in pixels.
    pub x: u32,
    /// Top row in pixels.
    pub y: u32,
    /// Width of the visible part (the last column and row of tiles may be narrower).
    pub width: u32,
    /// Height of the visible part.
    pub height: u32,
}

impl TileRect {
    /// Width padded to a multiple of [`TILE_ALIGN`] (spec 5.3).
    pub fn padded_width(&self) -> u32 {
        self.width.div_ceil(TILE_ALIGN) * TILE_ALIGN
    }

    /// Height padded to a multiple of [`TILE_ALIGN`] (spec 5.3).
    pub fn padded_height(&self) -> u32 {
        self.height.div_ceil(TILE_ALIGN) * TILE_ALIGN
    }

    /// Size `(h, w)` of the latent y^ of this tile: the padded size divided by 16.
    pub fn latent_size(&self) -> (usize, usize) {
        (
            (self.padded_height() / 16) as usize,
            (self.padded_width() / 16) as usize,
        )
    }

    /// Size `(h, w)` of the hyperlatent z^ of this tile: the padded size divided by 64.
    pub fn hyper_size(&self) -> (usize, usize) {
        (
            (self.padded_height() / 64) as usize,
            (self.padded_width() / 64) as usize,
        )
    }
}

/// The split of an image into tiles in raster order (spec 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Tile width (a multiple of [`TILE_ALIGN`]).
    pub tile_width: u32,
    /// Tile height (a multiple of [`TILE_ALIGN`]).
    pub tile_height: u32,
}

impl Tiling {
    /// Tiles per row.
    pub fn columns(&self) -> usize {
        ceil_div(self.width as usize, self.tile_width as usize)
    }

    /// Tiles per column.
    pub fn rows(&self) -> usize {
        ceil_div(self.height as usize, self.tile_height as usize)
    }

    /// Number of tiles.
    pub fn count(&self) -> usize {
        self.columns() * self.rows()
    }

    /// The `index`-th tile in raster order.
    pub fn tile(&self, index: usize) -> TileRect {
        let col = (index % self.columns()) as u32;
        let row = (index / self.columns()) as u32;
        let x = col * self.tile_width;
        let y = row * self.tile_height;
        TileRect {
            x,
            y,
            width: self.tile_width.min(self.width - x),
            height: self.tile_height.min(self.height - y),
        }
    }

    /// All tiles in raster order.
    pub fn tiles(&self) -> impl Iterator<Item = TileRect> + '_ {
        (0..self.count()).map(|i| self.tile(i))
    }
}
