//! The decoding process (spec 3, 8-11) and the encoder (spec 12, informative).

mod decoder;
mod encoder;
mod error;
mod latents;
mod limits;
mod picture;
pub mod rdo;
mod tile;

pub use decoder::{
    decode, decode_latents, decode_stream, decode_stream_latents, decode_stream_latents_limited,
    decode_stream_limited, decode_stream_rows, decode_with_times, Decoded, RowBand, StageTimes,
};
pub use encoder::{encode, encode_with_progress, EncodeOptions, DEFAULT_TILE};
pub use error::CodecError;
pub use latents::{LatentMosaic, Latents, TileLatents};
pub use limits::{DecodeLimits, DecodePlan, Picture, SYNTHESIS_BYTES_PER_PIXEL};
pub use picture::RgbImage;
pub use tile::{check_tile_size, max_tile_side, parse_tile_size, TileSizeError};
