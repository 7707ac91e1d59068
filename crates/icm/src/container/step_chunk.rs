//! The STEP chunk (spec 4.6, version 1.3): the syntax of a tile's step map. Its block
//! indices are an ANS payload that the codec layer decodes (spec 8.8,
//! [`crate::codec::StepMap`]).

use super::header::{offset_by, Reader};
use super::ContainerError;

/// Chunk type of a step map (spec 4.6): required, so a decoder before 1.3 rejects the
/// stream instead of decoding it to other latents.
pub const CHUNK_STEP: [u8; 4] = *b"STEP";
/// Largest `block_log2` (spec 4.6): a block of `2^7` positions covers the largest tile.
pub const MAX_BLOCK_LOG2: u8 = 7;
/// Smallest step, in units of `2^-8` (spec 4.6).
pub const MIN_STEP: u16 = 1;
/// Largest step, in units of `2^-8` (spec 4.6): 16.
pub const MAX_STEP: u16 = 4096;
/// The step of 1.0 (spec 5.4): what a tile without a STEP chunk uses everywhere.
pub const UNIT_STEP: u16 = 256;
/// Total of a frequency table (spec 7.4).
const FREQUENCY_TOTAL: u32 = 1 << 16;

/// The fields of a STEP chunk (spec 4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChunk<'a> {
    /// `block_log2`: blocks are `2^b x 2^b` positions of the y grid.
    pub block_log2: u8,
    /// `step[p]`: the palette of steps, in units of `2^-8` (`palette_size` entries).
    pub steps: Vec<u16>,
    /// `frequency[p]`: the table of the block indices (empty when the palette has one
    /// step).
    pub frequencies: Vec<u16>,
    /// `index_payload`: the ANS payload of the block indices (empty with one step).
    pub index_payload: &'a [u8],
    /// Offset of the STEP chunk in the stream.
    pub offset: usize,
}

impl<'a> StepChunk<'a> {
    /// Reads and checks the payload of the STEP chunk at `offset` (spec 4.6), field by
    /// field in stream order (spec 13.1).
    pub fn parse(payload: &'a [u8], offset: usize) -> Result<Self, ContainerError> {
        let base = offset + 8;
        let mut r = Reader {
            data: payload,
            pos: 0,
        };
        let shift = offset_by(base);
        let invalid = |field, at: usize, value: u64, reason: &str| ContainerError::InvalidField {
            field,
            offset: base + at,
            value,
            reason: reason.into(),
        };
        let block_log2 = r.u8("block_log2").map_err(&shift)?;
        if block_log2 > MAX_BLOCK_LOG2 {
            return Err(invalid(
                "block_log2",
                0,
                block_log2.into(),
                "at most 7 (spec 4.6)",
            ));
        }
        let palette_size = r.u8("palette_size").map_err(&shift)?;
        if palette_size == 0 {
            return Err(invalid("palette_size", 1, 0, "at least 1 (spec 4.6)"));
        }
        let mut steps = Vec::with_capacity(palette_size.into());
        for _ in 0..palette_size {
            let at = r.pos;
            let d = r.u16("step").map_err(&shift)?;
            if !(MIN_STEP..=MAX_STEP).contains(&d) {
                return Err(invalid(
                    "step",
                    at,
                    d.into(),
                    "a step is 1 to 4096 (1/256 to 16, spec 4.6)",
                ));
            }
            steps.push(d);
        }
        if palette_size == 1 {
            if r.pos != payload.len() {
                return Err(ContainerError::InvalidField {
                    field: "chunk_length",
                    offset: offset + 4,
                    value: payload.len() as u64,
                    reason: "a STEP chunk with one step has a payload of 4 bytes".into(),
                });
            }
            return Ok(Self {
                block_log2,
                steps,
                frequencies: Vec::new(),
                index_payload: &[],
                offset,
            });
        }
        let table_at = r.pos;
        let mut frequencies = Vec::with_capacity(palette_size.into());
        for _ in 0..palette_size {
            let at = r.pos;
            let f = r.u16("frequency").map_err(&shift)?;
            if f == 0 {
                return Err(invalid(
                    "frequency",
                    at,
                    0,
                    "every frequency is at least 1 (spec 7.4)",
                ));
            }
            frequencies.push(f);
        }
        let total: u32 = frequencies.iter().map(|&f| u32::from(f)).sum();
        if total != FREQUENCY_TOTAL {
            return Err(invalid(
                "frequency",
                table_at,
                total.into(),
                "the frequencies sum to 65536 (spec 7.4)",
            ));
        }
        Ok(Self {
            block_log2,
            steps,
            frequencies,
            index_payload: &payload[r.pos..],
            offset,
        })
    }

    /// The chunk payload (spec 4.6): what [`parse`](Self::parse) reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 4 * self.steps.len() + self.index_payload.len());
        out.push(self.block_log2);
        out.push(self.steps.len() as u8);
        for v in self.steps.iter().chain(&self.frequencies) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(self.index_payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(steps: Vec<u16>, frequencies: Vec<u16>, index: &[u8]) -> StepChunk<'_> {
        StepChunk {
            block_log2: 2,
            steps,
            frequencies,
            index_payload: index,
            offset: 100,
        }
    }

    #[test]
    fn round_trip() {
        let index = [1u8, 2, 3, 4];
        for c in [
            chunk(vec![512], vec![], &[]),
            chunk(vec![256, 1, 4096], vec![1, 65534, 1], &index),
        ] {
            let bytes = c.to_bytes();
            assert_eq!(StepChunk::parse(&bytes, 100), Ok(c));
        }
    }

    #[test]
    fn every_field_is_checked_where_it_is() {
        let class = |bytes: &[u8]| StepChunk::parse(bytes, 100).map(|_| ());
        let field = |bytes: &[u8]| match class(bytes) {
            Err(ContainerError::InvalidField { field, offset, .. }) => (field, offset),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&[8, 1, 0, 1]), ("block_log2", 108));
        assert_eq!(field(&[0, 0]), ("palette_size", 109));
        assert_eq!(field(&[0, 1, 0, 0]), ("step", 110));
        assert_eq!(field(&[0, 2, 0, 1, 1, 16]), ("step", 112));
        assert_eq!(field(&[0, 1, 0, 1, 0]), ("chunk_length", 104));
        // frequencies 0 and 65536 - 1
        assert_eq!(
            field(&[0, 2, 0, 1, 0, 2, 0, 0, 255, 255]),
            ("frequency", 114)
        );
        // frequencies 1 and 1
        assert_eq!(field(&[0, 2, 0, 1, 0, 2, 1, 0, 1, 0]), ("frequency", 114));
        for cut in [&[][..], &[0], &[0, 1, 0], &[0, 2, 0, 1, 0, 2, 1, 0, 255]] {
            assert!(
                matches!(class(cut), Err(ContainerError::Truncated { .. })),
                "{cut:?}"
            );
        }
    }
}
