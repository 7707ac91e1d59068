//! Conventional-codec anchors for rate-distortion comparisons (`icm anchor`).
//!
//! Every anchor is a real encoder run as a separate process: ffmpeg (by default the static
//! build of the PyPI wheel `imageio-ffmpeg`, with libvvenc, libx265, libaom, libjxl, libwebp
//! and the native VVC decoder), or for the video codecs any encoder command the user gives
//! (vvencapp, VTM's EncoderApp). The rate is the size of the raw bitstream the encoder
//! wrote; the distortion is measured on the RGB picture decoded from it. The colour path of
//! the video codecs is [`colour`]; `docs/anchors.md` states every setting.

mod cache;
mod codec;
pub mod colour;
mod error;
mod ffmpeg;
pub mod job;

pub use cache::{default_cache_dir, default_cache_root, AnchorCache};
pub use codec::{format_level, AnchorCodec, Family};
pub use error::AnchorError;
pub use ffmpeg::{ffmpeg_version, find_ffmpeg};

use colour::{rgb_to_yuv420p10, yuv420p10_to_rgb, Yuv420p10};
use icm::codec::RgbImage;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to run one codec.
#[derive(Debug, Clone)]
pub struct AnchorConfig {
    /// The codec.
    pub codec: AnchorCodec,
    /// ffmpeg executable (used to decode in every case, and to encode unless
    /// `encoder_cmd` is set).
    pub ffmpeg: PathBuf,
    /// First line of `ffmpeg -version`, part of the cache key.
    pub ffmpeg_version: String,
    /// Encoder preset for VVC and HEVC (default `medium`).
    pub preset: Option<String>,
    /// For video codecs: an encoder command run by `sh -c` instead of ffmpeg, with `{in}`
    /// (10-bit 4:2:0 planar little-endian input), `{out}` (raw bitstream to write),
    /// `{width}`, `{height}` and `{qp}` replaced.
    pub encoder_cmd: Option<String>,
}

/// One image coded at one rate point.
#[derive(Debug, Clone)]
pub struct Coded {
    /// The bitstream as the encoder wrote it.
    pub bitstream: Vec<u8>,
    /// The picture decoded from it, 8-bit RGB at the input size.
    pub decoded: RgbImage,
    /// Wall time of the encoder process, seconds.
    pub encode_s: f64,
    /// Wall time of the decoder process, seconds.
    pub decode_s: f64,
}

impl AnchorConfig {
    /// A configuration for `codec`: finds ffmpeg (see [`find_ffmpeg`]) and checks that it
    /// has the encoder (unless `encoder_cmd` replaces it) and the decoder the codec needs.
    pub fn new(
        codec: AnchorCodec,
        ffmpeg: Option<&Path>,
        preset: Option<String>,
        encoder_cmd: Option<String>,
    ) -> Result<Self, AnchorError> {
        if encoder_cmd.is_some() && codec.family() != Family::Video {
            return Err(AnchorError::Command {
                command: "--encoder-cmd".into(),
                status: "not applicable".into(),
                stderr: format!("an encoder command replaces only video encoders, not {codec}"),
            });
        }
        let ffmpeg = find_ffmpeg(ffmpeg)?;
        let ffmpeg_version = ffmpeg_version(&ffmpeg)?;
        let (encoder, decoder) = codec.ffmpeg_components();
        let encoder = if encoder_cmd.is_some() {
            decoder
        } else {
            encoder
        };
        ffmpeg::require(&ffmpeg, encoder, decoder, encoder_cmd.is_some())?;
        Ok(Self {
            codec,
            ffmpeg,
            ffmpeg_version,
            preset,
            encoder_cmd,
        })
    }

    /// A one-line description of every setting that changes the bitstream, for result
    /// metadata and the cache key.
    pub fn settings(&self, level: f64) -> String {
        let colour = match self.codec.family() {
            Family::Video => "rgb24 -> yuv420p10le BT.709 full range, 2x2 mean chroma (icm)",
            Family::Image => "rgb24 input, codec's own colour conversion",
        };
        let encoder = match &self.encoder_cmd {
            Some(cmd) => format!("cmd: {}", cmd.replace("{qp}", &format_level(level))),
            None => format!(
                "ffmpeg {} {}",
                self.codec
                    .encoder_args(level, self.preset.as_deref())
                    .join(" "),
                self.codec.output_format().join(" ")
            ),
        };
        format!(
            "{}; {encoder}; {colour}; {}",
            self.codec, self.ffmpeg_version
        )
    }

    /// Encodes `img` at rate parameter `level` and decodes the result.
    pub fn code(&self, img: &RgbImage, level: f64) -> Result<Coded, AnchorError> {
        let (lo, hi) = self.codec.level_range();
        if !(lo..=hi).contains(&level) || (self.codec.integer_levels() && level.fract() != 0.0) {
            return Err(AnchorError::Level {
                codec: self.codec,
                level,
                lo,
                hi,
            });
        }
        if img.width == 0 || img.height == 0 {
            return Err(AnchorError::EmptyImage);
        }
        let work = ScratchDir::new()?;
        match self.codec.family() {
            Family::Video => self.code_video(img, level, &work.0),
            Family::Image => self.code_image(img, level, &work.0),
        }
    }

    fn code_video(&self, img: &RgbImage, level: f64, dir: &Path) -> Result<Coded, AnchorError> {
        let yuv = rgb_to_yuv420p10(img);
        let (w, h) = (yuv.width, yuv.height);
        let input = dir.join("in.yuv");
        let output = dir.join(format!("out.{}", self.codec.extension()));
        write(&input, &yuv.to_le_bytes())?;
        let size = format!("{w}x{h}");
        let start = Instant::now();
        match &self.encoder_cmd {
            Some(template) => {
                let quote =
                    |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
                let cmd = template
                    .replace("{in}", &quote(&input))
                    .replace("{out}", &quote(&output))
                    .replace("{width}", &w.to_string())
                    .replace("{height}", &h.to_string())
                    .replace("{qp}", &format_level(level));
                ffmpeg::run_shell(&cmd)?;
            }
            None => {
                let mut args: Vec<String> = ["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                args.push(size);
                args.push("-i".into());
                args.push(input.display().to_string());
                args.extend(self.codec.encoder_args(level, self.preset.as_deref()));
                args.extend(self.codec.output_format().iter().map(|s| s.to_string()));
                args.push(output.display().to_string());
                ffmpeg::run(&self.ffmpeg, &args)?;
            }
        }
        let encode_s = start.elapsed().as_secs_f64();
        let bitstream = read(&output)?;
        let start = Instant::now();
        let raw = self.decode_to(&output, "yuv420p10le", dir)?;
        let decode_s = start.elapsed().as_secs_f64();
        let decoded_yuv = Yuv420p10::from_le_bytes(w, h, &raw).ok_or(AnchorError::DecodedSize {
            expected: format!("{w}x{h} yuv420p10le"),
            bytes: raw.len(),
        })?;
        Ok(Coded {
            bitstream,
            decoded: yuv420p10_to_rgb(&decoded_yuv, img.width, img.height),
            encode_s,
            decode_s,
        })
    }

    fn code_image(&self, img: &RgbImage, level: f64, dir: &Path) -> Result<Coded, AnchorError> {
        let input = dir.join("in.rgb");
        let output = dir.join(format!("out.{}", self.codec.extension()));
        write(&input, &img.data)?;
        let mut args: Vec<String> = [
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            &format!("{}x{}", img.width, img.height),
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(input.display().to_string());
        args.extend(["-sws_flags".to_string(), SWS_FLAGS.to_string()]);
        args.extend(self.codec.encoder_args(level, self.preset.as_deref()));
        args.extend(self.codec.output_format().iter().map(|s| s.to_string()));
        args.push(output.display().to_string());
        let start = Instant::now();
        ffmpeg::run(&self.ffmpeg, &args)?;
        let encode_s = start.elapsed().as_secs_f64();
        let bitstream = read(&output)?;
        let start = Instant::now();
        let data = self.decode_to(&output, "rgb24", dir)?;
        let decode_s = start.elapsed().as_secs_f64();
        let expected = img.data.len();
        if data.len() != expected {
            return Err(AnchorError::DecodedSize {
                expected: format!("{}x{} rgb24", img.width, img.height),
                bytes: data.len(),
            });
        }
        Ok(Coded {
            bitstream,
            decoded: RgbImage {
                width: img.width,
                height: img.height,
                data,
            },
            encode_s,
            decode_s,
        })
    }

    /// Decodes `stream` with ffmpeg to raw `pix_fmt` bytes.
    fn decode_to(&self, stream: &Path, pix_fmt: &str, dir: &Path) -> Result<Vec<u8>, AnchorError> {
        let out = dir.join("decoded.raw");
        let mut args: Vec<String> = vec!["-c:v".into(), self.codec.ffmpeg_components().1.into()];
        if let Some(f) = self.codec.input_format() {
            args.extend(["-f".to_string(), f.to_string()]);
        }
        args.extend(["-i".to_string(), stream.display().to_string()]);
        args.extend(["-sws_flags".to_string(), SWS_FLAGS.to_string()]);
        args.extend(
            ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt]
                .iter()
                .map(|s| s.to_string()),
        );
        args.push(out.display().to_string());
        ffmpeg::run(&self.ffmpeg, &args)?;
        read(&out)
    }
}

/// ffmpeg's scaler flags wherever it converts colour (image codecs): accurate rounding and
/// full chroma interpolation instead of its fast defaults.
pub const SWS_FLAGS: &str = "accurate_rnd+full_chroma_int+full_chroma_inp+bitexact";

fn write(path: &Path, bytes: &[u8]) -> Result<(), AnchorError> {
    std::fs::write(path, bytes).map_err(|source| AnchorError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, AnchorError> {
    std::fs::read(path).map_err(|source| AnchorError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A temporary directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self, AnchorError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "icm-anchor-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| AnchorError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
