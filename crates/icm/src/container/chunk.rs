use super::header::{offset_by, Reader};
use super::step_chunk::{StepChunk, CHUNK_STEP};
use super::{ContainerError, Header};

/// Chunk type of a coded tile (spec 4.3).
pub const CHUNK_TILE: [u8; 4] = *b"TILE";
/// Chunk type of the end marker (spec 4.4).
pub const CHUNK_END: [u8; 4] = *b"IEND";
/// Chunk type of a tile checksum (spec 4.5, version 1.1): optional, so a 1.0 decoder skips
/// it.
pub const CHUNK_TSUM: [u8; 4] = *b"tsum";

/// The two ANS payloads of one tile (spec 4.3) and its step map, if any (spec 4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilePayload<'a> {
    /// Payload of z^ (spec 8.6).
    pub z: &'a [u8],
    /// Payload of y^ (spec 8.7).
    pub y: &'a [u8],
    /// Offset of the TILE chunk in the stream.
    pub offset: usize,
    /// The STEP chunk before the TILE chunk (spec 4.6, version 1.3); `None`: every step is
    /// 1.
    pub steps: Option<StepChunk<'a>>,
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
    // The payloads of the chunk just read when it was a TILE chunk, with its STEP chunk's
    // (what a tsum covers).
    let mut last_tile: Option<[&[u8]; 2]> = None;
    // The STEP chunk just read, waiting for its TILE chunk.
    let mut pending_step: Option<StepChunk<'_>> = None;
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
            CHUNK_TILE | CHUNK_STEP if tiles.len() == expected => {
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
            CHUNK_END | CHUNK_TILE | CHUNK_TSUM | CHUNK_STEP => {}
            _ if kind[0].is_ascii_lowercase() => {}
            _ => {
                return Err(ContainerError::UnknownRequiredChunk {
                    kind: String::from_utf8_lossy(&kind).into_owned(),
                    offset,
                })
            }
        }
        // After the checks above (spec 13.1: unknown-required-chunk, tile-count, then this).
        if pending_step.is_some() && kind != CHUNK_TILE {
            return Err(ContainerError::InvalidField {
                field: "chunk_type",
                offset,
                value: u32::from_le_bytes(kind).into(),
                reason: "the chunk after a STEP chunk is a TILE chunk (spec 4.6)".into(),
            });
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
            CHUNK_STEP => pending_step = Some(StepChunk::parse(payload, offset)?),
            CHUNK_TILE => {
                let steps = pending_step.take();
                let step_payload = steps.as_ref().map_or(&[][..], |s| {
                    // the STEP chunk's payload: it ends where this chunk starts
                    &data[s.offset + 8..offset]
                });
                tiles.push(parse_tile(payload, offset, tiles.len(), steps)?);
                last_tile = Some([step_payload, payload]);
            }
            CHUNK_TSUM => {
                let stored = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let computed = super::crc32c_of_parts(&previous_tile.unwrap_or_default());
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
fn parse_tile<'a>(
    payload: &'a [u8],
    offset: usize,
    index: usize,
    steps: Option<StepChunk<'a>>,
) -> Result<TilePayload<'a>, ContainerError> {
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    let shift = offset_by(offset + 8);
    let tile_index = r.u32("tile_index").map_err(&shift)?;
    if tile_index as usize != index {
        return Err(ContainerError::InvalidField {
            field: "tile_index",
            offset: offset + 8,
            value: tile_index.into(),
            reason: format!("expected {index} (tiles are in raster order)"),
        });
    }
    let z_length = r.u32("z_length").map_err(&shift)? as usize;
    let z = r.bytes(z_length, "z payload").map_err(&shift)?;
    let y = &payload[r.pos..];
    Ok(TilePayload {
        z,
        y,
        offset,
        steps,
    })
}

/// The coded chunks of one tile, as [`write`] lays them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodedTile {
    /// The STEP chunk's payload (spec 4.6), when the tile has a step map.
    pub steps: Option<Vec<u8>>,
    /// The z payload (spec 8.6).
    pub z: Vec<u8>,
    /// The y payload (spec 8.7).
    pub y: Vec<u8>,
}

impl From<(Vec<u8>, Vec<u8>)> for CodedTile {
    /// A tile without a step map from its z and y payloads.
    fn from((z, y): (Vec<u8>, Vec<u8>)) -> Self {
        Self { steps: None, z, y }
    }
}

impl TilePayload<'_> {
    /// The chunks of this tile as [`write`] takes them (the STEP payload re-serialised
    /// from its fields, which [`StepChunk::parse`] reads exactly).
    pub fn to_coded(&self) -> CodedTile {
        CodedTile {
            steps: self.steps.as_ref().map(StepChunk::to_bytes),
            z: self.z.to_vec(),
            y: self.y.to_vec(),
        }
    }
}

/// Serialises a stream: header, per tile its STEP chunk (when it has a step map, spec 4.6)
/// and its TILE chunk, each tile followed by its `tsum` chunk when `checksums` (spec 4.5;
/// then `header.minor` should be at least 1, and 3 with step maps), and IEND.
pub fn write(header: &Header, tiles: &[CodedTile], checksums: bool) -> Vec<u8> {
    let mut out = Vec::new();
    header.write(&mut out);
    for (index, tile) in tiles.iter().enumerate() {
        if let Some(steps) = &tile.steps {
            out.extend_from_slice(&CHUNK_STEP);
            out.extend_from_slice(&(steps.len() as u32).to_le_bytes());
            out.extend_from_slice(steps);
        }
        out.extend_from_slice(&CHUNK_TILE);
        out.extend_from_slice(&((8 + tile.z.len() + tile.y.len()) as u32).to_le_bytes());
        let tile_start = out.len();
        out.extend_from_slice(&(index as u32).to_le_bytes());
        out.extend_from_slice(&(tile.z.len() as u32).to_le_bytes());
        out.extend_from_slice(&tile.z);
        out.extend_from_slice(&tile.y);
        if checksums {
            let step = tile.steps.as_deref().unwrap_or_default();
            let crc = super::crc32c_of_parts(&[step, &out[tile_start..]]);
            out.extend_from_slice(&CHUNK_TSUM);
            out.extend_from_slice(&4u32.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
        }
    }
    out.extend_from_slice(&CHUNK_END);
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}
