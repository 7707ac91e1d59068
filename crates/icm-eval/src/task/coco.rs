//! COCO box annotations and the bounding-box evaluation of pycocotools' `COCOeval`
//! (`iouType='bbox'`), restricted to what `icm task-eval` reports: mAP@[.5:.95] and mAP@.5
//! for area range `all` and `maxDets` 100.
//!
//! Reproduced behaviour of pycocotools 2.0 (`cocoeval.py`, `maskApi.c`):
//! - IoU thresholds 0.50:0.05:0.95, 101 recall points 0:0.01:1.
//! - Per image and category: detections sorted by decreasing score (stable) and cut to the
//!   first 100 (`maxDets` applies per image *and category* in `evaluateImg`); ground truth
//!   with `iscrowd` is "ignore" and sorted after the others.
//! - Box IoU on `[x, y, w, h]`; against a crowd box the union is the detection's own area.
//! - Greedy matching in score order: a detection takes the unmatched (or crowd) ground truth
//!   of best IoU >= threshold, preferring non-ignored ground truth; a detection matched to
//!   an ignored one is ignored.
//! - Accumulation per category over all images (detections merged in image order and sorted
//!   by score, stable), precision made monotone from the end, sampled at the recall points
//!   with `searchsorted(..., side='left')`; categories without non-ignored ground truth are
//!   left out (-1) and the mean runs over the rest.

use super::TaskError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// One ground-truth box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    /// `[x, y, w, h]`.
    pub bbox: [f64; 4],
    /// COCO category id.
    pub category_id: u32,
    /// Crowd region (ignored for matching).
    pub iscrowd: bool,
}

/// One detection in COCO result form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetBox {
    /// Image id.
    pub image_id: u64,
    /// COCO category id.
    pub category_id: u32,
    /// `[x, y, w, h]`.
    pub bbox: [f64; 4],
    /// Score.
    pub score: f64,
}

/// The shape of an instance: polygons, or an uncompressed run-length mask.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Polygons `[x0, y0, x1, y1, ...]` in pixel coordinates.
    Polygons(Vec<Vec<f64>>),
    /// COCO RLE with `counts` as a list: alternating runs of 0 and 1, column-major.
    Rle {
        /// Mask height.
        height: usize,
        /// Mask width.
        width: usize,
        /// Run lengths, starting with a run of 0s.
        counts: Vec<u64>,
    },
}

/// One instance's mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// COCO category id.
    pub category_id: u32,
    /// Crowd region.
    pub iscrowd: bool,
    /// The annotation's `area`.
    pub area: f64,
    /// Its shape.
    pub shape: Shape,
}

/// A COCO instances file: images and their boxes.
#[derive(Debug, Clone, Default)]
pub struct CocoDataset {
    /// `(id, file_name)` by ascending id.
    pub images: Vec<(u64, String)>,
    /// Ground truth per image id.
    pub boxes: HashMap<u64, Vec<GtBox>>,
    /// Instance masks per image id (annotations whose `segmentation` is polygons or an
    /// uncompressed RLE; compressed RLE strings are left out).
    pub segments: HashMap<u64, Vec<Segment>>,
    /// Category ids of the file (`categories`), ascending.
    pub category_ids: Vec<u32>,
}

impl CocoDataset {
    /// Reads `instances_*.json` (fields `images`, `annotations`, `categories`).
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TaskError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|why| TaskError::Dataset { path: shown, why })
    }

    /// Parses the JSON text of an instances file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let arr = |k: &str| {
            doc.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("no \"{k}\" array"))
        };
        let mut images = Vec::new();
        for (i, im) in arr("images")?.iter().enumerate() {
            let id = im
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("images[{i}]: no integer id"))?;
            let name = im
                .get("file_name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("images[{i}]: no file_name"))?;
            images.push((id, name.to_string()));
        }
        images.sort();
        images.dedup_by_key(|im| im.0);
        let mut category_ids: Vec<u32> = Vec::new();
        for (i, c) in arr("categories")?.iter().enumerate() {
            let id = c
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("categories[{i}]: no integer id"))?;
            category_ids.push(id);
        }
        category_ids.sort_unstable();
        category_ids.dedup();
        let mut boxes: HashMap<u64, Vec<GtBox>> = HashMap::new();
        let mut segments: HashMap<u64, Vec<Segment>> = HashMap::new();
        for (i, a) in arr("annotations")?.iter().enumerate() {
            let bad = |what: &str| format!("annotations[{i}]: {what}");
            let image_id = a
                .get("image_id")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("no integer image_id"))?;
            let category_id = a
                .get("category_id")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad("no integer category_id"))?;
            let b = a
                .get("bbox")
                .and_then(Value::as_array)
                .filter(|b| b.len() == 4)
                .ok_or_else(|| bad("bbox is not [x, y, w, h]"))?;
            let mut bbox = [0f64; 4];
            for (k, v) in b.iter().enumerate() {
                bbox[k] = v
                    .as_f64()
                    .ok_or_else(|| bad("bbox value is not a number"))?;
            }
            let iscrowd = a
                .get("iscrowd")
                .map(|v| v.as_u64().map(|v| v != 0).or(v.as_bool()).unwrap_or(false))
                .unwrap_or(false);
            boxes.entry(image_id).or_default().push(GtBox {
                bbox,
                category_id,
                iscrowd,
            });
            if let Some(shape) = a.get("segmentation").and_then(parse_shape) {
                segments.entry(image_id).or_default().push(Segment {
                    category_id,
                    iscrowd,
                    area: a.get("area").and_then(Value::as_f64).unwrap_or(0.0),
                    shape,
                });
            }
        }
        Ok(Self {
            images,
            boxes,
            segments,
            category_ids,
        })
    }
}

fn parse_shape(v: &Value) -> Option<Shape> {
    if let Some(polys) = v.as_array() {
        let polys: Vec<Vec<f64>> = polys
            .iter()
            .filter_map(|p| p.as_array())
            .map(|p| p.iter().filter_map(Value::as_f64).collect())
            .collect();
        return Some(Shape::Polygons(polys));
    }
    let size = v.get("size")?.as_array()?;
    let (height, width) = (
        size.first()?.as_u64()? as usize,
        size.get(1)?.as_u64()? as usize,
    );
    let counts = v
        .get("counts")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()?;
    Some(Shape::Rle {
        height,
        width,
        counts,
    })
}

/// Rasterises a shape into `mask` (`width x height`, row-major), writing `value`.
/// Polygons are filled by the even-odd rule at pixel centres `(x + 0.5, y + 0.5)` (close
/// to, not bit-identical with, pycocotools' `frPoly`); RLE runs are column-major as COCO
/// stores them.
pub fn paint(shape: &Shape, mask: &mut [u8], width: usize, height: usize, value: u8) {
    match shape {
        Shape::Polygons(polys) => {
            let mut xs: Vec<f64> = Vec::new();
            for y in 0..height {
                let cy = y as f64 + 0.5;
                xs.clear();
                for p in polys {
                    let n = p.len() / 2;
                    for i in 0..n {
                        let (x0, y0) = (p[2 * i], p[2 * i + 1]);
                        let j = (i + 1) % n;
                        let (x1, y1) = (p[2 * j], p[2 * j + 1]);
                        if (y0 <= cy) != (y1 <= cy) {
                            xs.push(x0 + (cy - y0) * (x1 - x0) / (y1 - y0));
                        }
                    }
                }
                xs.sort_by(f64::total_cmp);
                for pair in xs.chunks(2) {
                    let [a, b] = pair else { continue };
                    // Pixels whose centre x + 0.5 lies in [a, b).
                    let start = (a - 0.5).ceil().max(0.0) as usize;
                    let end = ((b - 0.5).ceil().max(0.0) as usize).min(width);
                    for x in start..end {
                        mask[y * width + x] = value;
                    }
                }
            }
        }
        Shape::Rle {
            height: h,
            width: w,
            counts,
        } => {
            if (*h, *w) != (height, width) {
                return;
            }
            let mut pos = 0usize;
            for (k, &run) in counts.iter().enumerate() {
                let run = run as usize;
                if k % 2 == 1 {
                    for p in pos..(pos + run).min(width * height) {
                        let (x, y) = (p / height, p % height);
                        mask[y * width + x] = value;
                    }
                }
                pos += run;
            }
        }
    }
}

/// mAP@[.5:.95] and mAP@.5 (pycocotools `stats[0]` and `stats[1]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CocoScores {
    /// AP averaged over IoU 0.50..0.95, recall points and categories.
    pub map: f64,
    /// AP at IoU 0.50.
    pub map50: f64,
    /// Categories that entered the mean.
    pub categories: usize,
}

const MAX_DETS: usize = 100;

/// pycocotools' `bbIou` for one pair.
fn box_iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let da = d[2] * d[3];
    let u = if crowd { da } else { da + g[2] * g[3] - i };
    i / u
}

/// The evaluation of one image and category (`evaluateImg`).
struct ImgEval {
    /// Scores of the kept detections, in score order.
    scores: Vec<f64>,
    /// `[threshold][detection]`: matched to some ground truth.
    matched: Vec<Vec<bool>>,
    /// `[threshold][detection]`: ignored.
    ignored: Vec<Vec<bool>>,
    /// Non-ignored ground truth.
    npig: usize,
}

fn iou_thresholds() -> [f64; 10] {
    // np.linspace(.5, 0.95, 10): k * ((.95 - .5) / 9) + .5, the last one exactly .95.
    let mut t = [0.0; 10];
    let step = (0.95 - 0.5) / 9.0;
    for (k, v) in t.iter_mut().enumerate() {
        *v = k as f64 * step + 0.5;
    }
    t[9] = 0.95;
    t
}

fn evaluate_img(gt: &[GtBox], dt: &[DetBox], thrs: &[f64]) -> Option<ImgEval> {
    if gt.is_empty() && dt.is_empty() {
        return None;
    }
    // Non-ignored ground truth first (stable).
    let mut g: Vec<&GtBox> = gt.iter().filter(|g| !g.iscrowd).collect();
    g.extend(gt.iter().filter(|g| g.iscrowd));
    let mut d: Vec<&DetBox> = dt.iter().collect();
    d.sort_by(|a, b| b.score.total_cmp(&a.score));
    d.truncate(MAX_DETS);
    let ious: Vec<Vec<f64>> = d
        .iter()
        .map(|d| {
            g.iter()
                .map(|g| box_iou(&d.bbox, &g.bbox, g.iscrowd))
                .collect()
        })
        .collect();
    let mut matched = vec![vec![false; d.len()]; thrs.len()];
    let mut ignored = vec![vec![false; d.len()]; thrs.len()];
    for (t, &thr) in thrs.iter().enumerate() {
        let mut gt_taken = vec![false; g.len()];
        for di in 0..d.len() {
            let mut best = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for gi in 0..g.len() {
                if gt_taken[gi] && !g[gi].iscrowd {
                    continue;
                }
                // Once matched to a regular box, stop at the ignored (crowd) ones.
                if let Some(mi) = m {
                    if !g[mi].iscrowd && g[gi].iscrowd {
                        break;
                    }
                }
                if ious[di][gi] < best {
                    continue;
                }
                best = ious[di][gi];
                m = Some(gi);
            }
            if let Some(mi) = m {
                ignored[t][di] = g[mi].iscrowd;
                matched[t][di] = true;
                gt_taken[mi] = true;
            }
        }
    }
    Some(ImgEval {
        scores: d.iter().map(|d| d.score).collect(),
        matched,
        ignored,
        npig: g.iter().filter(|g| !g.iscrowd).count(),
    })
}

/// Evaluates `dets` against the ground truth of the images `image_ids` (pycocotools'
/// `params.imgIds`; detections on other images are left out) over the dataset's categories.
pub fn evaluate(data: &CocoDataset, image_ids: &[u64], dets: &[DetBox]) -> CocoScores {
    let thrs = iou_thresholds();
    let images: BTreeSet<u64> = image_ids.iter().copied().collect();
    let mut by_key: BTreeMap<(u32, u64), Vec<DetBox>> = BTreeMap::new();
    for d in dets {
        if images.contains(&d.image_id) {
            by_key
                .entry((d.category_id, d.image_id))
                .or_default()
                .push(*d);
        }
    }
    // np.linspace(.0, 1.00, 101): i * 0.01, the last one exactly 1.
    let mut recall_points: Vec<f64> = (0..=100).map(|r| r as f64 * 0.01).collect();
    recall_points[100] = 1.0;
    let mut sum_all = 0.0;
    let mut n_all = 0usize;
    let mut sum_50 = 0.0;
    let mut n_50 = 0usize;
    let mut categories = 0usize;
    let empty_g: Vec<GtBox> = Vec::new();
    let empty_d: Vec<DetBox> = Vec::new();
    for &cat in &data.category_ids {
        let mut evals = Vec::new();
        for &img in &images {
            let gt: Vec<GtBox> = data
                .boxes
                .get(&img)
                .unwrap_or(&empty_g)
                .iter()
                .filter(|g| g.category_id == cat)
                .copied()
                .collect();
            let dt = by_key.get(&(cat, img)).unwrap_or(&empty_d);
            if let Some(e) = evaluate_img(&gt, dt, &thrs) {
                evals.push(e);
            }
        }
        if evals.is_empty() {
            continue;
        }
        let npig: usize = evals.iter().map(|e| e.npig).sum();
        if npig == 0 {
            continue;
        }
        categories += 1;
        // (score, image index, detection index) merged and sorted stably by score.
        let mut order: Vec<(f64, usize, usize)> = Vec::new();
        for (ei, e) in evals.iter().enumerate() {
            for (di, &s) in e.scores.iter().enumerate().take(MAX_DETS) {
                order.push((s, ei, di));
            }
        }
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        for t in 0..thrs.len() {
            let mut tp = 0.0f64;
            let mut fp = 0.0f64;
            let mut rc = Vec::with_capacity(order.len());
            let mut pr = Vec::with_capacity(order.len());
            for &(_, ei, di) in &order {
                let e = &evals[ei];
                if e.ignored[t][di] {
                    // Neither a true nor a false positive, but it still holds a place in
                    // the cumulative sums (pycocotools keeps ignored entries in the arrays).
                } else if e.matched[t][di] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
                rc.push(tp / npig as f64);
                pr.push(tp / (fp + tp + f64::EPSILON));
            }
            for i in (1..pr.len()).rev() {
                if pr[i] > pr[i - 1] {
                    pr[i - 1] = pr[i];
                }
            }
            let mut q_sum = 0.0;
            for &r in &recall_points {
                // searchsorted(rc, r, side='left'): first index with rc[i] >= r.
                let i = rc.partition_point(|&v| v < r);
                if i < pr.len() {
                    q_sum += pr[i];
                }
            }
            sum_all += q_sum;
            n_all += recall_points.len();
            if t == 0 {
                sum_50 += q_sum;
                n_50 += recall_points.len();
            }
        }
    }
    let mean = |s: f64, n: usize| if n == 0 { -1.0 } else { s / n as f64 };
    CocoScores {
        map: mean(sum_all, n_all),
        map50: mean(sum_50, n_50),
        categories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> CocoDataset {
        let text = r#"{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "categories": [{"id": 1}, {"id": 2}, {"id": 3}],
            "annotations": [
              {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0},
              {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "iscrowd": 0},
              {"image_id": 2, "category_id": 2, "bbox": [0, 0, 20, 20], "iscrowd": 0},
              {"image_id": 2, "category_id": 2, "bbox": [30, 30, 40, 40], "iscrowd": 1}]}"#;
        CocoDataset::parse(text).expect("parse")
    }

    fn det(image_id: u64, category_id: u32, bbox: [f64; 4], score: f64) -> DetBox {
        DetBox {
            image_id,
            category_id,
            bbox,
            score,
        }
    }

    #[test]
    fn perfect_detections_score_one() {
        let d = data();
        let dets = [
            det(1, 1, [0.0, 0.0, 10.0, 10.0], 0.9),
            det(1, 1, [50.0, 50.0, 10.0, 10.0], 0.8),
            det(2, 2, [0.0, 0.0, 20.0, 20.0], 0.7),
            // On the crowd region: ignored, not a false positive.
            det(2, 2, [35.0, 35.0, 10.0, 10.0], 0.95),
        ];
        let s = evaluate(&d, &[1, 2], &dets);
        assert_eq!(s.categories, 2);
        assert!((s.map - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s.map50 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn half_recall_and_false_positive() {
        let d = data();
        // Category 1: one of two found (recall 0.5) after a false positive; category 2 missed.
        let dets = [
            det(1, 1, [100.0, 100.0, 10.0, 10.0], 0.9),
            det(1, 1, [0.0, 0.0, 10.0, 10.0], 0.8),
        ];
        let s = evaluate(&d, &[1, 2], &dets);
        // Cat 1: precision 0.5 for recall points 0..=0.5 (51 points), 0 above; cat 2: 0.
        let want = 51.0 * 0.5 / 101.0 / 2.0;
        assert!((s.map - want).abs() < 1e-9, "{s:?} vs {want}");
        // Restricted to image 2, category 1 has no ground truth and drops out.
        let s = evaluate(&d, &[2], &dets);
        assert_eq!(s.categories, 1);
        assert_eq!(s.map, 0.0);
    }

    #[test]
    fn paint_polygon_and_rle() {
        // A 2x2 square from (1, 1) to (3, 3) covers the pixels whose centres are inside.
        let (w, h) = (4, 4);
        let mut m = vec![0u8; w * h];
        let sq = Shape::Polygons(vec![vec![1.0, 1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0]]);
        paint(&sq, &mut m, w, h, 7);
        let want = [0, 0, 0, 0, 0, 7, 7, 0, 0, 7, 7, 0, 0, 0, 0, 0];
        assert_eq!(m, want);
        // Column-major RLE: skip 5 (column 0 and the first pixel of column 1), set 2.
        let mut m = vec![0u8; w * h];
        let rle = Shape::Rle {
            height: 4,
            width: 4,
            counts: vec![5, 2, 9],
        };
        paint(&rle, &mut m, w, h, 1);
        let set: Vec<usize> = (0..16).filter(|&i| m[i] == 1).collect();
        assert_eq!(set, [5, 9]);
        let d = CocoDataset::parse(
            r#"{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 4,
            "iscrowd": 1, "segmentation": {"size": [4, 4], "counts": [5, 2, 9]}}]}"#,
        )
        .expect("parse");
        assert_eq!(d.segments[&1][0].shape, rle);
    }

    #[test]
    fn crowd_iou_uses_detection_area() {
        let g = [0.0, 0.0, 100.0, 100.0];
        assert!((box_iou(&[10.0, 10.0, 10.0, 10.0], &g, true) - 1.0).abs() < 1e-12);
        assert!((box_iou(&[10.0, 10.0, 10.0, 10.0], &g, false) - 0.01).abs() < 1e-12);
        assert_eq!(box_iou(&[200.0, 0.0, 1.0, 1.0], &g, false), 0.0);
    }
}
