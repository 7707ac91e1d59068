//! The quantisation steps an encoder asks for (spec 5.4, 12.7): one step for the picture,
//! or one per 16 x 16 cell, cut into each tile's step map.

use super::{CodecError, StepMap};
use crate::container::{Tiling, MAX_STEP, MIN_STEP, TILE_ALIGN, UNIT_STEP};

/// Levels an importance is rounded to before it becomes a step ([`Steps::from_importance`]),
/// so that a tile never has more steps than a palette holds (spec 4.6).
pub const IMPORTANCE_LEVELS: u32 = 16;

/// A step per 16 x 16 cell of the picture (one position of the y grid, spec 5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepField {
    /// Cells per row: `4 * ceil(width / 64)`.
    pub cols: usize,
    /// Rows of cells: `4 * ceil(height / 64)`.
    pub rows: usize,
    /// Steps in units of `2^-8`, row-major.
    pub steps: Vec<u16>,
    /// Blocks of `2^block_log2` cells in the step maps (spec 4.6); 0: every cell.
    pub block_log2: u8,
}

/// The steps of an encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steps {
    /// One step everywhere, in units of `2^-8` (256: a step of 1, no step map).
    Uniform(u16),
    /// A step per cell.
    Field(StepField),
}

impl Default for Steps {
    fn default() -> Self {
        Self::UNIT
    }
}

/// `round(v)` clipped to the steps a STEP chunk holds (spec 4.6).
fn clip_step(v: f64) -> u16 {
    v.round().clamp(f64::from(MIN_STEP), f64::from(MAX_STEP)) as u16
}

/// `step` (in latent units, `1/256 <= step <= 16`) in units of `2^-8`: `round(256 step)`
/// (spec 12.7), refused outside the steps a STEP chunk holds (spec 4.6).
pub fn step_units(step: f64) -> Result<u16, CodecError> {
    let d = (step * f64::from(UNIT_STEP)).round();
    if !(f64::from(MIN_STEP)..=f64::from(MAX_STEP)).contains(&d) {
        return Err(CodecError::Input(format!(
            "step {step} is outside 1/256..16 (spec 4.6)"
        )));
    }
    Ok(d as u16)
}

impl Steps {
    /// A step of 1 everywhere: streams without step maps.
    pub const UNIT: Steps = Steps::Uniform(UNIT_STEP);

    /// One step of `step` (in latent units, `1/256 <= step <= 16`) everywhere.
    pub fn uniform(step: f64) -> Result<Self, CodecError> {
        step_units(step).map(Self::Uniform)
    }

    /// Steps from an importance `w` in [0, 1] per cell (`cols x rows`, row-major, as
    /// [`StepField`]): `D = round(256 * background^(1 - w))` with `w` first rounded to
    /// [`IMPORTANCE_LEVELS`] levels (spec 12.7). Important cells keep the step 1, the least
    /// important get `background`.
    pub fn from_importance(
        cols: usize,
        rows: usize,
        importance: &[f32],
        background: f64,
    ) -> Result<Self, CodecError> {
        if importance.len() != cols * rows {
            return Err(CodecError::Input(format!(
                "an importance map of {} cells for a grid of {cols} x {rows}",
                importance.len()
            )));
        }
        if !(background.is_finite() && (1.0 / 256.0..=16.0).contains(&background)) {
            return Err(CodecError::Input(format!(
                "background step factor {background} is outside 1/256..16"
            )));
        }
        let levels = f64::from(IMPORTANCE_LEVELS);
        let steps = importance
            .iter()
            .map(|&w| {
                let w = (f64::from(w).clamp(0.0, 1.0) * levels).round() / levels;
                clip_step(f64::from(UNIT_STEP) * background.powf(1.0 - w))
            })
            .collect();
        Ok(Self::Field(StepField {
            cols,
            rows,
            steps,
            block_log2: 0,
        }))
    }

    /// These steps multiplied by `base / 256` (rounded, clipped to 1..4096): rate control
    /// moves a map's base step and keeps its shape.
    pub fn scaled(&self, base: u16) -> Self {
        let f = f64::from(base) / f64::from(UNIT_STEP);
        match self {
            Self::Uniform(d) => Self::Uniform(clip_step(f64::from(*d) * f)),
            Self::Field(field) => Self::Field(StepField {
                steps: field
                    .steps
                    .iter()
                    .map(|&d| clip_step(f64::from(d) * f))
                    .collect(),
                ..field.clone()
            }),
        }
    }

    /// The step map of tile `index` of `tiling` (`None`: every step is 1).
    pub(crate) fn tile_map(
        &self,
        tiling: &Tiling,
        index: usize,
    ) -> Result<Option<StepMap>, CodecError> {
        let r = tiling.tile(index);
        let (hy, wy) = r.latent_size();
        let bad = |e: super::StepMapError| CodecError::Input(e.to_string());
        match self {
            Self::Uniform(d) => StepMap::from_steps(&vec![*d; hy * wy], hy, wy, 7).map_err(bad),
            Self::Field(field) => {
                let per = (TILE_ALIGN / 16) as usize;
                let cols = tiling.width.div_ceil(TILE_ALIGN) as usize * per;
                let rows = tiling.height.div_ceil(TILE_ALIGN) as usize * per;
                if (field.cols, field.rows) != (cols, rows) || field.steps.len() != cols * rows {
                    return Err(CodecError::Input(format!(
                        "a step field of {} x {} cells for a picture of {} x {} cells",
                        field.cols, field.rows, cols, rows
                    )));
                }
                let (x0, y0) = ((r.x / 16) as usize, (r.y / 16) as usize);
                let steps: Vec<u16> = (0..hy * wy)
                    .map(|p| field.steps[(y0 + p / wy) * cols + x0 + p % wy])
                    .collect();
                StepMap::from_steps(&steps, hy, wy, field.block_log2).map_err(bad)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_becomes_steps() {
        let Steps::Field(f) =
            Steps::from_importance(2, 2, &[1.0, 0.0, 0.5, 0.52], 4.0).expect("steps")
        else {
            panic!("a field")
        };
        assert_eq!(f.steps, vec![256, 1024, 512, 512]);
        assert!(Steps::from_importance(2, 2, &[1.0], 4.0).is_err());
        assert!(Steps::from_importance(1, 1, &[1.0], 0.0).is_err());
        assert_eq!(Steps::Uniform(300).scaled(512), Steps::Uniform(600));
        assert_eq!(Steps::Uniform(4000).scaled(512), Steps::Uniform(4096));
        assert_eq!(Steps::uniform(1.5).expect("1.5"), Steps::Uniform(384));
        assert!(Steps::uniform(17.0).is_err());
    }

    #[test]
    fn fields_are_cut_per_tile() {
        let tiling = Tiling {
            width: 200,
            height: 64,
            tile_width: 128,
            tile_height: 64,
        };
        // 16 x 4 cells; the step names the column
        let steps = (0..64).map(|p| 256 + (p % 16) as u16).collect();
        let field = Steps::Field(StepField {
            cols: 16,
            rows: 4,
            steps,
            block_log2: 0,
        });
        let second = field.tile_map(&tiling, 1).expect("map").expect("some");
        let d = second.steps(4, 8);
        assert_eq!(&d[..8], &[264, 265, 266, 267, 268, 269, 270, 271]);
        assert_eq!(Steps::UNIT.tile_map(&tiling, 0).expect("map"), None);
    }
}
