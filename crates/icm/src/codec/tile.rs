//! Requested tile sizes: what `icm encode --tile` and the Python package's `tile=` accept.
//! A side is a multiple of [`TILE_ALIGN`] up to the largest tile of any level (spec 5.2,
//! 6.2); anything else is refused rather than rounded (the encoder itself rounds up and
//! caps, [`super::EncodeOptions::tile`]).

use crate::container::{Level, TILE_ALIGN};
use std::fmt;

/// A requested tile size that is not one [`check_tile_size`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileSizeError {
    /// The request as given (`"100"`, `"512x100"`).
    pub requested: String,
    /// The largest side accepted.
    pub max: u32,
}

impl fmt::Display for TileSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: expected WxH or N with multiples of {TILE_ALIGN} from {TILE_ALIGN} to {}, \
             e.g. 512x512",
            self.requested, self.max
        )
    }
}

impl std::error::Error for TileSizeError {}

/// The largest tile side of any level (spec 6.2).
pub fn max_tile_side() -> u32 {
    Level::ALL
        .iter()
        .map(|l| l.max_tile_dimension)
        .max()
        .unwrap_or(TILE_ALIGN)
}

fn side_ok(v: u32) -> bool {
    v > 0 && v.is_multiple_of(TILE_ALIGN) && v <= max_tile_side()
}

/// Accepts a tile of `width x height` pixels when both are multiples of [`TILE_ALIGN`]
/// from [`TILE_ALIGN`] to [`max_tile_side`].
pub fn check_tile_size(width: u32, height: u32) -> Result<(u32, u32), TileSizeError> {
    if side_ok(width) && side_ok(height) {
        Ok((width, height))
    } else {
        Err(TileSizeError {
            requested: format!("{width}x{height}"),
            max: max_tile_side(),
        })
    }
}

/// Parses `WxH` (or `WXH`) or `N` (for `NxN`) and checks it with [`check_tile_size`].
pub fn parse_tile_size(s: &str) -> Result<(u32, u32), TileSizeError> {
    let bad = || TileSizeError {
        requested: s.to_string(),
        max: max_tile_side(),
    };
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&v| side_ok(v))
            .ok_or_else(bad)
    };
    match s.split_once(['x', 'X']) {
        Some((w, h)) => Ok((parse(w)?, parse(h)?)),
        None => {
            let v = parse(s)?;
            Ok((v, v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiples_of_64_up_to_the_largest_level_tile() {
        assert_eq!(parse_tile_size("512x256"), Ok((512, 256)));
        assert_eq!(parse_tile_size("128"), Ok((128, 128)));
        assert_eq!(parse_tile_size(" 64 X 2048 "), Ok((64, 2048)));
        assert_eq!(check_tile_size(1024, 64), Ok((1024, 64)));
        for bad in ["0", "100", "4096", "64x", "x64", "a", "", "-64", "64x64x64"] {
            let e = parse_tile_size(bad).expect_err(bad);
            assert_eq!(e.requested, bad);
            assert!(e.to_string().contains("multiples of 64"), "{e}");
        }
        assert!(check_tile_size(64, 100).is_err());
        assert!(check_tile_size(0, 64).is_err());
    }
}
