/// Levels of spec 6.2: limits a decoder of that level supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// `level_idc` as coded in the header.
    pub idc: u8,
    /// Largest width and height in pixels.
    pub max_dimension: u32,
    /// Largest `width * height`.
    pub max_pixels: u64,
    /// Largest tile width and height in pixels.
    pub max_tile_dimension: u32,
}

impl Level {
    /// All levels, in increasing order (spec 6.2, table 6-1).
    pub const ALL: [Level; 2] = [
        Level {
            idc: 1,
            max_dimension: 8192,
            max_pixels: 1 << 25,
            max_tile_dimension: 2048,
        },
        Level {
            idc: 2,
            max_dimension: 32768,
            max_pixels: 1 << 28,
            max_tile_dimension: 2048,
        },
    ];

    /// The level with `level_idc == idc`.
    pub fn from_idc(idc: u8) -> Option<Level> {
        Self::ALL.iter().copied().find(|l| l.idc == idc)
    }

    /// The lowest level that admits a `width x height` image.
    pub fn lowest_for(width: u32, height: u32) -> Option<Level> {
        Self::ALL.iter().copied().find(|l| l.admits(width, height))
    }

    /// Whether the image dimensions are within this level (spec 6.2).
    pub fn admits(&self, width: u32, height: u32) -> bool {
        width <= self.max_dimension
            && height <= self.max_dimension
            && u64::from(width) * u64::from(height) <= self.max_pixels
    }
}
