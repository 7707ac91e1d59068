//! Arrangement of the coefficients as frequency channels on the luma block grid (spec
//! Annex B, informative): channel `c * 64 + u * 8 + v` holds coefficient (u, v) (u the
//! vertical, v the horizontal frequency, libjpeg's natural order) of component c; the
//! output grid has one cell per 8x8 block of the full-resolution image, and a component
//! with sampling factors H, V repeats its block (floor(i * V / Vmax), floor(j * H / Hmax))
//! over the cells it covers (nearest-neighbour upsampling of the chroma blocks, as Xu et al.,
//! "Learning in the Frequency Domain", CVPR 2020). [`SELECTED_24`] is the 24-channel
//! selection of Annex B.3.

use super::{Coefficients, JpegError};

/// Memory order of the output tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorLayout {
    /// (channels, rows, columns).
    Chw,
    /// (rows, columns, channels).
    Hwc,
}

/// The 24-channel selection of spec Annex B.3, ascending: the channels whose learned gates
/// (Xu et al., "Learning in the Frequency Domain") were open most often when a 192-channel
/// stem of the shared MobileNetV2 was trained by distillation on JPEG qualities 10..95
/// (`models/training/icm_training/dct/`, `models/tasks/dct_gates.json`). Y: (u, v) = (0, 0..5),
/// (1, 0..3), (2, 0..2), (3, 0..2), (4, 0..1); Cb and Cr: (0, 0), (0, 1), (1, 0).
pub const SELECTED_24: [usize; 24] = [
    0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 16, 17, 18, 24, 25, 26, 32, 33, 64, 65, 72, 128, 129, 136,
];

/// The Annex B.3 selection for a file with `components` components: [`SELECTED_24`], less
/// the channels of components the file does not have (grayscale: its luma channels).
pub fn selected_24(components: usize) -> Vec<usize> {
    SELECTED_24
        .iter()
        .copied()
        .filter(|&c| c / 64 < components)
        .collect()
}

/// Parses a `--channels` value: `all`, `24` (Annex B.3), or a comma-separated list of
/// channel indices and inclusive ranges `a-b`, kept in the order given.
pub fn parse_channels(spec: &str, components: usize) -> Result<Vec<usize>, String> {
    let n = components * 64;
    match spec.trim() {
        "all" => return Ok((0..n).collect()),
        "24" => return Ok(selected_24(components)),
        _ => {}
    }
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("channel {s:?} is not a number"))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let a = num(part)?;
                (a, a)
            }
        };
        if a > b || b >= n {
            return Err(format!(
                "channel {part:?} outside 0..={} ({components} component(s) of 64)",
                n - 1
            ));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

/// Rows and columns of the output grid: ceil(height / 8), ceil(width / 8).
pub fn grid(c: &Coefficients) -> (usize, usize) {
    (
        (c.height as usize).div_ceil(8),
        (c.width as usize).div_ceil(8),
    )
}

/// The tensor of `channels` (indices `component * 64 + u * 8 + v`, each below
/// `64 * components`): quantised coefficients, or multiplied by their quantisation value
/// when `dequantise`. Returns the shape and the values in C order, or
/// [`JpegError::TensorTooLarge`] when the int32 tensor would take more than `max_bytes`
/// (checked before allocating; [`crate::jpeg::DecodeOptions::max_tensor_bytes`]).
pub fn frequency_tensor(
    c: &Coefficients,
    channels: &[usize],
    dequantise: bool,
    layout: TensorLayout,
    max_bytes: u64,
) -> Result<(Vec<usize>, Vec<i32>), JpegError> {
    let (rows, cols) = grid(c);
    let nch = channels.len();
    let bytes = (nch as u64)
        .saturating_mul(rows as u64)
        .saturating_mul(cols as u64)
        .saturating_mul(4);
    if bytes > max_bytes {
        return Err(JpegError::TensorTooLarge {
            channels: nch,
            rows,
            cols,
            bytes,
            limit: max_bytes,
        });
    }
    let plane = rows * cols;
    let mut out = vec![0i32; nch * plane];
    let hmax = usize::from(c.hmax.max(1));
    let vmax = usize::from(c.vmax.max(1));
    // Per component: (output index, coefficient index, multiplier) of its channels.
    let mut sel: Vec<Vec<(usize, usize, i32)>> = vec![Vec::new(); c.components.len()];
    for (o, &ch) in channels.iter().enumerate() {
        if let Some(comp) = c.components.get(ch / 64) {
            let k = ch % 64;
            let q = if dequantise {
                i32::from(comp.quant[k])
            } else {
                1
            };
            sel[ch / 64].push((o, k, q));
        }
    }
    // Row of cells by row of cells: the component's blocks for the row (a few KB, kept in
    // cache) are read once per channel, and each channel's row is written contiguously
    // (CHW), or each cell's channels (HWC).
    let mut offsets: Vec<usize> = Vec::with_capacity(cols);
    for (comp, sel) in c.components.iter().zip(&sel) {
        if sel.is_empty() || comp.blocks_w == 0 || comp.blocks_h == 0 {
            continue;
        }
        let (h, v) = (usize::from(comp.h), usize::from(comp.v));
        for i in 0..rows {
            let by = (i * v / vmax).min(comp.blocks_h - 1);
            offsets.clear();
            offsets.extend((0..cols).map(|j| {
                let bx = (j * h / hmax).min(comp.blocks_w - 1);
                (by * comp.blocks_w + bx) * 64
            }));
            match layout {
                TensorLayout::Chw => {
                    for &(o, k, q) in sel {
                        let dst = &mut out[o * plane + i * cols..o * plane + (i + 1) * cols];
                        for (d, &b) in dst.iter_mut().zip(&offsets) {
                            *d = i32::from(comp.coefs[b + k]) * q;
                        }
                    }
                }
                TensorLayout::Hwc => {
                    for (j, &b) in offsets.iter().enumerate() {
                        let cell = (i * cols + j) * nch;
                        let row = &mut out[cell..cell + nch];
                        for &(o, k, q) in sel {
                            row[o] = i32::from(comp.coefs[b + k]) * q;
                        }
                    }
                }
            }
        }
    }
    let shape = match layout {
        TensorLayout::Chw => vec![nch, rows, cols],
        TensorLayout::Hwc => vec![rows, cols, nch],
    };
    Ok((shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::{ComponentCoefficients, Process};

    fn comp(h: u8, v: u8, bw: usize, bh: usize, base: i16) -> ComponentCoefficients {
        let mut coefs = vec![0i16; bw * bh * 64];
        for b in 0..bw * bh {
            coefs[b * 64] = base + b as i16; // DC = base + block index
            coefs[b * 64 + 1] = -1;
        }
        ComponentCoefficients {
            id: base as u8,
            h,
            v,
            quant_table: 0,
            quant: [2; 64],
            blocks_w: bw,
            blocks_h: bh,
            coefs,
        }
    }

    /// Issue 20 item 2: a few stored blocks repeated over a 65535x65535 grid ask for a
    /// 25 GiB tensor; the limit refuses it before allocating (an allocation of that size
    /// would abort the test process).
    #[test]
    fn an_oversized_tensor_is_refused_before_allocating() {
        let c = Coefficients {
            width: 65535,
            height: 65535,
            process: Process::Progressive,
            hmax: 4,
            vmax: 4,
            components: vec![
                comp(4, 1, 1, 1, 1),
                comp(1, 4, 1, 1, 2),
                comp(1, 1, 1, 1, 3),
            ],
            warnings: Vec::new(),
        };
        let all: Vec<usize> = (0..192).collect();
        let e = frequency_tensor(&c, &all, true, TensorLayout::Chw, 1 << 30).unwrap_err();
        assert!(
            matches!(e, JpegError::TensorTooLarge { channels: 192, rows: 8192, cols: 8192, bytes, limit }
                if bytes == 192 * 8192 * 8192 * 4 && limit == 1 << 30),
            "{e:?}"
        );
        // within the limit the same file arranges as usual
        let (shape, _) = frequency_tensor(&c, &[0], true, TensorLayout::Chw, 1 << 28).unwrap();
        assert_eq!(shape, vec![1, 8192, 8192]);
    }

    /// 4:2:0, 24x17 pixels: luma 3x3 blocks, chroma 2x2 blocks repeated 2x2.
    #[test]
    fn chroma_blocks_repeat_on_the_luma_grid() {
        let c = Coefficients {
            width: 24,
            height: 17,
            process: Process::Baseline,
            hmax: 2,
            vmax: 2,
            components: vec![
                comp(2, 2, 3, 3, 100),
                comp(1, 1, 2, 2, 200),
                comp(1, 1, 2, 2, 300),
            ],
            warnings: Vec::new(),
        };
        let (shape, t) =
            frequency_tensor(&c, &[0, 64, 128 + 1], false, TensorLayout::Chw, 1 << 20).unwrap();
        assert_eq!(shape, vec![3, 3, 3]);
        assert_eq!(&t[..9], &[100, 101, 102, 103, 104, 105, 106, 107, 108]);
        assert_eq!(&t[9..18], &[200, 200, 201, 200, 200, 201, 202, 202, 203]);
        assert_eq!(&t[18..27], &[-1; 9]);
        let (shape, d) =
            frequency_tensor(&c, &[0, 64, 128 + 1], true, TensorLayout::Hwc, 1 << 20).unwrap();
        assert_eq!(shape, vec![3, 3, 3]);
        assert_eq!(&d[..3], &[200, 400, -2]);
        assert_eq!(&d[3..6], &[202, 400, -2]);
    }

    #[test]
    fn channel_lists() {
        let s = selected_24(3);
        assert_eq!(s.len(), 24);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "ascending: {s:?}");
        assert!(s.iter().all(|&c| c < 192));
        let grey = selected_24(1);
        assert_eq!(
            grey,
            s.iter().copied().filter(|&c| c < 64).collect::<Vec<_>>()
        );
        assert_eq!(parse_channels("24", 3).expect("24"), s);
        assert_eq!(parse_channels("all", 3).expect("all").len(), 192);
        assert_eq!(
            parse_channels("0-2,64", 3).expect("list"),
            vec![0, 1, 2, 64]
        );
        assert!(parse_channels("64", 1).is_err());
        assert!(parse_channels("3-1", 1).is_err());
        assert!(parse_channels("x", 1).is_err());
    }
}
