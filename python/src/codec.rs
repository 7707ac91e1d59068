//! `icm.encode`, `icm.decode`, `icm.decode_latents` and `icm.info`: the CLI's `encode`,
//! `decode` (`-o`, `--latents`) and `info --json` on numpy arrays and bytes.
//!
//! The GIL is released for all work on the codec (`Python::detach`): the picture is copied
//! once into the encoder's `RgbImage` before (the array may change once other threads run),
//! a `bytes` stream is read in place (bytes are immutable), and every array returned owns
//! the `Vec` the library produced (no copy).

use crate::errors::{Failure, IntoPyResult, Result};
use crate::json::to_python;
use crate::models::{Choice, Lookup};
use icm::codec::{
    self, bytes_for_bpp, DecodeLimits, EncodeOptions, RateControl, RgbImage, Steps, DEFAULT_TILE,
};
use icm::container::{self, Stream};
use ndarray::Array3;
use numpy::{
    IntoPyArray, PyArray3, PyReadonlyArray1, PyReadonlyArray3, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView, PyString, PyTuple};
use std::path::PathBuf;

/// Runs `f` on a pool of `threads` workers, or on rayon's global pool (one per core).
fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    match threads {
        None => f(),
        Some(0) => Err(Failure::usage("threads must be at least 1")),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Failure::new("other", format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}

/// The picture of `image`: a `uint8` array of shape `(H, W, 3)`, copied in row-major RGB
/// order whatever its strides.
fn rgb_image(image: &Bound<'_, PyAny>) -> Result<RgbImage> {
    let describe = || match image.cast::<PyUntypedArray>() {
        Ok(a) => format!(
            "an array of dtype {} and shape {:?}",
            a.dtype()
                .str()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "?".into()),
            a.shape()
        ),
        Err(_) => image
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into()),
    };
    let bad = || {
        Failure::usage(format!(
            "image must be a numpy uint8 array of shape (H, W, 3), got {}",
            describe()
        ))
    };
    let array: PyReadonlyArray3<'_, u8> = image.extract().map_err(|_| bad())?;
    let shape = array.shape();
    let (h, w) = (shape[0], shape[1]);
    if shape[2] != 3 || h == 0 || w == 0 {
        return Err(bad());
    }
    let too_large = || Failure::usage(format!("image of {w}x{h} pixels is too large"));
    let (width, height) = (
        u32::try_from(w).map_err(|_| too_large())?,
        u32::try_from(h).map_err(|_| too_large())?,
    );
    // row-major (C order) arrays in one copy; any other layout element by element
    let view = array.as_array();
    let data = match view.as_slice() {
        Some(s) => s.to_vec(),
        None => view.iter().copied().collect(),
    };
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// `tile=`: `None` (1024x1024), `N`, `(W, H)` or `"WxH"`.
fn tile_size(
    tile: Option<&Bound<'_, PyAny>>,
) -> PyResult<std::result::Result<(u32, u32), Failure>> {
    let Some(t) = tile else {
        return Ok(Ok((DEFAULT_TILE, DEFAULT_TILE)));
    };
    let checked = |r: std::result::Result<(u32, u32), codec::TileSizeError>| {
        r.map_err(|e| Failure::usage(format!("tile {e}")))
    };
    if let Ok(s) = t.cast::<PyString>() {
        return Ok(checked(codec::parse_tile_size(&s.to_cow()?)));
    }
    let side = |v: &Bound<'_, PyAny>| -> PyResult<u32> {
        // a negative or huge side is as invalid as 100: 0 is refused by the check
        Ok(v.extract::<i64>()?.clamp(0, i64::from(u32::MAX)) as u32)
    };
    if let Ok(pair) = t.cast::<PyTuple>() {
        if pair.len() == 2 {
            let (w, h) = (side(&pair.get_item(0)?)?, side(&pair.get_item(1)?)?);
            return Ok(checked(codec::check_tile_size(w, h)));
        }
    } else if let Ok(n) = side(t) {
        return Ok(checked(codec::check_tile_size(n, n)));
    }
    Err(PyTypeError::new_err(
        "tile must be None, an int N (NxN), a tuple (W, H) or a string \"WxH\"",
    ))
}

/// A stream given as `bytes` (read in place), `bytearray`, `memoryview` or a 1-D `uint8`
/// array (copied once).
fn stream_bytes<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.clone());
    }
    let py = data.py();
    if data.is_instance_of::<PyByteArray>() || data.is_instance_of::<PyMemoryView>() {
        return Ok(py
            .get_type::<PyBytes>()
            .call1((data,))?
            .cast_into::<PyBytes>()?);
    }
    if let Ok(a) = data.extract::<PyReadonlyArray1<'_, u8>>() {
        let a = a.as_array();
        return Ok(match a.as_slice() {
            Some(s) => PyBytes::new(py, s),
            None => PyBytes::new(py, &a.iter().copied().collect::<Vec<u8>>()),
        });
    }
    Err(PyTypeError::new_err(format!(
        "data must be bytes, bytearray, memoryview or a 1-D uint8 array, got {}",
        data.get_type().name()?
    )))
}

/// The decode limits of `max_pixels` / `max_memory` (None: no limit beyond the levels).
fn limits(max_pixels: Option<u64>, max_memory: Option<u64>) -> DecodeLimits {
    DecodeLimits {
        max_pixels: max_pixels.unwrap_or(u64::MAX),
        max_memory: max_memory.unwrap_or(u64::MAX),
    }
}

/// The container of a stream, parsed (spec 4-6).
fn parse(bytes: &[u8]) -> Result<Stream<'_>> {
    Ok(container::parse(bytes)?)
}

/// The model a decode uses: `model=` when given, else the one the stream names.
fn decode_choice(model: Option<&Bound<'_, PyAny>>) -> PyResult<Choice> {
    Ok(Choice::from_arg(model)?.unwrap_or(Choice::Named))
}

/// Encodes a picture to an icm stream: the bytes `icm encode` writes for the same picture,
/// model and options.
///
/// Args:
///     image: the picture, a numpy ``uint8`` array of shape ``(H, W, 3)`` (RGB), any
///         strides; copied once. From 1x1 to the limits of the levels (8192x8192 and 32
///         Mpixel at level 1, 32768 a side at level 2).
///     quality: zoo quality 1.0 (lowest rate, ~0.17 bpp on Kodak) to 6.0 (~1.13 bpp);
///         default 3, the model ``icm-psnr-q3`` (~0.44 bpp). A fraction (``3.5``) codes at
///         the geometric mean of the sizes of the two neighbouring models on this picture,
///         with the upper one and a global step (spec 12.7). Excludes ``model``.
///     model: a :class:`Model`, or a model name or file as :meth:`Model.load` takes it.
///     tile: ``None`` (1024x1024), ``N`` (NxN), ``(W, H)`` or ``"WxH"``: multiples of 64
///         from 64 to 2048. A tile larger than the picture is the whole picture.
///     threads: worker threads (default: one per core). The bytes do not depend on it.
///     checksums: follow every tile with its CRC-32C (``tsum``, spec 4.5: a version 1.1
///         stream); ``False`` writes a version 1.0 stream, as ``--no-checksums``.
///     model_dir: the folder model names are looked up in (default ``$ICM_MODEL_DIR``)
///         before the zoo built into the package.
///     effort: 0 (default) codes the latents the analysis transform predicts; 1-3 search
///         per tile for latents with a lower rate + lambda * distortion (spec 12.6), as
///         ``icm encode --effort``: slower encoding, the same decoder.
///     lambda_: the rate-distortion weight of the search (``bpp + lambda_ * 255^2 * MSE``);
///         default the model's ``lambda`` metadata entry (the zoo has it; give it for an
///         imported model).
///     step: a global quantisation step (1/256 to 16; 1 is the model's own rate, 2 about
///         halves the rate of the latents): a version 1.3 stream (spec 5.4).
///     bpp: a target size in bits per pixel: the stream is at most ``floor(bpp * W * H /
///         8)`` bytes, with the lowest zoo model (or ``model``) whose stream at step 1
///         reaches it and the smallest global step that fits, as ``icm encode --bpp``.
///     size: a target size in bytes, as ``bpp``.
///
/// Returns:
///     The stream, as ``bytes``.
///
/// Raises:
///     UsageError: an image that is not ``uint8`` ``(H, W, 3)``, a bad tile size,
///         ``quality`` and ``model`` together, a quality outside 1-6, an effort above 3,
///         no lambda for an effort above 0, ``bpp`` or ``size`` with ``quality`` or
///         ``step`` (or with each other), a fractional quality with ``step``, a step outside
///         1/256-16, a target smaller than the smallest stream.
///     ModelError: no model of that name; ``IoError`` when its file cannot be read,
///         ``InvalidModelError`` when it fails spec 7.5.
#[pyfunction]
#[pyo3(signature = (image, *, quality = None, model = None, tile = None, threads = None, checksums = true, model_dir = None, effort = 0, lambda_ = None, step = None, bpp = None, size = None))]
#[allow(clippy::too_many_arguments)]
pub fn encode<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    quality: Option<f64>,
    model: Option<&Bound<'py, PyAny>>,
    tile: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    checksums: bool,
    model_dir: Option<PathBuf>,
    effort: u8,
    lambda_: Option<f32>,
    step: Option<f64>,
    bpp: Option<f64>,
    size: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let usage = |why: &str| Err(Failure::usage(why).into_py_err(py));
    if quality.is_some() && model.is_some() {
        return usage("quality and model exclude each other: give one");
    }
    let targeted = bpp.is_some() || size.is_some();
    if bpp.is_some() && size.is_some() {
        return usage("bpp and size exclude each other: give one");
    }
    if targeted && (quality.is_some() || step.is_some()) {
        return usage("bpp and size choose the model and step: give no quality or step");
    }
    let fractional = quality.filter(|q| q.fract() != 0.0);
    if let Some(q) = quality.filter(|q| !(1.0..=6.0).contains(q)) {
        return usage(&format!("quality {q}: the zoo has qualities 1 to 6"));
    }
    if fractional.is_some() && step.is_some() {
        return usage("a fractional quality chooses the step: give no step");
    }
    let steps = match step {
        Some(s) => Steps::uniform(s).map_err(|e| Failure::usage(e.to_string()).into_py_err(py))?,
        None => Steps::UNIT,
    };
    let given = Choice::from_arg(model)?;
    let choice = given.clone().unwrap_or(Choice::Quality(
        quality.map_or(icm::model::ZOO_DEFAULT_QUALITY, |q| q as u8),
    ));
    let tile = tile_size(tile)?.or_raise(py)?;
    let img = rgb_image(image).or_raise(py)?;
    let lookup = Lookup::new(model_dir);
    let bytes = py
        .detach(|| {
            let opts = EncodeOptions {
                tile,
                checksums,
                effort,
                lambda: lambda_,
                steps,
                ..EncodeOptions::default()
            };
            if !targeted && fractional.is_none() {
                let model = choice.resolve(&lookup, None)?;
                return with_threads(threads, || Ok(codec::encode(&img, &model, &opts)?));
            }
            // Rate control over the zoo (or the model given).
            let models = match &given {
                Some(c) => vec![c.resolve(&lookup, None)?],
                None => (1..=6u8)
                    .map(|q| Choice::Quality(q).resolve(&lookup, None))
                    .collect::<Result<Vec<_>>>()?,
            };
            with_threads(threads, || {
                let mut rc = RateControl::new(&img, models.iter().map(|m| &**m).collect(), &opts);
                let none = |_: u64, _: u64| {};
                let (bytes, _) = match (bpp, size, fractional) {
                    (Some(b), _, _) => {
                        rc.encode_to_size(bytes_for_bpp(b, img.width, img.height)?, &none)
                    }
                    (None, Some(n), _) => rc.encode_to_size(n, &none),
                    (None, None, Some(q)) => rc.encode_at_quality(q, &none),
                    (None, None, None) => unreachable!("targeted or fractional"),
                }?;
                Ok(bytes)
            })
        })
        .or_raise(py)?;
    Ok(PyBytes::new(py, &bytes))
}

/// Decodes an icm stream to its picture: the pixels `icm decode -o OUT.png` writes.
///
/// Args:
///     data: the stream: ``bytes`` (read in place), ``bytearray``, ``memoryview`` or a 1-D
///         ``uint8`` array.
///     model: a :class:`Model`, or a model name or file as :meth:`Model.load` takes it.
///         Default: the model the stream names, looked up by name in ``model_dir`` and then
///         in the zoo built into the package (the name only ever selects a model file of
///         those, never a path).
///     model_dir: the folder model names are looked up in (default ``$ICM_MODEL_DIR``).
///     max_pixels: refuse a stream of more pixels (width x height) than this, before any
///         work (``LimitError``). Default: the levels' limits only.
///     max_memory: refuse a stream whose decode needs more bytes of memory than this,
///         before any work; tiles are synthesised as many at a time as fit. Set both limits
///         for untrusted streams: a few bytes may declare the largest picture of a level.
///     threads: worker threads (default: one per core). The result does not depend on it.
///
/// Returns:
///     The picture, a new ``uint8`` array of shape ``(H, W, 3)`` (RGB), backed by the
///     decoder's output without a copy.
///
/// Raises:
///     Error: the subclass of the stream's error class of spec 13 (``TruncatedError``,
///         ``InvalidFieldError``, ``ModelMismatchError``, ``CorruptPayloadError``, ...),
///         with ``field``, ``offset`` and ``tile`` where the error names them;
///         ``LimitError`` past a limit; ``ModelError`` when the stream's model is not found.
#[pyfunction]
#[pyo3(signature = (data, *, model = None, model_dir = None, max_pixels = None, max_memory = None, threads = None))]
pub fn decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    model: Option<&Bound<'py, PyAny>>,
    model_dir: Option<PathBuf>,
    max_pixels: Option<u64>,
    max_memory: Option<u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let data = stream_bytes(data)?;
    let bytes = data.as_bytes();
    let choice = decode_choice(model)?;
    let lookup = Lookup::new(model_dir);
    let limits = limits(max_pixels, max_memory);
    let image = py
        .detach(|| {
            let stream = parse(bytes)?;
            let model = choice.resolve(&lookup, Some(&stream.header.model_name))?;
            with_threads(threads, || {
                Ok(codec::decode_stream_limited(&stream, &model, &limits)?.image)
            })
        })
        .or_raise(py)?;
    let (h, w) = (image.height as usize, image.width as usize);
    let array = Array3::from_shape_vec((h, w, 3), image.data)
        .map_err(|e| Failure::new("other", format!("decoded picture: {e}")).into_py_err(py))?;
    Ok(array.into_pyarray(py))
}

/// Decodes the latents of an icm stream (the normative part of decoding, spec 3 steps 1-4),
/// without the synthesis g_s.
///
/// Args:
///     data: the stream, as for :func:`decode`.
///     model: as for :func:`decode`.
///     model_dir: as for :func:`decode`.
///     max_pixels: as for :func:`decode`.
///     max_memory: as for :func:`decode` (the latents only are counted).
///     threads: as for :func:`decode`.
///
/// Returns:
///     A dict:
///
///     - ``"y"``: y^ as ``int32`` fixed point (units of 1/256), shape ``(M, 4 * ceil(H / 64),
///       4 * ceil(W / 64))`` with the tiles placed at their positions: exactly the array
///       ``icm decode --latents Y.npy`` writes.
///     - ``"z"``: z^ as ``int32``, shape ``(N, ceil(H / 64), ceil(W / 64))``, placed the same
///       way.
///     - ``"sha256"``: the conformance hash of the latents (spec Annex A), as
///       ``icm decode --hash`` prints it.
///
/// Raises:
///     Error: as :func:`decode`.
#[pyfunction]
#[pyo3(signature = (data, *, model = None, model_dir = None, max_pixels = None, max_memory = None, threads = None))]
pub fn decode_latents<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    model: Option<&Bound<'py, PyAny>>,
    model_dir: Option<PathBuf>,
    max_pixels: Option<u64>,
    max_memory: Option<u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let data = stream_bytes(data)?;
    let bytes = data.as_bytes();
    let choice = decode_choice(model)?;
    let lookup = Lookup::new(model_dir);
    let limits = limits(max_pixels, max_memory);
    let (y, z, sha256) = py
        .detach(|| {
            let stream = parse(bytes)?;
            let model = choice.resolve(&lookup, Some(&stream.header.model_name))?;
            let latents = with_threads(threads, || {
                Ok(codec::decode_stream_latents_limited(
                    &stream, &model, &limits,
                )?)
            })?;
            let tiling = stream.header.tiling();
            Ok((
                latents.y_mosaic(&tiling),
                latents.z_mosaic(&tiling),
                latents.sha256_hex(),
            ))
        })
        .or_raise(py)?;
    let out = PyDict::new(py);
    for (key, m) in [("y", y), ("z", z)] {
        let array = Array3::from_shape_vec((m.channels, m.height, m.width), m.data)
            .map_err(|e| Failure::new("other", format!("latents: {e}")).into_py_err(py))?;
        out.set_item(key, array.into_pyarray(py))?;
    }
    out.set_item("sha256", sha256)?;
    Ok(out)
}

/// Reads a stream's header and chunks without decoding it: the fields ``icm info --json``
/// prints.
///
/// Args:
///     data: the stream, as for :func:`decode`.
///
/// Returns:
///     A dict: ``version``, ``major_version``, ``minor_version``, ``profile``,
///     ``profile_name``, ``level``, ``width``, ``height``, ``colour_format``,
///     ``tile_width``, ``tile_height``, ``tiles``, ``tile_columns``, ``tile_rows``,
///     ``tile_bytes`` (per tile), ``model``, ``model_sha256``, ``quality``, ``bytes``,
///     ``bpp``, ``skipped_chunks`` (optional chunks skipped), ``verified_tiles`` (tiles
///     whose checksum was verified) and ``step_maps`` (per tile with a STEP chunk, spec 4.6:
///     ``tile``, ``block_log2`` and its ``steps``).
///
/// Raises:
///     Error: the subclass of the container's error class of spec 13 (``BadMagicError``,
///         ``TruncatedError``, ...).
#[pyfunction]
pub fn info<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let data = stream_bytes(data)?;
    let value = parse(data.as_bytes())
        .map(|s| icm_eval::info::stream_info(&s))
        .or_raise(py)?;
    to_python(py, &value)
}
