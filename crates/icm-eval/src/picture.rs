//! Picture files in and out: every reader of pictures (the encoder's input, the evaluation
//! tools, the task decoders) goes through [`read_rgb`], and every writer of decoded
//! pictures chooses its format with [`OutputFormat::from_path`].
//!
//! Inputs are decoded by the `image` crate (PNG, PNM, JPEG, WebP, TIFF, BMP, GIF, TGA, QOI)
//! and reduced to 8-bit RGB: greyscale is replicated to the three channels, an alpha channel
//! is dropped (not composited over a background), 16-bit samples become `round(v / 257)`
//! (`(v + 128) / 257`), float samples `round(255 * clamp(v, 0, 1))`, and the first frame of
//! an animation is taken.

use icm::codec::RgbImage;
use image::ImageEncoder as _;
use std::path::Path;
use thiserror::Error;

/// Errors reading or choosing the format of a picture file.
#[derive(Debug, Error)]
pub enum PictureError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not in a format this build decodes.
    #[error("{path}: not a picture in a supported format ({INPUT_FORMATS})")]
    UnknownFormat {
        /// File path.
        path: String,
    },
    /// The picture is malformed (or too large for the decoder's limits).
    #[error("{path}: cannot read image: {source}")]
    Decode {
        /// File path.
        path: String,
        /// Cause.
        source: image::ImageError,
    },
    /// An output path whose extension names no format [`OutputFormat`] writes.
    #[error(
        "{path}: cannot choose an image format from the extension {extension:?}; use .png, \
         .ppm or .jpg"
    )]
    OutputExtension {
        /// File path.
        path: String,
        /// Its extension ("" when it has none).
        extension: String,
    },
}

/// The input formats [`read_rgb`] decodes, as named in messages and `--help`.
pub const INPUT_FORMATS: &str = "PNG, PPM/PGM/PAM, JPEG, WebP, TIFF, BMP, GIF, TGA, QOI";

/// Reads a picture file as 8-bit RGB (see the module documentation for the reduction).
pub fn read_rgb(path: &Path) -> Result<RgbImage, PictureError> {
    let bytes = std::fs::read(path).map_err(|source| PictureError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let format = image::guess_format(&bytes).map_err(|_| PictureError::UnknownFormat {
        path: path.display().to_string(),
    })?;
    decode_rgb(&bytes, format).map_err(|source| PictureError::Decode {
        path: path.display().to_string(),
        source,
    })
}

/// Decodes a picture of a known format held in memory as 8-bit RGB.
fn decode_rgb(bytes: &[u8], format: image::ImageFormat) -> Result<RgbImage, image::ImageError> {
    let rgb = image::load_from_memory_with_format(bytes, format)?.to_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        data: rgb.into_raw(),
    })
}

/// The formats decoded pictures are written in, chosen by the output path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `.png`: lossless, 8-bit RGB.
    Png,
    /// `.ppm` or `.pnm`: binary PPM (P6), 8-bit RGB.
    Ppm,
    /// `.jpg` or `.jpeg`: baseline JPEG at quality [`JPEG_OUTPUT_QUALITY`] (lossy: the
    /// picture written is not the decoded picture exactly).
    Jpeg,
}

/// Writes a `width x height` 8-bit RGB picture to `out` as PNG or PPM while `produce` makes
/// it: `produce` is given a sink for whole rows, top to bottom, so the picture is never
/// held whole (the decoder's [`icm::codec::decode_stream_rows`] feeds it one row of tiles
/// at a time). The PNG is the one [`OutputFormat::encode`] writes (same compression and
/// filters). When `produce` fails (a sink error should make it stop) its error is returned
/// as `Ok(Err(..))` and the output is left unfinished; rows short of or beyond the picture
/// and errors of writing are `Err`.
pub fn stream_picture<W: std::io::Write, T, E>(
    format: OutputFormat,
    mut out: W,
    width: u32,
    height: u32,
    produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> Result<T, E>,
) -> std::io::Result<Result<T, E>> {
    use std::io::{Error, Write};
    let total = u64::from(width) * u64::from(height) * 3;
    let mut written = 0u64;
    let mut check = |rows: &[u8]| {
        written += rows.len() as u64;
        if written > total {
            return Err(Error::other("more rows than the picture has"));
        }
        Ok(())
    };
    let png_err = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => e,
        e => Error::other(e),
    };
    let value = match format {
        OutputFormat::Ppm => {
            write!(out, "P6\n{width} {height}\n255\n")?;
            match produce(&mut |rows| {
                check(rows)?;
                out.write_all(rows)
            }) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        }
        OutputFormat::Png => {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            // image's PngEncoder defaults: CompressionType::Default, FilterType::Adaptive
            encoder.set_compression(png::Compression::Balanced);
            encoder.set_filter(png::Filter::Adaptive);
            let mut writer = encoder.write_header().map_err(png_err)?;
            let mut rows = writer.stream_writer().map_err(png_err)?;
            let value = match produce(&mut |band| {
                check(band)?;
                rows.write_all(band)
            }) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            rows.finish().map_err(png_err)?;
            writer.finish().map_err(png_err)?;
            value
        }
        OutputFormat::Jpeg => {
            return Err(Error::other(
                "JPEG output is written from the whole picture",
            ))
        }
    };
    if written != total {
        return Err(Error::other(format!(
            "{written} of the picture's {total} bytes were written"
        )));
    }
    out.flush()?;
    Ok(Ok(value))
}

/// The quality of JPEG outputs (libjpeg's scale, 4:2:0).
pub const JPEG_OUTPUT_QUALITY: u8 = 95;

impl OutputFormat {
    /// Whether [`stream_picture`] writes this format band by band (PNG, PPM).
    pub fn streams(self) -> bool {
        matches!(self, Self::Png | Self::Ppm)
    }

    /// The format for `path`'s extension (case-insensitive), or an error naming it.
    pub fn from_path(path: &Path) -> Result<Self, PictureError> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match extension.as_str() {
            "png" => Ok(Self::Png),
            "ppm" | "pnm" => Ok(Self::Ppm),
            "jpg" | "jpeg" => Ok(Self::Jpeg),
            _ => Err(PictureError::OutputExtension {
                path: path.display().to_string(),
                extension,
            }),
        }
    }

    /// Encodes `img` in this format (PNG and PPM through [`stream_picture`], as one band).
    pub fn encode(self, img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
        let mut out = Vec::new();
        let (w, h) = (img.width, img.height);
        if self.streams() {
            let whole = |sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>| sink(&img.data);
            stream_picture(self, &mut out, w, h, whole)??;
            return Ok(out);
        }
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_OUTPUT_QUALITY)
            .write_image(&img.data, w, h, image::ExtendedColorType::Rgb8)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn output_format_follows_the_extension() {
        let f = |p: &str| OutputFormat::from_path(Path::new(p));
        assert_eq!(f("a.png").unwrap(), OutputFormat::Png);
        assert_eq!(f("A.PNG").unwrap(), OutputFormat::Png);
        assert_eq!(f("a.ppm").unwrap(), OutputFormat::Ppm);
        assert_eq!(f("a.jpeg").unwrap(), OutputFormat::Jpeg);
        assert!(matches!(
            f("a.gif"),
            Err(PictureError::OutputExtension { extension, .. }) if extension == "gif"
        ));
        assert!(f("noextension").is_err());
    }

    #[test]
    fn png_and_ppm_round_trip_exactly_and_jpeg_is_a_jpeg() {
        let img = picture(19, 7);
        for f in [OutputFormat::Png, OutputFormat::Ppm] {
            let bytes = f.encode(&img).unwrap();
            let back = decode_rgb(&bytes, image::guess_format(&bytes).unwrap()).unwrap();
            assert_eq!((back.width, back.height), (19, 7));
            assert_eq!(back.data, img.data, "{f:?}");
        }
        let jpeg = OutputFormat::Jpeg.encode(&img).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        assert_eq!(
            image::guess_format(&jpeg).unwrap(),
            image::ImageFormat::Jpeg
        );
    }

    #[test]
    fn sixteen_bit_and_alpha_are_reduced_as_documented() {
        // a 2x1 16-bit RGBA PNG: 32896 = 128 * 257 -> 128, 32767 -> 127 (127.5 rounds half
        // up only from 32768), 65535 -> 255; alpha dropped
        let px: Vec<u16> = vec![32896, 32767, 65535, 0, 257, 385, 0, 65535];
        let buf = image::ImageBuffer::<image::Rgba<u16>, _>::from_raw(2, 1, px).unwrap();
        let mut png = Vec::new();
        buf.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let rgb = decode_rgb(&png, image::ImageFormat::Png).unwrap();
        assert_eq!(rgb.data, vec![128, 127, 255, 1, 1, 0]);
    }

    #[test]
    fn garbage_is_an_error_naming_the_formats() {
        let path =
            std::env::temp_dir().join(format!("icm-picture-test-{}.txt", std::process::id()));
        std::fs::write(&path, b"not a picture at all").unwrap();
        let e = read_rgb(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(matches!(e, PictureError::UnknownFormat { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("PNG") && text.contains("WebP"), "{text}");
    }
}
