//! Helpers shared by the integration tests: where the project's virtual environment is,
//! the rule for a missing tool (skip locally, fail under `CI=true`), running `icm`, and
//! readers of .npy files and ONNX metadata.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The project venv: `$ICM_VENV`, else `~/.cache/icm-venv` (what the set-up scripts make).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("ICM_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/icm-venv"),
    }
}

/// The venv's interpreter (it may not exist).
pub fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// `Ok(())` when `python -c "import <modules>"` succeeds, else a one-line reason.
pub fn imports(python: &std::path::Path, modules: &str) -> Result<(), String> {
    match Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
    {
        Err(e) => Err(format!("{} not runnable: {e}", python.display())),
        Ok(out) if !out.status.success() => Err(format!(
            "{} cannot import {modules}: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => Ok(()),
    }
}

/// True when the test runs under CI (`CI=true`), where a missing tool is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The repository root.
pub fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// An empty folder `name` under cargo's temporary directory for integration tests.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// The one rule for a test that cannot run here: it prints why and passes, except under
/// `CI=true`, where everything a test needs is installed (scripts/setup_test_env.sh) and
/// `../shared` is present, so a missing piece is a failure.
pub fn cannot_run(why: &str) {
    if under_ci() {
        panic!("CI=true and the test cannot run: {why}");
    }
    println!("skipping: {why}");
}

/// `../shared/REL` when it exists, else `None` after [`cannot_run`].
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = root().join("../shared").join(rel);
    if path.exists() {
        Some(path)
    } else {
        cannot_run(&format!("{} not present", path.display()));
        None
    }
}

/// Whether the task decoders are built (cargo feature `tasks`). Without them a task test
/// skips with a message, under CI too: the feature is a build choice, not a missing tool.
pub fn with_tasks() -> bool {
    if !cfg!(feature = "tasks") {
        println!("skipping: built without the `tasks` feature");
    }
    cfg!(feature = "tasks")
}

/// Whether an ONNX Runtime library is found and looks usable, else `false` after
/// [`cannot_run`]. A test that checked this treats any later failure as a failure.
pub fn onnx_runtime() -> bool {
    use icm_eval::task::runtime::{check_library, find_library};
    match find_library().and_then(|p| check_library(&p)) {
        Ok(()) => true,
        Err(e) => {
            cannot_run(&e.to_string());
            false
        }
    }
}

/// The ffmpeg `icm anchor` would use, else `None` after [`cannot_run`].
pub fn ffmpeg() -> Option<PathBuf> {
    match icm_eval::anchor::find_ffmpeg(None) {
        Ok(p) if p.is_file() => Some(p),
        Ok(p) => {
            cannot_run(&format!(
                "ffmpeg {} not found (scripts/setup_ffmpeg.sh)",
                p.display()
            ));
            None
        }
        Err(e) => {
            cannot_run(&format!("{e} (scripts/setup_ffmpeg.sh)"));
            None
        }
    }
}

/// The venv's interpreter when it imports `modules`, else why not.
pub fn python_with(modules: &str) -> Result<PathBuf, String> {
    let py = venv_python();
    imports(&py, modules)?;
    Ok(py)
}

/// Runs the `icm` binary with `args` and extra environment variables.
pub fn icm(args: &[&str], env: &[(&str, &std::path::Path)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_icm"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run icm")
}

/// Stdout of a run that must have succeeded (its stderr in the failure message).
pub fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a CLI test of a composed classifier needs: the ImageNet sample of `../shared`, a
/// fresh folder, and in its `tasks/` subfolder the networks `script` (a composer in
/// `scripts/`) made with `--check`; `first` is the first picture of `labels.csv`.
pub struct ComposedClassifier {
    pub sample: PathBuf,
    pub dir: PathBuf,
    pub cache: PathBuf,
    pub first: PathBuf,
}

/// Sets up [`ComposedClassifier`], or `None` after saying why the test cannot run (a
/// failure under CI=true; a plain skip when built without the `tasks` feature).
pub fn composed_classifier(script: &str, dir_name: &str) -> Option<ComposedClassifier> {
    let sample = root().join("../shared/data/imagenet-val-sample");
    if !cfg!(feature = "tasks") {
        println!("skipping: built without the `tasks` feature");
        return None;
    }
    if !sample.join("labels.csv").is_file() {
        cannot_run(&format!("{} not present", sample.display()));
        return None;
    }
    let py = match python_with("onnx, onnxruntime, numpy") {
        Ok(p) => p,
        Err(why) => {
            cannot_run(&why);
            return None;
        }
    };
    let dir = fresh_dir(dir_name);
    let cache = dir.join("tasks");
    let out = Command::new(&py)
        .arg(root().join("scripts").join(script))
        .arg("--out-dir")
        .arg(&cache)
        .arg("--check")
        .output()
        .expect("python");
    ok(&out, script);
    let labels = std::fs::read_to_string(sample.join("labels.csv")).expect("labels");
    let first = labels
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("first image");
    let first = sample.join(first);
    Some(ComposedClassifier {
        sample,
        dir,
        cache,
        first,
    })
}

/// The value of metadata key `key` in an ONNX file's bytes: the protobuf
/// StringStringEntryProto {1: key, 2: value} follows the key's bytes; reads the value's
/// length-delimited field.
pub fn onnx_metadata(bytes: &[u8], key: &str) -> Option<String> {
    let k = key.as_bytes();
    let pos = bytes.windows(k.len()).position(|w| w == k)? + k.len();
    if bytes.get(pos) != Some(&0x12) {
        return None;
    }
    let (mut len, mut shift, mut i) = (0usize, 0, pos + 1);
    loop {
        let b = *bytes.get(i)?;
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    String::from_utf8(bytes.get(i..i + len)?.to_vec()).ok()
}

/// A little-endian .npy (v1.0, C order): its dtype descr (`<i4`, `<f4`, `<i2`, ...), shape
/// and raw data bytes.
pub fn read_npy(path: &std::path::Path) -> (String, Vec<usize>, Vec<u8>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).expect("header");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("descr")
        .to_string();
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("dim"))
        .collect();
    (descr, shape, b[10 + hlen..].to_vec())
}

/// A .npy of 4-byte elements of dtype `descr` (`<i4`, `<f4`): shape and the raw values.
pub fn read_npy_4(path: &std::path::Path, descr: &str) -> (Vec<usize>, Vec<[u8; 4]>) {
    let (d, shape, data) = read_npy(path);
    assert_eq!(d, descr, "{}", path.display());
    let values: Vec<[u8; 4]> = data
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    assert_eq!(values.len(), shape.iter().product::<usize>());
    (shape, values)
}

/// A little-endian 16-bit integer .npy (`<i2` or `<u2`, v1.0, C order): shape and values.
pub fn read_npy_i16(path: &std::path::Path) -> (Vec<usize>, Vec<i64>) {
    let (descr, shape, data) = read_npy(path);
    let values: Vec<i64> = match descr.as_str() {
        "<i2" => data
            .chunks_exact(2)
            .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        "<u2" => data
            .chunks_exact(2)
            .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        d => panic!("{}: dtype {d}", path.display()),
    };
    assert_eq!(values.len(), shape.iter().product::<usize>());
    (shape, values)
}
