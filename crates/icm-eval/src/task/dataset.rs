//! The datasets of a task evaluation: the pictures in a fixed order and the ground truth
//! their task is scored against.
//!
//! - detection: a COCO folder (`annotations/instances_*.json`, pictures in `val2017/`,
//!   `images/` or the folder itself), ascending image id;
//! - classification: a folder with `labels.csv` (`file,class_index,...`), in its order;
//! - segmentation: a COCO folder as for detection, or any folder of pictures (sorted; its
//!   sub-folders' when it has none itself).

use super::coco::CocoDataset;
use super::scoring::read_imagenet_labels;
use super::{TaskError, TaskKind};
use std::path::{Path, PathBuf};

/// One picture of a dataset, with what its task is scored against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The picture file.
    pub path: PathBuf,
    /// COCO image id (detection, annotated segmentation), else 0.
    pub image_id: u64,
    /// ImageNet class (classification), else 0.
    pub class: usize,
}

/// The pictures and ground truth of one task's dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The pictures, in evaluation order.
    pub items: Vec<Item>,
    /// COCO annotations (detection; segmentation when the folder has them).
    pub coco: Option<CocoDataset>,
}

fn dataset_error(path: &Path, why: impl Into<String>) -> TaskError {
    TaskError::Dataset {
        path: path.display().to_string(),
        why: why.into(),
    }
}

fn is_image(p: &Path) -> bool {
    p.is_file()
        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["png", "jpg", "jpeg", "ppm"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    let io = |source| TaskError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        out.push(e.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

/// The pictures of `dir`, or when it has none, of its sub-folders (sorted).
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    let entries = sorted_entries(dir)?;
    let direct: Vec<PathBuf> = entries.iter().filter(|p| is_image(p)).cloned().collect();
    if !direct.is_empty() {
        return Ok(direct);
    }
    let mut out = Vec::new();
    for sub in entries.iter().filter(|p| p.is_dir()) {
        out.extend(sorted_entries(sub)?.into_iter().filter(|p| is_image(p)));
    }
    Ok(out)
}

/// The COCO annotations of `dir`: `explicit`, else the one `instances_*.json` in
/// `dir/annotations`, or `None` when there is none and none is `required`.
fn find_annotations(
    dir: &Path,
    explicit: Option<&Path>,
    required: bool,
) -> Result<Option<PathBuf>, TaskError> {
    if let Some(p) = explicit {
        return Ok(Some(p.to_path_buf()));
    }
    let ann_dir = dir.join("annotations");
    if !ann_dir.is_dir() && !required {
        return Ok(None);
    }
    let found: Vec<PathBuf> = sorted_entries(&ann_dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("instances") && n.ends_with(".json"))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] if !required => Ok(None),
        [] => Err(dataset_error(&ann_dir, "no instances_*.json")),
        _ => Err(dataset_error(
            &ann_dir,
            "several instances_*.json: choose one with --annotations",
        )),
    }
}

fn load_coco(dir: &Path, ann: &Path) -> Result<Dataset, TaskError> {
    let coco = CocoDataset::load(ann)?;
    let mut items = Vec::new();
    for (id, name) in &coco.images {
        let path = ["val2017", "images", ""]
            .iter()
            .map(|sub| dir.join(sub).join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| dataset_error(dir, format!("image {name} (id {id}) not found")))?;
        items.push(Item {
            path,
            image_id: *id,
            class: 0,
        });
    }
    Ok(Dataset {
        items,
        coco: Some(coco),
    })
}

fn load_classification(dir: &Path) -> Result<Dataset, TaskError> {
    let csv = dir.join("labels.csv");
    let labels = read_imagenet_labels(&csv)?;
    let text = std::fs::read_to_string(&csv).map_err(|source| TaskError::Io {
        path: csv.display().to_string(),
        source,
    })?;
    // labels.csv order.
    let mut items = Vec::new();
    for line in text.lines().skip(1) {
        let Some(file) = line.split(',').next().map(str::trim) else {
            continue;
        };
        let Some(&class) = labels.get(file) else {
            continue;
        };
        let path = dir.join(file);
        if !path.is_file() {
            return Err(dataset_error(&csv, format!("{file} not found")));
        }
        items.push(Item {
            path,
            image_id: 0,
            class,
        });
    }
    Ok(Dataset { items, coco: None })
}

impl Dataset {
    /// Loads the dataset of `task` in `dir`; `annotations` overrides the COCO file.
    pub fn load(task: TaskKind, dir: &Path, annotations: Option<&Path>) -> Result<Self, TaskError> {
        match task {
            TaskKind::Detection => {
                let ann = find_annotations(dir, annotations, true)?
                    .ok_or_else(|| dataset_error(dir, "no COCO annotations"))?;
                load_coco(dir, &ann)
            }
            TaskKind::Classification => load_classification(dir),
            TaskKind::Segmentation => match find_annotations(dir, annotations, false)? {
                Some(ann) => load_coco(dir, &ann),
                None => Ok(Self {
                    items: list_images(dir)?
                        .into_iter()
                        .map(|path| Item {
                            path,
                            image_id: 0,
                            class: 0,
                        })
                        .collect(),
                    coco: None,
                }),
            },
        }
    }

    /// Keeps the first `n` pictures.
    pub fn truncate(&mut self, n: usize) {
        self.items.truncate(n);
    }

    /// The COCO image ids, in order.
    pub fn image_ids(&self) -> Vec<u64> {
        self.items.iter().map(|i| i.image_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_of_pictures_sorted_and_sub_folders_when_none() {
        let dir = std::env::temp_dir().join(format!("icm-dataset-{}", std::process::id()));
        let sub = dir.join("b");
        std::fs::create_dir_all(&sub).expect("mkdir");
        for name in ["z.png", "a.jpg", "notes.txt"] {
            std::fs::write(sub.join(name), b"x").expect("write");
        }
        let d = Dataset::load(TaskKind::Segmentation, &dir, None).expect("load");
        let names: Vec<_> = d.items.iter().map(|i| i.path.clone()).collect();
        assert_eq!(names, vec![sub.join("a.jpg"), sub.join("z.png")]);
        std::fs::write(dir.join("c.ppm"), b"x").expect("write");
        let d = Dataset::load(TaskKind::Segmentation, &dir, None).expect("load");
        assert_eq!(d.items.len(), 1);
        let e = Dataset::load(TaskKind::Detection, &dir, None).expect_err("no annotations");
        assert!(e.to_string().contains("annotations"), "{e}");
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
