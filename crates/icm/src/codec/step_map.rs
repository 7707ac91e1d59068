//! Step maps (spec 5.4, 8.8, version 1.3): the quantisation step of every position of a
//! tile's y grid, as a palette of steps and a palette index per block of positions.

use crate::container::{StepChunk, MAX_BLOCK_LOG2, MAX_STEP, MIN_STEP, UNIT_STEP};
use crate::entropy::{AnsDecoder, CdfTable, EntropyError, SymbolWriter};
use crate::model::tables::quantize_probabilities;

/// The step map of one tile (spec 5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepMap {
    /// `b`: blocks are `2^b x 2^b` positions.
    block_log2: u8,
    /// The palette `D[p]`, units of `2^-8`.
    palette: Vec<u16>,
    /// `Blk[bi][bj]`, row-major, `rows x cols` blocks.
    blocks: Vec<u8>,
    /// Blocks per row (`BW`).
    cols: usize,
    /// Rows of blocks (`BH`).
    rows: usize,
}

/// Why an encoder cannot make a step map of the steps it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepMapError {
    /// A step outside `1..=4096` (spec 4.6).
    StepOutOfRange(u16),
    /// More than 255 distinct steps in one tile (spec 4.6).
    TooManySteps(usize),
    /// The steps do not cover the grid.
    Size { steps: usize, positions: usize },
    /// `block_log2` above 7.
    BlockSize(u8),
}

impl std::fmt::Display for StepMapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StepOutOfRange(d) => write!(f, "step {d}/256 is outside 1/256..16 (spec 4.6)"),
            Self::TooManySteps(n) => {
                write!(f, "{n} distinct steps in one tile, at most 255 (spec 4.6)")
            }
            Self::Size { steps, positions } => {
                write!(f, "{steps} steps for a grid of {positions} positions")
            }
            Self::BlockSize(b) => write!(f, "block_log2 {b} is above 7 (spec 4.6)"),
        }
    }
}

impl std::error::Error for StepMapError {}

/// Blocks per column and row of a `hy x wy` grid: `(BH, BW)` (spec 5.4).
fn block_grid(block_log2: u8, hy: usize, wy: usize) -> (usize, usize) {
    let side = 1usize << block_log2;
    (hy.div_ceil(side), wy.div_ceil(side))
}

impl StepMap {
    /// The map of a STEP chunk for a tile whose y grid is `hy x wy`: the block indices
    /// decoded from its index payload (spec 8.8).
    pub fn decode(chunk: &StepChunk<'_>, hy: usize, wy: usize) -> Result<Self, EntropyError> {
        let (rows, cols) = block_grid(chunk.block_log2, hy, wy);
        let blocks = if chunk.steps.len() == 1 {
            vec![0; rows * cols]
        } else {
            let freq: Vec<u32> = chunk.frequencies.iter().map(|&f| u32::from(f)).collect();
            let table = CdfTable::from_frequencies(&freq)?;
            let mut dec = AnsDecoder::new(chunk.index_payload)?;
            let blocks = (0..rows * cols).map(|_| dec.decode(&table) as u8).collect();
            dec.finish()?;
            blocks
        };
        Ok(Self {
            block_log2: chunk.block_log2,
            palette: chunk.steps.clone(),
            blocks,
            cols,
            rows,
        })
    }

    /// The map an encoder sends for `steps`, one per position of a `hy x wy` grid
    /// (row-major), with blocks of `2^block_log2` positions, each block taking the
    /// smallest (finest) step of its positions. `None` when every step is 256: the tile
    /// needs no STEP chunk.
    pub fn from_steps(
        steps: &[u16],
        hy: usize,
        wy: usize,
        block_log2: u8,
    ) -> Result<Option<Self>, StepMapError> {
        if block_log2 > MAX_BLOCK_LOG2 {
            return Err(StepMapError::BlockSize(block_log2));
        }
        if steps.len() != hy * wy {
            return Err(StepMapError::Size {
                steps: steps.len(),
                positions: hy * wy,
            });
        }
        if let Some(&d) = steps.iter().find(|d| !(MIN_STEP..=MAX_STEP).contains(d)) {
            return Err(StepMapError::StepOutOfRange(d));
        }
        if steps.iter().all(|&d| d == UNIT_STEP) {
            return Ok(None);
        }
        let (rows, cols) = block_grid(block_log2, hy, wy);
        let mut block_steps = vec![MAX_STEP; rows * cols];
        for (p, &d) in steps.iter().enumerate() {
            let b = ((p / wy) >> block_log2) * cols + ((p % wy) >> block_log2);
            block_steps[b] = block_steps[b].min(d);
        }
        let mut palette = block_steps.clone();
        palette.sort_unstable();
        palette.dedup();
        if palette.len() > 255 {
            return Err(StepMapError::TooManySteps(palette.len()));
        }
        let blocks = block_steps
            .iter()
            .map(|d| palette.partition_point(|p| p < d) as u8)
            .collect();
        Ok(Some(Self {
            block_log2,
            palette,
            blocks,
            cols,
            rows,
        }))
    }

    /// The STEP chunk's payload (spec 4.6): the palette, and with two or more steps the
    /// frequencies of the indices (their counts, spec 12.3's rule) and the index payload.
    pub fn to_payload(&self) -> Result<Vec<u8>, EntropyError> {
        let mut frequencies = Vec::new();
        let mut index = Vec::new();
        if self.palette.len() > 1 {
            let mut counts = vec![0.0f64; self.palette.len()];
            for &b in &self.blocks {
                counts[usize::from(b)] += 1.0;
            }
            let freq = quantize_probabilities(&counts);
            let table = CdfTable::from_frequencies(&freq)?;
            let mut w = SymbolWriter::new();
            for &b in &self.blocks {
                w.push(&table, usize::from(b))?;
            }
            index = w.finish()?;
            frequencies = freq.iter().map(|&f| f as u16).collect();
        }
        Ok(StepChunk {
            block_log2: self.block_log2,
            steps: self.palette.clone(),
            frequencies,
            index_payload: &index,
            offset: 0,
        }
        .to_bytes())
    }

    /// `D(i, j)` of every position of the `hy x wy` grid, row-major (spec 5.4).
    pub fn steps(&self, hy: usize, wy: usize) -> Vec<u16> {
        let b = self.block_log2;
        (0..hy * wy)
            .map(|p| {
                let k = ((p / wy) >> b).min(self.rows.saturating_sub(1)) * self.cols
                    + ((p % wy) >> b).min(self.cols.saturating_sub(1));
                self.palette[usize::from(self.blocks[k])]
            })
            .collect()
    }

    /// The palette of steps, units of `2^-8`.
    pub fn palette(&self) -> &[u16] {
        &self.palette
    }

    /// `block_log2`.
    pub fn block_log2(&self) -> u8 {
        self.block_log2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::StepChunk;

    fn round_trip(steps: &[u16], hy: usize, wy: usize, b: u8) -> Option<Vec<u16>> {
        let map = StepMap::from_steps(steps, hy, wy, b).expect("map")?;
        let payload = map.to_payload().expect("payload");
        let chunk = StepChunk::parse(&payload, 0).expect("chunk");
        let decoded = StepMap::decode(&chunk, hy, wy).expect("decode");
        assert_eq!(decoded, map);
        Some(decoded.steps(hy, wy))
    }

    #[test]
    fn maps_survive_their_payload() {
        let (hy, wy) = (12, 20);
        let roi: Vec<u16> = (0..hy * wy)
            .map(|p| if (3..7).contains(&(p / wy)) { 256 } else { 768 })
            .collect();
        assert_eq!(round_trip(&roi, hy, wy, 0), Some(roi.clone()));
        assert_eq!(round_trip(&vec![256; hy * wy], hy, wy, 0), None);
        assert_eq!(
            round_trip(&vec![300; hy * wy], hy, wy, 3),
            Some(vec![300; hy * wy])
        );
        // blocks of 4: rows 3-6 reach into blocks 0 and 1, which take the finer step
        let blocky = round_trip(&roi, hy, wy, 2).expect("map");
        assert!(blocky[..8 * wy].iter().all(|&d| d == 256));
        assert!(blocky[8 * wy..].iter().all(|&d| d == 768));
        let ramp: Vec<u16> = (0..hy * wy).map(|p| 1 + (p % 200) as u16 * 20).collect();
        assert_eq!(round_trip(&ramp, hy, wy, 0), Some(ramp));
    }

    #[test]
    fn encoder_input_is_checked() {
        assert_eq!(
            StepMap::from_steps(&[0, 256], 1, 2, 0),
            Err(StepMapError::StepOutOfRange(0))
        );
        assert_eq!(
            StepMap::from_steps(&[256], 1, 2, 0),
            Err(StepMapError::Size {
                steps: 1,
                positions: 2
            })
        );
        let many: Vec<u16> = (1..=256).collect();
        assert_eq!(
            StepMap::from_steps(&many, 16, 16, 0),
            Err(StepMapError::TooManySteps(256))
        );
        assert_eq!(
            StepMap::from_steps(&[256], 1, 1, 8),
            Err(StepMapError::BlockSize(8))
        );
    }
}
