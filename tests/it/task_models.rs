//! The built-in task decoders against the reference figures of their MODEL.md files
//! (`../shared/models/*/MODEL.md`), on the uncompressed data of `../shared/data`:
//!
//! - YOLOX-Nano on the 158 COCO images: mAP@[.5:.95] 0.2835, mAP@.5 0.4486 (onnxruntime,
//!   OpenCV decode and resize). icm decodes the JPEGs with the `image` crate and resizes
//!   with its own OpenCV-style bilinear, and measures 0.2886 / 0.4543 (pycocotools gives the
//!   same on its detections); the test allows 0.01. The first image's top boxes must be
//!   MODEL.md's (tv 0.90 at (6, 166, 150, 99), person 0.69 at (427, 164, 41, 131)).
//! - MobileNetV2 on the 250 ImageNet images: top-1 0.908, top-5 0.988 (within 0.012, three
//!   images).
//! - DeepLabV3 on the 158 COCO images against VOC-mapped COCO instance masks (built as
//!   MODEL.md describes): mIoU 0.261 over 21 classes, pixel accuracy 0.835 (within 0.01;
//!   icm measures 0.2622 / 0.8350).
//!
//! Needs ONNX Runtime (scripts/setup_onnxruntime.sh) and ../shared; skipped with a message
//! when either is missing, except under `CI=true`, where that is a failure.

use icm_eval::picture::read_rgb;
use icm_eval::task::coco::{evaluate, CocoDataset, DetBox};
use icm_eval::task::detection::{Yolox, COCO_CATEGORY_IDS};
use icm_eval::task::scoring::{in_top_k, read_imagenet_labels, Confusion};
use icm_eval::task::segmentation::{coco_voc_truth, CLASSES};
use icm_eval::task::{classification::MobileNetV2, segmentation::DeepLabV3, TaskError};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// Loads a decoder, or says why the test cannot run (panicking under CI=true).
fn load<T>(f: impl FnOnce(&Path) -> Result<T, TaskError>, model: &str) -> Option<T> {
    let path = shared().join("models").join(model);
    if !crate::common::with_tasks() {
        return None;
    }
    if !path.is_file() {
        crate::common::cannot_run(&format!("{} not present", path.display()));
        return None;
    }
    match f(&path) {
        Ok(d) => Some(d),
        Err(e) => {
            crate::common::cannot_run(&e.to_string());
            None
        }
    }
}

#[test]
fn yolox_matches_model_md() {
    let Some(mut det) = load(Yolox::load, "yolox_nano/yolox_nano.onnx") else {
        return;
    };
    let coco = shared().join("data/coco");
    let data = CocoDataset::load(&coco.join("annotations/instances_val2017_subset.json"))
        .expect("annotations");
    assert_eq!(data.images.len(), 158);
    let mut all = Vec::new();
    for (id, name) in &data.images {
        let img = read_rgb(&coco.join("val2017").join(name)).expect("image");
        let dets = det.detect(&img).expect("detect");
        if name == "000000000139.jpg" {
            let want = [
                (62usize, 0.90f32, [6.0f32, 166.0, 150.0, 99.0]),
                (0, 0.69, [427.0, 164.0, 41.0, 131.0]),
            ];
            for (k, (class, score, bbox)) in want.iter().enumerate() {
                let d = dets[k];
                assert_eq!(d.class_id, *class, "box {k}: {d:?}");
                assert!((d.score - score).abs() < 0.01, "box {k}: {d:?}");
                for (a, b) in d.bbox.iter().zip(bbox) {
                    assert!((a - b).abs() < 1.0, "box {k}: {d:?}");
                }
            }
        }
        all.extend(dets.iter().map(|d| DetBox {
            image_id: *id,
            category_id: COCO_CATEGORY_IDS[d.class_id],
            bbox: d.bbox.map(f64::from),
            score: f64::from(d.score),
        }));
    }
    let ids: Vec<u64> = data.images.iter().map(|i| i.0).collect();
    let s = evaluate(&data, &ids, &all);
    println!("YOLOX-Nano: mAP {:.4}, mAP50 {:.4}", s.map, s.map50);
    assert!((s.map - 0.2835).abs() < 0.01, "{s:?}");
    assert!((s.map50 - 0.4486).abs() < 0.01, "{s:?}");
}

#[test]
fn mobilenet_matches_model_md() {
    let Some(mut cls) = load(
        MobileNetV2::load,
        "classification/mobilenet_v2_1.0_224_quant.onnx",
    ) else {
        return;
    };
    let dir = shared().join("data/imagenet-val-sample");
    let labels = read_imagenet_labels(&dir.join("labels.csv")).expect("labels");
    assert_eq!(labels.len(), 250);
    let (mut top1, mut top5) = (0usize, 0usize);
    let mut files: Vec<_> = labels.iter().collect();
    files.sort();
    for (file, &class) in files {
        let img = read_rgb(&dir.join(file)).expect("image");
        let s = cls.classify(&img).expect("classify");
        top1 += usize::from(in_top_k(&s, class, 1));
        top5 += usize::from(in_top_k(&s, class, 5));
    }
    let (t1, t5) = (top1 as f64 / 250.0, top5 as f64 / 250.0);
    println!("MobileNetV2: top-1 {t1:.3}, top-5 {t5:.3}");
    assert!((t1 - 0.908).abs() <= 0.012, "top-1 {t1}");
    assert!((t5 - 0.988).abs() <= 0.012, "top-5 {t5}");
}

#[test]
fn deeplab_matches_model_md() {
    let Some(mut seg) = load(
        DeepLabV3::load,
        "segmentation/deeplabv3_mnv2_pascal_257.onnx",
    ) else {
        return;
    };
    let coco = shared().join("data/coco");
    let data = CocoDataset::load(&coco.join("annotations/instances_val2017_subset.json"))
        .expect("annotations");
    let mut conf = Confusion::new(CLASSES);
    for (id, name) in &data.images {
        let img = read_rgb(&coco.join("val2017").join(name)).expect("image");
        let m = seg.segment(&img).expect("segment");
        assert_eq!((m.width, m.height), (img.width, img.height));
        let segs = data.segments.get(id).map_or(&[][..], Vec::as_slice);
        conf.add(&coco_voc_truth(segs, img.width, img.height), &m.labels);
    }
    let (miou, acc) = (conf.mean_iou(), conf.pixel_accuracy());
    println!("DeepLabV3: mIoU {miou:.4}, pixel accuracy {acc:.4}");
    assert!((miou - 0.261).abs() < 0.01, "mIoU {miou}");
    assert!((acc - 0.835).abs() < 0.01, "pixel accuracy {acc}");
}
