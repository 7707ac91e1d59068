//! Shared building blocks: band sizing, im2col, a GEMM wrapper and a shared output pointer.

/// Target size of per-band scratch buffers, in f32 values (2 MiB).
const BAND_FLOATS: usize = 1 << 19;

/// Minimum number of bands a layer is split into (for load balancing).
const MIN_BANDS: usize = 8;

/// Number of rows per band for `total` rows costing `per_row` scratch values each.
///
/// Depends only on shapes, never on the thread count, so results are reproducible.
pub(super) fn band_rows(total: usize, per_row: usize) -> usize {
    let by_mem = (BAND_FLOATS / per_row.max(1)).max(1);
    let by_par = total.div_ceil(MIN_BANDS).max(1);
    by_mem.min(by_par)
}

/// Mutable pointer to an output buffer that parallel tasks write at disjoint indices.
#[derive(Clone, Copy)]
pub(super) struct SharedMut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: `SharedMut` is only a pointer; callers guarantee that concurrent tasks touch
// disjoint elements and that the buffer outlives them (it is borrowed across the scope).
unsafe impl Send for SharedMut {}
// SAFETY: see `Send`.
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// Wraps `buf`; the buffer must stay alive and otherwise unused while this is in use.
    pub(super) fn new(buf: &mut [f32]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// A mutable view of `len` values from `start`.
    ///
    /// # Safety
    /// No other task may access these elements while the view is alive.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "shared slice out of range");
        // SAFETY: in bounds (checked above); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// Raw pointer to element `start` (which must be within the buffer).
    pub(super) fn ptr_at(&self, start: usize) -> *mut f32 {
        assert!(start < self.len, "shared pointer out of range");
        // SAFETY: `start` is in bounds.
        unsafe { self.ptr.add(start) }
    }

    /// Total length of the buffer.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// `C = A * B + beta * C` for row-major `A` (m x k, row stride `lda`),
/// `B` (k x n, row stride `ldb`) and `C` (m x n at `c`, row stride `ldc`).
///
/// # Safety
/// `c` must be valid for reads and writes at `c + i * ldc + j` for `i < m`, `j < n`,
/// and no other task may access those elements during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || (lda >= k && a.len() >= (m - 1) * lda + k));
    assert!(k == 0 || (ldb >= n && b.len() >= (k - 1) * ldb + n));
    // SAFETY: A and B bounds checked above; C validity is the caller's contract.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            lda as isize,
            1,
            b.as_ptr(),
            ldb as isize,
            1,
            beta,
            c,
            ldc as isize,
            1,
        );
    }
}

/// Geometry of an im2col gather.
pub(super) struct Im2col<'a> {
    /// Input values, CHW.
    pub x: &'a [f32],
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Stride between consecutive output positions, in input pixels.
    pub stride: usize,
    /// Vertical tap offsets.
    pub offy: &'a [isize],
    /// Horizontal tap offsets.
    pub offx: &'a [isize],
    /// Output columns per row.
    pub cols: usize,
}

impl Im2col<'_> {
    /// Rows of the column matrix (`cin * offy.len() * offx.len()`).
    pub(super) fn k(&self) -> usize {
        self.cin * self.offy.len() * self.offx.len()
    }

    /// Fills `dst` (k x n, n = `nr * cols`) for output rows `r0..r0 + nr`:
    /// `dst[((ci * ny + a) * nx + b) * n + r * cols + j] =
    ///  x[ci, s * (r0 + r) + offy[a], s * j + offx[b]]`, zero outside the input.
    pub(super) fn fill(&self, r0: usize, nr: usize, dst: &mut [f32]) {
        let n = nr * self.cols;
        let (h, w, s) = (self.h as isize, self.w, self.stride);
        let mut rows = dst.chunks_exact_mut(n.max(1));
        for ci in 0..self.cin {
            let plane = &self.x[ci * self.h * w..(ci + 1) * self.h * w];
            for &oy in self.offy {
                for &ox in self.offx {
                    let Some(row) = rows.next() else { return };
                    let (jlo, jhi) = valid_cols(ox, s, w, self.cols);
                    for (r, seg) in row.chunks_exact_mut(self.cols).enumerate() {
                        let iy = (s * (r0 + r)) as isize + oy;
                        if iy < 0 || iy >= h {
                            seg.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                        seg[..jlo].fill(0.0);
                        seg[jhi..].fill(0.0);
                        if jhi == jlo {
                            continue;
                        }
                        let start = (s * jlo) as isize + ox;
                        let src = &src[start as usize..];
                        let seg = &mut seg[jlo..jhi];
                        if s == 1 {
                            seg.copy_from_slice(&src[..seg.len()]);
                        } else {
                            for (d, v) in seg.iter_mut().zip(src.iter().step_by(s)) {
                                *d = *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Columns `j` in `jlo..jhi` (clamped to `0..cols`) with `0 <= s * j + ox < w`.
fn valid_cols(ox: isize, s: usize, w: usize, cols: usize) -> (usize, usize) {
    let s = s as isize;
    let jlo = if ox < 0 { (-ox + s - 1) / s } else { 0 };
    let last = w as isize - 1 - ox;
    let jhi = if last < 0 { 0 } else { last / s + 1 };
    let jlo = (jlo as usize).min(cols);
    let jhi = (jhi as usize).clamp(jlo, cols);
    (jlo, jhi)
}
