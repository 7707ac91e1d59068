//! Deterministic synthetic test images (gradients, a checkerboard edge pattern and
//! pseudo-random texture) for tests, benches and conformance vectors.

use crate::codec::RgbImage;

/// A `width x height` synthetic image; `seed` varies the texture.
pub fn synthetic(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for y in 0..height {
        for x in 0..width {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s >> 59) as u32; // 0..31
            let i = ((y * width + x) * 3) as usize;
            img.data[i] = ((x * 223) / width.max(1) + noise / 2) as u8;
            img.data[i + 1] = ((y * 223) / height.max(1) + noise / 2) as u8;
            img.data[i + 2] = if (x / 8 + y / 8) % 2 == 0 {
                200
            } else {
                40 + noise as u8
            };
        }
    }
    img
}
