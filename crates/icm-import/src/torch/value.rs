//! The unpickled object: a tree of plain data, tensors and opaque calls.

use super::tensor::Tensor;

/// An unpickled Python object.
///
/// Only data is built: Python containers become [`Value::Tuple`], [`Value::List`] and
/// [`Value::Dict`]; torch's tensor-rebuild functions become [`Value::Tensor`]; a handful of
/// constructors of plain data are evaluated (see [`read_checkpoint`](super::read_checkpoint));
/// any other call of a global (a class or function named by the file) is kept as an
/// inert [`Value::Opaque`] record of its name and arguments, and nothing is ever executed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` that fits in 64 bits.
    Int(i64),
    /// An `int` that does not fit in 64 bits: its bytes in little-endian two's complement,
    /// without redundant sign bytes (as pickle's `LONG1`/`LONG4` store it).
    BigInt(Vec<u8>),
    /// A `float`.
    Float(f64),
    /// A `str` (and a Python 2 `str`, decoded as Latin-1).
    Str(String),
    /// `bytes` or `bytearray`.
    Bytes(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `list`; also a `set` or `frozenset`, with its elements in pickle order.
    List(Vec<Value>),
    /// A `dict`, `collections.OrderedDict` or `collections.defaultdict`: its (key, value)
    /// pairs in insertion order. A key of type `None`, `bool`, `int`, `str` or `bytes`
    /// occurs once (a later value replaces an earlier one, as in Python); equal keys of
    /// other types are kept as they come. Attributes set on the dict (torch's
    /// `_metadata` of a state dict) are dropped.
    Dict(Vec<(Value, Value)>),
    /// A tensor or `nn.Parameter` (also a bare storage, as a 1-dimensional tensor).
    Tensor(Tensor),
    /// A global (a class or function) that was referenced but not called, as
    /// `"module.name"`, e.g. `"torch.float32"`.
    Global(String),
    /// A call of a global that is not interpreted: `REDUCE`, `NEWOBJ`, `NEWOBJ_EX`, `INST`
    /// or `OBJ`. Items appended or set on it (subclasses of list or dict) are dropped.
    Opaque {
        /// The called global as `"module.name"`, e.g. `"torch.device"`. Empty when the
        /// callable was itself a computed object; then `args` is the tuple
        /// `(callable, args)`.
        global: String,
        /// The arguments, normally a tuple; for `NEWOBJ_EX` the tuple `(args, kwargs)`.
        args: Box<Value>,
        /// The state given by `BUILD` (`__setstate__` or `__dict__`), if any.
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// The value stored under the string key `key` of a [`Value::Dict`]; `None` for other
    /// values or when the key is absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string of a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of a [`Value::Int`] (or a [`Value::Bool`] as 0 or 1, as in Python).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The number of a [`Value::Float`] or [`Value::Int`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The tensor of a [`Value::Tensor`].
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }
}
