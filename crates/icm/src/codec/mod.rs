//! The decoding process (spec 3, 8-11) and the encoder (spec 12, informative).

mod decoder;
mod encoder;
mod error;
mod latents;
mod limits;
mod picture;
mod rate_control;
pub mod rdo;
mod step_map;
mod steps;
mod tile;

pub use decoder::{
    decode, decode_latents, decode_stream, decode_stream_latents, decode_stream_latents_limited,
    decode_stream_limited, decode_stream_rows, decode_with_times, Decoded, RowBand, StageTimes,
};
pub use encoder::{encode, encode_with_progress, Analysis, EncodeOptions, DEFAULT_TILE};
pub use error::CodecError;
pub use latents::{LatentMosaic, Latents, TileLatents};
pub use limits::{DecodeLimits, DecodePlan, Picture, SYNTHESIS_BYTES_PER_PIXEL};
pub use picture::RgbImage;
pub use rate_control::{bytes_for_bpp, step_of, RateChoice, RateControl};
pub use step_map::{StepMap, StepMapError};
pub use steps::{step_units, StepField, Steps, IMPORTANCE_LEVELS};
pub use tile::{check_tile_size, max_tile_side, parse_tile_size, TileSizeError};
