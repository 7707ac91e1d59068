//! The codec side of a task evaluation: one [`RateCodec`] per rate point.
//!
//! A rate codec turns an original picture into the number of coded bytes and what the task
//! decoder reads after decoding (the picture, and when it can, the latents).
//! [`Uncompressed`] (the ceiling) and [`IcmCodec`] (one model of the zoo) are built in.
//! Conventional codecs (VVC, HEVC, JPEG through ffmpeg, the `icm anchor` path) plug in by
//! implementing this trait: encode to a temporary stream, report its size, decode it back
//! to RGB8.

use super::{LatentTensor, TaskError};
use icm::codec::{self, EncodeOptions, RgbImage};
use icm::container;
use icm::model::Model;

/// What one coded picture gives the task decoder.
#[derive(Debug, Clone)]
pub struct Coded {
    /// Size of the coded stream in bytes (0 for the uncompressed ceiling).
    pub bytes: usize,
    /// The decoded picture.
    pub image: RgbImage,
    /// The decoded latents, for codecs that have them (icm).
    pub latents: Option<LatentTensor>,
}

/// A codec at one rate point.
pub trait RateCodec {
    /// Codec name (`icm`, `none`, ...), the `name` of the results file.
    fn codec(&self) -> &str;
    /// The rate point's label (model name, QP, ...).
    fn label(&self) -> String;
    /// The rate point's quality index as results report it.
    fn quality(&self) -> u32;
    /// Encodes and decodes one picture.
    fn encode_decode(&self, img: &RgbImage) -> Result<Coded, TaskError>;
}

/// No compression: the picture itself at 0 bits (the task's ceiling; reported with bpp 24,
/// the raw RGB rate, so that rate-task curves stay on a log axis).
#[derive(Debug, Clone, Copy, Default)]
pub struct Uncompressed;

impl RateCodec for Uncompressed {
    fn codec(&self) -> &str {
        "none"
    }
    fn label(&self) -> String {
        "uncompressed".into()
    }
    fn quality(&self) -> u32 {
        0
    }
    fn encode_decode(&self, img: &RgbImage) -> Result<Coded, TaskError> {
        Ok(Coded {
            bytes: img.data.len(),
            image: img.clone(),
            latents: None,
        })
    }
}

/// icm with one model (a rate point of the zoo).
pub struct IcmCodec {
    /// The model.
    pub model: Model,
    /// Zoo quality it is reported under.
    pub quality: u8,
    /// Also place the decoded latents in [`Coded::latents`] (for latent-domain decoders).
    pub with_latents: bool,
}

impl RateCodec for IcmCodec {
    fn codec(&self) -> &str {
        "icm"
    }
    fn label(&self) -> String {
        self.model.name.clone()
    }
    fn quality(&self) -> u32 {
        u32::from(self.quality)
    }
    fn encode_decode(&self, img: &RgbImage) -> Result<Coded, TaskError> {
        let err = |what: &str, e: String| TaskError::Codec {
            what: format!("{what} with {}", self.model.name),
            why: e,
        };
        let bytes = codec::encode(img, &self.model, &EncodeOptions::default())
            .map_err(|e| err("encode", e.to_string()))?;
        let decoded =
            codec::decode(&bytes, &self.model).map_err(|e| err("decode", e.to_string()))?;
        let latents = if self.with_latents {
            let stream = container::parse(&bytes).map_err(|e| err("parse", e.to_string()))?;
            Some(latent_tensor(&stream.header.tiling(), &decoded.latents))
        } else {
            None
        };
        Ok(Coded {
            bytes: bytes.len(),
            image: decoded.image,
            latents,
        })
    }
}

/// y^ of a decoded stream as the latent-domain task decoders read it: the mosaic of
/// [`codec::Latents::y_mosaic`] with the picture's size.
pub fn latent_tensor(tiling: &container::Tiling, latents: &codec::Latents) -> LatentTensor {
    let m = latents.y_mosaic(tiling);
    LatentTensor {
        channels: m.channels,
        height: m.height,
        width: m.width,
        data: m.data,
        image_width: tiling.width,
        image_height: tiling.height,
    }
}

/// A conventional codec at one rate parameter through the anchor path of `icm anchor`
/// (ffmpeg, the colour conversion of [`crate::anchor::colour`], and its cache).
pub struct AnchorRateCodec {
    /// Codec and tools.
    pub config: crate::anchor::AnchorConfig,
    /// Cache, or `None` to encode every time.
    pub cache: Option<crate::anchor::AnchorCache>,
    /// QP, CRF, qscale, distance or quality.
    pub level: f64,
}

impl RateCodec for AnchorRateCodec {
    fn codec(&self) -> &str {
        self.config.codec.name()
    }
    fn label(&self) -> String {
        format!(
            "{}-{}{}",
            self.config.codec,
            self.config.codec.level_name(),
            crate::anchor::format_level(self.level)
        )
    }
    fn quality(&self) -> u32 {
        self.level.round().max(0.0) as u32
    }
    fn encode_decode(&self, img: &RgbImage) -> Result<Coded, TaskError> {
        let coded = match &self.cache {
            Some(c) => c.code(&self.config, img, self.level).map(|(c, _)| c),
            None => self.config.code(img, self.level),
        }
        .map_err(|e| TaskError::Codec {
            what: self.label(),
            why: e.to_string(),
        })?;
        Ok(Coded {
            bytes: coded.bitstream.len(),
            image: coded.decoded,
            latents: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icm_codec_gives_picture_and_latent_mosaic() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../conformance/models/test-seed1-small.safetensors");
        let model = Model::from_path(&path).expect("test model");
        let img = icm::testimage::synthetic(200, 130, 3);
        let codec = IcmCodec {
            model,
            quality: 1,
            with_latents: true,
        };
        let coded = codec.encode_decode(&img).expect("code");
        assert_eq!((coded.image.width, coded.image.height), (200, 130));
        assert!(coded.bytes > 0);
        let l = coded.latents.expect("latents");
        // (M, ceil(130/64)*4, ceil(200/64)*4), as `icm decode --latents` writes it.
        assert_eq!((l.height, l.width), (12, 16));
        assert_eq!(l.data.len(), l.channels * 12 * 16);
        assert!(l.data.iter().any(|&v| v != 0));
        let none = Uncompressed.encode_decode(&img).expect("none");
        assert_eq!(none.bytes, 200 * 130 * 3);
        assert_eq!(none.image, img);
    }
}
