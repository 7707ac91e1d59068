use thiserror::Error;

/// Errors of the integer hyper-synthesis (spec 9, 7.5): a model that breaks the limits
/// under which spec 9.5 proves the arithmetic exact.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HyperError {
    /// A layer parameter is outside its allowed range.
    #[error("h_s layer {layer}: {what}")]
    BadLayer {
        /// Layer index in the model file (0, 2 or 4).
        layer: usize,
        /// The violated rule.
        what: String,
    },
    /// The input does not have the channel count the network expects.
    #[error("h_s input has {found} channels, the model expects {expected}")]
    InputChannels {
        /// Channels found.
        found: usize,
        /// Channels expected.
        expected: usize,
    },
}
