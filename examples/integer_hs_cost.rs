//! What the integer hyper-synthesis costs in rate (spec 12.2): for every image, the ideal
//! code length of y with the integer h_s the decoder runs, against the same tables driven
//! by the float h_s of the float export. z costs the same in both.
//!
//! `cargo run --release --example integer_hs_cost -- FLOAT.safetensors MODEL.safetensors DIR`

use icm::codec::RgbImage;
use icm::model::{float_hyper_synthesis, Model};
use icm::transform::Tensor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: integer_hs_cost FLOAT.safetensors MODEL.safetensors IMAGE_DIR".into());
    }
    let hs_float = float_hyper_synthesis(&std::fs::read(&args[1])?)?;
    let model = Model::from_path(std::path::Path::new(&args[2]))?;
    let g_a = model.g_a.as_ref().ok_or("model has no g_a")?;
    let h_a = model.h_a.as_ref().ok_or("model has no h_a")?;
    let mut files: Vec<_> = std::fs::read_dir(&args[3])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    let thresholds = &model.h_s.scale_thresholds;
    let (mut sum_int, mut sum_float, mut sum_z) = (0.0, 0.0, 0.0);
    for path in &files {
        let rgb = image::open(path)?.to_rgb8();
        let img = RgbImage {
            width: rgb.width(),
            height: rgb.height(),
            data: rgb.into_raw(),
        };
        let (w, h) = (img.width as usize, img.height as usize);
        let (pw, ph) = (w.div_ceil(64) * 64, h.div_ceil(64) * 64);
        let mut x = Tensor::zeros(3, ph, pw);
        for yy in 0..ph {
            for xx in 0..pw {
                for c in 0..3 {
                    x.data[(c * ph + yy) * pw + xx] =
                        f32::from(img.data[(yy.min(h - 1) * w + xx.min(w - 1)) * 3 + c]) / 255.0;
                }
            }
        }
        let y = g_a.forward(&x)?;
        let z = h_a.forward(&y)?;
        let z_hat: Vec<i32> = z.data.iter().map(|v| v.round() as i32).collect();
        let plane_z = z.h * z.w;
        let mut z_bits = 0.0;
        for (c, (off, t)) in model.z_tables.iter().enumerate() {
            for &v in &z_hat[c * plane_z..(c + 1) * plane_z] {
                let s = v - off;
                z_bits += if s >= 0 && (s as usize) + 1 < t.len() {
                    t.bits(s as usize)
                } else {
                    t.bits(t.len() - 1) + 21.0
                };
            }
        }
        let bits = |scale_fx: &dyn Fn(usize) -> f64, mean: &dyn Fn(usize) -> f64| -> f64 {
            let mut b = 0.0;
            for (i, &v) in y.data.iter().enumerate() {
                let idx = thresholds.partition_point(|&t| f64::from(t) < scale_fx(i));
                let (off, t) = &model.y_tables[idx];
                let q = (f64::from(v) - mean(i)).round() as i64 - i64::from(*off);
                b += if q >= 0 && (q as usize) + 1 < t.len() {
                    t.bits(q as usize)
                } else {
                    t.bits(t.len() - 1) + 21.0
                };
            }
            b
        };
        let hs = model.h_s.run(&z_hat, z.h, z.w)?;
        let m = hs.channels;
        // Integer path: the scale index is already known; reuse it through its threshold.
        let int_bits = {
            let mut b = 0.0;
            for (i, &v) in y.data.iter().enumerate() {
                let (off, t) = &model.y_tables[usize::from(hs.scale_index[i])];
                let q =
                    (f64::from(v) - f64::from(hs.mean[i]) / 256.0).round() as i64 - i64::from(*off);
                b += if q >= 0 && (q as usize) + 1 < t.len() {
                    t.bits(q as usize)
                } else {
                    t.bits(t.len() - 1) + 21.0
                };
            }
            b
        };
        let zf = Tensor::new(
            z.c,
            z.h,
            z.w,
            z_hat.iter().map(|&v| v.clamp(-128, 127) as f32).collect(),
        )?;
        let p = hs_float.forward(&zf)?;
        let plane = p.h * p.w;
        let float_bits = bits(
            &|i| f64::from(p.data[(i / plane) * plane + i % plane]) * 256.0,
            &|i| f64::from(p.data[(m + i / plane) * plane + i % plane]),
        );
        let px = (w * h) as f64;
        println!(
            "{}: y bpp integer {:.4} float {:.4} ({:+.2}%), z bpp {:.4}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            int_bits / px,
            float_bits / px,
            (int_bits / float_bits - 1.0) * 100.0,
            z_bits / px
        );
        sum_int += int_bits / px;
        sum_float += float_bits / px;
        sum_z += z_bits / px;
    }
    let n = files.len().max(1) as f64;
    println!(
        "mean over {} images: total bpp with integer h_s {:.4}, with float h_s {:.4}: integer path costs {:+.2}%",
        files.len(),
        (sum_int + sum_z) / n,
        (sum_float + sum_z) / n,
        ((sum_int + sum_z) / (sum_float + sum_z) - 1.0) * 100.0
    );
    Ok(())
}
