use super::header::Reader;
use super::{ContainerError, Header};

/// Chunk type of a coded tile (spec 4.3).
pub const CHUNK_TILE: [u8; 4] = *b"TILE";
/// Chunk type of the end marker (spec 4.4).
pub const CHUNK_END: [u8; 4] = *b"IEND";
/// Chunk type of a tile checksum (spec 4.5, version 1.1): optional, so a 1.0 decoder skips
/// it.
pub const CHUNK_TSUM: [u8; 4] = *b"tsum";

/// The two ANS payloads of one tile (spec 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePayload<'a> {
    /// Payload of z^ (spec 8.6).
    pub z: &'a [u8],
    /// Payload of y^ (spec 8.7).
    pub y: &'a [u8],
    /// Offset of the TILE chunk in the stream.
    pub offset: usize,
}

/// A parsed stream: header, tiles in raster order, skipped optional chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream<'a> {
    /// The header.
    pub header: Header,
    /// Tile payloads in raster order.
    pub tiles: Vec<TilePayload<'a>>,
    /// Type and offset of every optional chunk that was skipped (spec 4.2).
    pub skipped: Vec<([u8; 4], usize)>,
    /// Tiles whose checksum (spec 4.5) was verified.
    pub verified_tiles: usize,
    /// Total stream size in bytes.
    pub bytes: usize,
}

/// Parses a whole stream (spec 4): header, chunks, tile count and end marker.
pub fn parse(data: &[u8]) -> Result<Stream<'_>, ContainerError> {
    let mut r = Reader { data, pos: 0 };
    let header = Header::read(&mut r)?;
    let expected = header.tiling().count();
    let mut tiles = Vec::new();
    let mut skipped = Vec::new();
    let mut verified_tiles = 0;
    // The payload of the chunk just read when it was a TILE chunk (what a tsum covers).
    let mut last_tile: Option<&[u8]> = None;
    // Syntax elements in stream order, each checked as soon as it is read (spec 13.1): a
    // chunk's type before its length, its length before its payload.
    loop {
        if r.pos == data.len() {
            return Err(ContainerError::MissingEnd { offset: r.pos });
        }
        let offset = r.pos;
        let kind: [u8; 4] = r
            .bytes(4, "chunk_type")?
            .try_into()
            .map_err(|_| ContainerError::MissingEnd { offset })?;
        match kind {
            CHUNK_END if tiles.len() != expected => {
                return Err(ContainerError::TileCount {
                    found: tiles.len(),
                    expected,
                })
            }
            CHUNK_TILE if tiles.len() == expected => {
                return Err(ContainerError::TileCount {
                    found: expected + 1,
                    expected,
                })
            }
            CHUNK_TSUM if last_tile.is_none() => {
                return Err(ContainerError::InvalidField {
                    field: "chunk_type",
                    offset,
                    value: u32::from_le_bytes(CHUNK_TSUM).into(),
                    reason: "a tsum chunk follows a TILE chunk".into(),
                })
            }
            CHUNK_END | CHUNK_TILE | CHUNK_TSUM => {}
            _ if kind[0].is_ascii_lowercase() => {}
            _ => {
                return Err(ContainerError::UnknownRequiredChunk {
                    kind: String::from_utf8_lossy(&kind).into_owned(),
                    offset,
                })
            }
        }
        let length = r.u32("chunk_length")? as usize;
        let fixed = match kind {
            CHUNK_END => Some((0, "IEND has no payload")),
            CHUNK_TSUM => Some((4, "a tsum payload is one u32")),
            _ => None,
        };
        if let Some((want, reason)) = fixed {
            if length != want {
                return Err(ContainerError::InvalidField {
                    field: "chunk_length",
                    offset: offset + 4,
                    value: length as u64,
                    reason: reason.into(),
                });
            }
        }
        let payload = r.bytes(length, "chunk payload")?;
        let previous_tile = last_tile.take();
        match kind {
            CHUNK_END => break,
            CHUNK_TILE => {
                tiles.push(parse_tile(payload, offset, tiles.len())?);
                last_tile = Some(payload);
            }
            CHUNK_TSUM => {
                let stored = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let computed = super::crc32c(previous_tile.unwrap_or_default());
                if stored != computed {
                    return Err(ContainerError::ChecksumMismatch {
                        tile: tiles.len() - 1,
                        offset,
                        stored,
                        computed,
                    });
                }
                verified_tiles += 1;
            }
            _ => skipped.push((kind, offset)),
        }
    }
    if r.pos != data.len() {
        return Err(ContainerError::TrailingData {
            offset: r.pos,
            bytes: data.len() - r.pos,
        });
    }
    Ok(Stream {
        header,
        tiles,
        skipped,
        verified_tiles,
        bytes: data.len(),
    })
}

/// Splits a TILE payload: `tile_index`, `z_length`, z payload, y payload (spec 4.3).
fn parse_tile(
    payload: &[u8],
    offset: usize,
    index: usize,
) -> Result<TilePayload<'_>, ContainerError> {
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    let shift = |e: ContainerError| match e {
        ContainerError::Truncated {
            what,
            offset: o,
            needed,
            available,
        } => ContainerError::Truncated {
            what,
            offset: offset + 8 + o,
            needed,
            available,
        },
        other => other,
    };
    let tile_index = r.u32("tile_index").map_err(shift)?;
    if tile_index as usize != index {
        return Err(ContainerError::InvalidField {
            field: "tile_index",
            offset: offset + 8,
            value: tile_index.into(),
            reason: format!("expected {index} (tiles are in raster order)"),
        });
    }
    let z_length = r.u32("z_length").map_err(shift)? as usize;
    let z = r.bytes(z_length, "z payload").map_err(shift)?;
    let y = &payload[r.pos..];
    Ok(TilePayload { z, y, offset })
}

/// Serialises a stream: header, one TILE chunk per tile (z and y payloads), each followed
/// by its `tsum` chunk when `checksums` (spec 4.5; then `header.minor` should be at least
/// 1), and IEND.
pub fn write(header: &Header, tiles: &[(Vec<u8>, Vec<u8>)], checksums: bool) -> Vec<u8> {
    let mut out = Vec::new();
    header.write(&mut out);
    for (index, (z, y)) in tiles.iter().enumerate() {
        out.extend_from_slice(&CHUNK_TILE);
        out.extend_from_slice(&((8 + z.len() + y.len()) as u32).to_le_bytes());
        let start = out.len();
        out.extend_from_slice(&(index as u32).to_le_bytes());
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend_from_slice(z);
        out.extend_from_slice(y);
        if checksums {
            let crc = super::crc32c(&out[start..]);
            out.extend_from_slice(&CHUNK_TSUM);
            out.extend_from_slice(&4u32.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
        }
    }
    out.extend_from_slice(&CHUNK_END);
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}
