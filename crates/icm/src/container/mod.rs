//! Container layer (spec sections 4-6): header, chunks, tiles, profiles and levels.

mod chunk;
mod crc32c;
mod error;
mod header;
mod level;
mod tiling;

pub use chunk::{parse, write, Stream, TilePayload, CHUNK_END, CHUNK_TILE, CHUNK_TSUM};
pub use crc32c::crc32c;
pub use error::ContainerError;
pub use header::{Header, COLOUR_RGB8, MAGIC, MAJOR_VERSION, MINOR_VERSION, PROFILE_MAIN};
pub use level::Level;
pub use tiling::{TileRect, Tiling, TILE_ALIGN};
