//! What a task network reads of a coded picture: its input domain.

use super::classification::CROP;
use super::TaskInputKind;
use crate::jpeg::channels::selected_24;

/// What reaches the task network: the decoded picture, the DCT coefficients of a JPEG
/// file (spec Annex B), or the decoded latents y^ (spec 10). One enum for the command
/// line (`--input-domain`), the results files and the evaluation engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputDomain {
    /// The decoded picture (RGB).
    Rgb,
    /// All 192 frequency channels of a YCbCr JPEG (Annex B.2), no pixel decoding.
    Dct192,
    /// The 24 channels of spec Annex B.3, no pixel decoding.
    Dct24,
    /// The decoded latents y^ of an icm stream: entropy decoding and h_s, no g_s.
    Latents,
}

impl InputDomain {
    /// Every domain, in the order `--help` lists them.
    pub const ALL: [Self; 4] = [Self::Rgb, Self::Dct192, Self::Dct24, Self::Latents];

    /// The name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rgb => "rgb",
            Self::Dct192 => "dct192",
            Self::Dct24 => "dct24",
            Self::Latents => "latents",
        }
    }

    /// The kind of [`super::TaskInput`] a network of this domain reads.
    pub fn input_kind(self) -> TaskInputKind {
        match self {
            Self::Rgb => TaskInputKind::Pixels,
            Self::Dct192 | Self::Dct24 => TaskInputKind::Dct,
            Self::Latents => TaskInputKind::Latents,
        }
    }

    /// The channels a DCT domain reads (Annex B indices, input order), `None` for the
    /// others.
    pub fn channels(self) -> Option<Vec<usize>> {
        match self {
            Self::Dct192 => Some((0..192).collect()),
            Self::Dct24 => Some(selected_24(3)),
            Self::Rgb | Self::Latents => None,
        }
    }

    /// The composed DCT classifier's file in [`super::dct::composed_model_dir`], `None`
    /// for the others.
    pub fn dct_model_file(self) -> Option<&'static str> {
        match self {
            Self::Dct192 => Some("mobilenet_v2_dct192.onnx"),
            Self::Dct24 => Some("mobilenet_v2_dct24.onnx"),
            Self::Rgb | Self::Latents => None,
        }
    }

    /// Values given to the classifier for one 224x224 input crop: 3 x 224 x 224 pixels,
    /// or channels x 28 x 28 coefficients; `None` for latents (their grid follows the
    /// whole picture).
    pub fn crop_input_values(self) -> Option<usize> {
        let cells = (CROP as usize / 8).pow(2);
        match self {
            Self::Rgb => Some(3 * (CROP as usize).pow(2)),
            Self::Dct192 => Some(192 * cells),
            Self::Dct24 => Some(24 * cells),
            Self::Latents => None,
        }
    }
}

impl std::fmt::Display for InputDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An input domain name that is not one of [`InputDomain::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown input domain {0:?} (rgb, dct192, dct24, latents)")]
pub struct UnknownDomain(pub String);

impl std::str::FromStr for InputDomain {
    type Err = UnknownDomain;
    fn from_str(s: &str) -> Result<Self, UnknownDomain> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| UnknownDomain(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for d in InputDomain::ALL {
            assert_eq!(d.name().parse::<InputDomain>(), Ok(d));
        }
        assert!("DCT24".parse::<InputDomain>().is_err());
        assert!("dct".parse::<InputDomain>().is_err());
        assert_eq!(InputDomain::Rgb.crop_input_values(), Some(150_528));
        assert_eq!(InputDomain::Dct192.crop_input_values(), Some(150_528));
        assert_eq!(InputDomain::Dct24.crop_input_values(), Some(18_816));
        assert_eq!(InputDomain::Latents.crop_input_values(), None);
        assert_eq!(InputDomain::Dct24.channels().map(|c| c.len()), Some(24));
        assert_eq!(InputDomain::Rgb.channels(), None);
    }
}
