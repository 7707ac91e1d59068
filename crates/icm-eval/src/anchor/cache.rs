//! The anchor cache: a coded image is stored under the SHA-256 of its pixels and of every
//! setting that changes the bitstream (codec, encoder arguments, colour path, ffmpeg
//! version), so a rerun with the same inputs reads the results instead of encoding again.
//!
//! Layout: `<dir>/<key[0..2]>/<key>.{bits,png,json}`: the bitstream, the decoded picture and
//! the timings. Files are written to a temporary name and renamed; an entry missing any of
//! its files, or unreadable, is treated as absent.

use super::{AnchorConfig, AnchorError, Coded};
use icm::codec::RgbImage;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The root of icm's caches: `$ICM_CACHE_DIR`, else `$XDG_CACHE_HOME/icm`, else
/// `~/.cache/icm`. The anchors are in `anchors/`, the task-evaluation records in
/// `records/` ([`crate::task::job::RecordCache`]).
pub fn default_cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("ICM_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
                .join(".cache")
        });
    base.join("icm")
}

/// The default cache directory: `$ICM_CACHE_DIR/anchors`, else
/// `$XDG_CACHE_HOME/icm/anchors`, else `~/.cache/icm/anchors`.
pub fn default_cache_dir() -> PathBuf {
    default_cache_root().join("anchors")
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct AnchorCache {
    dir: PathBuf,
}

/// Cache key of `img` coded with `settings`.
fn key(img: &RgbImage, settings: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"icm-anchor-v1\0");
    h.update(img.width.to_le_bytes());
    h.update(img.height.to_le_bytes());
    h.update(&img.data);
    h.update(settings.as_bytes());
    icm::hex::hex(&h.finalize())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AnchorError> {
    let io = |source| AnchorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

impl AnchorCache {
    /// A cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf, PathBuf) {
        let d = self.dir.join(&key[..2]);
        (
            d.join(format!("{key}.bits")),
            d.join(format!("{key}.png")),
            d.join(format!("{key}.json")),
        )
    }

    /// The cached result, if any.
    pub fn load(&self, img: &RgbImage, settings: &str) -> Option<Coded> {
        let (bits, png, json) = self.paths(&key(img, settings));
        let bitstream = std::fs::read(bits).ok()?;
        let decoded = crate::picture::read_rgb(&png).ok()?;
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(json).ok()?).ok()?;
        if meta.get("settings")?.as_str()? != settings
            || (decoded.width, decoded.height) != (img.width, img.height)
        {
            return None;
        }
        Some(Coded {
            bitstream,
            decoded,
            encode_s: meta.get("encode_s")?.as_f64()?,
            decode_s: meta.get("decode_s")?.as_f64()?,
        })
    }

    /// Stores a result.
    pub fn store(&self, img: &RgbImage, settings: &str, coded: &Coded) -> Result<(), AnchorError> {
        let k = key(img, settings);
        let (bits, png, json) = self.paths(&k);
        if let Some(d) = bits.parent() {
            std::fs::create_dir_all(d).map_err(|source| AnchorError::Io {
                path: d.to_path_buf(),
                source,
            })?;
        }
        let mut png_bytes = Vec::new();
        image::RgbImage::from_raw(
            coded.decoded.width,
            coded.decoded.height,
            coded.decoded.data.clone(),
        )
        .ok_or(AnchorError::EmptyImage)?
        .write_to(
            &mut std::io::Cursor::new(&mut png_bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| AnchorError::Io {
            path: png.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let meta = serde_json::json!({
            "settings": settings,
            "encode_s": coded.encode_s,
            "decode_s": coded.decode_s,
            "bytes": coded.bitstream.len(),
        });
        write_atomic(&bits, &coded.bitstream)?;
        write_atomic(&png, &png_bytes)?;
        write_atomic(&json, meta.to_string().as_bytes())
    }

    /// `config.code(img, level)`, through the cache. Returns the result and whether it
    /// came from the cache.
    pub fn code(
        &self,
        config: &AnchorConfig,
        img: &RgbImage,
        level: f64,
    ) -> Result<(Coded, bool), AnchorError> {
        let settings = config.settings(level);
        if let Some(c) = self.load(img, &settings) {
            return Ok((c, true));
        }
        let coded = config.code(img, level)?;
        self.store(img, &settings, &coded)?;
        Ok((coded, false))
    }
}
