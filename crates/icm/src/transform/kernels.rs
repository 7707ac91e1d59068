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

thread_local! {
    /// Per-thread scratch buffers reused across layers and calls (rayon's workers live as
    /// long as the pool), so the per-band im2col and GEMM buffers are not allocated, and
    /// their pages not faulted in and zeroed, again for every band of every layer.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 2]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new()])
    };
}

/// Runs `f` with two scratch slices of `a` and `b` values from this thread's buffers.
/// Their contents are unspecified (left from earlier use); `f` must write before reading.
pub(super) fn with_scratch<R>(
    a: usize,
    b: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            let [x, y] = &mut *bufs;
            if x.len() < a {
                x.resize(a, 0.0);
            }
            if y.len() < b {
                y.resize(b, 0.0);
            }
            f(&mut x[..a], &mut y[..b])
        }
        // Re-entered on this thread (a nested parallel call ran on it while a band held
        // the buffers): use fresh ones.
        Err(_) => f(&mut vec![0.0; a], &mut vec![0.0; b]),
    })
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

/// Geometry of an im2col gather: row `t` of the column matrix holds plane `rows[t].0` of
/// `x` read at offsets `(rows[t].1, rows[t].2)` from the output positions scaled by
/// `stride`.
pub(super) struct Im2col<'a> {
    /// Input planes of `h x w` values each.
    pub x: &'a [f32],
    /// Plane height.
    pub h: usize,
    /// Plane width.
    pub w: usize,
    /// Stride between consecutive output positions, in input pixels.
    pub stride: usize,
    /// `(plane, dy, dx)` of every row of the column matrix.
    pub rows: Vec<(usize, isize, isize)>,
    /// Output columns per row.
    pub cols: usize,
}

impl<'a> Im2col<'a> {
    /// The usual gather of a `cin`-channel CHW tensor: rows in the order
    /// `(channel, offy, offx)`, the layout of a `[cout][cin][ky][kx]` weight matrix.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn channels(
        x: &'a [f32],
        cin: usize,
        h: usize,
        w: usize,
        stride: usize,
        offy: &[isize],
        offx: &[isize],
        cols: usize,
    ) -> Self {
        let mut rows = Vec::with_capacity(cin * offy.len() * offx.len());
        for ci in 0..cin {
            for &dy in offy {
                for &dx in offx {
                    rows.push((ci, dy, dx));
                }
            }
        }
        Self {
            x,
            h,
            w,
            stride,
            rows,
            cols,
        }
    }

    /// Rows of the column matrix.
    pub(super) fn k(&self) -> usize {
        self.rows.len()
    }

    /// Fills `dst` (k x n, n = `nr * cols`) for output rows `r0..r0 + nr`:
    /// `dst[t * n + r * cols + j] = plane[s * (r0 + r) + dy][s * j + dx]` for
    /// `(plane, dy, dx) = rows[t]`, zero outside the plane.
    pub(super) fn fill(&self, r0: usize, nr: usize, dst: &mut [f32]) {
        let n = nr * self.cols;
        let (h, w, s) = (self.h as isize, self.w, self.stride);
        for (row, &(p, oy, ox)) in dst.chunks_exact_mut(n.max(1)).zip(&self.rows) {
            let plane = &self.x[p * self.h * w..(p + 1) * self.h * w];
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

/// The polyphase split of a CHW tensor for stride-2 gathers: plane `(2a + b) * c + ci`
/// holds `x[ci][2i + a][2j + b]` on a `ceil(h/2) x ceil(w/2)` grid (zero where `2i + a`
/// or `2j + b` falls outside). A stride-2 tap at offset `(oy, ox)` then reads plane
/// `(oy mod 2, ox mod 2)` at offset `(floor(oy/2), floor(ox/2))` with stride 1: whole
/// row segments instead of every other value.
pub(super) fn split_phases(x: &[f32], c: usize, h: usize, w: usize) -> (Vec<f32>, usize, usize) {
    let (hp, wp) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = vec![0.0f32; 4 * c * hp * wp];
    for a in 0..2 {
        for b in 0..2 {
            for ci in 0..c {
                let plane = &mut out[((2 * a + b) * c + ci) * hp * wp..][..hp * wp];
                for (i, prow) in plane.chunks_exact_mut(wp).enumerate() {
                    let y = 2 * i + a;
                    if y >= h {
                        break;
                    }
                    let src = &x[(ci * h + y) * w..(ci * h + y + 1) * w];
                    for (d, v) in prow.iter_mut().zip(src.iter().skip(b).step_by(2)) {
                        *d = *v;
                    }
                }
            }
        }
    }
    (out, hp, wp)
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
