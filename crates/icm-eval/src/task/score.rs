//! Running scores of one rate point of a task evaluation, and the columns they end in.

use super::coco::{self, CocoDataset, DetBox};
use super::dataset::Item;
use super::detection::COCO_CATEGORY_IDS;
use super::scoring::{in_top_k, Confusion};
use super::{segmentation, TaskError, TaskKind, TaskOutput};
use serde::{Deserialize, Serialize};

/// The scores of one task network at one rate point, summed over pictures.
///
/// A score serialises (the records of a distributed evaluation, [`super::evaluate::Record`])
/// with its floats as their bit patterns, so that a score read back is the one written,
/// bit for bit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "ScoreRecord", try_from = "ScoreRecord")]
pub enum Score {
    /// Every detection, for COCOeval at the end.
    Detection(Vec<DetBox>),
    /// Top-1 and top-5 hits out of `n`.
    Classification {
        /// Pictures whose class is the best score.
        top1: usize,
        /// Pictures whose class is among the five best.
        top5: usize,
        /// Pictures.
        n: usize,
    },
    /// Confusion matrices.
    Segmentation {
        /// Against VOC-mapped COCO masks, when the dataset has annotations.
        truth: Option<Confusion>,
        /// Against the prediction on the uncompressed picture (compressed codecs).
        agreement: Option<Confusion>,
    },
}

impl Score {
    /// An empty score of `task`; segmentation keeps the confusion matrices asked for.
    pub fn new(task: TaskKind, with_truth: bool, with_agreement: bool) -> Self {
        match task {
            TaskKind::Detection => Self::Detection(Vec::new()),
            TaskKind::Classification => Self::Classification {
                top1: 0,
                top5: 0,
                n: 0,
            },
            TaskKind::Segmentation => {
                let c = || Confusion::new(segmentation::CLASSES);
                Self::Segmentation {
                    truth: with_truth.then(c),
                    agreement: with_agreement.then(c),
                }
            }
        }
    }

    /// Adds one picture's result. `reference` is the segmentation of the uncompressed
    /// picture (the agreement target), `truth_map` the VOC-mapped COCO masks; `network`
    /// names the decoder in errors.
    pub fn add(
        &mut self,
        item: &Item,
        out: TaskOutput,
        reference: Option<&[u8]>,
        truth_map: Option<&[u8]>,
        network: &str,
    ) -> Result<(), TaskError> {
        match (self, out) {
            (Self::Detection(all), TaskOutput::Detections(dets)) => {
                for d in dets {
                    let Some(&category_id) = COCO_CATEGORY_IDS.get(d.class_id) else {
                        continue;
                    };
                    all.push(DetBox {
                        image_id: item.image_id,
                        category_id,
                        bbox: d.bbox.map(f64::from),
                        score: f64::from(d.score),
                    });
                }
            }
            (Self::Classification { top1, top5, n }, TaskOutput::ClassScores(s)) => {
                *n += 1;
                *top1 += usize::from(in_top_k(&s, item.class, 1));
                *top5 += usize::from(in_top_k(&s, item.class, 5));
            }
            (Self::Segmentation { truth, agreement }, TaskOutput::SegmentationMap(m)) => {
                if let (Some(conf), Some(t)) = (truth.as_mut(), truth_map) {
                    conf.add(t, &m.labels);
                }
                if let (Some(conf), Some(r)) = (agreement.as_mut(), reference) {
                    conf.add(r, &m.labels);
                }
            }
            _ => {
                return Err(TaskError::Output {
                    model: network.to_string(),
                    why: "result of another task".into(),
                })
            }
        }
        Ok(())
    }

    /// Adds the scores of `other`, the same task's score of other pictures: the
    /// detections appended in order, the counts and confusion matrices summed. Scoring
    /// pictures apart and merging them in order gives the score of scoring them in one
    /// pass, exactly (COCOeval then runs once on all detections).
    pub fn merge(&mut self, other: Score) -> Result<(), TaskError> {
        let mismatch = || TaskError::Records {
            why: "scores of different tasks or settings cannot be merged".into(),
        };
        match (self, other) {
            (Self::Detection(all), Self::Detection(more)) => all.extend(more),
            (
                Self::Classification { top1, top5, n },
                Self::Classification {
                    top1: t1,
                    top5: t5,
                    n: m,
                },
            ) => {
                *top1 += t1;
                *top5 += t5;
                *n += m;
            }
            (
                Self::Segmentation { truth, agreement },
                Self::Segmentation {
                    truth: t,
                    agreement: a,
                },
            ) => {
                for (mine, theirs) in [(truth, t), (agreement, a)] {
                    let merged = match (mine, theirs) {
                        (Some(m), Some(t)) => m.merge(&t),
                        (None, None) => true,
                        _ => false,
                    };
                    if !merged {
                        return Err(mismatch());
                    }
                }
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// `(column, value)` of the finished score: `map`, `map50` (COCOeval over `ids`),
    /// `top1`, `top5`, or `miou`, `pixel_accuracy`, `miou_agreement`, `pixel_agreement`.
    pub fn columns(&self, coco: Option<&CocoDataset>, ids: &[u64]) -> Vec<(&'static str, f64)> {
        match self {
            Self::Detection(dets) => {
                let s = coco.map(|c| coco::evaluate(c, ids, dets));
                vec![
                    ("map", s.map_or(f64::NAN, |s| s.map)),
                    ("map50", s.map_or(f64::NAN, |s| s.map50)),
                ]
            }
            Self::Classification { top1, top5, n } => {
                let n = (*n).max(1) as f64;
                vec![("top1", *top1 as f64 / n), ("top5", *top5 as f64 / n)]
            }
            Self::Segmentation { truth, agreement } => {
                let mut v = Vec::new();
                if let Some(c) = truth {
                    v.push(("miou", c.mean_iou()));
                    v.push(("pixel_accuracy", c.pixel_accuracy()));
                }
                if let Some(c) = agreement {
                    v.push(("miou_agreement", c.mean_iou()));
                    v.push(("pixel_agreement", c.pixel_accuracy()));
                }
                v
            }
        }
    }
}

/// A detection with its floats as bit patterns: `(image_id, category_id, bbox, score)`.
type DetBits = (u64, u32, [u64; 4], u64);

/// The serialised form of a [`Score`].
#[derive(Serialize, Deserialize)]
enum ScoreRecord {
    Detection(Vec<DetBits>),
    Classification {
        top1: usize,
        top5: usize,
        n: usize,
    },
    Segmentation {
        truth: Option<Vec<u64>>,
        agreement: Option<Vec<u64>>,
    },
}

impl From<Score> for ScoreRecord {
    fn from(s: Score) -> Self {
        match s {
            Score::Detection(d) => Self::Detection(
                d.iter()
                    .map(|d| {
                        (
                            d.image_id,
                            d.category_id,
                            d.bbox.map(f64::to_bits),
                            d.score.to_bits(),
                        )
                    })
                    .collect(),
            ),
            Score::Classification { top1, top5, n } => Self::Classification { top1, top5, n },
            Score::Segmentation { truth, agreement } => Self::Segmentation {
                truth: truth.map(|c| c.counts().to_vec()),
                agreement: agreement.map(|c| c.counts().to_vec()),
            },
        }
    }
}

impl TryFrom<ScoreRecord> for Score {
    type Error = String;
    fn try_from(r: ScoreRecord) -> Result<Self, String> {
        let matrix = |c: Option<Vec<u64>>| {
            c.map(|c| {
                Confusion::from_counts(segmentation::CLASSES, c)
                    .ok_or_else(|| "a confusion matrix of another size".to_string())
            })
            .transpose()
        };
        Ok(match r {
            ScoreRecord::Detection(d) => Self::Detection(
                d.into_iter()
                    .map(|(image_id, category_id, bbox, score)| DetBox {
                        image_id,
                        category_id,
                        bbox: bbox.map(f64::from_bits),
                        score: f64::from_bits(score),
                    })
                    .collect(),
            ),
            ScoreRecord::Classification { top1, top5, n } => Self::Classification { top1, top5, n },
            ScoreRecord::Segmentation { truth, agreement } => Self::Segmentation {
                truth: matrix(truth)?,
                agreement: matrix(agreement)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_counts_and_refuses_other_outputs() {
        let item = Item {
            path: "a.png".into(),
            image_id: 0,
            class: 2,
        };
        let mut s = Score::new(TaskKind::Classification, false, false);
        let scores = vec![0.1, 0.2, 0.5, 0.3, 0.0, 0.0, 0.0];
        s.add(&item, TaskOutput::ClassScores(scores), None, None, "net")
            .expect("add");
        let wrong = vec![0.9, 0.05, 0.0, 0.01, 0.02, 0.03, 0.04];
        s.add(&item, TaskOutput::ClassScores(wrong), None, None, "net")
            .expect("add");
        assert_eq!(s.columns(None, &[]), vec![("top1", 0.5), ("top5", 0.5)]);
        let e = s
            .add(&item, TaskOutput::Detections(Vec::new()), None, None, "net")
            .expect_err("detections given to a classification score");
        assert!(e.to_string().contains("net"), "{e}");
    }

    #[test]
    fn merged_and_serialised_scores_equal_one_pass() {
        let det = |id: u64, score: f32| DetBox {
            image_id: id,
            category_id: 1,
            bbox: [0.1, 0.2, 10.3, f64::from(score)],
            score: f64::from(score),
        };
        let mut a = Score::Detection(vec![det(1, 0.3)]);
        let b = Score::Detection(vec![det(2, 0.7), det(2, 0.123_456_79)]);
        let back: Score =
            serde_json::from_str(&serde_json::to_string(&b).expect("json")).expect("back");
        a.merge(back).expect("merge");
        let Score::Detection(all) = &a else {
            panic!("not detections");
        };
        assert_eq!(all, &vec![det(1, 0.3), det(2, 0.7), det(2, 0.123_456_79)]);
        let mut s = Score::new(TaskKind::Segmentation, true, false);
        let mut t = Score::new(TaskKind::Segmentation, true, false);
        let Score::Segmentation { truth: Some(c), .. } = &mut t else {
            panic!("no matrix");
        };
        c.add(&[1, 2, 2], &[1, 2, 0]);
        let t: Score = serde_json::from_str(&serde_json::to_string(&t).expect("json")).expect("b");
        s.merge(t.clone()).expect("merge");
        s.merge(t).expect("merge");
        assert!((s.columns(None, &[])[1].1 - 2.0 / 3.0).abs() < 1e-12);
        let e = s
            .merge(Score::new(TaskKind::Classification, false, false))
            .expect_err("other task");
        assert!(e.to_string().contains("merged"), "{e}");
        assert!(s
            .merge(Score::new(TaskKind::Segmentation, false, true))
            .is_err());
    }
}
