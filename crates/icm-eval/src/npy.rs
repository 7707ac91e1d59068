//! Minimal writer of NumPy `.npy` files (format version 1.0) for decoded latents and DCT
//! coefficients.

/// The `.npy` preamble (magic, version, header) for a C-order array of `descr` and `shape`,
/// followed by room for `data_bytes` bytes.
fn npy_header(descr: &str, shape: &[usize], data_bytes: usize) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Pad so that magic(6) + version(2) + len(2) + header + '\n' is a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data_bytes);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Serialises a C-order `i32` array of `shape` as `.npy` bytes.
pub fn npy_i32(shape: &[usize], data: &[i32]) -> Vec<u8> {
    let mut out = npy_header("<i4", shape, data.len() * 4);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Serialises a C-order `i16` array of `shape` as `.npy` bytes.
pub fn npy_i16(shape: &[usize], data: &[i16]) -> Vec<u8> {
    let mut out = npy_header("<i2", shape, data.len() * 2);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_aligned_and_describe_the_array() {
        let a = npy_i16(&[2, 3], &[1, -2, 3, 4, 5, 6]);
        let hlen = u16::from_le_bytes([a[8], a[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let h = std::str::from_utf8(&a[10..10 + hlen]).expect("ascii");
        assert!(h.contains("'descr': '<i2'") && h.contains("'shape': (2, 3)"));
        assert_eq!(a.len(), 10 + hlen + 12);
        assert_eq!(&a[10 + hlen + 2..10 + hlen + 4], &(-2i16).to_le_bytes());
        let b = npy_i32(&[1], &[7]);
        assert!(std::str::from_utf8(&b[10..])
            .expect("ascii")
            .contains("(1,)"));
    }
}
