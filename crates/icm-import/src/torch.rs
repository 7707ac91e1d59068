//! A reader of PyTorch checkpoints (`torch.save` files) that never runs code from the file.
//!
//! `torch.load` unpickles with Python's pickle, which calls any function the file names.
//! This reader interprets only the data-building subset of pickle: containers, scalars,
//! strings, torch's tensor-rebuild functions and a few constructors of plain data. Every
//! other call of a global is kept as an inert [`Value::Opaque`]. A checkpoint is treated as
//! hostile input: malformed, truncated or oversized files give a [`TorchError`] naming what
//! and where, nothing panics, and every allocation is bounded by the file size or by the
//! output limit documented at [`read_checkpoint`].
//!
//! # Formats
//!
//! - **Zip** (the default since torch 1.6): a zip archive of STORED entries
//!   `<archive>/data.pkl` (the object; pickle protocol 2 unless `torch.save` was given
//!   another `pickle_protocol`), `<archive>/data/<key>` (the raw little-endian bytes of
//!   each storage), `<archive>/byteorder`, `<archive>/version`,
//!   `<archive>/.data/serialization_id` and, in newer versions, `.format_version` and
//!   `.storage_alignment`. Storages are persistent ids
//!   `('storage', torch.FloatStorage, key, location, numel)`.
//! - **Legacy** (`_use_new_zipfile_serialization=False`): five concatenated pickles (the
//!   magic number `0x1950a86a20f9469cfc6c`, the protocol version 1001, a `sys_info` dict,
//!   the object with persistent ids `('storage', storage_type, root_key, location, numel,
//!   view_metadata)`, the sorted list of storage keys), then for each key an 8-byte
//!   little-endian element count and the storage's bytes.
//!
//! Storage types name the dtype: `FloatStorage`, `DoubleStorage`, `HalfStorage`,
//! `BFloat16Storage`, `LongStorage`, `IntStorage`, `ShortStorage`, `CharStorage`,
//! `ByteStorage`, `BoolStorage` (in module `torch`, or `torch.cuda` in old files);
//! `torch.UntypedStorage` holds bytes, which `_rebuild_tensor_v3` views with an explicit
//! dtype (how torch 2 saves `uint16`, `uint32` and `uint64` tensors). The tar format of
//! torch before 0.4, big-endian checkpoints and other storage types (complex, quantized,
//! float8) are rejected.
//!
//! # Layout
//!
//! `torch/zip.rs` reads the archive, `torch/pickle.rs` runs a pickle into an object graph,
//! `torch/resolve.rs` turns the graph into a [`Value`] tree, `torch/tensor.rs` copies
//! tensors out of their storages, `torch/value.rs` and `torch/error.rs` hold the public
//! types.

mod error;
mod pickle;
mod resolve;
mod tensor;
mod value;
mod zip;

use std::collections::BTreeMap;

pub use error::TorchError;
pub use tensor::{DType, Tensor, TensorData};
pub use value::Value;

use pickle::{unpickle, Pickle};
use resolve::{resolve, Budget, Storages};

/// The output limit's fixed part (see [`read_checkpoint`]).
const OUTPUT_LIMIT_BASE: usize = 64 << 20;
/// The output limit's part proportional to the file size (see [`read_checkpoint`]).
const OUTPUT_LIMIT_PER_INPUT_BYTE: usize = 8;

/// The legacy format's magic number as `LONG1` stores it (little-endian).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The legacy format's protocol version.
const LEGACY_PROTOCOL_VERSION: i64 = 1001;

/// Reads a checkpoint (zip or legacy format, told apart by the first bytes) and returns the
/// object `torch.save` saved.
///
/// Interpreted calls:
/// - `torch._utils._rebuild_tensor`, `_rebuild_tensor_v2`, `_rebuild_tensor_v3` become
///   [`Value::Tensor`]s whose elements are gathered out of their storage (storage offset and
///   strides are honoured and checked against the storage; views are copied);
///   `_rebuild_parameter`, `_rebuild_parameter_with_state`,
///   `_rebuild_device_tensor_from_cpu_tensor` give their tensor argument;
///   `torch._tensor._rebuild_from_type_v2` (tensor subclasses) gives the rebuilt tensor;
/// - `collections.OrderedDict`, `collections.defaultdict` and `dict` become
///   [`Value::Dict`]s (torch's `_metadata` attribute of state dicts is dropped); `set`,
///   `frozenset` and `list` become [`Value::List`]s; `_codecs.encode(s, "latin1")` (how
///   pickle protocol 2 writes `bytes`) becomes [`Value::Bytes`].
///
/// Any other call is a [`Value::Opaque`].
///
/// Limits: the unpickler's working memory (its object graph and memo) and the output
/// (every [`Value`] slot, string, byte string and tensor element) together may take at
/// most `8 * bytes.len() + 64 MiB` bytes ([`TorchError::OutputLimit`]); a checkpoint
/// needs about one to two times its size, more where tensors share a storage (tied
/// weights) or are views such as `expand`. Objects may nest at most 200 levels
/// ([`TorchError::TooDeep`]); an object that contains itself is an error
/// ([`TorchError::Cycle`]). Integers written as decimal text (pickle protocol 0) may have
/// at most 4,300 digits, Python's own default limit.
pub fn read_checkpoint(bytes: &[u8]) -> Result<Value, TorchError> {
    let limit = bytes
        .len()
        .saturating_mul(OUTPUT_LIMIT_PER_INPUT_BYTE)
        .saturating_add(OUTPUT_LIMIT_BASE);
    let mut budget = Budget::new(limit);
    if zip::is_zip(bytes) {
        read_zip(bytes, &mut budget)
    } else if bytes.get(257..262) == Some(b"ustar") {
        Err(TorchError::Unsupported(
            "the tar checkpoint format of torch before 0.4".into(),
        ))
    } else if bytes.first() == Some(&0x80) {
        read_legacy(bytes, &mut budget)
    } else {
        Err(TorchError::NotACheckpoint(
            "neither a zip archive nor a pickle stream",
        ))
    }
}

/// Reads the state dict (parameter and buffer tensors by name) of a checkpoint.
///
/// The dict searched is, in order: the value of the top-level dict's key `"state_dict"`
/// (CompressAI's and most training scripts' checkpoints), else of `"model"`, else of
/// `"net"`, when that value is a dict; else the top-level dict itself (a plain
/// `model.state_dict()`, as the CompressAI model zoo publishes). Its entries with a string
/// key and a tensor value are returned (other entries, such as `_metadata` or counters,
/// are skipped), with a leading `"module."` (added by `nn.DataParallel`) removed from each
/// name.
///
/// Fails as [`read_checkpoint`] does, with [`TorchError::NoStateDict`] when the object is
/// not a dict or the chosen dict holds no tensor, and with [`TorchError::DuplicateName`]
/// when removing `"module."` makes two names equal.
pub fn state_dict(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, TorchError> {
    let Value::Dict(top) = read_checkpoint(bytes)? else {
        return Err(TorchError::NoStateDict(
            "the checkpoint's object is not a dict".into(),
        ));
    };
    let (source, pairs) = select_state_dict(top);
    let mut out = BTreeMap::new();
    for (key, value) in pairs {
        let (Value::Str(name), Value::Tensor(tensor)) = (key, value) else {
            continue;
        };
        let name = match name.strip_prefix("module.") {
            Some(stripped) => stripped.to_string(),
            None => name,
        };
        if out.contains_key(&name) {
            return Err(TorchError::DuplicateName(name));
        }
        out.insert(name, tensor);
    }
    if out.is_empty() {
        return Err(TorchError::NoStateDict(format!("{source} holds no tensor")));
    }
    Ok(out)
}

/// The pairs of the state dict inside the top-level dict `top`, and a description of
/// where it was found.
fn select_state_dict(mut top: Vec<(Value, Value)>) -> (&'static str, Vec<(Value, Value)>) {
    for (key, description) in [
        ("state_dict", "the dict under \"state_dict\""),
        ("model", "the dict under \"model\""),
        ("net", "the dict under \"net\""),
    ] {
        let found = top
            .iter()
            .position(|(k, v)| k.as_str() == Some(key) && matches!(v, Value::Dict(_)));
        if let Some(i) = found {
            let (_, inner) = top.swap_remove(i);
            if let Value::Dict(pairs) = inner {
                return (description, pairs);
            }
        }
    }
    ("the top-level dict", top)
}

/// Reads the zip format.
fn read_zip(bytes: &[u8], budget: &mut Budget) -> Result<Value, TorchError> {
    let archive = zip::Archive::parse(bytes)?;
    // The archive's folder: the one holding `data.pkl` (torch names it after the file).
    let mut folders = archive
        .names()
        .iter()
        .filter_map(|n| n.strip_suffix("/data.pkl"))
        .filter(|folder| !folder.contains('/'));
    let folder = folders
        .next()
        .ok_or_else(|| TorchError::Missing("archive entry <archive>/data.pkl".into()))?;
    if let Some(other) = folders.next() {
        return Err(TorchError::Unsupported(format!(
            "archive holds two objects, {folder}/data.pkl and {other}/data.pkl"
        )));
    }
    let byteorder_name = format!("{folder}/byteorder");
    match archive.read(&byteorder_name)? {
        None | Some(b"little") => {}
        Some(b"big") => return Err(TorchError::BigEndian("byteorder entry says \"big\"")),
        Some(other) => {
            return Err(TorchError::ZipEntry {
                entry: byteorder_name,
                what: format!("unknown byte order {:?}", String::from_utf8_lossy(other)),
            })
        }
    }
    let pickle_name = format!("{folder}/data.pkl");
    let data = archive
        .read(&pickle_name)?
        .ok_or_else(|| TorchError::Missing(format!("archive entry {pickle_name}")))?;
    let pickle = unpickle(data, 0, &pickle_name, budget)?;
    let mut storages = Storages::new();
    for key in pickle.storages.keys() {
        let name = format!("{folder}/data/{key}");
        let entry = archive.read(&name)?.ok_or_else(|| {
            TorchError::Missing(format!("archive entry {name:?} of storage {key:?}"))
        })?;
        storages.insert(key.clone(), entry);
    }
    resolve(&pickle, &storages, budget)
}

/// Reads the legacy format.
fn read_legacy(bytes: &[u8], budget: &mut Budget) -> Result<Value, TorchError> {
    let none = Storages::new();
    let magic = unpickle(bytes, 0, "legacy magic number pickle", budget)?;
    match resolve(&magic, &none, budget)? {
        Value::BigInt(b) if b == LEGACY_MAGIC => {}
        _ => {
            return Err(TorchError::NotACheckpoint(
                "a pickle, but not torch's magic number",
            ))
        }
    }
    let version = unpickle(bytes, magic.end, "legacy protocol version pickle", budget)?;
    match resolve(&version, &none, budget)? {
        Value::Int(LEGACY_PROTOCOL_VERSION) => {}
        other => {
            return Err(TorchError::Unsupported(format!(
                "legacy protocol version {other:?} (1001 expected)"
            )))
        }
    }
    let sys_info = unpickle(bytes, version.end, "legacy sys_info pickle", budget)?;
    if let Some(Value::Bool(false)) = resolve(&sys_info, &none, budget)?.get("little_endian") {
        return Err(TorchError::BigEndian("sys_info says little_endian=False"));
    }
    let object = unpickle(bytes, sys_info.end, "legacy object pickle", budget)?;
    let keys_pickle = unpickle(bytes, object.end, "legacy storage key list pickle", budget)?;
    let Value::List(keys) = resolve(&keys_pickle, &none, budget)? else {
        return Err(TorchError::Missing(
            "legacy storage key list (the pickle is not a list)".into(),
        ));
    };
    let storages = legacy_storages(bytes, keys_pickle.end, &keys, &object)?;
    resolve(&object, &storages, budget)
}

/// Locates the storages that follow the legacy format's pickles: for each key, an 8-byte
/// little-endian element count and the elements (of the dtype the object pickle first
/// referenced the key with).
fn legacy_storages<'a>(
    bytes: &'a [u8],
    mut pos: usize,
    keys: &[Value],
    object: &Pickle,
) -> Result<Storages<'a>, TorchError> {
    let mut storages = Storages::new();
    for key in keys {
        let key = match key {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => {
                return Err(TorchError::Missing(
                    "legacy storage key list (a key is not a string)".into(),
                ))
            }
        };
        let storage_err = |what: String| TorchError::Storage {
            key: key.clone(),
            what,
        };
        let dtype = *object.storages.get(&key).ok_or_else(|| {
            storage_err("listed in the legacy storage key list but never referenced".into())
        })?;
        let count = pos
            .checked_add(8)
            .and_then(|end| bytes.get(pos..end))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| {
                storage_err(format!(
                    "element count at byte {pos} runs past the end of the file"
                ))
            })?;
        let start = pos + 8;
        let data = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(dtype.size()))
            .and_then(|len| Some((len, start.checked_add(len)?)))
            .and_then(|(_, end)| bytes.get(start..end))
            .ok_or_else(|| {
                storage_err(format!(
                    "{count} {} elements at byte {start} run past the end of the file ({} bytes)",
                    dtype.name(),
                    bytes.len()
                ))
            })?;
        pos = start + data.len();
        if storages.insert(key.clone(), data).is_some() {
            return Err(storage_err(
                "occurs twice in the legacy storage key list".into(),
            ));
        }
    }
    Ok(storages)
}
