//! The model and picture the codec benchmarks run on.

use icm::codec::RgbImage;
use icm::model::{build_model_file, random_float_export, BuildOptions, Model};
use std::path::Path;

/// The zoo model of `quality` when `models/` has it, else a seeded model of the same
/// architecture (speed does not depend on the weight values; only the entropy-coding share
/// changes a little).
pub fn load_model(quality: u8) -> Model {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let zoo = root.join(format!("models/icm-psnr-q{quality}.safetensors"));
    if let Ok(m) = Model::from_path(&zoo) {
        eprintln!("bench model: {}", m.name);
        return m;
    }
    eprintln!("bench model: seeded (no zoo model found)");
    let export = random_float_export(3, (96, 192, [128, 96, 64]));
    let opts = BuildOptions {
        name: "bench-seed3".into(),
        ..Default::default()
    };
    let bytes = build_model_file(&export, &opts).expect("seeded model builds");
    Model::from_bytes(&bytes).expect("seeded model loads")
}

/// Kodak picture `name` (e.g. `kodim01`) when `../shared` is present, else a synthetic
/// 768x512 picture.
pub fn load_image(name: &str) -> RgbImage {
    let kodak =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/data/kodak/{name}.png"));
    if let Ok(img) = image::open(&kodak) {
        let rgb = img.to_rgb8();
        return RgbImage {
            width: rgb.width(),
            height: rgb.height(),
            data: rgb.into_raw(),
        };
    }
    icm::testimage::synthetic(768, 512, 1)
}
