//! The model architectures of spec 7.2.1 (table 7-1).

/// A model architecture: which tensors of h_s and z the decoding process reads (spec 7.3,
/// 9) and, informatively, the form of h_a (spec 11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `hyperprior-v1` (1.0): h_s gives scales and means, clipped ReLU, no z medians.
    HyperpriorV1,
    /// `bmshj2018-hyperprior` (1.2): h_s gives scales only (means 0), clipped ReLU, z
    /// medians; h_a reads `abs(y)`.
    Bmshj2018Hyperprior,
    /// `mbt2018-mean` (1.2): h_s gives scales and means, clipped LeakyReLU, z medians; h_a
    /// uses LeakyReLU.
    Mbt2018Mean,
}

/// Negative slope of the LeakyReLU of h_a and of the float h_s of `mbt2018-mean` (spec
/// 11.1; PyTorch's default, which CompressAI uses).
pub const LEAKY_SLOPE: f32 = 0.01;

impl Architecture {
    /// Every architecture of table 7-1, in the table's order.
    pub const ALL: [Architecture; 3] = [
        Architecture::HyperpriorV1,
        Architecture::Bmshj2018Hyperprior,
        Architecture::Mbt2018Mean,
    ];

    /// The `architecture` metadata value (spec 7.2).
    pub fn name(self) -> &'static str {
        match self {
            Architecture::HyperpriorV1 => "hyperprior-v1",
            Architecture::Bmshj2018Hyperprior => "bmshj2018-hyperprior",
            Architecture::Mbt2018Mean => "mbt2018-mean",
        }
    }

    /// The architecture named `name`, if this decoder implements it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether `h_s.4` has M outputs (scales only, means 0) instead of 2M (spec 9.4).
    pub fn scale_only(self) -> bool {
        self == Architecture::Bmshj2018Hyperprior
    }

    /// Whether the hidden layers of h_s are clipped LeakyReLUs with
    /// `h_s.{0,2}.negative_multiplier` (spec 9.3).
    pub fn leaky_hyper_synthesis(self) -> bool {
        self == Architecture::Mbt2018Mean
    }

    /// Whether the model has `z.median` (spec 9.2, 12.1).
    pub fn z_median(self) -> bool {
        self != Architecture::HyperpriorV1
    }

    /// Whether h_a reads `abs(y)` instead of y (spec 11.1, informative).
    pub fn hyper_analysis_of_abs(self) -> bool {
        self == Architecture::Bmshj2018Hyperprior
    }

    /// Whether the activations of h_a are LeakyReLUs (spec 11.1, informative).
    pub fn leaky_hyper_analysis(self) -> bool {
        self == Architecture::Mbt2018Mean
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for a in Architecture::ALL {
            assert_eq!(Architecture::from_name(a.name()), Some(a));
        }
        assert_eq!(Architecture::from_name("hyperprior-v2"), None);
        assert_eq!(Architecture::from_name("mbt2018"), None);
    }
}
