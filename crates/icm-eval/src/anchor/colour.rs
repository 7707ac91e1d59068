//! The colour conversion of the video anchors (VVC, HEVC, AV1), stated exactly so that
//! anyone can reproduce the anchor: `docs/anchors.md` repeats it.
//!
//! Forward, 8-bit RGB to 10-bit Y'CbCr 4:2:0 (`yuv420p10le`):
//! 1. `R, G, B` = sample / 255 (the samples are taken as already gamma-encoded R'G'B').
//! 2. BT.709 matrix: `Y = 0.2126 R + 0.7152 G + 0.0722 B`, `Pb = (B - Y) / 1.8556`,
//!    `Pr = (R - Y) / 1.5748`.
//! 3. Full range, 10 bits (ITU-T H.273, `video_full_range_flag = 1`):
//!    `Y' = 1023 Y`, `Cb = 1023 Pb + 512`, `Cr = 1023 Pr + 512`.
//! 4. Chroma 4:2:0 by the mean of each 2x2 block of the full-resolution `Cb`, `Cr` (chroma
//!    sited at the centre of the block, H.273 chroma sample location type 1); an odd last
//!    row or column is first repeated to make the image even.
//! 5. Round half away from zero and clip to `0..=1023`.
//!
//! Inverse, 10-bit Y'CbCr 4:2:0 to 8-bit RGB:
//! 1. Chroma back to full resolution by bilinear interpolation between the centre-sited
//!    samples (weights 9/16, 3/16, 3/16, 1/16; the nearest sample repeated at the edges,
//!    the "fancy upsampling" of libjpeg).
//! 2. `Y = Y'/1023`, `Pb = (Cb - 512)/1023`, `Pr = (Cr - 512)/1023`;
//!    `R = Y + 1.5748 Pr`, `B = Y + 1.8556 Pb`, `G = (Y - 0.2126 R - 0.0722 B) / 0.7152`.
//! 3. Sample = round(clip(v, 0, 1) * 255).
//!
//! All arithmetic in `f64`. The conversion alone (no coding) loses at most one 8-bit step
//! on natural images.

use icm::codec::RgbImage;

/// One-line statement of the conversion, recorded in results files.
pub const FORWARD_DESCRIPTION: &str = "8-bit R'G'B' -> Y'CbCr BT.709 matrix, full range, \
    10 bits (Y' = round(1023 Y), C = round(1023 P + 512)), 4:2:0 by the mean of each 2x2 block \
    (centre-sited chroma), odd sizes padded by repeating the last row/column; back: bilinear \
    chroma upsampling (9/16, 3/16, 3/16, 1/16), inverse matrix, round(clip(v,0,1)*255); \
    all in f64, rounding half away from zero";

const KR: f64 = 0.2126;
const KB: f64 = 0.0722;
const KG: f64 = 1.0 - KR - KB;
const PB_DIV: f64 = 2.0 * (1.0 - KB);
const PR_DIV: f64 = 2.0 * (1.0 - KR);
const MAX10: f64 = 1023.0;
const MID10: f64 = 512.0;

/// A 10-bit 4:2:0 picture in planar layout, as `yuv420p10le` stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Yuv420p10 {
    /// Luma width (even).
    pub width: usize,
    /// Luma height (even).
    pub height: usize,
    /// `width * height` luma samples.
    pub y: Vec<u16>,
    /// `width/2 * height/2` Cb samples.
    pub cb: Vec<u16>,
    /// `width/2 * height/2` Cr samples.
    pub cr: Vec<u16>,
}

impl Yuv420p10 {
    /// The picture as `yuv420p10le` bytes (Y, then Cb, then Cr, little-endian u16).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.y.len() + 2 * self.cb.len()) * 2);
        for plane in [&self.y, &self.cb, &self.cr] {
            for v in plane.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Reads `yuv420p10le` bytes of a `width x height` picture (both even); `None` when the
    /// length does not match.
    pub fn from_le_bytes(width: usize, height: usize, bytes: &[u8]) -> Option<Self> {
        let luma = width.checked_mul(height)?;
        let chroma = (width / 2) * (height / 2);
        if !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || bytes.len() != (luma + 2 * chroma) * 2
        {
            return None;
        }
        let words: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Some(Self {
            width,
            height,
            y: words[..luma].to_vec(),
            cb: words[luma..luma + chroma].to_vec(),
            cr: words[luma + chroma..].to_vec(),
        })
    }
}

fn round_clip10(v: f64) -> u16 {
    // f64::round rounds half away from zero.
    v.round().clamp(0.0, MAX10) as u16
}

/// Converts 8-bit RGB to 10-bit 4:2:0 (module documentation, forward steps). The result is
/// the image padded to even width and height by repeating the last column and row.
pub fn rgb_to_yuv420p10(img: &RgbImage) -> Yuv420p10 {
    let (w, h) = (img.width as usize, img.height as usize);
    let (pw, ph) = (w + w % 2, h + h % 2);
    let mut y = vec![0u16; pw * ph];
    let mut pb = vec![0f64; pw * ph];
    let mut pr = vec![0f64; pw * ph];
    for row in 0..ph {
        let sr = row.min(h.saturating_sub(1));
        for col in 0..pw {
            let sc = col.min(w.saturating_sub(1));
            let i = (sr * w + sc) * 3;
            let (r, g, b) = match img.data.get(i..i + 3) {
                Some(p) => (
                    f64::from(p[0]) / 255.0,
                    f64::from(p[1]) / 255.0,
                    f64::from(p[2]) / 255.0,
                ),
                None => (0.0, 0.0, 0.0),
            };
            let luma = KR * r + KG * g + KB * b;
            let o = row * pw + col;
            y[o] = round_clip10(MAX10 * luma);
            pb[o] = MAX10 * (b - luma) / PB_DIV + MID10;
            pr[o] = MAX10 * (r - luma) / PR_DIV + MID10;
        }
    }
    let (cw, ch) = (pw / 2, ph / 2);
    let mut cb = vec![0u16; cw * ch];
    let mut cr = vec![0u16; cw * ch];
    for row in 0..ch {
        for col in 0..cw {
            let idx = [
                2 * row * pw + 2 * col,
                2 * row * pw + 2 * col + 1,
                (2 * row + 1) * pw + 2 * col,
                (2 * row + 1) * pw + 2 * col + 1,
            ];
            cb[row * cw + col] = round_clip10(idx.iter().map(|&i| pb[i]).sum::<f64>() / 4.0);
            cr[row * cw + col] = round_clip10(idx.iter().map(|&i| pr[i]).sum::<f64>() / 4.0);
        }
    }
    Yuv420p10 {
        width: pw,
        height: ph,
        y,
        cb,
        cr,
    }
}

/// Bilinear upsampling of one centre-sited chroma plane to `2cw x 2ch`.
fn upsample(plane: &[u16], cw: usize, ch: usize) -> Vec<f64> {
    let at = |r: isize, c: isize| {
        let r = r.clamp(0, ch as isize - 1) as usize;
        let c = c.clamp(0, cw as isize - 1) as usize;
        f64::from(plane[r * cw + c])
    };
    let (w, h) = (2 * cw, 2 * ch);
    let mut out = vec![0f64; w * h];
    for row in 0..h {
        // Output row 2k sits a quarter sample above chroma row k, 2k+1 a quarter below.
        let near = (row / 2) as isize;
        let far = if row % 2 == 0 { near - 1 } else { near + 1 };
        for col in 0..w {
            let cn = (col / 2) as isize;
            let cf = if col % 2 == 0 { cn - 1 } else { cn + 1 };
            out[row * w + col] =
                (9.0 * at(near, cn) + 3.0 * at(near, cf) + 3.0 * at(far, cn) + at(far, cf)) / 16.0;
        }
    }
    out
}

fn to8(v: f64) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Converts 10-bit 4:2:0 back to 8-bit RGB (module documentation, inverse steps) and crops
/// to `width x height`.
pub fn yuv420p10_to_rgb(yuv: &Yuv420p10, width: u32, height: u32) -> RgbImage {
    let (pw, ph) = (yuv.width, yuv.height);
    let (cw, ch) = (pw / 2, ph / 2);
    let cb = upsample(&yuv.cb, cw, ch);
    let cr = upsample(&yuv.cr, cw, ch);
    let (w, h) = ((width as usize).min(pw), (height as usize).min(ph));
    let mut data = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for col in 0..w {
            let i = row * pw + col;
            let luma = f64::from(yuv.y[i]) / MAX10;
            let b = luma + PB_DIV * (cb[i] - MID10) / MAX10;
            let r = luma + PR_DIV * (cr[i] - MID10) / MAX10;
            let g = (luma - KR * r - KB * b) / KG;
            data.extend_from_slice(&[to8(r), to8(g), to8(b)]);
        }
    }
    RgbImage {
        width: w as u32,
        height: h as u32,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        RgbImage {
            width,
            height,
            data,
        }
    }

    #[test]
    fn grey_levels_and_primaries() {
        let white = rgb_to_yuv420p10(&image(2, 2, |_, _| [255, 255, 255]));
        assert_eq!((white.y[0], white.cb[0], white.cr[0]), (1023, 512, 512));
        let black = rgb_to_yuv420p10(&image(2, 2, |_, _| [0, 0, 0]));
        assert_eq!((black.y[0], black.cb[0], black.cr[0]), (0, 512, 512));
        // Pure blue: Y = 0.0722, Pb = +0.5 exactly, so Cb reaches 1023.5 and clips.
        let blue = rgb_to_yuv420p10(&image(2, 2, |_, _| [0, 0, 255]));
        assert_eq!((blue.y[0], blue.cb[0]), (74, 1023));
        // Pure red: Pr = +0.5.
        let red = rgb_to_yuv420p10(&image(2, 2, |_, _| [255, 0, 0]));
        assert_eq!((red.y[0], red.cr[0]), (217, 1023));
    }

    #[test]
    fn flat_colours_survive_the_round_trip() {
        for rgb in [
            [0, 0, 0],
            [255, 255, 255],
            [12, 200, 77],
            [255, 0, 0],
            [3, 4, 250],
        ] {
            let img = image(6, 4, |_, _| rgb);
            let back = yuv420p10_to_rgb(&rgb_to_yuv420p10(&img), 6, 4);
            for (a, b) in img.data.iter().zip(&back.data) {
                assert!(a.abs_diff(*b) <= 1, "{rgb:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn odd_sizes_pad_and_crop() {
        let img = image(5, 3, |x, y| [(x * 40) as u8, (y * 60) as u8, 128]);
        let yuv = rgb_to_yuv420p10(&img);
        assert_eq!((yuv.width, yuv.height), (6, 4));
        assert_eq!((yuv.cb.len(), yuv.cr.len()), (6, 6));
        let bytes = yuv.to_le_bytes();
        assert_eq!(bytes.len(), (24 + 12) * 2);
        assert_eq!(Yuv420p10::from_le_bytes(6, 4, &bytes).as_ref(), Some(&yuv));
        assert!(Yuv420p10::from_le_bytes(6, 4, &bytes[1..]).is_none());
        let back = yuv420p10_to_rgb(&yuv, 5, 3);
        assert_eq!((back.width, back.height, back.data.len()), (5, 3, 45));
        // Luma is full resolution: a grey ramp comes back within one step.
        let ramp = image(8, 2, |x, _| [(x * 30) as u8; 3]);
        let back = yuv420p10_to_rgb(&rgb_to_yuv420p10(&ramp), 8, 2);
        for (a, b) in ramp.data.iter().zip(&back.data) {
            assert!(a.abs_diff(*b) <= 1);
        }
    }
}
