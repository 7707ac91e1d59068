//! Model layer (spec section 7): the model file, its validation, and the tools that build
//! model files from trained float weights or from a seed.

mod architecture;
mod build;
mod error;
mod file;
mod random;
mod store;
pub mod tables;
mod writer;

pub use architecture::{Architecture, LEAKY_SLOPE};
pub use build::{build_model_file, float_hyper_synthesis, BuildOptions};
pub use error::ModelError;
pub use file::{Model, MODEL_FORMAT};
pub use random::{random_float_export, seeded_model, RandomWidths, SMALL_WIDTHS};
pub use store::{
    default_model_dir, find_named_model, is_plain_model_name, resolve_model, zoo_name,
    ZOO_DEFAULT_QUALITY,
};
pub use writer::{encode_multiplier, quantise_hs_layer, ModelWriter, QuantisedLayer};
