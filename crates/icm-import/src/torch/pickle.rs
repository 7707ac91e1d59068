//! A pickle interpreter that builds data and never calls anything.
//!
//! [`unpickle`] runs the opcodes of pickle protocols 0 to 5 into an arena of [`Node`]s
//! (so that the memo, `DUP` and in-place `APPEND`/`SETITEMS` share objects as Python
//! does). Calls (`REDUCE`, `NEWOBJ`, ...) are interpreted only for torch's tensor-rebuild
//! functions and a few constructors of plain data (see [`Known`]); every other call becomes
//! an inert [`Node::Opaque`]. Tensors are recorded as references to storages
//! ([`TensorRef`]); their data is copied later, once the storages are located
//! (`resolve.rs`).
//!
//! Bounds: every opcode adds at most one node and one stack slot, and the values a call
//! copies out of its arguments (tensor sizes, storage keys, the items of `set(list)`) are
//! charged to a copy budget of twice the stream length, so memory stays linear in the
//! stream length; nodes and memo entries are also charged to the reader's output
//! [`Budget`]. Every read of an argument is bounds-checked, so a declared length beyond
//! the end of the stream fails before anything is allocated. The only recursion, through
//! nested `_rebuild_from_type_v2` calls, is limited to [`MAX_REBUILD_NESTING`] levels.

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;

use super::error::TorchError;
use super::resolve::Budget;
use super::tensor::DType;

/// Index of a node in [`Pickle::nodes`].
pub(crate) type NodeId = usize;

/// An object built by the unpickler.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// Minimal little-endian two's complement bytes of an integer beyond `i64`.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<NodeId>),
    List(Vec<NodeId>),
    Dict(Vec<(NodeId, NodeId)>),
    Global(Box<GlobalName>),
    Opaque {
        callable: NodeId,
        args: NodeId,
        state: Option<NodeId>,
    },
    Storage(Box<StorageRef>),
    Tensor(Box<TensorRef>),
}

/// A global (`module.name`) named by `GLOBAL`, `STACK_GLOBAL` or `INST`.
#[derive(Debug, Clone)]
pub(crate) struct GlobalName {
    pub module: String,
    pub name: String,
}

/// A storage named by a persistent id: `count` elements of `dtype` starting at element
/// `start` of the data stored under `key`.
#[derive(Debug, Clone)]
pub(crate) struct StorageRef {
    pub key: String,
    pub dtype: DType,
    pub start: u64,
    pub count: u64,
}

/// A tensor rebuilt from a storage: element type, storage offset, size and stride in
/// elements of `dtype`.
#[derive(Debug, Clone)]
pub(crate) struct TensorRef {
    /// A [`Node::Storage`].
    pub storage: NodeId,
    pub dtype: DType,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
    /// Offset of the `REDUCE` opcode, for error messages.
    pub at: usize,
}

/// The result of [`unpickle`].
#[derive(Debug)]
pub(crate) struct Pickle {
    pub nodes: Vec<Node>,
    /// The object `STOP` returned.
    pub root: NodeId,
    /// Offset just past the `STOP` opcode.
    pub end: usize,
    /// Every storage key referenced, with the dtype of its first reference (the element
    /// size in which the legacy format counts the storage's data).
    pub storages: BTreeMap<String, DType>,
}

/// How many nested `_rebuild_from_type_v2` calls are followed.
const MAX_REBUILD_NESTING: usize = 4;

/// Runs the pickle that starts at `data[start]` until its `STOP` opcode. `name` names the
/// stream in errors; offsets in errors are offsets into `data`. Every node and memo entry
/// is charged to `budget`.
pub(crate) fn unpickle(
    data: &[u8],
    start: usize,
    name: &str,
    budget: &mut Budget,
) -> Result<Pickle, TorchError> {
    let len = data.len().saturating_sub(start);
    let mut u = Unpickler {
        data,
        pos: start,
        name,
        op: 0,
        op_at: start,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        copy_budget: len.saturating_mul(2).saturating_add(4096),
        budget,
        storages: BTreeMap::new(),
    };
    let root = u.run()?;
    Ok(Pickle {
        nodes: u.nodes,
        root,
        end: u.pos,
        storages: u.storages,
    })
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    name: &'a str,
    /// The opcode being executed and its offset, for errors.
    op: u8,
    op_at: usize,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    /// Stack lengths at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
    /// Units (node ids, integers, bytes) that calls may still copy out of their arguments.
    copy_budget: usize,
    /// The reader's output budget, charged for nodes and memo entries.
    budget: &'a mut Budget,
    storages: BTreeMap<String, DType>,
}

/// Calls the unpickler interprets, by the global called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// `torch._utils._rebuild_tensor(storage, offset, size, stride)`.
    RebuildTensor,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_tensor_v3(storage, offset, size, stride, requires_grad,
    /// backward_hooks, dtype[, metadata])`.
    RebuildTensorV3,
    /// `torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)`,
    /// `_rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)` and
    /// `_rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad)`: the
    /// first argument.
    FirstArg,
    /// `torch._tensor._rebuild_from_type_v2(func, type, args, state)` and
    /// `_rebuild_from_type(func, type, args, dict)`: `func(*args)`.
    RebuildFromType,
    /// `collections.OrderedDict`, `builtins.dict`: a dict, filled from a dict or a list of
    /// pairs given as the first argument.
    Dict,
    /// `collections.defaultdict(factory)`: an empty dict.
    DefaultDict,
    /// `builtins.set`, `frozenset`, `list`: a list of the items of the first argument.
    List,
    /// `_codecs.encode(str, "latin1")`, how protocol 2 pickles `bytes`; `builtins.bytes`
    /// and `bytearray` with no argument or the same two.
    Encode,
    /// Anything else (and non-global callables): an opaque call.
    Other,
}

impl Known {
    fn classify(module: &str, name: &str) -> Known {
        // Python 2 spellings (`fix_imports` maps them in Python 3).
        let module = match module {
            "__builtin__" => "builtins",
            m => m,
        };
        match (module, name) {
            ("torch._utils", "_rebuild_tensor") => Known::RebuildTensor,
            ("torch._utils", "_rebuild_tensor_v2") => Known::RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor_v3") => Known::RebuildTensorV3,
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state")
            | ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor") => Known::FirstArg,
            ("torch._tensor" | "torch.tensor", "_rebuild_from_type_v2" | "_rebuild_from_type") => {
                Known::RebuildFromType
            }
            ("collections", "OrderedDict") | ("builtins", "dict") => Known::Dict,
            ("collections", "defaultdict") => Known::DefaultDict,
            ("builtins", "set" | "frozenset" | "list") => Known::List,
            ("_codecs", "encode") | ("builtins", "bytes" | "bytearray") => Known::Encode,
            _ => Known::Other,
        }
    }
}

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const FLOAT: u8 = b'F';
    pub const INT: u8 = b'I';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const LONG: u8 = b'L';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const PERSID: u8 = b'P';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const STRING: u8 = b'S';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const UNICODE: u8 = b'V';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const GET: u8 = b'g';
    pub const BINGET: u8 = b'h';
    pub const INST: u8 = b'i';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const OBJ: u8 = b'o';
    pub const PUT: u8 = b'p';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const BINFLOAT: u8 = b'G';
    // Protocol 2.
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const EXT1: u8 = 0x82;
    pub const EXT2: u8 = 0x83;
    pub const EXT4: u8 = 0x84;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    // Protocol 3.
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    // Protocol 4.
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    // Protocol 5.
    pub const BYTEARRAY8: u8 = 0x96;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

impl<'a> Unpickler<'a> {
    fn err(&self, what: impl Into<String>) -> TorchError {
        TorchError::Pickle {
            pickle: self.name.to_string(),
            offset: self.op_at,
            opcode: self.op,
            what: what.into(),
        }
    }

    // ---- reading arguments ----

    fn take(&mut self, n: usize) -> Result<&'a [u8], TorchError> {
        let remaining = self.data.len().saturating_sub(self.pos);
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| {
                self.err(format!(
                    "argument of {n} bytes runs past the end ({remaining} bytes remain)"
                ))
            })?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TorchError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, TorchError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, TorchError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, TorchError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, TorchError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, TorchError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A length argument as `usize` (lengths beyond the stream fail in `take` anyway).
    fn len_arg(&mut self, len: u64) -> Result<usize, TorchError> {
        usize::try_from(len)
            .map_err(|_| self.err(format!("declared length {len} exceeds the address space")))
    }

    /// A signed 32-bit length (`BINSTRING`, `LONG4`).
    fn signed_len(&mut self) -> Result<usize, TorchError> {
        let n = self.i32()?;
        usize::try_from(n).map_err(|_| self.err(format!("negative length {n}")))
    }

    /// The bytes up to the next `\n`, which is consumed.
    fn line(&mut self) -> Result<&'a [u8], TorchError> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("text argument has no terminating newline"))?;
        let line = self.take(n)?;
        self.pos += 1;
        Ok(line)
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, TorchError> {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|e| self.err(format!("string is not UTF-8: {e}")))
    }

    fn line_str(&mut self) -> Result<&'a str, TorchError> {
        let line = self.line()?;
        std::str::from_utf8(line).map_err(|_| self.err("text argument is not UTF-8"))
    }

    // ---- the stack ----

    /// Adds a node to the arena, charging it (with one stack or container slot and its
    /// payload) to the output budget.
    fn add(&mut self, node: Node) -> Result<NodeId, TorchError> {
        let payload = match &node {
            Node::Str(s) => s.len(),
            Node::Bytes(b) | Node::BigInt(b) => b.len(),
            Node::Tuple(v) | Node::List(v) => v.len() * size_of::<NodeId>(),
            Node::Dict(pairs) => pairs.len() * 2 * size_of::<NodeId>(),
            Node::Global(g) => size_of::<GlobalName>() + g.module.len() + g.name.len(),
            Node::Storage(s) => size_of::<StorageRef>() + s.key.len(),
            Node::Tensor(t) => size_of::<TensorRef>() + (t.size.len() + t.stride.len()) * 8,
            Node::None | Node::Bool(_) | Node::Int(_) | Node::Float(_) | Node::Opaque { .. } => 0,
        };
        self.budget
            .charge(size_of::<Node>() + size_of::<NodeId>() + payload)?;
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, node: Node) -> Result<(), TorchError> {
        let id = self.add(node)?;
        self.stack.push(id);
        Ok(())
    }

    /// The length of the stack below which the current `MARK` frame may not pop.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<NodeId, TorchError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&self) -> Result<NodeId, TorchError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow (no object on top)"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("stack underflow"))
    }

    /// The items above the topmost `MARK`, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<NodeId>, TorchError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.err("MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn node(&self, id: NodeId) -> Result<&Node, TorchError> {
        self.nodes
            .get(id)
            .ok_or_else(|| self.err(format!("internal: no node {id}")))
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, TorchError> {
        if id >= self.nodes.len() {
            return Err(self.err(format!("internal: no node {id}")));
        }
        // Cannot fail after the check; the error value does not allocate.
        self.nodes
            .get_mut(id)
            .ok_or(TorchError::Missing(String::new()))
    }

    fn charge_copy(&mut self, units: usize) -> Result<(), TorchError> {
        self.copy_budget = self.copy_budget.checked_sub(units).ok_or_else(|| {
            self.err("the pickle copies more data out of shared objects than twice its length")
        })?;
        Ok(())
    }

    // ---- the interpreter ----

    fn run(&mut self) -> Result<NodeId, TorchError> {
        loop {
            self.op_at = self.pos;
            self.op = 0;
            let Some(&code) = self.data.get(self.pos) else {
                return Err(self.err("stream ends before the STOP opcode"));
            };
            self.pos += 1;
            self.op = code;
            match code {
                op::STOP => return self.pop(),
                op::PROTO => {
                    let v = self.u8()?;
                    if v > 5 {
                        return Err(self.err(format!("pickle protocol {v} is newer than 5")));
                    }
                }
                op::FRAME => {
                    // A framing hint; the frame's opcodes follow inline.
                    self.u64()?;
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.stack.len() > self.floor() {
                        self.pop()?;
                    } else {
                        self.pop_mark()?;
                    }
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let top = self.top()?;
                    self.stack.push(top);
                }

                // Scalars.
                op::NONE => self.push(Node::None)?,
                op::NEWTRUE => self.push(Node::Bool(true))?,
                op::NEWFALSE => self.push(Node::Bool(false))?,
                op::INT => {
                    let line = self.line_str()?.trim();
                    let node = match line {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        _ => self.parse_int(line)?,
                    };
                    self.push(node)?;
                }
                op::LONG => {
                    let line = self.line_str()?.trim();
                    let digits = line.strip_suffix('L').unwrap_or(line);
                    let node = self.parse_int(digits)?;
                    self.push(node)?;
                }
                op::BININT => {
                    let i = self.i32()?;
                    self.push(Node::Int(i64::from(i)))?;
                }
                op::BININT1 => {
                    let i = self.u8()?;
                    self.push(Node::Int(i64::from(i)))?;
                }
                op::BININT2 => {
                    let i = self.u16()?;
                    self.push(Node::Int(i64::from(i)))?;
                }
                op::LONG1 => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.push(long_from_bytes(bytes))?;
                }
                op::LONG4 => {
                    let n = self.signed_len()?;
                    let bytes = self.take(n)?;
                    self.push(long_from_bytes(bytes))?;
                }
                op::FLOAT => {
                    let line = self.line_str()?.trim();
                    let f = line
                        .parse::<f64>()
                        .map_err(|_| self.err(format!("invalid float {line:?}")))?;
                    self.push(Node::Float(f))?;
                }
                op::BINFLOAT => {
                    let f = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(f))?;
                }

                // Strings and bytes.
                op::STRING => {
                    let line = self.line()?;
                    let bytes = self.quoted(line)?;
                    self.push(Node::Str(latin1(&bytes)))?;
                }
                op::BINSTRING => {
                    let n = self.signed_len()?;
                    let bytes = self.take(n)?;
                    self.push(Node::Str(latin1(bytes)))?;
                }
                op::SHORT_BINSTRING => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.push(Node::Str(latin1(bytes)))?;
                }
                op::UNICODE => {
                    let line = self.line()?;
                    let s = self.raw_unicode_escape(line)?;
                    self.push(Node::Str(s))?;
                }
                op::SHORT_BINUNICODE => {
                    let n = usize::from(self.u8()?);
                    self.unicode(n)?;
                }
                op::BINUNICODE => {
                    let n = self.u32()?;
                    let n = self.len_arg(u64::from(n))?;
                    self.unicode(n)?;
                }
                op::BINUNICODE8 => {
                    let n = self.u64()?;
                    let n = self.len_arg(n)?;
                    self.unicode(n)?;
                }
                op::SHORT_BINBYTES => {
                    let n = usize::from(self.u8()?);
                    self.bytes(n)?;
                }
                op::BINBYTES => {
                    let n = self.u32()?;
                    let n = self.len_arg(u64::from(n))?;
                    self.bytes(n)?;
                }
                op::BINBYTES8 | op::BYTEARRAY8 => {
                    let n = self.u64()?;
                    let n = self.len_arg(n)?;
                    self.bytes(n)?;
                }

                // Containers.
                op::EMPTY_TUPLE => self.push(Node::Tuple(Vec::new()))?,
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    if self.stack.len() < self.floor() + n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items))?;
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?;
                }
                op::EMPTY_LIST => self.push(Node::List(Vec::new()))?,
                op::LIST => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?;
                }
                op::EMPTY_DICT => self.push(Node::Dict(Vec::new()))?,
                op::DICT => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push(Node::Dict(pairs))?;
                }
                op::EMPTY_SET => self.push(Node::List(Vec::new()))?,
                op::FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?;
                }
                op::APPEND => {
                    let value = self.pop()?;
                    self.extend_list(vec![value])?;
                }
                op::APPENDS | op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_dict(vec![(key, value)])?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.extend_dict(pairs)?;
                }

                // The memo.
                op::GET => {
                    let i = self.memo_index_line()?;
                    self.get(i)?;
                }
                op::BINGET => {
                    let i = self.u8()?;
                    self.get(u64::from(i))?;
                }
                op::LONG_BINGET => {
                    let i = self.u32()?;
                    self.get(u64::from(i))?;
                }
                op::PUT => {
                    let i = self.memo_index_line()?;
                    self.put(i)?;
                }
                op::BINPUT => {
                    let i = self.u8()?;
                    self.put(u64::from(i))?;
                }
                op::LONG_BINPUT => {
                    let i = self.u32()?;
                    self.put(u64::from(i))?;
                }
                op::MEMOIZE => {
                    let i = self.memo.len() as u64;
                    self.put(i)?;
                }

                // Globals and calls.
                op::GLOBAL => {
                    let module = self.line_str()?.to_string();
                    let name = self.line_str()?.to_string();
                    self.push(Node::Global(Box::new(GlobalName { module, name })))?;
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = match (self.node(module)?, self.node(name)?) {
                        (Node::Str(module), Node::Str(name)) => (module.clone(), name.clone()),
                        _ => return Err(self.err("STACK_GLOBAL needs two strings")),
                    };
                    self.charge_copy(module.len() + name.len())?;
                    self.push(Node::Global(Box::new(GlobalName { module, name })))?;
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let result = self.call(callable, args, 0)?;
                    self.stack.push(result);
                }
                op::NEWOBJ => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.new_object(class, args)?;
                }
                op::NEWOBJ_EX => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let both = self.add(Node::Tuple(vec![args, kwargs]))?;
                    self.new_object(class, both)?;
                }
                op::INST => {
                    let module = self.line_str()?.to_string();
                    let name = self.line_str()?.to_string();
                    let items = self.pop_mark()?;
                    let callable = self.add(Node::Global(Box::new(GlobalName { module, name })))?;
                    let args = self.add(Node::Tuple(items))?;
                    self.push(Node::Opaque {
                        callable,
                        args,
                        state: None,
                    })?;
                }
                op::OBJ => {
                    let mut items = self.pop_mark()?.into_iter();
                    let callable = items
                        .next()
                        .ok_or_else(|| self.err("OBJ without a class"))?;
                    let args = self.add(Node::Tuple(items.collect()))?;
                    self.push(Node::Opaque {
                        callable,
                        args,
                        state: None,
                    })?;
                }
                op::BUILD => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    // Only opaque objects keep a state; attributes of dicts (torch's
                    // `_metadata`), tensors and other data are dropped.
                    if let Node::Opaque { state: s, .. } = self.node_mut(target)? {
                        *s = Some(state);
                    }
                }

                // Persistent ids (torch's storages).
                op::BINPERSID => {
                    let pid = self.pop()?;
                    let result = self.persistent_load(pid)?;
                    self.stack.push(result);
                }
                op::PERSID => {
                    let line = self.line()?;
                    let pid = self.add(Node::Str(latin1(line)))?;
                    let result = self.persistent_load(pid)?;
                    self.stack.push(result);
                }

                op::READONLY_BUFFER => {
                    self.top()?;
                }
                op::NEXT_BUFFER => {
                    return Err(self.err("out-of-band buffers (NEXT_BUFFER) are not supported"))
                }
                op::EXT1 | op::EXT2 | op::EXT4 => {
                    return Err(
                        self.err("extension registry codes (EXT1/EXT2/EXT4) are not supported")
                    )
                }
                _ => {
                    return Err(TorchError::UnknownOpcode {
                        pickle: self.name.to_string(),
                        offset: self.op_at,
                        opcode: code,
                    })
                }
            }
        }
    }

    /// A decimal integer of the text opcodes `INT` and `LONG`.
    fn parse_int(&self, text: &str) -> Result<Node, TorchError> {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Node::Int(i));
        }
        decimal_to_long(text)
            .ok_or_else(|| self.err(format!("invalid integer {:?}", truncate(text))))
    }

    fn unicode(&mut self, n: usize) -> Result<(), TorchError> {
        let bytes = self.take(n)?;
        let s = self.utf8(bytes)?;
        self.push(Node::Str(s))?;
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<(), TorchError> {
        let bytes = self.take(n)?.to_vec();
        self.push(Node::Bytes(bytes))?;
        Ok(())
    }

    fn memo_index_line(&mut self) -> Result<u64, TorchError> {
        let line = self.line_str()?.trim();
        line.parse::<u64>()
            .map_err(|_| self.err(format!("invalid memo index {line:?}")))
    }

    fn get(&mut self, i: u64) -> Result<(), TorchError> {
        let id = *self
            .memo
            .get(&i)
            .ok_or_else(|| self.err(format!("memo index {i} is not defined")))?;
        self.stack.push(id);
        Ok(())
    }

    fn put(&mut self, i: u64) -> Result<(), TorchError> {
        let top = self.top()?;
        // A hash map entry: key, value and about as much again of table overhead.
        self.budget.charge(4 * size_of::<u64>())?;
        self.memo.insert(i, top);
        Ok(())
    }

    /// Groups `k1 v1 k2 v2 ...` into pairs.
    fn pairs(&self, items: Vec<NodeId>) -> Result<Vec<(NodeId, NodeId)>, TorchError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err(format!(
                "odd number of items ({}) for key-value pairs",
                items.len()
            )));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(pairs)
    }

    /// `APPEND`, `APPENDS`, `ADDITEMS`: extends the list (or set) on top of the stack;
    /// items given to an opaque object are dropped.
    fn extend_list(&mut self, items: Vec<NodeId>) -> Result<(), TorchError> {
        let target = self.top()?;
        match self.node_mut(target)? {
            Node::List(list) => list.extend(items),
            Node::Opaque { .. } => {}
            _ => return Err(self.err("APPEND/APPENDS/ADDITEMS target is not a list or set")),
        }
        Ok(())
    }

    /// `SETITEM`, `SETITEMS`: extends the dict on top of the stack; items given to an
    /// opaque object are dropped.
    fn extend_dict(&mut self, pairs: Vec<(NodeId, NodeId)>) -> Result<(), TorchError> {
        let target = self.top()?;
        match self.node_mut(target)? {
            Node::Dict(dict) => dict.extend(pairs),
            Node::Opaque { .. } => {}
            _ => return Err(self.err("SETITEM/SETITEMS target is not a dict")),
        }
        Ok(())
    }

    /// `NEWOBJ`: `class.__new__(class, *args)`. Subclasses of dict or set created this way
    /// are filled by later opcodes, so the known container classes become empty containers.
    fn new_object(&mut self, class: NodeId, args: NodeId) -> Result<(), TorchError> {
        let known = self.classify(class)?;
        let node = match known {
            Known::Dict | Known::DefaultDict => Node::Dict(Vec::new()),
            Known::List => Node::List(Vec::new()),
            _ => Node::Opaque {
                callable: class,
                args,
                state: None,
            },
        };
        self.push(node)?;
        Ok(())
    }

    fn classify(&self, callable: NodeId) -> Result<Known, TorchError> {
        Ok(match self.node(callable)? {
            Node::Global(g) => Known::classify(&g.module, &g.name),
            _ => Known::Other,
        })
    }

    /// The items of a tuple argument, copied (and charged to the copy budget).
    fn tuple_items(&mut self, args: NodeId) -> Result<Option<Vec<NodeId>>, TorchError> {
        let items = match self.node(args)? {
            Node::Tuple(items) => items.clone(),
            _ => return Ok(None),
        };
        self.charge_copy(items.len())?;
        Ok(Some(items))
    }

    /// `REDUCE`: `callable(*args)`, interpreted for [`Known`] callables; returns the node
    /// of the result (which is the argument itself for the parameter rebuilds).
    fn call(&mut self, callable: NodeId, args: NodeId, depth: usize) -> Result<NodeId, TorchError> {
        let known = self.classify(callable)?;
        let opaque = Node::Opaque {
            callable,
            args,
            state: None,
        };
        if known == Known::Other {
            return self.add(opaque);
        }
        let Some(items) = self.tuple_items(args)? else {
            return Err(self.err("call arguments are not a tuple"));
        };
        let node = match known {
            Known::RebuildTensor => self.rebuild_tensor(&items, 4, None)?,
            Known::RebuildTensorV2 => self.rebuild_tensor(&items, 6, None)?,
            Known::RebuildTensorV3 => {
                let dtype = *items
                    .get(6)
                    .ok_or_else(|| self.err("_rebuild_tensor_v3 without a dtype"))?;
                self.rebuild_tensor(&items, 7, Some(dtype))?
            }
            Known::FirstArg => {
                return items
                    .first()
                    .copied()
                    .ok_or_else(|| self.err("tensor rebuild call without arguments"))
            }
            Known::RebuildFromType => {
                if depth >= MAX_REBUILD_NESTING {
                    return Err(self.err("_rebuild_from_type nested too deeply"));
                }
                let (Some(&func), Some(&inner)) = (items.first(), items.get(2)) else {
                    return Err(self.err("_rebuild_from_type needs (func, type, args, state)"));
                };
                return self.call(func, inner, depth + 1);
            }
            Known::Dict => match items.first() {
                None => Node::Dict(Vec::new()),
                Some(&from) => self.dict_from(from)?.unwrap_or(opaque),
            },
            Known::DefaultDict => Node::Dict(Vec::new()),
            Known::List => match items.first() {
                None => Node::List(Vec::new()),
                Some(&from) => match self.node(from)? {
                    Node::List(v) | Node::Tuple(v) => {
                        let v = v.clone();
                        self.charge_copy(v.len())?;
                        Node::List(v)
                    }
                    _ => opaque,
                },
            },
            Known::Encode => self.encode(&items)?.unwrap_or(opaque),
            Known::Other => opaque,
        };
        self.add(node)
    }

    /// `OrderedDict(x)` / `dict(x)` for a dict or a list of 2-tuples `x`.
    fn dict_from(&mut self, from: NodeId) -> Result<Option<Node>, TorchError> {
        let pairs = match self.node(from)? {
            Node::Dict(pairs) => pairs.clone(),
            Node::List(items) | Node::Tuple(items) => {
                let mut pairs = Vec::with_capacity(items.len());
                for &item in items {
                    match self.node(item)? {
                        Node::Tuple(kv) | Node::List(kv) if kv.len() == 2 => {
                            pairs.push((kv[0], kv[1]))
                        }
                        _ => return Ok(None),
                    }
                }
                pairs
            }
            _ => return Ok(None),
        };
        self.charge_copy(pairs.len().saturating_mul(2))?;
        Ok(Some(Node::Dict(pairs)))
    }

    /// `_codecs.encode(s, encoding)`, `bytes()`, `bytearray(s, encoding)`: bytes for the
    /// Latin-1 and UTF-8 encodings.
    fn encode(&mut self, items: &[NodeId]) -> Result<Option<Node>, TorchError> {
        let bytes = match items {
            [] => Vec::new(),
            [from] => match self.node(*from)? {
                Node::Bytes(b) => b.clone(),
                _ => return Ok(None),
            },
            [s, enc, ..] => {
                let (Node::Str(s), Node::Str(enc)) = (self.node(*s)?, self.node(*enc)?) else {
                    return Ok(None);
                };
                match enc.to_ascii_lowercase().replace('_', "-").as_str() {
                    "latin1" | "latin-1" | "iso-8859-1" => {
                        let mut out = Vec::with_capacity(s.len());
                        for c in s.chars() {
                            let Ok(b) = u8::try_from(u32::from(c)) else {
                                return Err(self.err("_codecs.encode: character outside Latin-1"));
                            };
                            out.push(b);
                        }
                        out
                    }
                    "utf8" | "utf-8" => s.as_bytes().to_vec(),
                    _ => return Ok(None),
                }
            }
        };
        self.charge_copy(bytes.len())?;
        Ok(Some(Node::Bytes(bytes)))
    }

    /// An integer argument.
    fn int_arg(&self, id: NodeId, what: &str) -> Result<i64, TorchError> {
        match self.node(id)? {
            Node::Int(i) => Ok(*i),
            Node::Bool(b) => Ok(i64::from(*b)),
            _ => Err(self.err(format!("{what} is not an integer"))),
        }
    }

    /// A tuple or list of integers (a size or stride), copied.
    fn ints_arg(&mut self, id: NodeId, what: &str) -> Result<Vec<i64>, TorchError> {
        let items = match self.node(id)? {
            Node::Tuple(items) | Node::List(items) => items.clone(),
            _ => return Err(self.err(format!("{what} is not a tuple"))),
        };
        self.charge_copy(items.len())?;
        items.iter().map(|&i| self.int_arg(i, what)).collect()
    }

    /// `_rebuild_tensor*(storage, storage_offset, size, stride, ...)`: checks the argument
    /// types (the data is checked against the storage later). `metadata_at` is the index of
    /// the optional metadata argument; `dtype` the dtype argument of `_rebuild_tensor_v3`.
    fn rebuild_tensor(
        &mut self,
        items: &[NodeId],
        metadata_at: usize,
        dtype: Option<NodeId>,
    ) -> Result<Node, TorchError> {
        let [storage, offset, size, stride, ..] = *items else {
            return Err(self.err(format!(
                "tensor rebuild with {} arguments (at least 4 expected)",
                items.len()
            )));
        };
        if items.len() > metadata_at + 1 {
            return Err(self.err(format!(
                "tensor rebuild with {} arguments (at most {})",
                items.len(),
                metadata_at + 1
            )));
        }
        let Node::Storage(s) = self.node(storage)? else {
            return Err(self.err("tensor rebuild whose first argument is not a storage"));
        };
        let mut elem = s.dtype;
        if let Some(dtype) = dtype {
            elem = match self.node(dtype)? {
                Node::Global(g) => {
                    DType::from_torch_dtype(&g.module, &g.name).ok_or_else(|| {
                        self.err(format!("unsupported tensor dtype {}.{}", g.module, g.name))
                    })?
                }
                _ => return Err(self.err("_rebuild_tensor_v3 dtype is not a torch dtype")),
            };
        }
        if let Some(&meta) = items.get(metadata_at) {
            // `{"conj": True}` / `{"neg": True}`: lazily conjugated or negated views.
            if let Node::Dict(pairs) = self.node(meta)? {
                for &(_, v) in pairs {
                    if !matches!(self.node(v)?, Node::Bool(false)) {
                        return Err(self.err("tensors with conj/neg metadata are not supported"));
                    }
                }
            }
        }
        let offset = self.int_arg(offset, "storage offset")?;
        let size = self.ints_arg(size, "size")?;
        let stride = self.ints_arg(stride, "stride")?;
        Ok(Node::Tensor(Box::new(TensorRef {
            storage,
            dtype: elem,
            offset,
            size,
            stride,
            at: self.op_at,
        })))
    }

    /// A string or ASCII bytes node (torch decodes bytes keys of Python 2 files as ASCII).
    fn text(&self, id: NodeId) -> Result<Option<&str>, TorchError> {
        Ok(match self.node(id)? {
            Node::Str(s) => Some(s),
            Node::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        })
    }

    /// torch's `persistent_load`: `('storage', storage_type, key, location, numel)` (zip
    /// format), the same with a sixth `view_metadata` (legacy format; `None` or
    /// `(view_key, offset, view_numel)`), or `('module', class, source_file, source)`
    /// (legacy format, a pickled `nn.Module`'s class), which gives the class.
    fn persistent_load(&mut self, pid: NodeId) -> Result<NodeId, TorchError> {
        let Node::Tuple(items) = self.node(pid)? else {
            return Err(self.err("persistent id is not a tuple"));
        };
        let items = items.clone();
        self.charge_copy(items.len())?;
        let tag = match items.first() {
            Some(&t) => self.text(t)?.unwrap_or(""),
            None => "",
        };
        match tag {
            "module" => {
                return items
                    .get(1)
                    .copied()
                    .ok_or_else(|| self.err("module persistent id without a class"));
            }
            "storage" => {}
            _ => return Err(self.err("persistent id is not a ('storage', ...) tuple")),
        }
        let (storage_type, key, numel, view) = match items[..] {
            [_, t, k, _, n] => (t, k, n, None),
            [_, t, k, _, n, v] => (t, k, n, Some(v)),
            _ => {
                return Err(self.err(format!(
                    "storage persistent id with {} items (5 or 6 expected)",
                    items.len()
                )))
            }
        };
        let dtype = match self.node(storage_type)? {
            Node::Global(g) => DType::from_storage_type(&g.module, &g.name).ok_or_else(|| {
                self.err(format!("unsupported storage type {}.{}", g.module, g.name))
            })?,
            _ => return Err(self.err("storage type is not a global")),
        };
        let key = match self.node(key)? {
            Node::Int(i) => i.to_string(),
            _ => self
                .text(key)?
                .ok_or_else(|| self.err("storage key is not a string"))?
                .to_string(),
        };
        self.charge_copy(key.len())?;
        let numel = self.int_arg(numel, "storage numel")?;
        let mut count = u64::try_from(numel)
            .map_err(|_| self.err(format!("negative storage numel {numel}")))?;
        let mut start = 0u64;
        if let Some(view) = view {
            match self.node(view)? {
                Node::None => {}
                Node::Tuple(v) if v.len() == 3 => {
                    let (offset, view_numel) = (v[1], v[2]);
                    let offset = self.int_arg(offset, "storage view offset")?;
                    let view_numel = self.int_arg(view_numel, "storage view size")?;
                    start = u64::try_from(offset)
                        .map_err(|_| self.err("negative storage view offset"))?;
                    count = u64::try_from(view_numel)
                        .map_err(|_| self.err("negative storage view size"))?;
                }
                _ => return Err(self.err("storage view metadata is not None or a 3-tuple")),
            }
        }
        if !self.storages.contains_key(&key) {
            self.storages.insert(key.clone(), dtype);
        }
        self.add(Node::Storage(Box::new(StorageRef {
            key,
            dtype,
            start,
            count,
        })))
    }

    /// The body of a protocol-0 `STRING` argument: a quoted Python literal with escapes.
    fn quoted(&self, line: &[u8]) -> Result<Vec<u8>, TorchError> {
        let body = match line {
            [b'\'', body @ .., b'\''] | [b'"', body @ .., b'"'] => body,
            _ => return Err(self.err("STRING argument is not quoted")),
        };
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while let Some(&b) = body.get(i) {
            i += 1;
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let Some(&e) = body.get(i) else {
                return Err(self.err("STRING argument ends with a backslash"));
            };
            i += 1;
            match e {
                b'\n' => {}
                b'\\' | b'\'' | b'"' => out.push(e),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(11),
                b'x' => {
                    let hex = body.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                    let v = hex
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| self.err("invalid \\x escape in STRING"))?;
                    out.push(v);
                    i += 2;
                }
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    for _ in 0..2 {
                        match body.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push((v & 0xff) as u8);
                }
                _ => {
                    out.push(b'\\');
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Decodes Python's `raw-unicode-escape` (protocol-0 `UNICODE`): `\uXXXX` and
    /// `\UXXXXXXXX` escapes, every other byte a Latin-1 character.
    fn raw_unicode_escape(&self, line: &[u8]) -> Result<String, TorchError> {
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while let Some(&b) = line.get(i) {
            let digits = match (b, line.get(i + 1)) {
                (b'\\', Some(b'u')) => 4,
                (b'\\', Some(b'U')) => 8,
                _ => {
                    out.push(char::from(b));
                    i += 1;
                    continue;
                }
            };
            let c = line
                .get(i + 2..i + 2 + digits)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
                .ok_or_else(|| self.err("invalid \\u escape in UNICODE"))?;
            out.push(c);
            i += 2 + digits;
        }
        Ok(out)
    }
}

/// Decodes a Latin-1 byte string.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The most decimal digits accepted in a text integer (Python's default
/// `sys.int_info.str_digits_check_threshold` limit); the conversion is quadratic.
const MAX_DECIMAL_DIGITS: usize = 4300;

/// At most the first 40 characters of `text`, for error messages.
fn truncate(text: &str) -> &str {
    text.char_indices()
        .nth(40)
        .and_then(|(i, _)| text.get(..i))
        .unwrap_or(text)
}

/// A decimal integer (optional sign, ASCII digits) beyond `i64`, as a [`Node::BigInt`] (or
/// [`Node::Int`] if it fits after all); `None` if malformed or longer than
/// [`MAX_DECIMAL_DIGITS`].
fn decimal_to_long(text: &str) -> Option<Node> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty()
        || digits.len() > MAX_DECIMAL_DIGITS
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    // Magnitude in little-endian base 2^32, fed 9 decimal digits at a time.
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.chunks(9) {
        let mut scale = 1u64;
        let mut carry = 0u64;
        for &d in chunk {
            scale *= 10;
            carry = carry * 10 + u64::from(d - b'0');
        }
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * scale + carry;
            *limb = (v & 0xffff_ffff) as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut mag: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    // Two's complement with a sign byte.
    mag.push(0);
    if negative {
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = u16::from(!*byte) + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
    }
    Some(long_from_bytes(&mag))
}

/// The integer of `LONG1`/`LONG4`: little-endian two's complement.
fn long_from_bytes(bytes: &[u8]) -> Node {
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let pad = if negative { 0xff } else { 0x00 };
    // Drop redundant sign bytes: a top byte equal to `pad` whose next byte has the same sign.
    let mut len = bytes.len();
    while len > 1 && bytes[len - 1] == pad && ((bytes[len - 2] & 0x80 != 0) == negative) {
        len -= 1;
    }
    let bytes = &bytes[..len];
    if bytes.len() <= 8 {
        let mut a = [pad; 8];
        a[..bytes.len()].copy_from_slice(bytes);
        Node::Int(i64::from_le_bytes(a))
    } else {
        Node::BigInt(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bytes() {
        assert!(matches!(long_from_bytes(&[]), Node::Int(0)));
        assert!(matches!(long_from_bytes(&[0xff]), Node::Int(-1)));
        assert!(matches!(long_from_bytes(&[0x80, 0x00]), Node::Int(128)));
        assert!(matches!(long_from_bytes(&[0x00, 0x80]), Node::Int(-32768)));
        assert!(matches!(long_from_bytes(&[0xff; 12]), Node::Int(-1)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00];
        assert!(matches!(long_from_bytes(&max), Node::Int(i64::MAX)));
        let big = [0, 0, 0, 0, 0, 0, 0, 0x80, 0x00];
        assert!(matches!(long_from_bytes(&big), Node::BigInt(ref b) if b.len() == 9));
    }

    #[test]
    fn decimal_longs() {
        let bytes = |t: &str| match decimal_to_long(t) {
            Some(Node::BigInt(b)) => b,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(bytes("9223372036854775808"), [0, 0, 0, 0, 0, 0, 0, 0x80, 0]);
        assert_eq!(
            bytes("-9223372036854775809"),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff]
        );
        assert_eq!(bytes("18446744073709551616"), [0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            decimal_to_long("-9223372036854775808"),
            Some(Node::Int(i64::MIN))
        ));
        assert!(decimal_to_long("12a").is_none());
        assert!(decimal_to_long("-").is_none());
        assert!(decimal_to_long(&"9".repeat(MAX_DECIMAL_DIGITS + 1)).is_none());
    }

    #[test]
    fn protocol_0_text_opcodes() {
        let p = unpickle(
            b"(I01\nI-7\nL123L\nF0.5\nS'a\\n\\x41'\nVh\\u00e9\ncmod\nname\ntp0\n.",
            0,
            "t",
            &mut Budget::new(1 << 20),
        )
        .expect("protocol 0");
        let Some(Node::Tuple(items)) = p.nodes.get(p.root) else {
            panic!("not a tuple");
        };
        let got: Vec<String> = items.iter().map(|&i| format!("{:?}", p.nodes[i])).collect();
        assert_eq!(
            got,
            [
                "Bool(true)",
                "Int(-7)",
                "Int(123)",
                "Float(0.5)",
                "Str(\"a\\nA\")",
                "Str(\"hé\")",
                "Global(GlobalName { module: \"mod\", name: \"name\" })"
            ]
        );
    }
}
