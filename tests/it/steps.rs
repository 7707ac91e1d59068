//! Step maps (spec 1.3: 4.6, 5.4, 9.4, 10, 12.7): steps coarsen and refine the same model,
//! rate control meets its target, the continuous quality sits between the zoo's models, and
//! a step field spends the bits where it says.

use crate::common::{icm, ok, root};
use icm::codec::{decode, encode, EncodeOptions, RateControl, RgbImage, StepField, StepMap, Steps};
use icm::container;
use icm::testimage::synthetic;

fn zoo(q: u8) -> icm::model::Model {
    icm::model::Model::from_path(&root().join(format!("models/icm-psnr-q{q}.safetensors")))
        .expect("zoo model")
}

fn with_steps(steps: Steps) -> EncodeOptions {
    EncodeOptions {
        steps,
        ..EncodeOptions::default()
    }
}

/// Sum of squared errors over the pixels with `x` in `xs`.
fn sse(a: &RgbImage, b: &RgbImage, xs: std::ops::Range<u32>) -> f64 {
    let mut s = 0.0;
    for y in 0..a.height {
        for x in xs.clone() {
            for c in 0..3 {
                let i = ((y * a.width + x) * 3 + c) as usize;
                s += (f64::from(a.data[i]) - f64::from(b.data[i])).powi(2);
            }
        }
    }
    s
}

#[test]
fn coarser_steps_cost_fewer_bits_and_more_error() {
    let img = synthetic(160, 96, 41);
    let model = zoo(3);
    let mut last: Option<(usize, f64)> = None;
    for d in [192u16, 256, 384, 640] {
        let bytes = encode(&img, &model, &with_steps(Steps::Uniform(d))).expect("encode");
        let stream = container::parse(&bytes).expect("parse");
        // a step of 1 writes no STEP chunk and stays a 1.1 stream
        assert_eq!(stream.tiles[0].steps.is_some(), d != 256);
        assert_eq!(stream.header.minor, if d == 256 { 1 } else { 3 });
        let decoded = decode(&bytes, &model).expect("decode");
        let err = sse(&img, &decoded.image, 0..img.width);
        if let Some((size, e)) = last {
            assert!(
                bytes.len() < size,
                "step {d}: {} >= {size} bytes",
                bytes.len()
            );
            assert!(err > e, "step {d}: error {err} <= {e}");
        }
        last = Some((bytes.len(), err));
    }
}

#[test]
fn decoded_latents_are_multiples_of_the_step_from_the_mean() {
    let img = synthetic(64, 64, 3);
    let model = zoo(1);
    let plain = encode(&img, &model, &EncodeOptions::default()).expect("encode");
    let stepped = encode(&img, &model, &with_steps(Steps::Uniform(640))).expect("encode");
    let (a, b) = (
        decode(&plain, &model).expect("decode"),
        decode(&stepped, &model).expect("decode"),
    );
    // z^ does not depend on the steps: same means; y^ - mu is q * 256 and q * 640.
    assert_eq!(a.latents.tiles[0].z, b.latents.tiles[0].z);
    let t = &a.latents.tiles[0];
    let (_, hz, wz) = t.z_shape;
    let hs = model.h_s.run(&t.z, hz, wz).expect("h_s");
    for ((&ya, &yb), &mu) in t.y.iter().zip(&b.latents.tiles[0].y).zip(&hs.mean) {
        assert_eq!((ya - mu) % 256, 0);
        assert_eq!((yb - mu) % 640, 0);
    }
}

#[test]
fn a_step_field_spends_bits_where_its_steps_are_fine() {
    // Left half step 4, right half step 1, and the mirror: the fine half has less error.
    let img = synthetic(128, 64, 12);
    let model = zoo(2);
    let field = |left: u16, right: u16| {
        Steps::Field(StepField {
            cols: 8,
            rows: 4,
            steps: (0..32)
                .map(|p| if p % 8 < 4 { left } else { right })
                .collect(),
            block_log2: 0,
        })
    };
    let errors = |steps| {
        let bytes = encode(&img, &model, &with_steps(steps)).expect("encode");
        let d = decode(&bytes, &model).expect("decode");
        (sse(&img, &d.image, 0..64), sse(&img, &d.image, 64..128))
    };
    let (l1, r1) = errors(field(1024, 256));
    let (l2, r2) = errors(field(256, 1024));
    assert!(l1 > l2 && r1 < r2, "{l1} {r1} / {l2} {r2}");
    // a field of the wrong size is refused
    let bad = Steps::Field(StepField {
        cols: 4,
        rows: 4,
        steps: vec![256; 16],
        block_log2: 0,
    });
    assert!(encode(&img, &model, &with_steps(bad)).is_err());
}

#[test]
fn rate_control_meets_its_target_from_below() {
    let img = synthetic(192, 128, 77);
    let models: Vec<_> = (1..=6).map(zoo).collect();
    let opts = EncodeOptions::default();
    let sizes: Vec<usize> = models
        .iter()
        .map(|m| encode(&img, m, &opts).expect("encode").len())
        .collect();
    for target in [
        sizes[0] * 2 / 3,
        (sizes[1] + sizes[2]) / 2,
        sizes[4] + 10,
        sizes[5] * 5 / 4,
    ] {
        let mut rc = RateControl::new(&img, models.iter().collect(), &opts);
        let (bytes, choice) = rc.encode_to_size(target, &|_, _| {}).expect("rate control");
        assert_eq!(bytes.len(), choice.bytes);
        assert!(bytes.len() <= target, "{} > {target}", bytes.len());
        assert!(
            bytes.len() as f64 >= 0.97 * target as f64,
            "{} well below {target}",
            bytes.len()
        );
        // the model: the lowest whose step-1 stream reaches the target
        let want = sizes.iter().position(|&s| s >= target).unwrap_or(5);
        assert_eq!(choice.model, want, "target {target}, sizes {sizes:?}");
        decode(&bytes, &models[choice.model]).expect("decodes");
    }
    let mut rc = RateControl::new(&img, models.iter().collect(), &opts);
    let e = rc.encode_to_size(100, &|_, _| {}).expect_err("too small");
    assert!(e.to_string().contains("cannot reach 100 bytes"), "{e}");
}

#[test]
fn fractional_qualities_lie_between_the_zoo_models() {
    let img = synthetic(128, 128, 5);
    let models: Vec<_> = (1..=6).map(zoo).collect();
    let opts = EncodeOptions::default();
    let size = |q: f64| {
        let mut rc = RateControl::new(&img, models.iter().collect(), &opts);
        rc.encode_at_quality(q, &|_, _| {})
            .expect("quality")
            .0
            .len()
    };
    let (s2, s25, s3) = (size(2.0), size(2.5), size(3.0));
    assert_eq!(s2, encode(&img, &models[1], &opts).expect("q2").len());
    assert!(s2 < s25 && s25 < s3, "{s2} {s25} {s3}");
    let mid = (s2 as f64 * s3 as f64).sqrt();
    assert!((s25 as f64 - mid).abs() < 0.03 * mid, "{s25} vs {mid}");
    let mut rc = RateControl::new(&img, models.iter().collect(), &opts);
    assert!(rc.encode_at_quality(6.5, &|_, _| {}).is_err());
}

#[test]
fn the_search_runs_with_steps() {
    let img = synthetic(64, 64, 9);
    let model = zoo(1);
    let opts = EncodeOptions {
        effort: 1,
        steps: Steps::Uniform(512),
        ..EncodeOptions::default()
    };
    let bytes = encode(&img, &model, &opts).expect("encode");
    let stream = container::parse(&bytes).expect("parse");
    let chunk = stream.tiles[0].steps.as_ref().expect("a STEP chunk");
    let map = StepMap::decode(chunk, 4, 4).expect("map");
    assert_eq!(map.palette(), &[512]);
    decode(&bytes, &model).expect("decode");
    // rate control at effort 1 never exceeds its target either
    let target = bytes.len() * 4 / 5;
    let mut rc = RateControl::new(&img, vec![&model], &opts);
    let (coded, choice) = rc.encode_to_size(target, &|_, _| {}).expect("rate control");
    assert!(coded.len() <= target && choice.bytes == coded.len());
}

#[test]
fn cli_rate_control_and_quality() {
    let dir = crate::common::fresh_dir("steps-cli");
    let png = dir.join("in.png");
    let img = synthetic(192, 128, 8);
    image::save_buffer(&png, &img.data, 192, 128, image::ColorType::Rgb8).expect("png");
    let out = dir.join("out.icm");
    let (p, o) = (png.to_str().expect("path"), out.to_str().expect("path"));
    let text = ok(
        &icm(&["encode", p, "-o", o, "--bpp", "0.5"], &[]),
        "encode --bpp",
    );
    assert!(text.contains("target 1536 bytes"), "{text}");
    assert!(std::fs::metadata(&out).expect("stream").len() <= 1536);
    ok(&icm(&["decode", o, "--hash"], &[]), "decode");
    let text = ok(
        &icm(&["encode", p, "-o", o, "-q", "2.5"], &[]),
        "encode -q 2.5",
    );
    assert!(text.contains("model icm-psnr-q3, step"), "{text}");
    let text = ok(
        &icm(&["encode", p, "-o", o, "--step", "2"], &[]),
        "encode --step",
    );
    assert!(text.contains("step 2"), "{text}");
    let bad = icm(&["encode", p, "-o", o, "--bpp", "0.5", "--step", "2"], &[]);
    assert!(!bad.status.success());
    let bad = icm(&["encode", p, "-o", o, "-q", "7"], &[]);
    assert!(!bad.status.success());
}

#[test]
fn cli_roi_map_and_task() {
    let dir = crate::common::fresh_dir("steps-roi");
    let png = dir.join("in.png");
    let img = synthetic(192, 128, 8);
    image::save_buffer(&png, &img.data, 192, 128, image::ColorType::Rgb8).expect("png");
    // left half important
    let map = dir.join("map.png");
    let grey: Vec<u8> = (0..8 * 4)
        .map(|p| if p % 8 < 4 { 255 } else { 0 })
        .collect();
    image::save_buffer(&map, &grey, 8, 4, image::ColorType::L8).expect("map");
    let out = dir.join("out.icm");
    let (p, o, m) = (
        png.to_str().expect("path"),
        out.to_str().expect("path"),
        map.to_str().expect("path"),
    );
    let text = ok(
        &icm(&["encode", p, "-o", o, "-q", "2", "--roi-map", m], &[]),
        "encode --roi-map",
    );
    assert!(text.contains("importance >= 0.5 on 50.0 %"), "{text}");
    let bytes = std::fs::read(&out).expect("stream");
    let stream = container::parse(&bytes).expect("parse");
    let chunk = stream.tiles[0].steps.as_ref().expect("a STEP chunk");
    let steps = StepMap::decode(chunk, 8, 12).expect("map").steps(8, 12);
    assert_eq!(steps[0], 256);
    assert_eq!(steps[11], 768);
    if !crate::common::with_tasks() || !crate::common::onnx_runtime() {
        return;
    }
    let Some(coco) = crate::common::shared("data/coco/val2017") else {
        return crate::common::cannot_run("no ../shared/data/coco");
    };
    let mut pictures: Vec<_> = std::fs::read_dir(&coco)
        .expect("coco")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    pictures.sort();
    let pic = pictures[0].to_str().expect("path");
    let text = ok(
        &icm(
            &["encode", pic, "-o", o, "-q", "1", "--roi", "detection"],
            &[],
        ),
        "encode --roi detection",
    );
    assert!(
        text.contains("--roi detection: importance >= 0.5 on"),
        "{text}"
    );
    let roi_size = std::fs::metadata(&out).expect("stream").len();
    ok(&icm(&["encode", pic, "-o", o, "-q", "1"], &[]), "encode");
    let plain_size = std::fs::metadata(&out).expect("stream").len();
    assert!(roi_size < plain_size, "{roi_size} >= {plain_size}");
    let bad = icm(&["encode", pic, "-o", o, "--roi", "captioning"], &[]);
    assert!(!bad.status.success());
}

#[test]
fn task_eval_rate_points_with_steps_and_roi() {
    let Some(coco) = crate::common::shared("data/coco") else {
        return;
    };
    let coco = coco.to_str().expect("path");
    let bad = icm(
        &[
            "task-eval",
            "--task",
            "detection",
            "--dataset",
            coco,
            "--codec",
            "none",
            "--roi",
            "detection",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--roi needs --codec icm"));
    if !crate::common::with_tasks() || !crate::common::onnx_runtime() {
        return;
    }
    let dir = crate::common::fresh_dir("steps-task-eval");
    let csv = dir.join("det.csv");
    ok(
        &icm(
            &[
                "task-eval",
                "--task",
                "detection",
                "--dataset",
                coco,
                "--limit",
                "3",
                "--qualities",
                "1@2,1",
                "--roi",
                "detection",
                "--csv",
                csv.to_str().expect("path"),
            ],
            &[],
        ),
        "task-eval --roi",
    );
    let text = std::fs::read_to_string(&csv).expect("csv");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].contains("icm-psnr-q1+roi-detection-g3@2"), "{text}");
    assert!(rows[1].contains("icm-psnr-q1+roi-detection-g3,"), "{text}");
    let bpp = |row: &str| -> f64 { row.split(',').nth(4).expect("bpp").parse().expect("f64") };
    assert!(bpp(rows[0]) < bpp(rows[1]), "{text}");
}
