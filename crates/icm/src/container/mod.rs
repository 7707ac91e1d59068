//! Container layer (spec sections 4-6): header, chunks, tiles, profiles and levels.

mod chunk;
mod crc32c;
mod error;
mod header;
mod level;
mod step_chunk;
mod tiling;

pub use chunk::{parse, write, CodedTile, Stream, TilePayload, CHUNK_END, CHUNK_TILE, CHUNK_TSUM};
pub use crc32c::{crc32c, crc32c_of_parts};
pub use error::ContainerError;
pub use header::{
    Header, COLOUR_RGB8, MAGIC, MAJOR_VERSION, MINOR_VERSION, MINOR_VERSION_STEPS, PROFILE_MAIN,
};
pub use level::Level;
pub use step_chunk::{StepChunk, CHUNK_STEP, MAX_BLOCK_LOG2, MAX_STEP, MIN_STEP, UNIT_STEP};
pub use tiling::{TileRect, Tiling, TILE_ALIGN};
