//! Scores of the classification and segmentation tasks.

use super::TaskError;
use std::collections::HashMap;
use std::path::Path;

/// Whether `label` is among the `k` highest of `scores` (ties broken by lower index first,
/// as a stable descending sort would).
pub fn in_top_k(scores: &[f32], label: usize, k: usize) -> bool {
    let Some(&s) = scores.get(label) else {
        return false;
    };
    // Classes ranked before `label`: strictly higher, or equal with a lower index.
    let better = scores
        .iter()
        .enumerate()
        .filter(|&(i, &v)| v > s || (v == s && i < label))
        .count();
    better < k
}

/// `labels.csv` of an ImageNet sample: `file,class_index,...` with a header row.
pub fn read_imagenet_labels(path: &Path) -> Result<HashMap<String, usize>, TaskError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Io {
        path: shown.clone(),
        source,
    })?;
    let bad = |why: String| TaskError::Dataset {
        path: shown.clone(),
        why,
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| bad("empty file".into()))?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let file_col = cols
        .iter()
        .position(|c| *c == "file")
        .ok_or_else(|| bad("no `file` column".into()))?;
    let class_col = cols
        .iter()
        .position(|c| *c == "class_index")
        .ok_or_else(|| bad("no `class_index` column".into()))?;
    let mut out = HashMap::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let (Some(file), Some(class)) = (f.get(file_col), f.get(class_col)) else {
            return Err(bad(format!("line {}: too few fields", n + 1)));
        };
        let class = class
            .trim()
            .parse::<usize>()
            .map_err(|_| bad(format!("line {}: class_index {class:?}", n + 1)))?;
        out.insert(file.trim().to_string(), class);
    }
    Ok(out)
}

/// A confusion matrix over `classes` labels, for mean IoU.
#[derive(Debug, Clone)]
pub struct Confusion {
    classes: usize,
    /// `[truth * classes + prediction]` pixel counts.
    counts: Vec<u64>,
}

impl Confusion {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds a pair of maps of equal size; truth values `>= classes` (e.g. VOC's 255) are
    /// ignored.
    pub fn add(&mut self, truth: &[u8], prediction: &[u8]) {
        for (&t, &p) in truth.iter().zip(prediction) {
            let (t, p) = (t as usize, p as usize);
            if t < self.classes && p < self.classes {
                self.counts[t * self.classes + p] += 1;
            }
        }
    }

    /// The pixel counts, `[truth * classes + prediction]`.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// A matrix of `classes` labels from its counts (as [`Self::counts`] gives them), or
    /// `None` when there are not `classes * classes` of them.
    pub fn from_counts(classes: usize, counts: Vec<u64>) -> Option<Self> {
        (counts.len() == classes * classes).then_some(Self { classes, counts })
    }

    /// Adds the counts of `other`, a matrix of the same classes (pictures scored apart,
    /// then summed: the same counts as scoring them into one matrix). `false`, and
    /// nothing added, when the classes differ.
    pub fn merge(&mut self, other: &Self) -> bool {
        if other.classes != self.classes {
            return false;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        true
    }

    /// IoU per class, `None` for classes absent from both truth and prediction.
    pub fn ious(&self) -> Vec<Option<f64>> {
        let n = self.classes;
        (0..n)
            .map(|c| {
                let tp = self.counts[c * n + c];
                let truth: u64 = self.counts[c * n..(c + 1) * n].iter().sum();
                let pred: u64 = (0..n).map(|t| self.counts[t * n + c]).sum();
                let union = truth + pred - tp;
                (union > 0).then(|| tp as f64 / union as f64)
            })
            .collect()
    }

    /// Mean IoU over the classes present in truth or prediction.
    pub fn mean_iou(&self) -> f64 {
        let ious: Vec<f64> = self.ious().into_iter().flatten().collect();
        if ious.is_empty() {
            return f64::NAN;
        }
        ious.iter().sum::<f64>() / ious.len() as f64
    }

    /// Fraction of counted pixels on the diagonal.
    pub fn pixel_accuracy(&self) -> f64 {
        let n = self.classes;
        let all: u64 = self.counts.iter().sum();
        let diag: u64 = (0..n).map(|c| self.counts[c * n + c]).sum();
        if all == 0 {
            f64::NAN
        } else {
            diag as f64 / all as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_with_ties() {
        let s = [0.1, 0.5, 0.5, 0.2];
        assert!(in_top_k(&s, 1, 1));
        assert!(!in_top_k(&s, 2, 1));
        assert!(in_top_k(&s, 2, 2));
        assert!(!in_top_k(&s, 0, 3));
        assert!(in_top_k(&s, 0, 4));
        assert!(!in_top_k(&s, 9, 5));
    }

    #[test]
    fn miou_of_known_maps() {
        let mut c = Confusion::new(3);
        // truth 0 0 1 1, prediction 0 1 1 1, one ignored pixel.
        c.add(&[0, 0, 1, 1, 255], &[0, 1, 1, 1, 2]);
        let ious = c.ious();
        assert_eq!(ious[0], Some(0.5));
        assert!((ious[1].unwrap_or(0.0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(ious[2], None);
        assert!((c.mean_iou() - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((c.pixel_accuracy() - 0.75).abs() < 1e-12);
    }
}
