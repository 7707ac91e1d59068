//! Integer hyper-synthesis h_s (spec section 9): z^ -> (scale index, fixed-point mean)
//! for every element of y^, computed with integer arithmetic only.

mod error;
mod int_layer;
mod kernel;
mod median;
mod network;
mod output;
mod steps;

pub use error::HyperError;
pub use int_layer::{IntLayer, IntLayerKind, ACTIVATION_MAX, MAX_BIAS, MAX_TAPS};
pub use median::MAX_MEDIAN;
pub use network::{
    HyperOutput, HyperOutputs, HyperSynthesis, MEAN_FRAC_BITS, MEAN_LIMIT, Z_CLIP_MAX, Z_CLIP_MIN,
};
pub use steps::stepped_thresholds;
