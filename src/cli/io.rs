use super::error::CliError;
use icm::codec::RgbImage;
use std::io::Write;
use std::path::Path;

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so a
/// failed run never leaves a half-written output.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Reads a PNG or PPM image as 8-bit RGB.
pub fn read_image(path: &Path) -> Result<RgbImage, CliError> {
    let bytes = read(path)?;
    let err = |what: String| CliError::Image {
        path: path.display().to_string(),
        what,
    };
    let format = image::guess_format(&bytes).map_err(|e| err(e.to_string()))?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Pnm) {
        return Err(err(format!("{format:?} is not supported (PNG or PPM)")));
    }
    let img =
        image::load_from_memory_with_format(&bytes, format).map_err(|e| err(e.to_string()))?;
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        data: rgb.into_raw(),
    })
}

/// Encodes an image as PNG (or PPM when the path ends in `.ppm`) and writes it atomically.
pub fn write_image(path: &Path, img: &RgbImage) -> Result<(), CliError> {
    let buf = image::RgbImage::from_raw(img.width, img.height, img.data.clone())
        .ok_or_else(|| CliError::Usage("internal: image buffer size".into()))?;
    let format = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
    {
        Some(e) if e == "ppm" => image::ImageFormat::Pnm,
        _ => image::ImageFormat::Png,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    buf.write_to(&mut out, format)
        .map_err(|e| CliError::Image {
            path: path.display().to_string(),
            what: e.to_string(),
        })?;
    write_atomic(path, out.get_ref())
}
