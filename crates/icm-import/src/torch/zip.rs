//! A minimal reader of the zip archives torch writes: STORED (uncompressed) entries located
//! through the central directory, with zip64 records, CRC-32 checked on every read.
//!
//! Written here rather than taken from the `zip` crate: torch stores every record
//! uncompressed, so reading needs only the central directory and the local headers, and a
//! reader of that much is short enough to check every offset it trusts.

use std::collections::HashMap;

use super::error::TorchError;

/// Signature of the end of central directory record.
const EOCD_SIG: u32 = 0x0605_4b50;
/// Signature of the zip64 end of central directory locator.
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// Signature of the zip64 end of central directory record.
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
/// Signature of a central directory file header.
const CENTRAL_SIG: u32 = 0x0201_4b50;
/// Signature of a local file header.
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Fixed sizes of those records.
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EOCD_LEN: usize = 56;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
/// Largest zip comment, which may follow the end of central directory record.
const MAX_COMMENT: usize = 0xffff;

/// One entry of the central directory.
#[derive(Debug, Clone)]
struct Entry {
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// A parsed archive borrowing the file's bytes.
#[derive(Debug)]
pub(crate) struct Archive<'a> {
    data: &'a [u8],
    entries: HashMap<String, Entry>,
    /// Entry names in central directory order.
    names: Vec<String>,
}

/// Whether `data` looks like a zip archive (starts with a local header or, for an empty
/// archive, with the end of central directory record).
pub(crate) fn is_zip(data: &[u8]) -> bool {
    data.starts_with(&LOCAL_SIG.to_le_bytes()) || data.starts_with(&EOCD_SIG.to_le_bytes())
}

/// Little-endian field reader over a record; every read is bounds-checked.
struct Fields<'a> {
    bytes: &'a [u8],
    /// Offset of `bytes` in the file, for error messages.
    at: u64,
}

impl<'a> Fields<'a> {
    fn bytes(&self, pos: usize, len: usize) -> Result<&'a [u8], TorchError> {
        pos.checked_add(len)
            .and_then(|end| self.bytes.get(pos..end))
            .ok_or_else(|| zip_err(self.at, format!("record truncated at field offset {pos}")))
    }
    fn u16(&self, pos: usize) -> Result<u16, TorchError> {
        let b = self.bytes(pos, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, pos: usize) -> Result<u32, TorchError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(pos, 4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&self, pos: usize) -> Result<u64, TorchError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(pos, 8)?);
        Ok(u64::from_le_bytes(a))
    }
}

fn zip_err(offset: u64, what: impl Into<String>) -> TorchError {
    TorchError::Zip {
        offset,
        what: what.into(),
    }
}

fn entry_err(entry: &str, what: impl Into<String>) -> TorchError {
    TorchError::ZipEntry {
        entry: entry.to_string(),
        what: what.into(),
    }
}

/// `data[offset..]` as a field reader, or an error naming `what` when `offset` is outside.
fn fields_at<'a>(data: &'a [u8], offset: u64, what: &str) -> Result<Fields<'a>, TorchError> {
    let bytes = usize::try_from(offset)
        .ok()
        .and_then(|o| data.get(o..))
        .ok_or_else(|| {
            zip_err(
                offset,
                format!("{what} lies outside the file of {} bytes", data.len()),
            )
        })?;
    Ok(Fields { bytes, at: offset })
}

impl<'a> Archive<'a> {
    /// Parses the central directory of `data`.
    ///
    /// The end of central directory record is searched backwards over the last
    /// 65,557 bytes (record plus largest comment). When a zip64 locator precedes it (torch
    /// always writes one), the zip64 record's counts and offsets are used. Multi-disk
    /// archives, duplicate entry names and names that are not UTF-8 are rejected.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self, TorchError> {
        let eocd_pos = find_eocd(data)?;
        let eocd = fields_at(data, eocd_pos as u64, "end of central directory")?;
        let disk = eocd.u16(4)?;
        let cd_disk = eocd.u16(6)?;
        let mut count = u64::from(eocd.u16(10)?);
        let mut cd_size = u64::from(eocd.u32(12)?);
        let mut cd_offset = u64::from(eocd.u32(16)?);
        if disk != 0 || cd_disk != 0 {
            return Err(zip_err(
                eocd_pos as u64,
                "multi-disk archives are not supported",
            ));
        }
        if let Some(loc_pos) = eocd_pos.checked_sub(ZIP64_LOCATOR_LEN) {
            let loc = fields_at(data, loc_pos as u64, "zip64 locator")?;
            if loc.u32(0)? == ZIP64_LOCATOR_SIG {
                let z64_pos = loc.u64(8)?;
                let z64 = fields_at(data, z64_pos, "zip64 end of central directory")?;
                if z64.u32(0)? != ZIP64_EOCD_SIG {
                    return Err(zip_err(
                        z64_pos,
                        "bad zip64 end of central directory signature",
                    ));
                }
                z64.bytes(0, ZIP64_EOCD_LEN)?;
                if z64.u32(16)? != 0 || z64.u32(20)? != 0 {
                    return Err(zip_err(z64_pos, "multi-disk archives are not supported"));
                }
                count = z64.u64(32)?;
                cd_size = z64.u64(40)?;
                cd_offset = z64.u64(48)?;
            }
        }
        let cd = cd_offset
            .checked_add(cd_size)
            .and_then(|end| Some((usize::try_from(cd_offset).ok()?, usize::try_from(end).ok()?)))
            .and_then(|(start, end)| data.get(start..end))
            .ok_or_else(|| {
                zip_err(
                    cd_offset,
                    format!("central directory of {cd_size} bytes lies outside the file"),
                )
            })?;
        // Each header takes at least CENTRAL_LEN bytes, which bounds the entry count.
        if count > (cd.len() / CENTRAL_LEN) as u64 {
            return Err(zip_err(
                cd_offset,
                format!("{count} entries cannot fit a central directory of {cd_size} bytes"),
            ));
        }
        let count = count as usize;
        let mut entries = HashMap::with_capacity(count);
        let mut names = Vec::with_capacity(count);
        let mut pos = 0usize;
        for _ in 0..count {
            let at = cd_offset.saturating_add(pos as u64);
            let h = Fields {
                bytes: cd.get(pos..).unwrap_or(&[]),
                at,
            };
            if h.u32(0)? != CENTRAL_SIG {
                return Err(zip_err(at, "bad central directory header signature"));
            }
            let flags = h.u16(8)?;
            let method = h.u16(10)?;
            let crc = h.u32(16)?;
            let mut compressed = u64::from(h.u32(20)?);
            let mut uncompressed = u64::from(h.u32(24)?);
            let name_len = usize::from(h.u16(28)?);
            let extra_len = usize::from(h.u16(30)?);
            let comment_len = usize::from(h.u16(32)?);
            let start_disk = h.u16(34)?;
            let mut local_offset = u64::from(h.u32(42)?);
            let name = h.bytes(CENTRAL_LEN, name_len)?;
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| zip_err(at, "entry name is not UTF-8"))?;
            let extra = h.bytes(CENTRAL_LEN + name_len, extra_len)?;
            h.bytes(CENTRAL_LEN + name_len + extra_len, comment_len)?;
            // Zip64 extended information: the 64-bit values of the saturated fields, in order.
            if let Some(z) = find_extra(extra, 0x0001) {
                let z = Fields { bytes: z, at };
                let mut p = 0;
                for field in [&mut uncompressed, &mut compressed, &mut local_offset] {
                    if *field == 0xffff_ffff {
                        *field = z.u64(p)?;
                        p += 8;
                    }
                }
            }
            if start_disk != 0 && start_disk != 0xffff {
                return Err(zip_err(at, "multi-disk archives are not supported"));
            }
            let entry = Entry {
                flags,
                method,
                crc,
                compressed,
                uncompressed,
                local_offset,
            };
            if entries.insert(name.clone(), entry).is_some() {
                return Err(entry_err(&name, "occurs twice in the central directory"));
            }
            names.push(name);
            pos = pos + CENTRAL_LEN + name_len + extra_len + comment_len;
        }
        Ok(Archive {
            data,
            entries,
            names,
        })
    }

    /// The entry names in central directory order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The contents of entry `name`, borrowed from the file; `Ok(None)` when there is no
    /// such entry. Fails when the entry is compressed or encrypted, its local header does
    /// not match the central directory, its data lies outside the file, or its CRC-32
    /// differs.
    pub(crate) fn read(&self, name: &str) -> Result<Option<&'a [u8]>, TorchError> {
        let Some(e) = self.entries.get(name) else {
            return Ok(None);
        };
        if e.flags & 1 != 0 {
            return Err(entry_err(name, "is encrypted"));
        }
        if e.method != 0 {
            return Err(entry_err(
                name,
                format!(
                    "uses compression method {} (only STORED, 0, is supported)",
                    e.method
                ),
            ));
        }
        if e.compressed != e.uncompressed {
            return Err(entry_err(
                name,
                format!(
                    "is STORED but its sizes differ ({} and {})",
                    e.compressed, e.uncompressed
                ),
            ));
        }
        let local = fields_at(self.data, e.local_offset, "local header")?;
        if local.u32(0)? != LOCAL_SIG {
            return Err(zip_err(
                e.local_offset,
                format!("bad local header signature of entry {name:?}"),
            ));
        }
        let name_len = usize::from(local.u16(26)?);
        let extra_len = usize::from(local.u16(28)?);
        if local.bytes(LOCAL_LEN, name_len)? != name.as_bytes() {
            return Err(entry_err(name, "local header names another entry"));
        }
        let start = (LOCAL_LEN + name_len + extra_len) as u64;
        let contents = usize::try_from(e.compressed)
            .ok()
            .and_then(|len| local.bytes(start as usize, len).ok())
            .ok_or_else(|| {
                entry_err(
                    name,
                    format!(
                        "{} bytes of data run past the end of the file",
                        e.compressed
                    ),
                )
            })?;
        let crc = crc32(contents);
        if crc != e.crc {
            return Err(entry_err(
                name,
                format!("CRC-32 is {crc:08x}, the directory says {:08x}", e.crc),
            ));
        }
        Ok(Some(contents))
    }
}

/// Finds the end of central directory record: the last signature within the final
/// 65,557 bytes whose comment length fits the file.
fn find_eocd(data: &[u8]) -> Result<usize, TorchError> {
    let last = data
        .len()
        .checked_sub(EOCD_LEN)
        .ok_or_else(|| zip_err(0, "file too short for an end of central directory record"))?;
    let first = last.saturating_sub(MAX_COMMENT);
    for pos in (first..=last).rev() {
        let Some(rec) = data.get(pos..pos + EOCD_LEN) else {
            continue;
        };
        if rec[..4] == EOCD_SIG.to_le_bytes() {
            let comment = usize::from(u16::from_le_bytes([rec[20], rec[21]]));
            if pos + EOCD_LEN + comment <= data.len() {
                return Ok(pos);
            }
        }
    }
    Err(zip_err(last as u64, "no end of central directory record"))
}

/// The data of the extra field with header id `id`, if present and well-formed.
fn find_extra(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let tag = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let body = extra.get(4..4 + len)?;
        if tag == id {
            return Some(body);
        }
        extra = extra.get(4 + len..)?;
    }
    None
}

/// The CRC-32 (IEEE 802.3, reflected, as zip uses) of `bytes`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [[u32; 256]; 4] = crc_tables();
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(4);
    for c in &mut chunks {
        let x = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = TABLE[3][(x & 0xff) as usize]
            ^ TABLE[2][((x >> 8) & 0xff) as usize]
            ^ TABLE[1][((x >> 16) & 0xff) as usize]
            ^ TABLE[0][(x >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLE[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Slicing-by-4 tables of the reflected polynomial 0xEDB88320.
const fn crc_tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 4 {
            let prev = t[j - 1][i];
            t[j][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            j += 1;
        }
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"a"), 0xe8b7_be43);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(Archive::parse(b"").is_err());
        assert!(Archive::parse(b"PK\x05\x06").is_err());
        let mut eocd = vec![0u8; 22];
        eocd[..4].copy_from_slice(&EOCD_SIG.to_le_bytes());
        let empty = Archive::parse(&eocd).expect("empty archive");
        assert!(empty.names().is_empty());
        eocd[10] = 5; // 5 entries in a 0-byte directory
        assert!(Archive::parse(&eocd).is_err());
    }
}
