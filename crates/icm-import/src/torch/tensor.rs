//! Tensors: element types, decoded data, and the bounded gather that copies a (possibly
//! strided) view out of a storage.

/// The element type of a tensor or storage, as torch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `torch.float32` (`FloatStorage`).
    F32,
    /// `torch.float64` (`DoubleStorage`).
    F64,
    /// `torch.float16` (`HalfStorage`).
    F16,
    /// `torch.bfloat16` (`BFloat16Storage`).
    BF16,
    /// `torch.int64` (`LongStorage`).
    I64,
    /// `torch.int32` (`IntStorage`).
    I32,
    /// `torch.int16` (`ShortStorage`).
    I16,
    /// `torch.int8` (`CharStorage`).
    I8,
    /// `torch.uint8` (`ByteStorage`, and `UntypedStorage`, which holds bytes).
    U8,
    /// `torch.uint16` (saved as an `UntypedStorage` with `_rebuild_tensor_v3`).
    U16,
    /// `torch.uint32` (saved as an `UntypedStorage` with `_rebuild_tensor_v3`).
    U32,
    /// `torch.uint64` (saved as an `UntypedStorage` with `_rebuild_tensor_v3`).
    U64,
    /// `torch.bool` (`BoolStorage`): one byte per element, nonzero is true.
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// torch's name without the `torch.` prefix, e.g. `"float32"`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
        }
    }

    /// The dtype of a typed storage class, `None` for other names. `module` is `torch`
    /// (or `torch.cuda`, which checkpoints of old torch versions name for CUDA tensors);
    /// `torch.UntypedStorage` and `torch.storage.UntypedStorage` hold bytes ([`DType::U8`]).
    pub(crate) fn from_storage_type(module: &str, name: &str) -> Option<DType> {
        if name == "UntypedStorage" && (module == "torch" || module == "torch.storage") {
            return Some(DType::U8);
        }
        if module != "torch" && module != "torch.cuda" {
            return None;
        }
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// The dtype named by a `torch.<dtype>` global (the dtype argument of
    /// `_rebuild_tensor_v3`), `None` for other names.
    pub(crate) fn from_torch_dtype(module: &str, name: &str) -> Option<DType> {
        if module != "torch" {
            return None;
        }
        Some(match name {
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            "float16" | "half" => DType::F16,
            "bfloat16" => DType::BF16,
            "int64" | "long" => DType::I64,
            "int32" | "int" => DType::I32,
            "int16" | "short" => DType::I16,
            "int8" => DType::I8,
            "uint8" => DType::U8,
            "uint16" => DType::U16,
            "uint32" => DType::U32,
            "uint64" => DType::U64,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

/// The elements of a tensor in row-major (C) order, in their stored type.
///
/// Half-precision values are kept as their IEEE bit patterns; [`Tensor::to_f32`] converts
/// them exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `torch.float32`.
    F32(Vec<f32>),
    /// `torch.float64`.
    F64(Vec<f64>),
    /// `torch.float16`, as IEEE 754 binary16 bit patterns.
    F16(Vec<u16>),
    /// `torch.bfloat16`, as bit patterns (the upper 16 bits of an `f32`).
    BF16(Vec<u16>),
    /// `torch.int64`.
    I64(Vec<i64>),
    /// `torch.int32`.
    I32(Vec<i32>),
    /// `torch.int16`.
    I16(Vec<i16>),
    /// `torch.int8`.
    I8(Vec<i8>),
    /// `torch.uint8`.
    U8(Vec<u8>),
    /// `torch.uint16`.
    U16(Vec<u16>),
    /// `torch.uint32`.
    U32(Vec<u32>),
    /// `torch.uint64`.
    U64(Vec<u64>),
    /// `torch.bool`.
    Bool(Vec<bool>),
}

/// Applies `$body` to the vector inside any [`TensorData`] variant.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::F16($v) => $body,
            TensorData::BF16($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::Bool($v) => $body,
        }
    };
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::F16(_) => DType::F16,
            TensorData::BF16(_) => DType::BF16,
            TensorData::I64(_) => DType::I64,
            TensorData::I32(_) => DType::I32,
            TensorData::I16(_) => DType::I16,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::U16(_) => DType::U16,
            TensorData::U32(_) => DType::U32,
            TensorData::U64(_) => DType::U64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense tensor read from a checkpoint: its shape and its elements in row-major order.
///
/// A view saved by torch (a transpose, a slice, an `expand`) is copied out of its storage,
/// so `data` always holds exactly `shape.iter().product()` elements (1 for a 0-dimensional
/// tensor, none when a dimension is 0). Whether the tensor was an `nn.Parameter` or
/// required gradients is not kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The size of each dimension; empty for a 0-dimensional (scalar) tensor.
    pub shape: Vec<usize>,
    /// The elements in row-major order.
    pub data: TensorData,
}

impl Tensor {
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The number of elements (the product of `shape`).
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements converted to `f32`: exactly for `float32`, `float16`, `bfloat16`,
    /// `bool` (0 or 1) and the integers of at most 16 bits; rounded to nearest for
    /// `float64` and the wider integers.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::F16(v) => v.iter().map(|&x| f16_to_f32(x)).collect(),
            TensorData::BF16(v) => v
                .iter()
                .map(|&x| f32::from_bits(u32::from(x) << 16))
                .collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I16(v) => v.iter().map(|&x| f32::from(x)).collect(),
            TensorData::I8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            TensorData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            TensorData::U16(v) => v.iter().map(|&x| f32::from(x)).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
        }
    }

    /// The elements as `i64` for the integer dtypes and `bool` (0 or 1); `None` for the
    /// floating-point dtypes and for a `uint64` tensor with an element above `i64::MAX`.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match &self.data {
            TensorData::I64(v) => v.clone(),
            TensorData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U64(v) => v
                .iter()
                .map(|&x| i64::try_from(x).ok())
                .collect::<Option<Vec<i64>>>()?,
            TensorData::Bool(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::F32(_) | TensorData::F64(_) | TensorData::F16(_) | TensorData::BF16(_) => {
                return None
            }
        })
    }
}

/// Converts an IEEE 754 binary16 bit pattern to `f32` exactly (subnormals, infinities and
/// NaNs included; a NaN keeps its payload in the upper mantissa bits).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: man * 2^-24, exact in f32.
            let magnitude = man as f32 * (1.0 / 16_777_216.0);
            if sign != 0 {
                -magnitude
            } else {
                magnitude
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// Copies the view `(offset, size, stride)` (in elements of `dtype`) out of `storage` (the
/// storage's bytes, little-endian) into row-major order.
///
/// Fails, with a message, when a stride is negative, when the view reaches past the
/// storage, or when the element count overflows; `charge` is called with the number of
/// bytes to allocate before anything is allocated, and its error is passed on.
pub(crate) fn gather<E>(
    dtype: DType,
    storage: &[u8],
    offset: i64,
    size: &[i64],
    stride: &[i64],
    charge: impl FnOnce(usize) -> Result<(), E>,
) -> Result<Result<Tensor, String>, E> {
    let plan = match plan(dtype, storage.len(), offset, size, stride) {
        Ok(plan) => plan,
        Err(msg) => return Ok(Err(msg)),
    };
    // `plan` bounded numel * element size by the usize range; charge before allocating.
    charge(plan.numel.saturating_mul(dtype.size()))?;
    let data = match dtype {
        DType::F32 => collect(storage, &plan, f32::from_le_bytes).map(TensorData::F32),
        DType::F64 => collect(storage, &plan, f64::from_le_bytes).map(TensorData::F64),
        DType::F16 => collect(storage, &plan, u16::from_le_bytes).map(TensorData::F16),
        DType::BF16 => collect(storage, &plan, u16::from_le_bytes).map(TensorData::BF16),
        DType::I64 => collect(storage, &plan, i64::from_le_bytes).map(TensorData::I64),
        DType::I32 => collect(storage, &plan, i32::from_le_bytes).map(TensorData::I32),
        DType::I16 => collect(storage, &plan, i16::from_le_bytes).map(TensorData::I16),
        DType::I8 => collect(storage, &plan, i8::from_le_bytes).map(TensorData::I8),
        DType::U8 => collect(storage, &plan, u8::from_le_bytes).map(TensorData::U8),
        DType::U16 => collect(storage, &plan, u16::from_le_bytes).map(TensorData::U16),
        DType::U32 => collect(storage, &plan, u32::from_le_bytes).map(TensorData::U32),
        DType::U64 => collect(storage, &plan, u64::from_le_bytes).map(TensorData::U64),
        DType::Bool => collect(storage, &plan, |b: [u8; 1]| b[0] != 0).map(TensorData::Bool),
    };
    let Some(data) = data else {
        // Unreachable after `plan`'s bounds check; reported rather than trusted.
        return Ok(Err("element index outside the storage".to_string()));
    };
    Ok(Ok(Tensor {
        shape: plan.shape,
        data,
    }))
}

/// A validated view: every element index it produces is inside the storage.
struct Plan {
    shape: Vec<usize>,
    stride: Vec<usize>,
    offset: usize,
    numel: usize,
    /// Whether the view is the contiguous range `offset..offset + numel`.
    contiguous: bool,
}

/// Validates a view against a storage of `storage_bytes` bytes.
fn plan(
    dtype: DType,
    storage_bytes: usize,
    offset: i64,
    size: &[i64],
    stride: &[i64],
) -> Result<Plan, String> {
    if size.len() != stride.len() {
        return Err(format!(
            "size has {} dimensions but stride has {}",
            size.len(),
            stride.len()
        ));
    }
    let offset =
        usize::try_from(offset).map_err(|_| format!("negative storage offset {offset}"))?;
    let shape = size
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| format!("negative size {s}")))
        .collect::<Result<Vec<usize>, String>>()?;
    let stride = stride
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| format!("negative stride {s}")))
        .collect::<Result<Vec<usize>, String>>()?;
    let overflow = || format!("size {shape:?} overflows");
    let numel = shape
        .iter()
        .try_fold(1usize, |n, &s| n.checked_mul(s))
        .ok_or_else(overflow)?;
    numel.checked_mul(dtype.size()).ok_or_else(overflow)?;
    let storage_numel = storage_bytes / dtype.size();
    if numel > 0 {
        // The largest element index the view touches.
        let mut last = offset;
        for (&s, &st) in shape.iter().zip(&stride) {
            let reach = (s - 1)
                .checked_mul(st)
                .and_then(|r| last.checked_add(r))
                .ok_or_else(|| format!("stride {stride:?} overflows"))?;
            last = reach;
        }
        if last >= storage_numel {
            return Err(format!(
                "view (offset {offset}, size {shape:?}, stride {stride:?}) reaches element \
                 {last} of a storage of {storage_numel} {} elements",
                dtype.name()
            ));
        }
    }
    // Row-major contiguity, ignoring the strides of dimensions of size 1.
    let mut expected = 1usize;
    let mut contiguous = true;
    for (&s, &st) in shape.iter().zip(&stride).rev() {
        if s != 1 && st != expected {
            contiguous = false;
        }
        expected = expected.saturating_mul(s);
    }
    Ok(Plan {
        shape,
        stride,
        offset,
        numel,
        contiguous,
    })
}

/// Decodes the elements of a validated view; `None` only if an index were out of range
/// (which `plan` excludes).
fn collect<T, const N: usize>(
    storage: &[u8],
    plan: &Plan,
    decode: impl Fn([u8; N]) -> T,
) -> Option<Vec<T>> {
    let read = |index: usize| -> Option<T> {
        let start = index.checked_mul(N)?;
        let bytes: [u8; N] = storage.get(start..start.checked_add(N)?)?.try_into().ok()?;
        Some(decode(bytes))
    };
    let mut out = Vec::with_capacity(plan.numel);
    if plan.numel == 0 {
        return Some(out);
    }
    if plan.contiguous {
        let start = plan.offset.checked_mul(N)?;
        let end = plan.numel.checked_mul(N)?.checked_add(start)?;
        for chunk in storage.get(start..end)?.chunks_exact(N) {
            out.push(decode(chunk.try_into().ok()?));
        }
        return Some(out);
    }
    // Odometer over the multi-index; `linear` tracks offset + sum(index * stride).
    let dims = plan.shape.len();
    let mut index = vec![0usize; dims];
    let mut linear = plan.offset;
    for _ in 0..plan.numel {
        out.push(read(linear)?);
        for d in (0..dims).rev() {
            let (i, s, st) = (index.get_mut(d)?, *plan.shape.get(d)?, *plan.stride.get(d)?);
            *i += 1;
            linear = linear.checked_add(st)?;
            if *i < s {
                break;
            }
            // Wrap this dimension: undo its s steps (s * st was bounded by `plan`).
            *i = 0;
            linear = linear.checked_sub(s.checked_mul(st)?)?;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    fn bytes_f32(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn run(storage: &[u8], offset: i64, size: &[i64], stride: &[i64]) -> Result<Tensor, String> {
        gather::<()>(DType::F32, storage, offset, size, stride, |_| Ok(()))
            .unwrap_or(Err("charge".into()))
    }

    #[test]
    fn gathers_strided_views() {
        let storage = bytes_f32(&(0..12).map(|i| i as f32).collect::<Vec<_>>());
        let t = run(&storage, 0, &[4, 3], &[1, 4]).expect("transpose");
        assert_eq!(t.shape, vec![4, 3]);
        assert_eq!(
            t.to_f32(),
            vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
        );
        let t = run(&storage, 5, &[2, 2], &[4, 2]).expect("slice");
        assert_eq!(t.to_f32(), vec![5., 7., 9., 11.]);
        let t = run(&storage, 2, &[2, 3], &[0, 1]).expect("expand");
        assert_eq!(t.to_f32(), vec![2., 3., 4., 2., 3., 4.]);
        let t = run(&storage, 11, &[], &[]).expect("scalar");
        assert_eq!((t.shape.len(), t.to_f32()), (0, vec![11.]));
        let t = run(&storage, 99, &[0, 5], &[5, 1]).expect("empty");
        assert_eq!(t.numel(), 0);
    }

    #[test]
    fn rejects_views_past_the_storage() {
        let storage = bytes_f32(&[0.0; 12]);
        assert!(run(&storage, 1, &[12], &[1]).is_err());
        assert!(run(&storage, 0, &[4, 3], &[3, 2]).is_err());
        assert!(run(&storage, 12, &[], &[]).is_err());
        assert!(run(&storage, -1, &[1], &[1]).is_err());
        assert!(run(&storage, 0, &[2], &[-1]).is_err());
        assert!(run(&storage, 0, &[2, 2], &[1]).is_err());
        assert!(run(&storage, 0, &[i64::MAX, i64::MAX], &[0, 0]).is_err());
        assert!(run(&storage, 0, &[2, 2], &[i64::MAX, 1]).is_err());
        // An odd byte count: the last partial element does not exist.
        assert!(run(&storage[..7], 1, &[1], &[1]).is_err());
    }
}
