//! Importance maps for region-of-interest coding: where in a picture a task network looks,
//! on the codec's latent grid, so that an encoder can quantise finely where importance is
//! high and coarsely elsewhere.
//!
//! The map has one cell per 16x16 pixels over the picture's padded size:
//! `cols = 4 * ceil(W / 64)`, `rows = 4 * ceil(H / 64)` (the shape of y^, see
//! [`super::LatentTensor`]); cell (r, c) covers pixels x in `[16c, 16c + 16)`, y in
//! `[16r, 16r + 16)`. Cells wholly past the picture are padding: in every map made here they
//! copy the nearest picture cell (edge replication). Values are f32 in 0..=1, 1 = most
//! important.
//!
//! Mappings of [`importance`]. Each is deterministic: the same picture, parameters and
//! network files give the same map on one machine and ONNX Runtime (float network outputs
//! may differ in the last bits on another CPU or runtime, so a score or fraction right at a
//! threshold may flip; the maps steer the encoder only, nothing normative depends on them).
//! The networks run forward only, on ONNX Runtime (cargo feature `tasks`); without it
//! [`importance`] fails with [`TaskError::FeatureDisabled`], except for the classification
//! crop mask, which runs no network.
//!
//! - **detection**: YOLOX-Nano ([`super::detection::Yolox`], its letterbox and class-wise NMS) on
//!   the picture; every detection with score >= [`RoiParams::detection_threshold`] (default
//!   0.3) sets to 1 the cells its box, clipped to the picture, overlaps (any overlap); then
//!   the map is dilated by [`RoiParams::dilation`] cells (default 1). No detection gives an
//!   all-zero map: the encoder then has no region of interest and treats the picture
//!   uniformly.
//! - **segmentation**: DeepLabV3 ([`super::segmentation::DeepLabV3`], class per pixel at the
//!   picture's size); a cell is 1 when the fraction of its picture pixels predicted as a
//!   non-background class (class != 0) is >= [`RoiParams::segmentation_fraction`] (default
//!   0.1), else 0 (a binary map: a soft fraction would code object boundaries, where the
//!   segmentation is decided, coarser than object interiors); then dilated by
//!   [`RoiParams::dilation`]. No object pixel gives an all-zero map.
//! - **classification**: MobileNetV2 ([`classification`]) sees only its input crop: the
//!   shorter side resized to 256, the centre 224x224 crop ([`classification::crop_geometry`]).
//!   Pixels outside it never reach the classifier: cells holding none of the picture pixels
//!   that the crop's bilinear resize reads with a non-zero weight ([`crop_source_rect`], in
//!   the original picture's coordinates) are 0, the others 1 (the default). With
//!   [`RoiParams::classification_occlusion`] (default off), occlusion sensitivity inside: the crop
//!   is split into 7x7 patches of 32x32 ([`OCCLUSION_PATCH`]), each greyed out in turn
//!   (pixel 127.5, i.e. 0 after normalisation), and the drop of the unoccluded top-1 class's
//!   probability, `max(0, p - p_occluded)`, is divided by the largest drop (all drops 0:
//!   every patch counts 1); a patch's value is `floor + (1 - floor) * drop`, floor
//!   [`RoiParams::occlusion_floor`] (default 0.5, so every pixel the classifier sees stays
//!   at >= 0.5), and a cell takes the largest value of the patches whose source pixels it
//!   overlaps. 50 forward passes a picture: 0.22-0.24 s on an idle 2-core machine (about
//!   0.75 s while a build shares the cores), against 12-14 ms for detection and 21-23 ms
//!   for segmentation (tests' profile, one COCO or ImageNet picture). Without occlusion,
//!   every overlapping cell is 1 and no network runs; no dilation either way. Measured on the
//!   ImageNet sample (docs/results/steps.md), the crop mask with a background factor of 16
//!   beats occlusion at 3 by about 10 % BD-rate: occlusion's cells of value 0.5 get the step
//!   `G^0.5`, so a large G also coarsens the crop.
//!
//! [`default_background`] gives the background step factor `G` of each task (spec 12.7).

use super::classification::{self, crop_geometry, MobileNetV2, CROP};
use super::detection::Yolox;
use super::segmentation::DeepLabV3;
use super::{default_task_model_dir, TaskError};
use icm::codec::RgbImage;
use std::path::{Path, PathBuf};

/// Pixels per cell side (the latent grid's stride).
pub const CELL: u32 = 16;
/// Side of the occluded patches of the classifier's 224x224 crop (a 7x7 grid).
pub const OCCLUSION_PATCH: u32 = 32;

/// Which map an encoder asks for: the task whose network gives it.
pub use super::TaskKind as RoiTask;

/// An importance map on the latent grid (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportanceMap {
    /// Columns, `4 * ceil(W / 64)`.
    pub cols: usize,
    /// Rows, `4 * ceil(H / 64)`.
    pub rows: usize,
    /// `rows * cols` values in 0..=1, row-major.
    pub values: Vec<f32>,
}

/// Picture cells `(ceil(W / 16), ceil(H / 16))`: the cells holding at least one pixel.
fn picture_cells(width: u32, height: u32) -> (usize, usize) {
    (
        width.div_ceil(CELL) as usize,
        height.div_ceil(CELL) as usize,
    )
}

impl ImportanceMap {
    /// `(cols, rows)` of a `width` x `height` picture: `(4 * ceil(W / 64), 4 * ceil(H / 64))`.
    pub fn cells_of(width: u32, height: u32) -> (usize, usize) {
        (
            4 * width.div_ceil(64) as usize,
            4 * height.div_ceil(64) as usize,
        )
    }

    /// Every cell `value`.
    pub fn uniform(width: u32, height: u32, value: f32) -> Self {
        let (cols, rows) = Self::cells_of(width, height);
        Self {
            cols,
            rows,
            values: vec![value; cols * rows],
        }
    }

    /// The map of a picture from its picture cells' values (`ceil(W/16) x ceil(H/16)`,
    /// row-major): padding cells copy the nearest picture cell.
    fn from_picture_cells(width: u32, height: u32, cells: &[f32]) -> Self {
        let (cols, rows) = Self::cells_of(width, height);
        let (pc, pr) = picture_cells(width, height);
        let mut values = vec![0.0; cols * rows];
        if pc > 0 && pr > 0 {
            for r in 0..rows {
                for c in 0..cols {
                    values[r * cols + c] = cells[r.min(pr - 1) * pc + c.min(pc - 1)];
                }
            }
        }
        Self { cols, rows, values }
    }

    /// A user's grey-scale map (`map_w` x `map_h` bytes, row-major, any size) for a `width`
    /// x `height` picture: the map is stretched over the picture and each picture cell gets
    /// the exact area average of the map over the cell's picture pixels, / 255; padding
    /// cells copy the nearest picture cell. Fails when a size is 0 or `grey` is not
    /// `map_w * map_h` bytes.
    pub fn from_grey(
        grey: &[u8],
        map_w: u32,
        map_h: u32,
        width: u32,
        height: u32,
    ) -> Result<Self, TaskError> {
        let bad = |why: String| TaskError::Dataset {
            path: "importance map".into(),
            why,
        };
        if map_w == 0 || map_h == 0 || width == 0 || height == 0 {
            return Err(bad(format!(
                "empty map or picture (map {map_w}x{map_h}, picture {width}x{height})"
            )));
        }
        let (mw, mh) = (map_w as usize, map_h as usize);
        if grey.len() != mw * mh {
            return Err(bad(format!(
                "{} bytes for a {map_w}x{map_h} map",
                grey.len()
            )));
        }
        let (pc, pr) = picture_cells(width, height);
        // Overlap weights of each cell with the map's pixels along one axis, in map pixels.
        let weights = |cells: usize, side: u32, map: usize| -> Vec<Vec<(usize, f64)>> {
            let scale = map as f64 / f64::from(side);
            (0..cells)
                .map(|i| {
                    let a = f64::from(i as u32 * CELL) * scale;
                    let b = f64::from(((i as u32 + 1) * CELL).min(side)) * scale;
                    let first = a.floor() as usize;
                    let last = (b.ceil() as usize).min(map);
                    (first..last)
                        .filter_map(|m| {
                            let w = b.min(m as f64 + 1.0) - a.max(m as f64);
                            (w > 0.0).then_some((m, w))
                        })
                        .collect()
                })
                .collect()
        };
        let wx = weights(pc, width, mw);
        let wy = weights(pr, height, mh);
        // Columns first: the integral of each map row over each cell column.
        let mut colsum = vec![0f64; mh * pc];
        for y in 0..mh {
            let row = &grey[y * mw..(y + 1) * mw];
            for (c, taps) in wx.iter().enumerate() {
                colsum[y * pc + c] = taps.iter().map(|&(m, w)| f64::from(row[m]) * w).sum();
            }
        }
        let mut cells = vec![0f32; pc * pr];
        for (r, taps) in wy.iter().enumerate() {
            let area_y: f64 = taps.iter().map(|&(_, w)| w).sum();
            for c in 0..pc {
                let area_x: f64 = wx[c].iter().map(|&(_, w)| w).sum();
                let s: f64 = taps.iter().map(|&(m, w)| colsum[m * pc + c] * w).sum();
                let area = area_x * area_y;
                let v = if area > 0.0 { s / area / 255.0 } else { 0.0 };
                cells[r * pc + c] = v.clamp(0.0, 1.0) as f32;
            }
        }
        Ok(Self::from_picture_cells(width, height, &cells))
    }

    /// Grows every cell's value to the maximum over its `(2r+1) x (2r+1)` neighbourhood
    /// (dilation by `r` cells; the neighbourhood is cut at the grid's edges).
    pub fn dilate(&self, r: usize) -> Self {
        if r == 0 || self.values.is_empty() {
            return self.clone();
        }
        let (cols, rows) = (self.cols, self.rows);
        let mut horiz = vec![0f32; cols * rows];
        for y in 0..rows {
            let row = &self.values[y * cols..(y + 1) * cols];
            for x in 0..cols {
                let (a, b) = (x.saturating_sub(r), (x + r).min(cols - 1));
                horiz[y * cols + x] = row[a..=b].iter().copied().fold(f32::MIN, f32::max);
            }
        }
        let mut values = vec![0f32; cols * rows];
        for y in 0..rows {
            let (a, b) = (y.saturating_sub(r), (y + r).min(rows - 1));
            for x in 0..cols {
                values[y * cols + x] = (a..=b)
                    .map(|yy| horiz[yy * cols + x])
                    .fold(f32::MIN, f32::max);
            }
        }
        Self { cols, rows, values }
    }

    /// The fraction of the picture's cells (`ceil(W/16) x ceil(H/16)`, padding excluded)
    /// whose value is >= 0.5; 0 for an empty picture.
    pub fn coverage(&self, width: u32, height: u32) -> f64 {
        let (pc, pr) = picture_cells(width, height);
        let (pc, pr) = (pc.min(self.cols), pr.min(self.rows));
        if pc == 0 || pr == 0 {
            return 0.0;
        }
        let n = (0..pr)
            .flat_map(|r| (0..pc).map(move |c| (r, c)))
            .filter(|&(r, c)| self.values[r * self.cols + c] >= 0.5)
            .count();
        n as f64 / (pc * pr) as f64
    }
}

/// Parameters of the mappings of [`importance`].
#[derive(Debug, Clone, PartialEq)]
pub struct RoiParams {
    /// Detection: boxes with score >= this mark their cells (default 0.3).
    pub detection_threshold: f32,
    /// Detection and segmentation: the map is dilated by this many cells (default 1, i.e. a
    /// 16-pixel margin around the marked cells); classification is not dilated.
    pub dilation: usize,
    /// Segmentation: a cell is 1 when at least this fraction of its picture pixels is
    /// predicted as an object (class != 0), else 0 (default 0.1).
    pub segmentation_fraction: f32,
    /// Classification: refine the crop by occlusion sensitivity (default false: the crop
    /// mask, 1 on the cells the classifier reads, without running the network).
    pub classification_occlusion: bool,
    /// Classification with occlusion: the value of the least sensitive patch of the crop
    /// (default 0.5; the most sensitive is 1).
    pub occlusion_floor: f32,
}

impl Default for RoiParams {
    fn default() -> Self {
        Self {
            detection_threshold: 0.3,
            dilation: 1,
            segmentation_fraction: 0.1,
            classification_occlusion: false,
            occlusion_floor: 0.5,
        }
    }
}

/// The task networks of [`importance`], each loaded from the task model folder at its
/// first use and reused for every later picture.
pub struct RoiNetworks {
    dir: PathBuf,
    /// Model files given for a task instead of the folder's.
    files: Vec<(RoiTask, PathBuf)>,
    detector: Option<Yolox>,
    classifier: Option<MobileNetV2>,
    segmenter: Option<DeepLabV3>,
}

impl RoiNetworks {
    /// Networks from the folder `dir` holding `yolox_nano/`, `classification/` and
    /// `segmentation/` (the layout of `../shared/models`, `$ICM_TASK_MODELS`); nothing is
    /// loaded yet.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            detector: None,
            classifier: None,
            segmenter: None,
        }
    }

    /// Networks from `dir` when given, else from [`default_task_model_dir`] (as
    /// `icm task-eval` finds them), with the network of `task` loaded now, so that a missing
    /// runtime or model file fails before any picture is read.
    pub fn load(dir: Option<&Path>, task: RoiTask) -> Result<Self, TaskError> {
        let dir = dir.map_or_else(default_task_model_dir, Path::to_path_buf);
        let mut nets = Self::new(&dir);
        nets.ensure(task)?;
        Ok(nets)
    }

    /// Networks from [`default_task_model_dir`], with `task`'s network loaded now from the
    /// file `model` (a `--task-model`-style option) instead.
    pub fn load_file(task: RoiTask, model: &Path) -> Result<Self, TaskError> {
        let mut nets = Self::new(&default_task_model_dir());
        nets.set_model_file(task, model);
        nets.ensure(task)?;
        Ok(nets)
    }

    /// Reads `task`'s network from the file `model` instead of the folder (from its next
    /// load; a network already loaded is dropped).
    pub fn set_model_file(&mut self, task: RoiTask, model: &Path) {
        self.files.retain(|(t, _)| *t != task);
        self.files.push((task, model.to_path_buf()));
        match task {
            RoiTask::Detection => self.detector = None,
            RoiTask::Classification => self.classifier = None,
            RoiTask::Segmentation => self.segmenter = None,
        }
    }

    /// The folder the networks are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model file of `task`'s network: the one given with [`Self::set_model_file`],
    /// else the built-in one in the folder ([`TaskKind::default_model`]).
    pub fn model_path(&self, task: RoiTask) -> PathBuf {
        match self.files.iter().find(|(t, _)| *t == task) {
            Some((_, file)) => file.clone(),
            None => self.dir.join(task.default_model()),
        }
    }

    /// Loads the network of `task` unless it is loaded (the classifier is only used with
    /// [`RoiParams::classification_occlusion`]).
    pub fn ensure(&mut self, task: RoiTask) -> Result<(), TaskError> {
        match task {
            RoiTask::Detection => self.detector().map(|_| ()),
            RoiTask::Classification => self.classifier().map(|_| ()),
            RoiTask::Segmentation => self.segmenter().map(|_| ()),
        }
    }

    fn classifier(&mut self) -> Result<&mut MobileNetV2, TaskError> {
        let net = match self.classifier.take() {
            Some(net) => net,
            None => MobileNetV2::load(&self.model_path(RoiTask::Classification))?,
        };
        Ok(self.classifier.insert(net))
    }

    fn detector(&mut self) -> Result<&mut Yolox, TaskError> {
        let net = match self.detector.take() {
            Some(net) => net,
            None => Yolox::load(&self.model_path(RoiTask::Detection))?,
        };
        Ok(self.detector.insert(net))
    }

    fn segmenter(&mut self) -> Result<&mut DeepLabV3, TaskError> {
        let net = match self.segmenter.take() {
            Some(net) => net,
            None => DeepLabV3::load(&self.model_path(RoiTask::Segmentation))?,
        };
        Ok(self.segmenter.insert(net))
    }
}

/// The source pixels `[lo, hi)` along one axis that the bilinear resize of `src` pixels to
/// `dst` reads with a non-zero weight for the output pixels `[from, to)` (the taps of
/// [`super::imageops::resize_bilinear`]: position `(d + 0.5) * src / dst - 0.5`, clamped,
/// 11-bit weights).
fn source_span(src: u32, dst: u32, from: u32, to: u32) -> (u32, u32) {
    let src = src.max(1);
    let scale = f64::from(src) / f64::from(dst.max(1));
    let (mut lo, mut hi) = (u32::MAX, 0u32);
    for d in from..to {
        let f = ((f64::from(d) + 0.5) * scale - 0.5) as f32;
        let mut s = f.floor() as i64;
        let mut frac = f - s as f32;
        if s < 0 {
            (s, frac) = (0, 0.0);
        }
        if s >= i64::from(src) - 1 {
            (s, frac) = (i64::from(src) - 1, 0.0);
        }
        let s = s as u32;
        let last = if (frac * 2048.0).round() as i32 != 0 {
            (s + 1).min(src - 1)
        } else {
            s
        };
        lo = lo.min(s);
        hi = hi.max(last);
    }
    (lo.min(hi), hi + 1)
}

/// The picture pixels `[x0, y0, x1, y1]` (ends exclusive) that reach the classifier's crop
/// pixels `[cx.0, cx.1) x [cy.0, cy.1)` (in 0..224) of a `width` x `height` picture.
fn crop_part_source(width: u32, height: u32, cx: (u32, u32), cy: (u32, u32)) -> [u32; 4] {
    let g = crop_geometry(width, height);
    let (x0, x1) = source_span(width, g.width, g.x0 + cx.0, g.x0 + cx.1);
    let (y0, y1) = source_span(height, g.height, g.y0 + cy.0, g.y0 + cy.1);
    [x0, y0, x1, y1]
}

/// The picture pixels `[x0, x1) x [y0, y1)` that reach MobileNetV2's input: those the
/// bilinear resize of [`classification::input_crop`] reads with a non-zero weight for the
/// crop's 224x224 pixels.
pub fn crop_source_rect(width: u32, height: u32) -> (u32, u32, u32, u32) {
    let [x0, y0, x1, y1] = crop_part_source(width, height, (0, CROP), (0, CROP));
    (x0, y0, x1, y1)
}

/// Raises to `value` the picture cells (`pc` columns) overlapping the pixel rectangle
/// `[x0, x1) x [y0, y1)` (already clipped to the picture).
fn mark_rect(cells: &mut [f32], pc: usize, [x0, y0, x1, y1]: [f64; 4], value: f32) {
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let cell = f64::from(CELL);
    let (c0, c1) = ((x0 / cell).floor() as usize, (x1 / cell).ceil() as usize);
    let (r0, r1) = ((y0 / cell).floor() as usize, (y1 / cell).ceil() as usize);
    for r in r0..r1 {
        for c in c0..c1.min(pc) {
            if let Some(v) = cells.get_mut(r * pc + c) {
                *v = v.max(value);
            }
        }
    }
}

/// The classification crop mask: 1 on the cells overlapping [`crop_source_rect`], else 0.
pub fn classification_map(width: u32, height: u32) -> ImportanceMap {
    let (pc, pr) = picture_cells(width, height);
    let mut cells = vec![0f32; pc * pr];
    if pc > 0 && pr > 0 {
        let (x0, y0, x1, y1) = crop_source_rect(width, height);
        mark_rect(&mut cells, pc, [x0, y0, x1, y1].map(f64::from), 1.0);
    }
    ImportanceMap::from_picture_cells(width, height, &cells)
}

/// The default background step factor `G` of `task`'s map (`icm encode --roi-background`):
/// 16 for classification, whose network never sees the cells outside its crop, 3 for
/// detection and segmentation, whose maps leave out objects the network may still find.
pub fn default_background(task: RoiTask) -> f64 {
    match task {
        RoiTask::Classification => 16.0,
        RoiTask::Detection | RoiTask::Segmentation => 3.0,
    }
}

/// The classification map with occlusion sensitivity (module documentation) of `img`.
pub fn occlusion_map(
    net: &mut MobileNetV2,
    img: &RgbImage,
    floor: f32,
) -> Result<ImportanceMap, TaskError> {
    let (w, h) = (img.width, img.height);
    let base = classification::normalise(&classification::input_crop(img));
    let probs = net.run_input(base.clone())?;
    let (top, p) = probs
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f32::MIN),
            |best, (i, v)| if v > best.1 { (i, v) } else { best },
        );
    let (side, n) = (CROP as usize, (CROP / OCCLUSION_PATCH) as usize);
    let patch = OCCLUSION_PATCH as usize;
    let mut drops = vec![0f32; n * n];
    for (i, drop) in drops.iter_mut().enumerate() {
        let (px, py) = (i % n, i / n);
        let mut t = base.clone();
        for ch in 0..3 {
            for y in py * patch..(py + 1) * patch {
                let row = (ch * side + y) * side + px * patch;
                t[row..row + patch].fill(0.0);
            }
        }
        *drop = (p - net.run_input(t)?[top]).max(0.0);
    }
    let max = drops.iter().copied().fold(0.0, f32::max);
    let (pc, pr) = picture_cells(w, h);
    let mut cells = vec![0f32; pc * pr];
    for (i, &drop) in drops.iter().enumerate() {
        let s = if max > 0.0 { drop / max } else { 1.0 };
        let value = (floor + (1.0 - floor) * s).clamp(0.0, 1.0);
        let (px, py) = ((i % n) as u32, (i / n) as u32);
        let q = OCCLUSION_PATCH;
        let rect = crop_part_source(w, h, (px * q, px * q + q), (py * q, py * q + q));
        mark_rect(&mut cells, pc, rect.map(f64::from), value);
    }
    Ok(ImportanceMap::from_picture_cells(w, h, &cells))
}

/// The detection map of boxes `[x, y, w, h]` (pixels) before dilation.
pub fn boxes_map(width: u32, height: u32, boxes: &[[f32; 4]]) -> ImportanceMap {
    let (pc, pr) = picture_cells(width, height);
    let mut cells = vec![0f32; pc * pr];
    let (w, h) = (f64::from(width), f64::from(height));
    for b in boxes {
        let [x, y, bw, bh] = b.map(f64::from);
        if ![x, y, bw, bh].iter().all(|v| v.is_finite()) {
            continue;
        }
        let (x0, y0) = (x.clamp(0.0, w), y.clamp(0.0, h));
        let (x1, y1) = ((x + bw).clamp(0.0, w), (y + bh).clamp(0.0, h));
        mark_rect(&mut cells, pc, [x0, y0, x1, y1], 1.0);
    }
    ImportanceMap::from_picture_cells(width, height, &cells)
}

/// The segmentation map of per-pixel labels (`width * height`, row-major) before dilation:
/// 1 where the fraction of a cell's pixels with a label != 0 is >= `min_fraction`.
pub fn labels_map(width: u32, height: u32, labels: &[u8], min_fraction: f32) -> ImportanceMap {
    let (pc, pr) = picture_cells(width, height);
    let (w, h) = (width as usize, height as usize);
    let mut count = vec![0u32; pc * pr];
    for (y, row) in labels.chunks_exact(w.max(1)).take(h).enumerate() {
        for (x, &l) in row.iter().enumerate() {
            if l != 0 {
                count[(y / CELL as usize) * pc + x / CELL as usize] += 1;
            }
        }
    }
    let cell = CELL as usize;
    let cells: Vec<f32> = (0..pc * pr)
        .map(|i| {
            let (r, c) = (i / pc, i % pc);
            let n = (w.min((c + 1) * cell) - c * cell) * (h.min((r + 1) * cell) - r * cell);
            let frac = count[i] as f32 / n as f32;
            if frac >= min_fraction {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    ImportanceMap::from_picture_cells(width, height, &cells)
}

/// The importance map of `img` for `task` (the mappings of the module documentation),
/// running the task's network from `nets` (loaded at its first use).
pub fn importance(
    task: RoiTask,
    img: &RgbImage,
    nets: &mut RoiNetworks,
    params: &RoiParams,
) -> Result<ImportanceMap, TaskError> {
    let (w, h) = (img.width, img.height);
    if w == 0 || h == 0 {
        return Ok(ImportanceMap::uniform(w, h, 0.0));
    }
    match task {
        RoiTask::Classification if params.classification_occlusion => {
            occlusion_map(nets.classifier()?, img, params.occlusion_floor)
        }
        RoiTask::Classification => Ok(classification_map(w, h)),
        RoiTask::Detection => {
            let yolox = nets.detector()?;
            // Candidates above a threshold just under the map's: class-wise NMS keeps the
            // same boxes of score >= threshold as from the evaluation's 0.01 candidates (a
            // box is only suppressed by boxes of higher score), faster.
            let t = params.detection_threshold;
            yolox.score_threshold = if t > 0.0 { t.next_down() } else { -1.0 };
            let dets = yolox.detect(img)?;
            let boxes: Vec<[f32; 4]> = dets
                .iter()
                .filter(|d| d.score >= t)
                .map(|d| d.bbox)
                .collect();
            Ok(boxes_map(w, h, &boxes).dilate(params.dilation))
        }
        RoiTask::Segmentation => {
            let seg = nets.segmenter()?.segment(img)?;
            Ok(labels_map(w, h, &seg.labels, params.segmentation_fraction).dilate(params.dilation))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::runtime::{check_library, find_library};
    use std::time::Instant;

    /// The rule of the integration tests (`tests/it/common.rs`): print why and pass, except
    /// under `CI=true`, where `../shared` and the runtime are installed.
    fn cannot_run(why: &str) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and the test cannot run: {why}");
        }
        println!("skipping: {why}");
    }

    /// A COCO picture with one clear object (an aeroplane, 640x427).
    const COCO_PICTURE: &str = "coco/val2017/000000208901.jpg";
    /// An ImageNet picture (a tench).
    const IMAGENET_PICTURE: &str = "imagenet-val-sample/n01440764_tench.JPEG";

    /// The networks and the picture `../shared/data/PICTURE`, or `None` after saying why
    /// not.
    fn networks_and_picture(task: RoiTask, picture: &str) -> Option<(RoiNetworks, RgbImage)> {
        if !cfg!(feature = "tasks") {
            println!("skipping: built without the `tasks` feature");
            return None;
        }
        if let Err(e) = find_library().and_then(|p| check_library(&p)) {
            cannot_run(&e.to_string());
            return None;
        }
        let pic = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data")
            .join(picture);
        if !pic.is_file() {
            cannot_run(&format!("{} not present", pic.display()));
            return None;
        }
        let nets = RoiNetworks::new(&default_task_model_dir());
        if !nets.model_path(task).is_file() {
            cannot_run(&format!("{} not present", nets.model_path(task).display()));
            return None;
        }
        let img = crate::picture::read_rgb(&pic).expect("read picture");
        Some((nets, img))
    }

    /// The map of `task` on the picture, timed after a first (loading) run.
    fn run_timed(
        task: RoiTask,
        picture: &str,
        params: &RoiParams,
    ) -> Option<(ImportanceMap, u32, u32)> {
        let (mut nets, img) = networks_and_picture(task, picture)?;
        let first = importance(task, &img, &mut nets, params).expect("importance");
        let t = Instant::now();
        let again = importance(task, &img, &mut nets, params).expect("importance");
        println!(
            "{}: {:.1} ms a picture ({}x{}), coverage {:.3}",
            task.name(),
            t.elapsed().as_secs_f64() * 1e3,
            img.width,
            img.height,
            first.coverage(img.width, img.height)
        );
        assert_eq!(first, again, "deterministic");
        Some((first, img.width, img.height))
    }

    #[test]
    fn cell_grid_sizes() {
        assert_eq!(ImportanceMap::cells_of(100, 70), (8, 8));
        assert_eq!(ImportanceMap::cells_of(64, 64), (4, 4));
        assert_eq!(ImportanceMap::cells_of(65, 1), (8, 4));
        assert_eq!(ImportanceMap::cells_of(4000, 3000), (252, 188));
        let m = ImportanceMap::uniform(100, 70, 0.25);
        assert_eq!((m.cols, m.rows, m.values.len()), (8, 8, 64));
        assert!(m.values.iter().all(|&v| v == 0.25));
    }

    #[test]
    fn model_files() {
        let mut nets = RoiNetworks::new(Path::new("/m"));
        let det = nets.model_path(RoiTask::Detection);
        assert_eq!(det, Path::new("/m/yolox_nano/yolox_nano.onnx"));
        nets.set_model_file(RoiTask::Segmentation, Path::new("/x/seg.onnx"));
        assert_eq!(
            nets.model_path(RoiTask::Segmentation),
            Path::new("/x/seg.onnx")
        );
        assert_eq!(nets.model_path(RoiTask::Detection), det);
        let missing = RoiNetworks::load_file(RoiTask::Detection, Path::new("/nonexistent.onnx"));
        assert!(missing.is_err());
    }

    #[test]
    fn task_names() {
        for t in [
            RoiTask::Detection,
            RoiTask::Classification,
            RoiTask::Segmentation,
        ] {
            assert_eq!(t.name().parse::<RoiTask>(), Ok(t));
        }
        assert!("tracking".parse::<RoiTask>().is_err());
    }

    #[test]
    fn grey_map_area_average() {
        // 2x1 map over a 64x32 picture: picture cells 4x2, grid 4x4.
        let m = ImportanceMap::from_grey(&[0, 255], 2, 1, 64, 32).expect("map");
        assert_eq!((m.cols, m.rows), (4, 4));
        for r in 0..4 {
            assert_eq!(&m.values[r * 4..r * 4 + 4], &[0.0, 0.0, 1.0, 1.0]);
        }
        // 3x1 map over 32x16 (two picture cells of 1.5 map pixels each):
        // (0 * 1 + 255 * 0.5) / 1.5 / 255 = 1/3 in both; padding copies the last column.
        let m = ImportanceMap::from_grey(&[0, 255, 0], 3, 1, 32, 16).expect("map");
        assert_eq!((m.cols, m.rows), (4, 4));
        for v in &m.values {
            assert!((v - 1.0 / 3.0).abs() < 1e-6, "{:?}", m.values);
        }
        // A 4x4 map over 40x24: picture cells 3x2, the last column and row partial
        // (8 pixels = 0.8 map pixel wide, 8 pixels = 1.33 map pixels high).
        let grey: Vec<u8> = (0..16).map(|i| (i * 17) as u8).collect();
        let m = ImportanceMap::from_grey(&grey, 4, 4, 40, 24).expect("map");
        // Cell (1, 2): x in [32, 40) -> map [3.2, 4.0), y in [16, 24) -> map [2.67, 4).
        let want = (((1.0 / 3.0) * f64::from(grey[2 * 4 + 3]) + f64::from(grey[3 * 4 + 3]))
            / (4.0 / 3.0))
            / 255.0;
        assert!((f64::from(m.values[m.cols + 2]) - want).abs() < 1e-6);
        assert_eq!(m.values[m.cols + 3], m.values[m.cols + 2]);
        assert_eq!(m.values[3 * m.cols + 2], m.values[m.cols + 2]);
        assert!(ImportanceMap::from_grey(&[0; 5], 2, 3, 64, 64).is_err());
        assert!(ImportanceMap::from_grey(&[], 0, 0, 64, 64).is_err());
    }

    #[test]
    fn dilation_grows_by_cells() {
        let mut m = ImportanceMap::uniform(128, 128, 0.0);
        m.values[2 * 8 + 3] = 0.75;
        m.values[0] = 0.5;
        assert_eq!(m.dilate(0), m);
        let d = m.dilate(1);
        let at = |r: usize, c: usize| d.values[r * 8 + c];
        for r in 1..=3 {
            for c in 2..=4 {
                assert_eq!(at(r, c), 0.75);
            }
        }
        assert_eq!(
            (at(0, 0), at(1, 1), at(0, 1), at(0, 2)),
            (0.5, 0.5, 0.5, 0.0)
        );
        assert_eq!((at(1, 2), at(3, 4)), (0.75, 0.75));
        assert_eq!((at(2, 5), at(4, 3), at(2, 0)), (0.0, 0.0, 0.0));
        assert_eq!(d.values.iter().filter(|&&v| v > 0.0).count(), 9 + 4);
        let d2 = m.dilate(2);
        assert_eq!(d2.values.iter().filter(|&&v| v == 0.75).count(), 25);
    }

    #[test]
    fn coverage_counts_picture_cells_only() {
        // 100x70: picture cells 7x5 of the 8x8 grid.
        assert_eq!(ImportanceMap::uniform(100, 70, 1.0).coverage(100, 70), 1.0);
        let mut m = ImportanceMap::uniform(100, 70, 0.0);
        for c in 0..8 {
            m.values[7 * 8 + c] = 1.0; // padding row
        }
        assert_eq!(m.coverage(100, 70), 0.0);
        m.values[0] = 0.5;
        m.values[1] = 0.49;
        assert!((m.coverage(100, 70) - 1.0 / 35.0).abs() < 1e-12);
    }

    #[test]
    fn boxes_and_labels_mark_cells() {
        let m = boxes_map(
            64,
            64,
            &[[20.0, 20.0, 10.0, 10.0], [16.0, 48.0, 16.0, 16.0]],
        );
        let on: Vec<usize> = (0..16).filter(|&i| m.values[i] == 1.0).collect();
        assert_eq!(on, vec![4 + 1, 12 + 1]);
        // Clipped to the picture (100x70); padding copies the edge cells.
        let m = boxes_map(100, 70, &[[90.0, -5.0, 40.0, 10.0]]);
        assert_eq!(&m.values[..8], &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        assert!(m.values[8..].iter().all(|&v| v == 0.0));
        assert_eq!(
            boxes_map(64, 64, &[[f32::NAN, 0.0, 5.0, 5.0]]).coverage(64, 64),
            0.0
        );
        // 20x20: cells of 16x16, 4x16, 16x4, 4x4 pixels.
        let mut labels = vec![0u8; 400];
        labels[0] = 1; // 1 of 256: under 0.1
        labels[16] = 3; // 1 of 64: under 0.1
        labels[18] = 3;
        labels[20 * 19 + 19] = 5; // 1 of 16 in cell (1, 1)
        labels[20 * 18 + 19] = 5; // 2 of 16 = 0.125
        let m = labels_map(20, 20, &labels, 0.1);
        assert_eq!(&m.values[..2], &[0.0, 0.0]);
        assert_eq!(m.values[m.cols + 1], 1.0);
        let m = labels_map(20, 20, &labels, 0.03);
        assert_eq!(&m.values[..2], &[0.0, 1.0]);
    }

    #[test]
    fn classification_crop_mask() {
        // 640x480: resized to 341x256, crop at (59, 16): picture x in [110.7, 531.1),
        // y in [30, 450); cells 6..=33 and rows 1..=28 of the 40x30 picture cells.
        let (x0, y0, x1, y1) = crop_source_rect(640, 480);
        assert!(
            (110..=111).contains(&x0) && (531..=533).contains(&x1),
            "{x0} {x1}"
        );
        assert!(
            (29..=30).contains(&y0) && (450..=451).contains(&y1),
            "{y0} {y1}"
        );
        let m = classification_map(640, 480);
        assert_eq!((m.cols, m.rows), (40, 32));
        let at = |r: usize, c: usize| m.values[r * 40 + c];
        assert_eq!(at(0, 0), 0.0);
        assert_eq!(at(15, 20), 1.0);
        assert_eq!(
            (at(15, 5), at(15, 6), at(15, 33), at(15, 34)),
            (0.0, 1.0, 1.0, 0.0)
        );
        assert_eq!(
            (at(0, 20), at(1, 20), at(28, 20), at(29, 20)),
            (0.0, 1.0, 1.0, 0.0)
        );
        assert_eq!(at(31, 20), 0.0); // padding copies row 29
        assert!((m.coverage(640, 480) - (28.0 * 28.0) / (40.0 * 30.0)).abs() < 1e-12);
        let mut nets = RoiNetworks::new(Path::new("/nonexistent"));
        let img = icm::testimage::synthetic(640, 480, 1);
        let params = RoiParams {
            classification_occlusion: false,
            ..RoiParams::default()
        };
        let got = importance(RoiTask::Classification, &img, &mut nets, &params);
        assert_eq!(got.expect("no network needed"), m);
    }

    #[test]
    fn crop_source_rect_holds_every_pixel_the_classifier_reads() {
        for (w, h) in [
            (640, 480),
            (480, 640),
            (300, 200),
            (100, 50),
            (1023, 257),
            (224, 224),
        ] {
            let img = icm::testimage::synthetic(w, h, 3);
            let (x0, y0, x1, y1) = crop_source_rect(w, h);
            assert!(x0 < x1 && x1 <= w && y0 < y1 && y1 <= h);
            let mut outside = img.clone();
            for y in 0..h {
                for x in 0..w {
                    if !(x0..x1).contains(&x) || !(y0..y1).contains(&y) {
                        let p = ((y * w + x) * 3) as usize;
                        outside.data[p..p + 3].copy_from_slice(&[0, 255, 0]);
                    }
                }
            }
            let crop = classification::input_crop(&img);
            assert_eq!(crop, classification::input_crop(&outside), "{w}x{h}");
            // And it is tight: within 2 pixels of the crop's edges mapped back.
            let g = crop_geometry(w, h);
            let (sx, sy) = (
                f64::from(w) / f64::from(g.width),
                f64::from(h) / f64::from(g.height),
            );
            let near = |a: u32, b: f64| (f64::from(a) - b).abs() <= 2.0;
            assert!(near(x0, f64::from(g.x0) * sx) && near(x1, f64::from(g.x0 + 224) * sx));
            assert!(near(y0, f64::from(g.y0) * sy) && near(y1, f64::from(g.y0 + 224) * sy));
        }
    }

    #[test]
    fn detection_map_of_a_coco_picture() {
        let Some((m, w, h)) = run_timed(RoiTask::Detection, COCO_PICTURE, &RoiParams::default())
        else {
            return;
        };
        let cov = m.coverage(w, h);
        assert!(cov > 0.0 && cov < 1.0, "coverage {cov}");
        assert!(m.values.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn segmentation_map_of_a_coco_picture() {
        let Some((m, w, h)) = run_timed(RoiTask::Segmentation, COCO_PICTURE, &RoiParams::default())
        else {
            return;
        };
        let cov = m.coverage(w, h);
        assert!(cov > 0.0 && cov < 1.0, "coverage {cov}");
    }

    #[test]
    fn classification_occlusion_map() {
        let params = RoiParams {
            classification_occlusion: true,
            ..RoiParams::default()
        };
        let Some((m, w, h)) = run_timed(RoiTask::Classification, IMAGENET_PICTURE, &params) else {
            return;
        };
        // The default is the crop mask.
        let Some((mut nets, img)) = networks_and_picture(RoiTask::Classification, IMAGENET_PICTURE)
        else {
            return;
        };
        let plain = importance(
            RoiTask::Classification,
            &img,
            &mut nets,
            &RoiParams::default(),
        );
        assert_eq!(plain.expect("crop mask"), classification_map(w, h));
        // Zero outside the crop, 0.5..=1 inside, 1 on the most sensitive patch.
        let mask = classification_map(w, h);
        for (v, c) in m.values.iter().zip(&mask.values) {
            assert!(if *c == 0.0 {
                *v == 0.0
            } else {
                (0.5..=1.0).contains(v)
            });
        }
        assert!(m.values.contains(&1.0));
        assert_eq!(m.coverage(w, h), mask.coverage(w, h));
    }
}
