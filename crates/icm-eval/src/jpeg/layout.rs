//! Component and sampling layout (T.81 A.1.1, A.2): each component's size in samples and
//! 8x8 blocks, the MCU grid of interleaved scans, and the coefficient storage, padded to
//! whole MCUs so that interleaved scans can write their dummy blocks (A.2.4).

use super::markers::FrameHeader;

/// The block geometry of one frame component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentLayout {
    /// Sampling factors H, V.
    pub h: usize,
    /// See `h`.
    pub v: usize,
    /// Blocks per row that cover the component's samples: ceil(ceil(X * H / Hmax) / 8)
    /// (A.1.1; libjpeg's `width_in_blocks`). Non-interleaved scans code exactly these.
    pub blocks_w: usize,
    /// Block rows that cover the component's lines: ceil(ceil(Y * V / Vmax) / 8).
    pub blocks_h: usize,
    /// Blocks per row of the storage: MCUs per row times H.
    pub stride: usize,
    /// Block rows of the storage: MCU rows times V.
    pub rows: usize,
}

/// The block geometry of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameLayout {
    /// Hmax, Vmax.
    pub hmax: usize,
    /// See `hmax`.
    pub vmax: usize,
    /// MCUs per row of an interleaved scan: ceil(X / (8 * Hmax)).
    pub mcus_x: usize,
    /// MCU rows of an interleaved scan: ceil(Y / (8 * Vmax)).
    pub mcus_y: usize,
    /// Components in frame order.
    pub components: Vec<ComponentLayout>,
}

impl FrameLayout {
    /// The layout of `frame`.
    pub fn new(frame: &FrameHeader) -> Self {
        let (x, y) = (usize::from(frame.width), usize::from(frame.height));
        let hmax = frame
            .components
            .iter()
            .map(|c| usize::from(c.h))
            .max()
            .unwrap_or(1);
        let vmax = frame
            .components
            .iter()
            .map(|c| usize::from(c.v))
            .max()
            .unwrap_or(1);
        let mcus_x = x.div_ceil(8 * hmax);
        let mcus_y = y.div_ceil(8 * vmax);
        let components = frame
            .components
            .iter()
            .map(|c| {
                let (h, v) = (usize::from(c.h), usize::from(c.v));
                ComponentLayout {
                    h,
                    v,
                    blocks_w: (x * h).div_ceil(hmax).div_ceil(8),
                    blocks_h: (y * v).div_ceil(vmax).div_ceil(8),
                    stride: mcus_x * h,
                    rows: mcus_y * v,
                }
            })
            .collect();
        FrameLayout {
            hmax,
            vmax,
            mcus_x,
            mcus_y,
            components,
        }
    }

    /// Blocks of storage over all components.
    pub fn storage_blocks(&self) -> u64 {
        self.components
            .iter()
            .map(|c| c.stride as u64 * c.rows as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::markers::{FrameComponent, Process};

    fn frame(w: u16, h: u16, factors: &[(u8, u8)]) -> FrameHeader {
        FrameHeader {
            process: Process::Baseline,
            width: w,
            height: h,
            components: factors
                .iter()
                .enumerate()
                .map(|(i, &(h, v))| FrameComponent {
                    id: i as u8 + 1,
                    h,
                    v,
                    tq: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn block_grids_of_420_odd_size() {
        let l = FrameLayout::new(&frame(17, 33, &[(2, 2), (1, 1), (1, 1)]));
        assert_eq!((l.mcus_x, l.mcus_y), (2, 3));
        let y = l.components[0];
        assert_eq!((y.blocks_w, y.blocks_h, y.stride, y.rows), (3, 5, 4, 6));
        let c = l.components[1];
        // chroma is 9x17 samples: 2x3 blocks, storage 2x3
        assert_eq!((c.blocks_w, c.blocks_h, c.stride, c.rows), (2, 3, 2, 3));
        assert_eq!(l.storage_blocks(), 24 + 6 + 6);
    }

    #[test]
    fn grayscale_1x1() {
        let l = FrameLayout::new(&frame(1, 1, &[(1, 1)]));
        assert_eq!(l.components[0].blocks_w, 1);
        assert_eq!(l.storage_blocks(), 1);
    }
}
