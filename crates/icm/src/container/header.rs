use super::{ContainerError, Level, Tiling, TILE_ALIGN};

/// The four magic bytes that open every stream (spec 4.1).
pub const MAGIC: [u8; 4] = [0x89, b'I', b'C', b'M'];
/// The major version this implementation writes and decodes (spec 14).
pub const MAJOR_VERSION: u8 = 1;
/// The minor version this implementation writes when it adds tile checksums (spec 4.5,
/// 14); streams without them are written as 1.0.
pub const MINOR_VERSION: u8 = 1;
/// The minor version of a stream with a STEP chunk (spec 4.1, 4.6).
pub const MINOR_VERSION_STEPS: u8 = 3;
/// `profile_idc` of the Main profile (spec 6.1).
pub const PROFILE_MAIN: u8 = 0;
/// `colour_format` of 8-bit RGB (spec 4.1).
pub const COLOUR_RGB8: u8 = 0;
/// Longest model name in bytes (spec 4.1).
pub const MAX_MODEL_NAME: usize = 64;

/// The stream header (spec 4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `major_version`.
    pub major: u8,
    /// `minor_version`.
    pub minor: u8,
    /// `profile_idc`.
    pub profile: u8,
    /// `level_idc`.
    pub level: u8,
    /// `width` in pixels.
    pub width: u32,
    /// `height` in pixels.
    pub height: u32,
    /// `tile_width` in pixels.
    pub tile_width: u32,
    /// `tile_height` in pixels.
    pub tile_height: u32,
    /// `colour_format`.
    pub colour_format: u8,
    /// `quality` (informative: the zoo quality index of the model).
    pub quality: u8,
    /// `model_name`.
    pub model_name: String,
    /// `model_sha256`: SHA-256 of the model file (spec 7.1).
    pub model_sha256: [u8; 32],
}

/// Little-endian reader over the stream that reports offsets in its errors.
pub(super) struct Reader<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn bytes(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8], ContainerError> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(ContainerError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, ContainerError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, ContainerError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, ContainerError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Moves the offset of a [`ContainerError::Truncated`] found by a [`Reader`] over a chunk
/// payload by `base`, the payload's offset in the stream.
pub(super) fn offset_by(base: usize) -> impl Fn(ContainerError) -> ContainerError {
    move |e| match e {
        ContainerError::Truncated {
            what,
            offset,
            needed,
            available,
        } => ContainerError::Truncated {
            what,
            offset: base + offset,
            needed,
            available,
        },
        other => other,
    }
}

fn invalid(
    field: &'static str,
    offset: usize,
    value: u64,
    reason: impl Into<String>,
) -> ContainerError {
    ContainerError::InvalidField {
        field,
        offset,
        value,
        reason: reason.into(),
    }
}

impl Header {
    /// The tiling this header describes.
    pub fn tiling(&self) -> Tiling {
        Tiling {
            width: self.width,
            height: self.height,
            tile_width: self.tile_width,
            tile_height: self.tile_height,
        }
    }

    /// The model SHA-256 as lower-case hex.
    pub fn model_sha256_hex(&self) -> String {
        crate::hex::hex(&self.model_sha256)
    }

    /// Serialises the header (spec 4.1, table 4-1).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(self.major);
        out.push(self.minor);
        out.push(self.profile);
        out.push(self.level);
        out.extend_from_slice(&self.width.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.tile_width.to_le_bytes());
        out.extend_from_slice(&self.tile_height.to_le_bytes());
        out.push(self.colour_format);
        out.push(self.quality);
        let name = self.model_name.as_bytes();
        let len = name.len().min(MAX_MODEL_NAME);
        out.push(len as u8);
        out.extend_from_slice(&name[..len]);
        out.extend_from_slice(&self.model_sha256);
    }

    /// Parses and validates the header (spec 4.1, 5.1, 6), each field as it is read (13.1).
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, ContainerError> {
        if r.bytes(4, "magic")? != MAGIC {
            return Err(ContainerError::BadMagic);
        }
        let major = r.u8("major_version")?;
        if major != MAJOR_VERSION {
            return Err(ContainerError::UnsupportedMajor { major });
        }
        let minor = r.u8("minor_version")?;
        let profile = r.u8("profile_idc")?;
        if profile != PROFILE_MAIN {
            return Err(invalid(
                "profile_idc",
                6,
                profile.into(),
                "only profile 0 (Main) is defined",
            ));
        }
        let level_idc = r.u8("level_idc")?;
        let level = Level::from_idc(level_idc)
            .ok_or_else(|| invalid("level_idc", 7, level_idc.into(), "not a defined level"))?;
        // Each field is checked as soon as it is read, against its range and the fields
        // before it (spec 13.1): a stream cut inside a later field still reports this one.
        let mut size = [0u32; 2];
        for (k, (field, offset)) in [("width", 8), ("height", 12)].into_iter().enumerate() {
            let v = r.u32(field)?;
            if v == 0 || v > level.max_dimension {
                return Err(invalid(
                    field,
                    offset,
                    v.into(),
                    format!("must be 1..={} at level {}", level.max_dimension, level.idc),
                ));
            }
            size[k] = v;
        }
        let [width, height] = size;
        if u64::from(width) * u64::from(height) > level.max_pixels {
            return Err(invalid(
                "width*height",
                8,
                u64::from(width) * u64::from(height),
                format!("exceeds {} pixels of level {}", level.max_pixels, level.idc),
            ));
        }
        let mut tile = [0u32; 2];
        for (k, (field, offset, dim)) in [("tile_width", 16, width), ("tile_height", 20, height)]
            .into_iter()
            .enumerate()
        {
            let v = r.u32(field)?;
            let canonical_max = dim.div_ceil(TILE_ALIGN) * TILE_ALIGN;
            if v == 0 || v % TILE_ALIGN != 0 || v > level.max_tile_dimension || v > canonical_max {
                return Err(invalid(field, offset, v.into(), format!(
                    "must be a multiple of {TILE_ALIGN} in {TILE_ALIGN}..={} (level limit {}, image {dim})",
                    canonical_max.min(level.max_tile_dimension), level.max_tile_dimension
                )));
            }
            tile[k] = v;
        }
        let [tile_width, tile_height] = tile;
        let colour_format = r.u8("colour_format")?;
        if colour_format != COLOUR_RGB8 {
            return Err(invalid(
                "colour_format",
                24,
                colour_format.into(),
                "only 0 (8-bit RGB) is defined",
            ));
        }
        let quality = r.u8("quality")?;
        let name_offset = r.pos;
        let name_len = r.u8("model_name_length")? as usize;
        if name_len == 0 || name_len > MAX_MODEL_NAME {
            return Err(invalid(
                "model_name_length",
                name_offset,
                name_len as u64,
                format!("must be 1..={MAX_MODEL_NAME}"),
            ));
        }
        let name = r.bytes(name_len, "model_name")?;
        let model_name = std::str::from_utf8(name)
            .map_err(|_| invalid("model_name", name_offset + 1, name_len as u64, "not UTF-8"))?
            .to_string();
        let mut model_sha256 = [0u8; 32];
        model_sha256.copy_from_slice(r.bytes(32, "model_sha256")?);
        Ok(Self {
            major,
            minor,
            profile,
            level: level_idc,
            width,
            height,
            tile_width,
            tile_height,
            colour_format,
            quality,
            model_name,
            model_sha256,
        })
    }
}
