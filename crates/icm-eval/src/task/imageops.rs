//! Picture operations of the task pre- and post-processing: OpenCV-style bilinear resizing of 8-bit pictures, and bilinear resizing + argmax of
//! per-pixel logits.

use icm::codec::RgbImage;

/// Fixed-point precision of OpenCV's `INTER_LINEAR` on 8-bit pictures
/// (`INTER_RESIZE_COEF_BITS`).
const COEF_BITS: u32 = 11;
const COEF_ONE: i32 = 1 << COEF_BITS;

/// Source index and fixed-point weights along one axis, as OpenCV's `resize` computes them
/// for `INTER_LINEAR`: `f = (d + 0.5) * src/dst - 0.5`, clamped to the picture, weights
/// `round((1 - frac) * 2048)` and `round(frac * 2048)`.
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, i32, i32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= src as i64 - 1 {
                s = src as i64 - 1;
                frac = 0.0;
            }
            let s = s as usize;
            let s1 = (s + 1).min(src - 1);
            let w0 = ((1.0 - frac) * COEF_ONE as f32).round() as i32;
            let w1 = (frac * COEF_ONE as f32).round() as i32;
            (s, s1, w0, w1)
        })
        .collect()
}

/// Bilinear resize of an RGB8 picture to `width x height` in the manner of OpenCV's
/// `cv2.resize(..., interpolation=cv2.INTER_LINEAR)` (half-pixel centres, no
/// anti-aliasing, 11-bit fixed-point weights, rounding to the nearest). The YOLOX figures
/// in `models/yolox_nano/MODEL.md` were measured with OpenCV's bilinear resize.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (dw, dh) = (width.max(1) as usize, height.max(1) as usize);
    if sw == 0 || sh == 0 {
        return RgbImage {
            width: dw as u32,
            height: dh as u32,
            data: vec![0; dw * dh * 3],
        };
    }
    let xs = linear_taps(sw, dw);
    let ys = linear_taps(sh, dh);
    // Horizontal pass on every source row that is used, in units of 1/2048.
    let mut rows: Vec<Option<Vec<i32>>> = vec![None; sh];
    let hrow = |r: usize| -> Vec<i32> {
        let src = &img.data[r * sw * 3..(r + 1) * sw * 3];
        let mut out = vec![0i32; dw * 3];
        for (d, &(s0, s1, w0, w1)) in xs.iter().enumerate() {
            for c in 0..3 {
                out[d * 3 + c] = i32::from(src[s0 * 3 + c]) * w0 + i32::from(src[s1 * 3 + c]) * w1;
            }
        }
        out
    };
    for &(s0, s1, _, _) in &ys {
        for r in [s0, s1] {
            if rows[r].is_none() {
                rows[r] = Some(hrow(r));
            }
        }
    }
    let mut data = vec![0u8; dw * dh * 3];
    let empty = Vec::new();
    for (d, &(s0, s1, w0, w1)) in ys.iter().enumerate() {
        let r0 = rows[s0].as_ref().unwrap_or(&empty);
        let r1 = rows[s1].as_ref().unwrap_or(&empty);
        let out = &mut data[d * dw * 3..(d + 1) * dw * 3];
        for (i, o) in out.iter_mut().enumerate() {
            let a = i64::from(*r0.get(i).unwrap_or(&0)) * i64::from(w0);
            let b = i64::from(*r1.get(i).unwrap_or(&0)) * i64::from(w1);
            let v = (a + b + (1 << (2 * COEF_BITS - 1))) >> (2 * COEF_BITS);
            *o = v.clamp(0, 255) as u8;
        }
    }
    RgbImage {
        width: dw as u32,
        height: dh as u32,
        data,
    }
}

/// Float source coordinate and weights along one axis (half-pixel centres, clamped).
fn float_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
            let s0 = f.floor() as usize;
            let s1 = (s0 + 1).min(src - 1);
            (s0, s1, (f - s0 as f64) as f32)
        })
        .collect()
}

/// Resizes per-pixel logits (HWC, `classes` values per pixel, `width x height`) bilinearly
/// (half-pixel centres) to `out_w x out_h` and takes the argmax per pixel (the first of
/// equal maxima), as `models/segmentation/MODEL.md` prescribes for full resolution.
pub fn resize_argmax(
    logits: &[f32],
    width: usize,
    height: usize,
    classes: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; out_w * out_h];
    if width == 0 || height == 0 || classes == 0 || logits.len() < width * height * classes {
        return out;
    }
    let xs = float_taps(width, out_w);
    let ys = float_taps(height, out_h);
    let px = |y: usize, x: usize| &logits[(y * width + x) * classes..(y * width + x + 1) * classes];
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            let (a, b, c, d) = (px(y0, x0), px(y0, x1), px(y1, x0), px(y1, x1));
            let mut best = f32::NEG_INFINITY;
            let mut arg = 0usize;
            for k in 0..classes {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bottom = c[k] + (d[k] - c[k]) * fx;
                let v = top + (bottom - top) * fy;
                if v > best {
                    best = v;
                    arg = k;
                }
            }
            out[oy * out_w + ox] = arg.min(255) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_identity_and_constant() {
        let img = RgbImage {
            width: 5,
            height: 3,
            data: (0..45).map(|v| (v * 5) as u8).collect(),
        };
        assert_eq!(resize_bilinear(&img, 5, 3).data, img.data);
        let flat = RgbImage {
            width: 7,
            height: 9,
            data: vec![77; 7 * 9 * 3],
        };
        let r = resize_bilinear(&flat, 3, 4);
        assert_eq!((r.width, r.height), (3, 4));
        assert!(r.data.iter().all(|&v| v == 77));
    }

    #[test]
    fn resize_half_pixel_upscale() {
        // A 2-pixel ramp upscaled to 4: OpenCV gives 0, 64, 191, 255 for (0, 255).
        let img = RgbImage {
            width: 2,
            height: 1,
            data: vec![0, 0, 0, 255, 255, 255],
        };
        let r = resize_bilinear(&img, 4, 1);
        let red: Vec<u8> = r.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(red, [0, 64, 191, 255]);
    }

    #[test]
    fn argmax_after_resize() {
        // Two pixels, two classes: left prefers 0, right prefers 1.
        let logits = [1.0, 0.0, 0.0, 1.0];
        let m = resize_argmax(&logits, 2, 1, 2, 4, 1);
        assert_eq!(m, [0, 0, 1, 1]);
    }
}
