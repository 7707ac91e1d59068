//! Tests of the PyTorch checkpoint reader against files written by torch 2.11
//! (`tests/data/make_fixtures.py`, which documents each file) and against hand-written
//! malformed inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use icm_import::torch::{
    read_checkpoint, state_dict, DType, Tensor, TensorData, TorchError, Value,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_value(s: &str) -> Value {
    Value::Str(s.to_string())
}

fn dict_keys(v: &Value) -> Vec<String> {
    match v {
        Value::Dict(pairs) => pairs
            .iter()
            .map(|(k, _)| k.as_str().unwrap_or("<non-str>").to_string())
            .collect(),
        other => panic!("not a dict: {other:?}"),
    }
}

fn tensor<'a>(sd: &'a BTreeMap<String, Tensor>, name: &str) -> &'a Tensor {
    sd.get(name)
        .unwrap_or_else(|| panic!("no tensor {name:?} in {:?}", sd.keys().collect::<Vec<_>>()))
}

fn f32_range(range: std::ops::Range<i32>, f: impl Fn(f32) -> f32) -> Vec<f32> {
    range.map(|i| f(i as f32)).collect()
}

// ---- plain.pt / plain_legacy.pt ----

const PLAIN_NAMES: [&str; 19] = [
    "f32",
    "f64",
    "f16",
    "bf16",
    "i64",
    "i32",
    "i16",
    "i8",
    "u8",
    "bool",
    "u16",
    "transposed",
    "sliced",
    "expanded",
    "shared_a",
    "shared_b",
    "empty",
    "scalar",
    "param",
];

/// Checks every tensor of `plain_state_dict()` in make_fixtures.py.
fn check_plain(sd: &BTreeMap<String, Tensor>, with_u16: bool) {
    let expected: Vec<&str> = PLAIN_NAMES
        .iter()
        .copied()
        .filter(|n| with_u16 || *n != "u16")
        .collect();
    let mut names: Vec<&str> = sd.keys().map(String::as_str).collect();
    let mut sorted = expected.clone();
    sorted.sort_unstable();
    names.sort_unstable();
    assert_eq!(names, sorted);

    let t = tensor(sd, "f32");
    assert_eq!((t.dtype(), t.shape.clone()), (DType::F32, vec![2, 3, 4]));
    assert_eq!(t.data, TensorData::F32(f32_range(0..24, |i| i * 0.5 - 3.0)));

    let t = tensor(sd, "f64");
    assert_eq!(t.shape, vec![5]);
    assert_eq!(
        t.data,
        TensorData::F64((0..5).map(|i| f64::from(i) / 3.0).collect())
    );

    let t = tensor(sd, "f16");
    assert_eq!((t.dtype(), t.shape.clone()), (DType::F16, vec![10]));
    assert_eq!(t.to_f32(), f32_range(-4..6, |i| i * 0.25));
    assert_eq!(t.to_i64(), None);

    let t = tensor(sd, "bf16");
    assert_eq!(t.dtype(), DType::BF16);
    assert_eq!(t.to_f32(), f32_range(-3..3, |i| i * 1.5));

    let t = tensor(sd, "i64");
    assert_eq!(
        t.data,
        TensorData::I64((0..6).map(|i| (i - 3) * 1_000_000_000_000).collect())
    );

    let t = tensor(sd, "i32");
    assert_eq!(t.shape, vec![3, 4]);
    assert_eq!(t.data, TensorData::I32((-6..6).collect()));
    assert_eq!(t.to_i64(), Some((-6..6).collect()));

    assert_eq!(
        tensor(sd, "i16").data,
        TensorData::I16(vec![-2000, -1000, 0, 1000])
    );
    assert_eq!(
        tensor(sd, "i8").data,
        TensorData::I8(vec![-128, -77, -26, 25, 76, 127])
    );
    assert_eq!(tensor(sd, "u8").data, TensorData::U8(vec![0, 85, 170, 255]));
    assert_eq!(
        tensor(sd, "bool").data,
        TensorData::Bool(vec![true, false, true, false, true])
    );
    assert_eq!(tensor(sd, "bool").to_i64(), Some(vec![1, 0, 1, 0, 1]));
    if with_u16 {
        // Saved as an UntypedStorage rebuilt with _rebuild_tensor_v3.
        assert_eq!(
            tensor(sd, "u16").data,
            TensorData::U16(vec![0, 1000, 65535])
        );
    }

    // arange(12).reshape(3, 4).t(): element [i][j] = 4 j + i.
    let t = tensor(sd, "transposed");
    assert_eq!(t.shape, vec![4, 3]);
    let want: Vec<f32> = (0..4)
        .flat_map(|i| (0..3).map(move |j| (4 * j + i) as f32))
        .collect();
    assert_eq!(t.to_f32(), want);

    // arange(20).reshape(4, 5)[1:3, ::2]: element [i][j] = 5 (i + 1) + 2 j.
    let t = tensor(sd, "sliced");
    assert_eq!(t.shape, vec![2, 3]);
    let want: Vec<f32> = (0..2)
        .flat_map(|i| (0..3).map(move |j| (5 * (i + 1) + 2 * j) as f32))
        .collect();
    assert_eq!(t.to_f32(), want);

    let t = tensor(sd, "expanded");
    assert_eq!(t.shape, vec![2, 3]);
    assert_eq!(t.to_f32(), vec![0., 1., 2., 0., 1., 2.]);

    assert_eq!(
        tensor(sd, "shared_a").data,
        TensorData::I64(vec![0, 1, 2, 3])
    );
    assert_eq!(
        tensor(sd, "shared_b").data,
        TensorData::I64(vec![4, 5, 6, 7])
    );

    let t = tensor(sd, "empty");
    assert_eq!(
        (t.shape.clone(), t.numel(), t.dtype()),
        (vec![0, 3], 0, DType::F32)
    );

    let t = tensor(sd, "scalar");
    assert_eq!((t.shape.clone(), t.to_f32()), (vec![], vec![7.5]));

    let t = tensor(sd, "param");
    assert_eq!(t.to_f32(), f32_range(0..4, |i| i + 0.5));
}

#[test]
fn plain_state_dict_zip_format() {
    let bytes = fixture("plain.pt");
    check_plain(&state_dict(&bytes).expect("state_dict"), true);
    // The OrderedDict keeps torch's insertion order.
    let value = read_checkpoint(&bytes).expect("read_checkpoint");
    assert_eq!(dict_keys(&value), PLAIN_NAMES);
}

#[test]
fn plain_state_dict_legacy_format() {
    let bytes = fixture("plain_legacy.pt");
    check_plain(&state_dict(&bytes).expect("state_dict"), false);
    let value = read_checkpoint(&bytes).expect("read_checkpoint");
    let want: Vec<&str> = PLAIN_NAMES
        .iter()
        .copied()
        .filter(|n| *n != "u16")
        .collect();
    assert_eq!(dict_keys(&value), want);
}

// ---- training checkpoints ----

/// The parameters of `tiny_model()` after `set_formula_params`: parameter k (in order)
/// holds `(arange(n) - n / 2) * 0.125 + k`.
fn check_tiny_model(sd: &BTreeMap<String, Tensor>, prefix: &str) {
    let params = [
        ("0.weight", vec![2, 1, 3, 3]),
        ("0.bias", vec![2]),
        ("2.weight", vec![1, 2, 1, 1]),
        ("2.bias", vec![1]),
    ];
    assert_eq!(
        sd.len(),
        params.len(),
        "{:?}",
        sd.keys().collect::<Vec<_>>()
    );
    for (k, (name, shape)) in params.iter().enumerate() {
        let t = tensor(sd, &format!("{prefix}{name}"));
        assert_eq!(&t.shape, shape, "{name}");
        let n = shape.iter().product::<usize>() as i32;
        assert_eq!(
            t.to_f32(),
            f32_range(0..n, |i| (i - (n / 2) as f32) * 0.125 + k as f32),
            "{name}"
        );
    }
}

/// Checks the object of `training_checkpoint()` in make_fixtures.py.
fn check_training_checkpoint(file: &str) {
    let bytes = fixture(file);
    check_tiny_model(&state_dict(&bytes).expect("state_dict"), "");

    let ckpt = read_checkpoint(&bytes).expect("read_checkpoint");
    assert_eq!(
        dict_keys(&ckpt),
        [
            "epoch",
            "state_dict",
            "loss",
            "optimizer",
            "aux_optimizer",
            "lr_scheduler",
            "note",
            "raw",
            "big",
            "neg_big",
            "floats",
            "set",
            "nothing",
            "nested",
            "device",
            "dtype",
            "subclass",
            "param_with_state"
        ]
    );
    let get = |k: &str| ckpt.get(k).unwrap_or_else(|| panic!("{file}: no {k}"));
    assert_eq!(get("epoch"), &Value::Int(7));
    let loss = get("loss").as_tensor().expect("loss tensor");
    assert_eq!((loss.shape.clone(), loss.to_f32()), (vec![], vec![0.25]));
    assert_eq!(get("note"), &str_value("h\u{e9}llo \u{2603}"));
    assert_eq!(get("raw"), &Value::Bytes(vec![0, 0xff, b'a', b'b']));
    // 2**70 and -(2**70) - 1 in little-endian two's complement.
    assert_eq!(
        get("big"),
        &Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0x40])
    );
    assert_eq!(
        get("neg_big"),
        &Value::BigInt(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbf])
    );
    assert_eq!(
        get("floats"),
        &Value::List(vec![
            Value::Float(0.1),
            Value::Float(f64::INFINITY),
            Value::Float(-2.5)
        ])
    );
    assert_eq!(get("set"), &Value::List(vec![Value::Int(3)]));
    assert_eq!(get("nothing"), &Value::None);
    let nested = Value::Tuple(vec![
        Value::Int(1),
        Value::Tuple(vec![
            Value::Int(2),
            Value::List(vec![Value::Int(3), Value::Bool(true)]),
        ]),
    ]);
    assert_eq!(get("nested"), &Value::Dict(vec![(str_value("a"), nested)]));
    assert_eq!(
        get("device"),
        &Value::Opaque {
            global: "torch.device".into(),
            args: Box::new(Value::Tuple(vec![str_value("cpu")])),
            state: None
        }
    );
    assert_eq!(get("dtype"), &Value::Global("torch.float16".into()));
    // torch._tensor._rebuild_from_type_v2 and torch._utils._rebuild_parameter_with_state.
    let sub = get("subclass").as_tensor().expect("subclass tensor");
    assert_eq!(
        (sub.shape.clone(), sub.to_f32()),
        (vec![3], vec![0.0, 1.0, 2.0])
    );
    let param = get("param_with_state").as_tensor().expect("parameter");
    assert_eq!(param.to_f32(), vec![-1.0, -1.0]);

    // Adam's state: per parameter index, a 0-dim float32 step and moments shaped like it.
    let optimizer = get("optimizer");
    let state = optimizer.get("state").expect("optimizer.state");
    let Value::Dict(per_param) = state else {
        panic!("state is not a dict: {state:?}")
    };
    let shapes = [vec![2, 1, 3, 3], vec![2], vec![1, 2, 1, 1], vec![1]];
    assert_eq!(per_param.len(), shapes.len());
    for (i, ((index, s), shape)) in per_param.iter().zip(&shapes).enumerate() {
        assert_eq!(index, &Value::Int(i as i64));
        let step = s.get("step").and_then(Value::as_tensor).expect("step");
        assert_eq!((step.shape.clone(), step.to_f32()), (vec![], vec![1.0]));
        for moment in ["exp_avg", "exp_avg_sq"] {
            let m = s.get(moment).and_then(Value::as_tensor).expect("moment");
            assert_eq!((&m.shape, m.dtype()), (shape, DType::F32), "{moment}");
        }
    }
    let Some(Value::List(groups)) = optimizer.get("param_groups") else {
        panic!("param_groups")
    };
    let group = groups.first().expect("one param group");
    assert_eq!(group.get("lr").and_then(Value::as_f64), Some(1e-4));
    assert_eq!(
        group.get("betas"),
        Some(&Value::Tuple(vec![Value::Float(0.9), Value::Float(0.999)]))
    );
    assert_eq!(group.get("amsgrad"), Some(&Value::Bool(false)));
    assert_eq!(group.get("foreach"), Some(&Value::None));
    assert_eq!(
        group.get("params"),
        Some(&Value::List((0..4).map(Value::Int).collect()))
    );

    let aux = get("aux_optimizer");
    assert_eq!(aux.get("state"), Some(&Value::Dict(vec![])));

    let sched = get("lr_scheduler");
    assert_eq!(sched.get("mode").and_then(Value::as_str), Some("min"));
    assert_eq!(sched.get("best"), Some(&Value::Float(0.5)));
    assert_eq!(sched.get("mode_worse"), Some(&Value::Float(f64::INFINITY)));
    assert_eq!(sched.get("last_epoch").and_then(Value::as_int), Some(1));
    assert_eq!(
        sched.get("_last_lr"),
        Some(&Value::List(vec![Value::Float(1e-4)]))
    );
}

#[test]
fn training_checkpoint_zip_protocol_2() {
    check_training_checkpoint("checkpoint.pth.tar");
}

#[test]
fn training_checkpoint_zip_protocol_5() {
    check_training_checkpoint("checkpoint_p5.pth.tar");
}

#[test]
fn training_checkpoint_legacy_protocol_4() {
    check_training_checkpoint("checkpoint_legacy_p4.pth.tar");
}

#[test]
fn dataparallel_prefix_is_removed() {
    let bytes = fixture("dataparallel.pt");
    let value = read_checkpoint(&bytes).expect("read_checkpoint");
    assert!(dict_keys(&value).iter().all(|k| k.starts_with("module.")));
    check_tiny_model(&state_dict(&bytes).expect("state_dict"), "");
}

// ---- a real CompressAI model ----

/// FNV-1a (64-bit) of the tensor's elements as little-endian bytes, as make_fixtures.py
/// hashes `t.view(torch.uint8)`.
fn fnv1a64(t: &Tensor) -> u64 {
    let bytes: Vec<u8> = match &t.data {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F16(v) | TensorData::BF16(v) | TensorData::U16(v) => {
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I8(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
    };
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn check_compressai(file: &str) {
    let json = String::from_utf8(fixture("compressai_msh.json")).expect("utf-8");
    let expected: serde_json::Value = serde_json::from_str(&json).expect("json");
    let expected = expected.as_object().expect("object");
    let sd = state_dict(&fixture(file)).expect("state_dict");
    assert_eq!(
        sd.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, want) in expected {
        let t = tensor(&sd, name);
        assert_eq!(Some(t.dtype().name()), want["dtype"].as_str(), "{name}");
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .filter_map(|d| d.as_u64().map(|d| d as usize))
            .collect();
        assert_eq!(t.shape, shape, "{name}");
        assert_eq!(
            Some(format!("{:016x}", fnv1a64(t)).as_str()),
            want["fnv1a64"].as_str(),
            "{name}"
        );
    }
}

#[test]
fn compressai_mean_scale_hyperprior_zip_format() {
    check_compressai("compressai_msh.pt");
}

#[test]
fn compressai_mean_scale_hyperprior_legacy_format() {
    check_compressai("compressai_msh_legacy.pt");
}

// ---- hand-made legacy envelopes ----

/// The first three pickles of the legacy format: magic number, protocol version 1001,
/// `sys_info` with `little_endian` = `little`.
fn legacy_header(little: bool) -> Vec<u8> {
    let mut out = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    out.extend_from_slice(b"\x80\x02M\xe9\x03.");
    out.extend_from_slice(b"\x80\x02}X\x0d\x00\x00\x00little_endian");
    out.push(if little { 0x88 } else { 0x89 });
    out.extend_from_slice(b"s.");
    out
}

/// A legacy-format file: the header, `object` (a whole pickle), the key list and each
/// storage as (key, element count, bytes).
fn legacy(object: &[u8], storages: &[(&str, u64, &[u8])]) -> Vec<u8> {
    let mut out = legacy_header(true);
    out.extend_from_slice(object);
    out.extend_from_slice(b"\x80\x02](");
    for (key, _, _) in storages {
        out.extend(unicode(key));
    }
    out.extend_from_slice(b"e.");
    for (_, count, data) in storages {
        out.extend(count.to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// `BINUNICODE s`.
fn unicode(s: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
    out
}

/// `BININT i`.
fn binint(i: i32) -> Vec<u8> {
    let mut out = vec![b'J'];
    out.extend(i.to_le_bytes());
    out
}

/// A tuple of `BININT`s.
fn int_tuple(values: &[i32]) -> Vec<u8> {
    let mut out = vec![b'('];
    for &v in values {
        out.extend(binint(v));
    }
    out.push(b't');
    out
}

/// `_rebuild_tensor_v2(<storage pid>, offset, size, stride, False, ())` with the legacy
/// persistent id `('storage', torch.<storage_type>, key, 'cpu', numel, None)`.
fn tensor_pickle(
    storage_type: &str,
    key: &str,
    numel: i32,
    offset: i32,
    size: &[i32],
    stride: &[i32],
) -> Vec<u8> {
    let mut out = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
    out.extend(unicode("storage"));
    out.extend(format!("ctorch\n{storage_type}\n").as_bytes());
    out.extend(unicode(key));
    out.extend(unicode("cpu"));
    out.extend(binint(numel));
    out.extend(b"NtQ");
    out.extend(binint(offset));
    out.extend(int_tuple(size));
    out.extend(int_tuple(stride));
    out.extend(b"\x89)tR");
    out
}

/// A whole protocol-2 pickle of `body` followed by STOP.
fn pickle(body: &[u8]) -> Vec<u8> {
    let mut out = b"\x80\x02".to_vec();
    out.extend_from_slice(body);
    out.push(b'.');
    out
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Reads a legacy file made of `object` and the storages.
fn read_legacy(object: &[u8], storages: &[(&str, u64, &[u8])]) -> Result<Value, TorchError> {
    read_checkpoint(&legacy(&pickle(object), storages))
}

#[test]
fn plain_pickles_of_every_protocol_agree() {
    // Python's own pickles (not torch's) of PICKLE_VALUE in make_fixtures.py.
    let values: Vec<Value> = (0..=5)
        .map(|p| {
            let object = fixture(&format!("pickle_p{p}.pkl"));
            read_checkpoint(&legacy(&object, &[])).unwrap_or_else(|e| panic!("protocol {p}: {e}"))
        })
        .collect();
    for (p, v) in values.iter().enumerate() {
        assert_eq!(v, &values[5], "protocol {p} differs from protocol 5");
    }
    let v = &values[0];
    let big = |bytes: &[u8]| Value::BigInt(bytes.to_vec());
    let mut ints: Vec<Value> = [
        0,
        1,
        -1,
        255,
        256,
        65535,
        65536,
        -(1 << 31),
        (1 << 31) - 1,
        1 << 31,
        i64::MAX,
        i64::MIN,
    ]
    .into_iter()
    .map(Value::Int)
    .collect();
    ints.push(big(&[0, 0, 0, 0, 0, 0, 0, 0, 1]));
    // -(2**100): 2**100 is byte 12 = 0x10; negated, bytes 0..12 are 0 and byte 12 is 0xf0.
    ints.push(big(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0]));
    assert_eq!(v.get("int"), Some(&Value::List(ints)));
    let fl = [0.0, -1.5, 1e300, f64::INFINITY]
        .into_iter()
        .map(Value::Float)
        .collect();
    assert_eq!(v.get("float"), Some(&Value::List(fl)));
    let strs = ["", "a", "\u{e9}\u{2603}\\\n", &"x".repeat(300)]
        .into_iter()
        .map(str_value)
        .collect();
    assert_eq!(v.get("str"), Some(&Value::List(strs)));
    let bytes = [&b""[..], b"\x00\xff", &[b'y'; 300]]
        .into_iter()
        .map(|b| Value::Bytes(b.to_vec()))
        .collect();
    assert_eq!(v.get("bytes"), Some(&Value::List(bytes)));
    assert_eq!(v.get("bytearray"), Some(&Value::Bytes(b"ba".to_vec())));
    let tuples = (0..5)
        .map(|n| Value::Tuple((1..=n).map(Value::Int).collect()))
        .collect();
    assert_eq!(v.get("tuples"), Some(&Value::List(tuples)));
    assert_eq!(
        v.get("consts"),
        Some(&Value::List(vec![
            Value::Bool(true),
            Value::Bool(false),
            Value::None
        ]))
    );
    assert_eq!(v.get("set"), Some(&Value::List(vec![Value::Int(5)])));
    assert_eq!(v.get("frozenset"), Some(&Value::List(vec![Value::Int(6)])));
    let shared = Value::List(vec![Value::Int(1)]);
    assert_eq!(
        v.get("shared"),
        Some(&Value::List(vec![shared.clone(), shared]))
    );
    assert_eq!(
        v.get("namespace"),
        Some(&Value::Opaque {
            global: "types.SimpleNamespace".into(),
            args: Box::new(Value::Tuple(vec![])),
            state: Some(Box::new(Value::Dict(vec![(str_value("a"), Value::Int(1))]))),
        })
    );
    assert_eq!(
        v.get("ordered"),
        Some(&Value::Dict(vec![(str_value("k"), Value::Int(1))]))
    );
    assert_eq!(
        v.get("date"),
        Some(&Value::Opaque {
            global: "datetime.date".into(),
            args: Box::new(Value::Tuple(vec![Value::Bytes(vec![0x07, 0xe4, 1, 2])])),
            state: None,
        })
    );
}

#[test]
fn opcodes_torch_does_not_write() {
    let opaque = |global: &str, args: Value| Value::Opaque {
        global: global.into(),
        args: Box::new(args),
        state: None,
    };
    let mut body = b"(".to_vec();
    body.extend(b"cmod\nC\n)\x81"); // NEWOBJ
    body.extend(b"cmod\nC\n)}\x92"); // NEWOBJ_EX
    body.extend(b"(imod\nD\n"); // INST
    body.extend(b"(cmod\nE\nK\x01o"); // OBJ
    body.extend(b"K\x052"); // DUP
    body.extend(b"K\x060"); // POP
    body.extend(b"(K\x01K\x021"); // POP_MARK
    body.extend(b"T\x02\x00\x00\x00ab"); // BINSTRING
    body.extend(b"U\x02\xe9b"); // SHORT_BINSTRING (Latin-1)
    body.extend(b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00z\x98"); // BINBYTES8, READONLY_BUFFER
    body.extend(b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi"); // BINUNICODE8
    body.extend(b"\x8b\x02\x00\x00\x00\xff\x7f"); // LONG4
    body.extend(b"J\xff\xff\xff\xff"); // BININT
    body.push(b'G'); // BINFLOAT, big-endian
    body.extend(1.5f64.to_be_bytes());
    body.extend(b"N\x94h\x00"); // MEMOIZE, BINGET
    body.extend(b"cmod\nC\n)\x81}X\x01\x00\x00\x00aK\x01sb"); // BUILD on an object
    body.push(b't');
    let v = read_legacy(&body, &[]).expect("read");
    let empty = || Value::Tuple(vec![]);
    let state = Value::Dict(vec![(str_value("a"), Value::Int(1))]);
    assert_eq!(
        v,
        Value::Tuple(vec![
            opaque("mod.C", empty()),
            opaque("mod.C", Value::Tuple(vec![empty(), Value::Dict(vec![])])),
            opaque("mod.D", empty()),
            opaque("mod.E", Value::Tuple(vec![Value::Int(1)])),
            Value::Int(5),
            Value::Int(5),
            str_value("ab"),
            str_value("\u{e9}b"),
            Value::Bytes(b"z".to_vec()),
            str_value("hi"),
            Value::Int(32767),
            Value::Int(-1),
            Value::Float(1.5),
            Value::None,
            Value::None,
            Value::Opaque {
                global: "mod.C".into(),
                args: Box::new(empty()),
                state: Some(Box::new(state)),
            },
        ])
    );
    assert_pickle_error(read_legacy(b"\x80\x06N", &[]), 0x80, "newer than 5");
    assert_pickle_error(read_legacy(b"\x82\x01", &[]), 0x82, "extension registry");
    assert_pickle_error(read_legacy(b"\x97", &[]), 0x97, "out-of-band");
    assert_pickle_error(read_legacy(b"Pfoo\n", &[]), b'P', "not a tuple");
    assert_pickle_error(read_legacy(b"K\x01K\x02\x93", &[]), 0x93, "two strings");
    assert_pickle_error(read_legacy(b"Vbad\\u12\n", &[]), b'V', "escape");
    assert_pickle_error(read_legacy(b"X\x01\x00\x00\x00\xff", &[]), b'X', "UTF-8");
}

#[test]
fn hand_made_tensor_reads() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let object = tensor_pickle("FloatStorage", "k", 6, 1, &[2, 2], &[1, 2]);
    let v = read_legacy(&object, &[("k", 6, &data)]).expect("read");
    let t = v.as_tensor().expect("tensor");
    assert_eq!(
        (t.shape.clone(), t.to_f32()),
        (vec![2, 2], vec![2.0, 4.0, 3.0, 5.0])
    );
}

#[test]
fn calls_of_other_globals_stay_opaque() {
    // os.system("echo pwned") must be recorded, not run.
    let mut body = b"cos\nsystem\n".to_vec();
    body.extend(unicode("echo pwned"));
    body.extend(b"\x85R");
    let v = read_legacy(&body, &[]).expect("read");
    assert_eq!(
        v,
        Value::Opaque {
            global: "os.system".into(),
            args: Box::new(Value::Tuple(vec![str_value("echo pwned")])),
            state: None
        }
    );
}

/// The offset in a legacy file where the object pickle's body (after PROTO 2) begins.
fn object_body_offset() -> usize {
    legacy_header(true).len() + 2
}

#[test]
fn unknown_opcode_is_named_with_its_offset() {
    let err = read_legacy(b"N\xff", &[]).expect_err("unknown opcode");
    assert_eq!(
        err,
        TorchError::UnknownOpcode {
            pickle: "legacy object pickle".into(),
            offset: object_body_offset() + 1,
            opcode: 0xff
        }
    );
}

#[track_caller]
fn assert_pickle_error(result: Result<Value, TorchError>, opcode: u8, needle: &str) {
    match result {
        Err(TorchError::Pickle {
            opcode: op, what, ..
        }) if op == opcode && what.contains(needle) => {}
        other => panic!(
            "expected a pickle error of opcode 0x{opcode:02x} containing {needle:?}, got {other:?}"
        ),
    }
}

#[test]
fn huge_declared_lengths_fail_before_allocating() {
    for (op, len) in [(0x8d_u8, u64::MAX), (0x8e, 1 << 62), (0x96, 1 << 40)] {
        let mut body = vec![op];
        body.extend(len.to_le_bytes());
        body.extend(b"abc");
        assert_pickle_error(read_legacy(&body, &[]), op, "runs past the end");
    }
    let mut body = b"X".to_vec();
    body.extend(u32::MAX.to_le_bytes());
    assert_pickle_error(read_legacy(&body, &[]), b'X', "runs past the end");
    assert_pickle_error(
        read_legacy(b"T\xff\xff\xff\xff", &[]),
        b'T',
        "negative length",
    );
    assert_pickle_error(
        read_legacy(b"\x8b\x00\x00\x00\x80", &[]),
        0x8b,
        "negative length",
    );
}

#[test]
fn undefined_memo_index() {
    assert_pickle_error(
        read_legacy(b"Nq\x01h\x02", &[]),
        b'h',
        "memo index 2 is not defined",
    );
    assert_pickle_error(
        read_legacy(b"j\x00\x00\x00\x01", &[]),
        b'j',
        "memo index 16777216",
    );
    assert_pickle_error(read_legacy(b"g7\n", &[]), b'g', "memo index 7");
}

#[test]
fn stack_underflow() {
    assert_pickle_error(read_legacy(b"", &[]), b'.', "stack underflow");
    assert_pickle_error(read_legacy(b"]Na(a", &[]), b'a', "stack underflow");
    assert_pickle_error(read_legacy(b"N(R", &[]), b'R', "stack underflow");
    assert_pickle_error(read_legacy(b"N\x87", &[]), 0x87, "stack underflow");
    assert_pickle_error(read_legacy(b"Nt", &[]), b't', "no MARK");
    assert_pickle_error(read_legacy(b"N(Nu", &[]), b'u', "odd number");
    assert_pickle_error(read_legacy(b"NNa", &[]), b'a', "not a list");
    // A pickle without STOP.
    let mut file = legacy(b"\x80\x02N", &[]);
    file.truncate(legacy_header(true).len() + 3);
    assert_pickle_error(read_checkpoint(&file), 0, "before the STOP");
}

#[test]
fn persistent_id_naming_a_missing_storage() {
    let object = tensor_pickle("FloatStorage", "7", 4, 0, &[4], &[1]);
    let err = read_legacy(&object, &[]).expect_err("missing storage");
    assert!(
        matches!(&err, TorchError::Storage { key, .. } if key == "7"),
        "{err:?}"
    );
    // Listed in the key list under another key.
    let data = floats(&[0.0; 4]);
    let err = read_legacy(&object, &[("8", 4, &data)]).expect_err("unreferenced key");
    assert!(
        matches!(&err, TorchError::Storage { key, .. } if key == "8"),
        "{err:?}"
    );
}

#[test]
fn tensor_reaching_past_its_storage() {
    let data = floats(&[0.0; 4]);
    for (offset, size, stride) in [
        (0, vec![5], vec![1]),
        (1, vec![4], vec![1]),
        (0, vec![2, 2], vec![3, 1]),
        (4, vec![], vec![]),
        (0, vec![2], vec![-1]),
    ] {
        let object = tensor_pickle("FloatStorage", "k", 4, offset, &size, &stride);
        let err = read_legacy(&object, &[("k", 4, &data)]).expect_err("past the storage");
        assert!(
            matches!(err, TorchError::Tensor { .. }),
            "{offset} {size:?} {stride:?}: {err:?}"
        );
    }
    // The storage's element count claims more than the file holds.
    let object = tensor_pickle("FloatStorage", "k", 4, 0, &[4], &[1]);
    let err = read_legacy(&object, &[("k", 1000, &data)]).expect_err("short storage");
    assert!(matches!(err, TorchError::Storage { .. }), "{err:?}");
    // The persistent id claims more elements than the storage has.
    let object = tensor_pickle("FloatStorage", "k", 9, 0, &[4], &[1]);
    let err = read_legacy(&object, &[("k", 4, &data)]).expect_err("view past the data");
    assert!(matches!(err, TorchError::Storage { .. }), "{err:?}");
    // An unsupported storage type.
    let object = tensor_pickle("ComplexFloatStorage", "k", 2, 0, &[2], &[1]);
    assert_pickle_error(
        read_legacy(&object, &[("k", 2, &data)]),
        b'Q',
        "unsupported storage type",
    );
}

#[test]
fn cycles_depth_and_output_are_bounded() {
    // A list that contains itself.
    let err = read_legacy(b"]q\x00h\x00a", &[]).expect_err("cycle");
    assert!(matches!(err, TorchError::Cycle(_)), "{err:?}");
    // 10,000 nested lists.
    let mut body = vec![b']'; 10_000];
    body.extend(vec![b'a'; 9_999]);
    assert_eq!(read_legacy(&body, &[]), Err(TorchError::TooDeep(200)));
    // 2**40 references to a 1 KB string through the memo, in 40 doublings.
    let mut body = unicode(&"x".repeat(1000));
    body.extend(b"r\x00\x00\x00\x00");
    for i in 1u32..=40 {
        body.extend(b"](j");
        body.extend((i - 1).to_le_bytes());
        body.push(b'j');
        body.extend((i - 1).to_le_bytes());
        body.extend(b"er");
        body.extend(i.to_le_bytes());
    }
    let err = read_legacy(&body, &[]).expect_err("exponential");
    assert!(matches!(err, TorchError::OutputLimit { .. }), "{err:?}");
    // The same doubling through set(list), which copies its argument while unpickling.
    let mut body = b"]r\x00\x00\x00\x00(".to_vec();
    for _ in 0..2000 {
        body.extend(b"j\x00\x00\x00\x00");
    }
    body.push(b'e');
    for _ in 0..2000 {
        body.extend(b"cbuiltins\nset\nj\x00\x00\x00\x00\x85R0");
    }
    body.push(b'N');
    assert_pickle_error(read_legacy(&body, &[]), b'R', "copies more data");
}

#[test]
fn not_a_checkpoint_and_big_endian() {
    assert!(matches!(
        read_checkpoint(b""),
        Err(TorchError::NotACheckpoint(_))
    ));
    assert!(matches!(
        read_checkpoint(b"hello world"),
        Err(TorchError::NotACheckpoint(_))
    ));
    assert!(matches!(
        read_checkpoint(b"\x80\x02K\x01."),
        Err(TorchError::NotACheckpoint(_))
    ));
    let mut file = legacy_header(false);
    file.extend(pickle(b"N"));
    file.extend(b"\x80\x02].");
    assert!(matches!(
        read_checkpoint(&file),
        Err(TorchError::BigEndian(_))
    ));
    // state_dict of a checkpoint without tensors.
    let file = legacy(&pickle(b"}X\x01\x00\x00\x00aK\x01s"), &[]);
    assert!(matches!(state_dict(&file), Err(TorchError::NoStateDict(_))));
}

// ---- hand-made zip archives ----

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xedb8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive of (name, contents, compression method) entries, contents stored as is.
fn zip(entries: &[(&str, &[u8], u16)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, method) in entries {
        let offset = out.len() as u32;
        let header = |sig: u32| {
            let mut h = sig.to_le_bytes().to_vec();
            h.extend([20, 0, 0, 0]); // version, flags
            h.extend(method.to_le_bytes());
            h.extend([0, 0, 0, 0]); // time, date
            h.extend(crc32(data).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend([0, 0]); // extra length
            h
        };
        out.extend(header(0x0403_4b50));
        out.extend(name.as_bytes());
        out.extend_from_slice(data);
        let mut c = header(0x0201_4b50);
        c.splice(4..4, [20, 0]); // version made by
        c.extend([0; 10]); // comment length, disk, internal and external attributes
        c.extend(offset.to_le_bytes());
        c.extend(name.as_bytes());
        central.extend(c);
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0, 0]);
    out
}

/// `('storage', torch.FloatStorage, key, 'cpu', numel)` (zip format) rebuilt as a tensor.
fn zip_tensor_pickle(key: &str, numel: i32, size: &[i32]) -> Vec<u8> {
    let mut body = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
    body.extend(unicode("storage"));
    body.extend(b"ctorch\nFloatStorage\n");
    body.extend(unicode(key));
    body.extend(unicode("cpu"));
    body.extend(binint(numel));
    body.extend(b"tQ");
    body.extend(binint(0));
    body.extend(int_tuple(size));
    body.extend(int_tuple(&[1]));
    body.extend(b"\x89)tR");
    pickle(&body)
}

#[test]
fn hand_made_zip_archives() {
    let data = floats(&[1.0, 2.0, 3.0]);
    let object = zip_tensor_pickle("0", 3, &[3]);
    let good = zip(&[
        ("a/data.pkl", &object, 0),
        ("a/data/0", &data, 0),
        ("a/byteorder", b"little", 0),
    ]);
    let v = read_checkpoint(&good).expect("hand-made zip");
    assert_eq!(v.as_tensor().map(Tensor::to_f32), Some(vec![1.0, 2.0, 3.0]));

    // A persistent id naming a storage entry that does not exist.
    let object = zip_tensor_pickle("5", 3, &[3]);
    let err = read_checkpoint(&zip(&[("a/data.pkl", &object, 0), ("a/data/0", &data, 0)]))
        .expect_err("missing");
    assert!(
        matches!(&err, TorchError::Missing(m) if m.contains("a/data/5")),
        "{err:?}"
    );

    // A tensor reaching past its storage entry.
    let object = zip_tensor_pickle("0", 3, &[4]);
    let err = read_checkpoint(&zip(&[("a/data.pkl", &object, 0), ("a/data/0", &data, 0)]))
        .expect_err("past");
    assert!(matches!(err, TorchError::Tensor { .. }), "{err:?}");

    // A storage entry shorter than the persistent id's numel.
    let object = zip_tensor_pickle("0", 4, &[3]);
    let err = read_checkpoint(&zip(&[("a/data.pkl", &object, 0), ("a/data/0", &data, 0)]))
        .expect_err("short");
    assert!(matches!(err, TorchError::Storage { .. }), "{err:?}");

    let object = zip_tensor_pickle("0", 3, &[3]);
    let err = read_checkpoint(&zip(&[("a/data.pkl", &object, 8), ("a/data/0", &data, 0)]))
        .expect_err("deflated");
    assert!(
        matches!(&err, TorchError::ZipEntry { entry, .. } if entry == "a/data.pkl"),
        "{err:?}"
    );

    let err = read_checkpoint(&zip(&[
        ("a/data.pkl", &object, 0),
        ("a/byteorder", b"big", 0),
    ]))
    .expect_err("big");
    assert!(matches!(err, TorchError::BigEndian(_)), "{err:?}");

    let err = read_checkpoint(&zip(&[("a/data/0", &data, 0)])).expect_err("no data.pkl");
    assert!(matches!(err, TorchError::Missing(_)), "{err:?}");

    // A corrupted storage fails its CRC.
    let mut bad = good.clone();
    let at = bad
        .windows(4)
        .position(|w| w == 1.0f32.to_le_bytes())
        .expect("data");
    bad[at] ^= 1;
    let err = read_checkpoint(&bad).expect_err("crc");
    assert!(
        matches!(&err, TorchError::ZipEntry { what, .. } if what.contains("CRC")),
        "{err:?}"
    );
}

// ---- robustness ----

/// Reads every truncation and many single-byte corruptions of `bytes`; any panic fails.
fn mangle(bytes: &[u8]) -> (usize, usize) {
    let (mut ok, mut err) = (0, 0);
    let mut count = |r: Result<Value, TorchError>| match r {
        Ok(_) => ok += 1,
        Err(_) => err += 1,
    };
    for len in 0..bytes.len() {
        count(read_checkpoint(&bytes[..len]));
    }
    let mut copy = bytes.to_vec();
    for pos in 0..bytes.len() {
        let original = copy[pos];
        for new in [
            original ^ (1 << (pos % 8)),
            original.wrapping_add(1),
            0x00,
            0xff,
        ] {
            if new != original {
                copy[pos] = new;
                count(read_checkpoint(&copy));
                let _ = state_dict(&copy);
            }
        }
        copy[pos] = original;
    }
    (ok, err)
}

#[test]
fn truncated_and_corrupted_legacy_files_never_panic() {
    for name in ["plain_legacy.pt", "checkpoint_legacy_p4.pth.tar"] {
        let (ok, err) = mangle(&fixture(name));
        assert!(ok > 0 && err > 0, "{name}: {ok} ok, {err} errors");
    }
}

#[test]
fn truncated_and_corrupted_zip_files_never_panic() {
    for name in ["plain.pt", "dataparallel.pt"] {
        let (ok, err) = mangle(&fixture(name));
        assert!(err > 0, "{name}: {ok} ok, {err} errors");
    }
}

#[test]
fn corrupted_pickles_in_a_zip_never_panic() {
    // The zip CRC stops corruptions of real files before the pickle; re-archive each
    // corrupted pickle with a fresh CRC so that they reach the unpickler.
    let data = floats(&[1.0, 2.0, 3.0]);
    let object = fixture("pickle_p2.pkl");
    let tensor = zip_tensor_pickle("0", 3, &[3]);
    for base in [object, tensor] {
        let mut copy = base.clone();
        for pos in 0..base.len() {
            for new in [base[pos] ^ 0x01, base[pos] ^ 0x80, 0x00, 0xff, b'(', b'h'] {
                copy[pos] = new;
                let _ = read_checkpoint(&zip(&[("a/data.pkl", &copy, 0), ("a/data/0", &data, 0)]));
            }
            copy[pos] = base[pos];
            let _ = read_checkpoint(&zip(&[
                ("a/data.pkl", &base[..pos], 0),
                ("a/data/0", &data, 0),
            ]));
        }
    }
}
