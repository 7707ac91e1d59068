//! Entropy coding layer (spec section 8): integer CDF tables, the ANS decoder, the
//! escape code for out-of-range values, and the encoder built on `constriction`.

mod ans_decoder;
mod ans_encoder;
mod cdf_table;
mod error;
mod escape;

pub use ans_decoder::AnsDecoder;
pub use ans_encoder::SymbolWriter;
pub use cdf_table::{CdfTable, UniformTables};
pub use error::EntropyError;
pub use escape::{decode_value, MAX_ESCAPE_BITS};

/// Probability precision of every entropy model, in bits (spec 8.1).
pub const PRECISION: u32 = 16;
/// `2^PRECISION`: the total of every frequency table (spec 8.1).
pub const TOTAL: u32 = 1 << PRECISION;
