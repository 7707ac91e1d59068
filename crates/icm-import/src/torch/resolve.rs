//! Turns the unpickler's node graph into a [`Value`] tree, copying tensor data out of the
//! located storages.
//!
//! Bounds: the tree is at most [`MAX_DEPTH`] levels deep (so neither this recursion nor
//! dropping the tree can exhaust the stack), a node that contains itself is an error, and
//! every value built — its enum slot, string and byte payloads, tensor elements — is
//! charged to a [`Budget`] before it is allocated, so objects shared through the pickle
//! memo cannot multiply into unbounded memory.

use std::collections::HashMap;

use super::error::TorchError;
use super::pickle::{Node, NodeId, Pickle, StorageRef, TensorRef};
use super::tensor::{gather, Tensor};
use super::value::Value;

/// The deepest nesting of containers and calls accepted.
pub(crate) const MAX_DEPTH: usize = 200;

/// Bytes the reader may still allocate for the output.
#[derive(Debug)]
pub(crate) struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget { left: limit, limit }
    }

    pub(crate) fn charge(&mut self, bytes: usize) -> Result<(), TorchError> {
        self.left = self
            .left
            .checked_sub(bytes)
            .ok_or(TorchError::OutputLimit { limit: self.limit })?;
        Ok(())
    }
}

/// Storage data by key: the bytes of each storage, little-endian.
pub(crate) type Storages<'a> = HashMap<String, &'a [u8]>;

/// Builds the [`Value`] of `pickle`'s root.
pub(crate) fn resolve(
    pickle: &Pickle,
    storages: &Storages<'_>,
    budget: &mut Budget,
) -> Result<Value, TorchError> {
    let mut r = Resolver {
        pickle,
        storages,
        budget,
        visiting: vec![false; pickle.nodes.len()],
    };
    r.value(pickle.root, 0)
}

struct Resolver<'p, 's, 'b> {
    pickle: &'p Pickle,
    storages: &'s Storages<'s>,
    budget: &'b mut Budget,
    /// Containers being built (on the recursion path), to detect cycles.
    visiting: Vec<bool>,
}

/// A dict key with Python's equality for the hashable scalar types (`True == 1`).
#[derive(PartialEq, Eq, Hash)]
enum KeyRef<'v> {
    None,
    Int(i64),
    Str(&'v str),
    Bytes(&'v [u8]),
}

impl<'v> KeyRef<'v> {
    fn of(v: &'v Value) -> Option<Self> {
        Some(match v {
            Value::None => KeyRef::None,
            Value::Bool(b) => KeyRef::Int(i64::from(*b)),
            Value::Int(i) => KeyRef::Int(*i),
            Value::Str(s) => KeyRef::Str(s),
            Value::Bytes(b) => KeyRef::Bytes(b),
            _ => return None,
        })
    }
}

impl<'p, 's> Resolver<'p, 's, '_> {
    fn node(&self, id: NodeId) -> Result<&Node, TorchError> {
        self.pickle
            .nodes
            .get(id)
            .ok_or_else(|| TorchError::Unsupported(format!("internal: no pickle node {id}")))
    }

    fn value(&mut self, id: NodeId, depth: usize) -> Result<Value, TorchError> {
        if depth > MAX_DEPTH {
            return Err(TorchError::TooDeep(MAX_DEPTH));
        }
        self.budget.charge(std::mem::size_of::<Value>())?;
        let pickle = self.pickle;
        let node = pickle
            .nodes
            .get(id)
            .ok_or_else(|| TorchError::Unsupported(format!("internal: no pickle node {id}")))?;
        Ok(match node {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::Float(f) => Value::Float(*f),
            Node::BigInt(b) => {
                self.budget.charge(b.len())?;
                Value::BigInt(b.clone())
            }
            Node::Str(s) => {
                self.budget.charge(s.len())?;
                Value::Str(s.clone())
            }
            Node::Bytes(b) => {
                self.budget.charge(b.len())?;
                Value::Bytes(b.clone())
            }
            Node::Global(g) => Value::Global(self.global_name(&g.module, &g.name)?),
            Node::Tuple(items) => Value::Tuple(self.enter(id, |r| r.values(items, depth))?),
            Node::List(items) => Value::List(self.enter(id, |r| r.values(items, depth))?),
            Node::Dict(pairs) => Value::Dict(self.enter(id, |r| r.dict(pairs, depth))?),
            Node::Opaque {
                callable,
                args,
                state,
            } => self.enter(id, |r| {
                let (global, args) = match pickle.nodes.get(*callable) {
                    Some(Node::Global(g)) => (
                        r.global_name(&g.module, &g.name)?,
                        r.value(*args, depth + 1)?,
                    ),
                    _ => {
                        let pair = vec![r.value(*callable, depth + 2)?, r.value(*args, depth + 2)?];
                        r.budget.charge(std::mem::size_of::<Value>())?;
                        (String::new(), Value::Tuple(pair))
                    }
                };
                let state = match state {
                    Some(s) => Some(Box::new(r.value(*s, depth + 1)?)),
                    None => None,
                };
                Ok(Value::Opaque {
                    global,
                    args: Box::new(args),
                    state,
                })
            })?,
            Node::Storage(s) => {
                // A bare storage: all its elements as a 1-dimensional tensor.
                let count = i64::try_from(s.count)
                    .map_err(|_| storage_err(s, "element count overflows"))?;
                let t = TensorRef {
                    storage: id,
                    dtype: s.dtype,
                    offset: 0,
                    size: vec![count],
                    stride: vec![1],
                    at: 0,
                };
                Value::Tensor(self.tensor(&t)?)
            }
            Node::Tensor(t) => Value::Tensor(self.tensor(t)?),
        })
    }

    fn global_name(&mut self, module: &str, name: &str) -> Result<String, TorchError> {
        self.budget.charge(module.len() + name.len() + 1)?;
        Ok(format!("{module}.{name}"))
    }

    /// Runs `f` with `id` marked as being built; fails if it already is (a cycle).
    fn enter<T>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Self) -> Result<T, TorchError>,
    ) -> Result<T, TorchError> {
        match self.visiting.get_mut(id) {
            Some(v) if !*v => *v = true,
            _ => return Err(TorchError::Cycle(id)),
        }
        let out = f(self);
        if let Some(v) = self.visiting.get_mut(id) {
            *v = false;
        }
        out
    }

    fn values(&mut self, items: &[NodeId], depth: usize) -> Result<Vec<Value>, TorchError> {
        items.iter().map(|&i| self.value(i, depth + 1)).collect()
    }

    /// The pairs of a dict, with repeated scalar keys merged as Python does: the first
    /// position, the last value.
    fn dict(
        &mut self,
        pairs: &[(NodeId, NodeId)],
        depth: usize,
    ) -> Result<Vec<(Value, Value)>, TorchError> {
        let mut built = Vec::with_capacity(pairs.len());
        for &(k, v) in pairs {
            built.push((self.value(k, depth + 1)?, self.value(v, depth + 1)?));
        }
        // first[i]: the index of the first pair whose key equals pair i's key.
        let mut seen: HashMap<KeyRef<'_>, usize> = HashMap::new();
        let first: Vec<usize> = built
            .iter()
            .enumerate()
            .map(|(i, (k, _))| match KeyRef::of(k) {
                Some(key) => *seen.entry(key).or_insert(i),
                None => i,
            })
            .collect();
        drop(seen);
        if first.iter().enumerate().all(|(i, &f)| i == f) {
            return Ok(built);
        }
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(built.len());
        let mut slot = vec![usize::MAX; built.len()];
        for (i, (k, v)) in built.into_iter().enumerate() {
            let f = first.get(i).copied().unwrap_or(i);
            if f == i {
                if let Some(s) = slot.get_mut(i) {
                    *s = out.len();
                }
                out.push((k, v));
            } else if let Some(pair) = slot.get(f).and_then(|&s| out.get_mut(s)) {
                pair.1 = v;
            }
        }
        Ok(out)
    }

    /// Copies a tensor's elements out of its storage.
    fn tensor(&mut self, t: &TensorRef) -> Result<Tensor, TorchError> {
        let Node::Storage(s) = self.node(t.storage)? else {
            return Err(TorchError::Tensor {
                offset: t.at,
                what: "its storage argument is not a storage".into(),
            });
        };
        let data = self.storage_bytes(s)?;
        let budget = &mut *self.budget;
        gather(t.dtype, data, t.offset, &t.size, &t.stride, |bytes| {
            budget.charge(bytes)
        })?
        .map_err(|what| TorchError::Tensor { offset: t.at, what })
    }

    /// The bytes of a storage reference: elements `start..start + count` of its data.
    fn storage_bytes(&self, s: &StorageRef) -> Result<&'s [u8], TorchError> {
        let data = self
            .storages
            .get(&s.key)
            .ok_or_else(|| storage_err(s, "no data was found for this storage"))?;
        let size = s.dtype.size() as u64;
        let range = s
            .start
            .checked_mul(size)
            .zip(
                s.start
                    .checked_add(s.count)
                    .and_then(|end| end.checked_mul(size)),
            )
            .and_then(|(a, b)| Some((usize::try_from(a).ok()?, usize::try_from(b).ok()?)));
        range.and_then(|(a, b)| data.get(a..b)).ok_or_else(|| {
            storage_err(
                s,
                &format!(
                    "elements {}..{}+{} of {} exceed its {} bytes of data",
                    s.start,
                    s.start,
                    s.count,
                    s.dtype.name(),
                    data.len()
                ),
            )
        })
    }
}

fn storage_err(s: &StorageRef, what: &str) -> TorchError {
    TorchError::Storage {
        key: s.key.clone(),
        what: what.to_string(),
    }
}
