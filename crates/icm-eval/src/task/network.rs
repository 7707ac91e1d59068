//! The built-in network of each task and input domain.
//!
//! | task           | rgb          | dct192, dct24      | latents            |
//! |----------------|--------------|--------------------|--------------------|
//! | detection      | YOLOX-Nano   | -                  | [`LatentYolox`]    |
//! | classification | MobileNetV2  | [`DctMobileNetV2`] | [`LatentMobileNetV2`] |
//! | segmentation   | DeepLabV3    | -                  | -                  |

use super::dct::{resolve_dct_model, DctMobileNetV2};
use super::domain::InputDomain;
use super::latent::{resolve_latent_model, LatentMobileNetV2, CLASSIFIER_FILE};
use super::latent_detection::{LatentYolox, DETECTOR_FILE};
use super::{
    default_task_model_dir, load_decoder, resolve_task_model, TaskDecoder, TaskError, TaskKind,
};
use std::path::{Path, PathBuf};

/// A loaded task network.
pub struct Network {
    /// The network.
    pub decoder: Box<dyn TaskDecoder>,
    /// Its file.
    pub path: PathBuf,
    /// Its multiply-adds per picture, when its file records them (composed networks).
    pub macs: Option<u64>,
    /// The multiply-adds of the pixel network it stands for, when recorded.
    pub pixel_macs: Option<u64>,
    /// The folder of its label file (`coco80_labels.txt`, ...), when known.
    pub labels_dir: Option<PathBuf>,
}

/// The label file of a task's networks.
pub fn labels_file(task: TaskKind) -> &'static str {
    match task {
        TaskKind::Detection => "coco80_labels.txt",
        TaskKind::Classification => "imagenet_labels_1001.txt",
        TaskKind::Segmentation => "pascal_voc_labels.txt",
    }
}

/// Loads the network of `task` reading `domain`: `explicit` when given, else the
/// built-in one. Fails with [`TaskError::NoNetwork`] where the table above has none.
pub fn load_network(
    task: TaskKind,
    domain: InputDomain,
    explicit: Option<&Path>,
) -> Result<Network, TaskError> {
    let shared = |sub: &str| Some(default_task_model_dir().join(sub));
    Ok(match (task, domain) {
        (_, InputDomain::Rgb) => {
            let path = resolve_task_model(task, explicit)?;
            Network {
                decoder: load_decoder(task, &path)?,
                labels_dir: path.parent().map(Path::to_path_buf),
                path,
                macs: None,
                pixel_macs: None,
            }
        }
        (TaskKind::Classification, InputDomain::Dct192 | InputDomain::Dct24) => {
            let path = resolve_dct_model(domain, explicit)?;
            Network {
                decoder: Box::new(DctMobileNetV2::load(&path)?),
                path,
                macs: None,
                pixel_macs: None,
                labels_dir: shared("classification"),
            }
        }
        (TaskKind::Classification, InputDomain::Latents) => {
            let path = resolve_latent_model(CLASSIFIER_FILE, explicit)?;
            let net = LatentMobileNetV2::load(&path)?;
            Network {
                macs: net.macs(),
                pixel_macs: net.classifier_macs(),
                decoder: Box::new(net),
                path,
                labels_dir: shared("classification"),
            }
        }
        (TaskKind::Detection, InputDomain::Latents) => {
            let path = resolve_latent_model(DETECTOR_FILE, explicit)?;
            let net = LatentYolox::load(&path)?;
            Network {
                macs: net.macs(),
                pixel_macs: net.detector_macs(),
                decoder: Box::new(net),
                path,
                labels_dir: shared("yolox_nano"),
            }
        }
        (task, domain) => return Err(TaskError::NoNetwork { task, domain }),
    })
}
