//! The zig-zag sequence of T.81 Figure A.6: coefficients and quantisation values are coded
//! in zig-zag order and stored in natural (row-major) order, as libjpeg stores them.

/// `NATURAL[k]` is the row-major index `u * 8 + v` (u the vertical, v the horizontal
/// frequency) of the k-th coefficient in zig-zag order (libjpeg's `jpeg_natural_order`).
pub const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// [`NATURAL`] followed by 16 entries 63, libjpeg's `jpeg_natural_order` for corrupt data:
/// a zero run past the end of a block or band (index up to 63 + 15) stores its coefficient
/// at position 63, or for a band ending before 63 at the natural position just after it.
pub const NATURAL_EXT: [usize; 80] = {
    let mut t = [63usize; 80];
    let mut k = 0;
    while k < 64 {
        t[k] = NATURAL[k];
        k += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::{NATURAL, NATURAL_EXT};

    #[test]
    fn extended_order_ends_in_63s() {
        assert_eq!(NATURAL_EXT[..64], NATURAL[..]);
        assert!(NATURAL_EXT[64..].iter().all(|&p| p == 63));
    }

    /// Walks the anti-diagonals of Figure A.6 and compares.
    #[test]
    fn natural_order_is_the_zigzag_of_figure_a6() {
        let mut order = Vec::new();
        for s in 0..15usize {
            let cells: Vec<(usize, usize)> = (0..=s)
                .filter(|&u| u < 8 && s - u < 8)
                .map(|u| (u, s - u))
                .collect();
            // Even diagonals run bottom-left to top-right (u decreasing), odd ones back.
            if s % 2 == 0 {
                order.extend(cells.iter().rev().map(|&(u, v)| u * 8 + v));
            } else {
                order.extend(cells.iter().map(|&(u, v)| u * 8 + v));
            }
        }
        assert_eq!(order, NATURAL.to_vec());
    }
}
