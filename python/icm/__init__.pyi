"""Type stubs and documentation of the package icm (distribution icm-codec): every public
name. The functions and the classes Model, TaskEvaluation and AnchorEvaluation are
implemented in Rust (the extension icm._icm), the exceptions in icm/_errors.py;
python/tests/test_api.py checks that this file and the runtime agree on names, parameters
and docstrings."""

import os
from typing import Dict, List, Optional, Sequence, Tuple, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str
ZOO: List[str]
"""The names of the models built into the package: icm-psnr-q1 .. icm-psnr-q6."""
DEFAULT_QUALITY: int
"""The zoo quality used when neither quality nor model is given (3: icm-psnr-q3)."""
SPEC_VERSION: str
"""The edition of the icm specification (spec/icm-v1.md) this package implements."""

_PathLike = Union[str, "os.PathLike[str]"]
_ModelLike = Union["Model", str, "os.PathLike[str]"]
_Stream = Union[bytes, bytearray, memoryview, npt.NDArray[np.uint8]]
_Curve = Union[
    str,
    "os.PathLike[str]",
    Dict[str, object],
    Tuple[Sequence[float], Sequence[float]],
    Sequence[Sequence[float]],
    npt.NDArray[np.floating],
]

class Latents(TypedDict):
    """What decode_latents returns (a plain dict at run time)."""

    y: npt.NDArray[np.int32]
    z: npt.NDArray[np.int32]
    sha256: str

class Model:
    """A loaded model file (spec 7): load it once with :meth:`Model.load` and pass it to
    :func:`encode`, :func:`decode` and :func:`decode_latents` as ``model=``, so that it is
    not looked up and validated again on every call. Immutable; one model may serve several
    threads at once.
    """

    @staticmethod
    def load(name_or_path: _PathLike, *, model_dir: Optional[_PathLike] = None) -> "Model":
        """Loads a model file and validates it (spec 7.5).

        Args:
            name_or_path: a model file, or the name of a model (with or without
                ``.safetensors``): looked up in ``model_dir``, then in the zoo built into the
                package (``icm-psnr-q1`` .. ``icm-psnr-q6``).
            model_dir: the folder names are looked up in (default ``$ICM_MODEL_DIR``).

        Returns:
            The model.

        Raises:
            InvalidModelError: the file fails spec 7.5 (``field`` names the tensor or
                metadata key, ``path`` the file).
            ModelError: no model of that name; ``IoError``: the file cannot be read.
        """
    @property
    def name(self) -> str:
        """The model's name, as streams made with it name it."""
    @property
    def sha256(self) -> str:
        """SHA-256 of the model file, lower-case hex (streams carry it, spec 7.1)."""
    @property
    def quality(self) -> int:
        """The zoo quality index the model was built for (0 when none)."""
    @property
    def architecture(self) -> str:
        """The architecture (spec 7.2.1): "hyperprior-v1" for the zoo, "bmshj2018-hyperprior" or
        "mbt2018-mean" for imported CompressAI models."""
    @property
    def N(self) -> int:
        """Channels of the hyper-latents z^."""
    @property
    def M(self) -> int:
        """Channels of the latents y^."""
    @property
    def encoder(self) -> bool:
        """Whether the model has the analysis transforms g_a and h_a (False: decoder only)."""
    @property
    def metadata(self) -> Dict[str, str]:
        """The model file's metadata (name, quality, format and the build's own entries)."""

class TaskEvaluation:
    """A task evaluation (``icm task-eval``) cut into records, one picture at one rate point,
    for ``python -m icm.dist``: set it up once per process with the arguments of the
    command, :meth:`evaluate` each picture at each rate point (anywhere: each record is
    independent), and :meth:`finish` all records in one place, which merges and scores
    them as the command does (COCO mAP once on all detections). Records are read from and
    written to the record cache (``cache_dir/records``) unless ``use_cache`` is false.

    Args:
        task: ``"detection"``, ``"classification"`` or ``"segmentation"``.
        dataset: the dataset folder (as ``icm task-eval --dataset``).
        codec, input_domain, qualities, models, qps, ffmpeg, limit, task_model,
            annotations: ``--codec``, ``--input-domain``, ``--qualities``, ``--model``
            (a list), ``--qps``, ``--ffmpeg``, ``--limit``, ``--task-model``,
            ``--annotations`` of ``icm task-eval``.
        model_dir: where models are looked up by name before the zoo built into the package
            (default ``$ICM_MODEL_DIR``).
        cache_dir: the cache root: records in ``records/``, anchors in ``anchors/`` (default
            ``$ICM_CACHE_DIR``, else ``~/.cache/icm``).
        use_cache: read and write the record cache.
        roi: with codec ``icm``, region-of-interest steps from this task's network
            (``detection``, ``classification``, ``segmentation``; ``icm task-eval --roi``).
        roi_background: the step factor of the least important cells (default 16 for
            classification, 3 for detection and segmentation).

    Raises:
        UsageError: arguments that do not parse or go together; ``TaskError``: a dataset,
            network, ONNX Runtime or codec that fails; ``ModelError``: a model not found."""

    def __init__(
        self,
        task: str,
        dataset: _PathLike,
        *,
        codec: str = "icm",
        input_domain: str = "rgb",
        qualities: Optional[str] = None,
        models: Optional[List[str]] = None,
        qps: Optional[str] = None,
        ffmpeg: Optional[_PathLike] = None,
        limit: Optional[int] = None,
        task_model: Optional[_PathLike] = None,
        annotations: Optional[_PathLike] = None,
        model_dir: Optional[_PathLike] = None,
        cache_dir: Optional[_PathLike] = None,
        use_cache: bool = True,
        roi: Optional[str] = None,
        roi_background: Optional[float] = None,
    ) -> None:
        """Sets up the evaluation: loads the dataset, the models and the task networks."""
    @property
    def pictures(self) -> int:
        """Pictures to evaluate (after ``limit``)."""
    @property
    def labels(self) -> List[str]:
        """The rate points' labels."""
    @property
    def names(self) -> List[str]:
        """The pictures' file names, in evaluation order."""
    @property
    def records_dir(self) -> Optional[str]:
        """The record cache's folder, or ``None`` without cache."""
    def evaluate(self, item: int, point: int) -> Tuple[bytes, bool]:
        """Evaluates picture ``item`` (0-based, dataset order) at rate point ``point``.

        Returns:
            ``(record, cached)``: the record (opaque bytes for :meth:`finish`) and whether it
            came from the record cache. A record evaluated here is stored in the cache
            before it is returned (whole or not at all).

        Raises:
            TaskError: the picture or its coding fails, or the indices are out of range.
        """
    def finish(self, records: Sequence[bytes], total_s: float) -> Dict[str, object]:
        """Merges and scores the records of every picture at every rate point, in any order,
        as ``icm task-eval`` does.

        Args:
            records: one record of :meth:`evaluate` per picture and rate point.
            total_s: the wall time to report (``total_time``).

        Returns:
            A dict: ``json`` and ``csv``, the results files of ``icm task-eval -o`` and
            ``--csv``; ``table``, its table; ``detections``, ``{label: json}`` of
            ``--save-detections`` (detection).

        Raises:
            TaskError: a record missing, given twice, or unreadable.
        """

class AnchorEvaluation:
    """A conventional-codec anchor run (``icm anchor``) cut into rows, one picture at one rate
    point, for ``python -m icm.dist anchor``: set it up once per process with the arguments
    of the command, :meth:`evaluate` each picture at each rate point, and :meth:`finish` all
    rows in one place, which makes the command's results file. Coded pictures are read from
    and stored in the anchor cache (``cache_dir``) unless ``no_cache``.

    Args:
        codec: ``"vvc"``, ``"hevc"``, ``"av1"``, ``"jpeg"``, ``"jxl"`` or ``"webp"``.
        dataset: a folder of PNG pictures.
        qps, limit, ffmpeg, preset, encoder_cmd, cache_dir, no_cache: ``--qps``,
            ``--limit``, ``--ffmpeg``, ``--preset``, ``--encoder-cmd``, ``--cache-dir``,
            ``--no-cache`` of ``icm anchor``.

    Raises:
        UsageError: arguments that do not parse; ``TaskError``: no ffmpeg, no PNG, a codec
            that fails.
    """

    def __init__(
        self,
        codec: str,
        dataset: _PathLike,
        *,
        qps: Optional[str] = None,
        limit: Optional[int] = None,
        ffmpeg: Optional[_PathLike] = None,
        preset: str = "medium",
        encoder_cmd: Optional[str] = None,
        cache_dir: Optional[_PathLike] = None,
        no_cache: bool = False,
    ) -> None:
        """Sets up the run: parses the rate parameters, finds ffmpeg, lists the pictures."""
    @property
    def pictures(self) -> int:
        """Pictures to code (after ``limit``)."""
    @property
    def labels(self) -> List[str]:
        """The rate points' labels."""
    def evaluate(self, item: int, point: int) -> Tuple[bytes, bool, Optional[str]]:
        """Codes picture ``item`` (0-based, sorted file names) at rate point ``point``, or
        reads it from the anchor cache, and measures it.

        Returns:
            ``(row, cached, warning)``: the row (opaque bytes for :meth:`finish`), whether
            the coded picture came from the cache, and a warning or ``None``.

        Raises:
            TaskError: the picture or its coding fails, or the indices are out of range.
        """
    def finish(self, rows: Sequence[bytes]) -> Dict[str, str]:
        """Makes the results file of the rows of every picture at every rate point, in any
        order, as ``icm anchor`` does.

        Returns:
            A dict: ``json`` and ``csv``, the results files of ``icm anchor -o`` and
            ``--csv``.

        Raises:
            TaskError: a row missing, given twice, or unreadable.
        """

class RdEvaluation:
    """The rate-distortion evaluation of ``icm eval`` (the icm codec on a folder of PNGs: bpp,
    PSNR-RGB, MS-SSIM, times) cut into rows, one picture at one rate point, for
    ``python -m icm.dist eval``: set it up once per process with the arguments of the
    command (the models are loaded once), :meth:`evaluate` each picture at each rate point
    (anywhere: each row is independent), and :meth:`finish` all rows in one place, which
    makes the command's results file. Rows are read from and written to the record cache
    (``cache_dir/records``, keyed by the picture's bytes, the model's SHA-256, the encoder
    options and the icm version) unless ``use_cache`` is false.

    Args:
        dataset: a folder of PNG pictures (sorted file names).
        qualities, models, limit: ``--qualities``, ``--model`` (a list), ``--limit`` of
            ``icm eval``; without either, qualities 1 to 6.
        effort, lambda_: ``--effort`` (0 to 3) and ``--lambda`` of the encoder's search.
        model_dir: where models are looked up by name before the zoo built into the package
            (default ``$ICM_MODEL_DIR``).
        cache_dir: the cache root, rows in ``records/`` (default ``$ICM_CACHE_DIR``, else
            ``~/.cache/icm``).
        use_cache: read and write the record cache.

    Raises:
        UsageError: arguments that do not parse; ``ModelError``: a model not found or
            without encoder; ``TaskError``: no PNG in the folder.
    """

    def __init__(
        self,
        dataset: _PathLike,
        *,
        qualities: Optional[str] = None,
        models: Optional[Sequence[str]] = None,
        limit: Optional[int] = None,
        effort: int = 0,
        lambda_: Optional[float] = None,
        model_dir: Optional[_PathLike] = None,
        cache_dir: Optional[_PathLike] = None,
        use_cache: bool = True,
    ) -> None:
        """Sets up the evaluation: loads the models, lists the pictures."""
    @property
    def pictures(self) -> int:
        """Pictures to evaluate (after ``limit``)."""
    @property
    def labels(self) -> List[str]:
        """The rate points' labels (the models' names)."""
    @property
    def records_dir(self) -> Optional[str]:
        """The record cache's folder, or ``None`` without cache."""
    def evaluate(self, item: int, point: int) -> Tuple[bytes, bool, Optional[str]]:
        """Encodes and decodes picture ``item`` (0-based, sorted file names) at rate point
        ``point`` and measures it, or reads its row from the record cache.

        Returns:
            ``(row, cached, warning)``: the row (opaque bytes for :meth:`finish`), whether
            it came from the cache, and a warning or ``None``.

        Raises:
            TaskError: the picture does not read, or the indices are out of range;
                :class:`Error` (the subclass of its class): the codec fails.
        """
    def finish(self, rows: Sequence[bytes]) -> Dict[str, str]:
        """Makes the results file of the rows of every picture at every rate point, in any
        order, as ``icm eval`` does.

        Returns:
            A dict: ``json`` and ``csv``, the results files of ``icm eval -o`` and ``--csv``,
            and ``table``, the table ``icm eval`` prints.

        Raises:
            TaskError: a row missing, given twice, or unreadable.
        """

def encode(
    image: npt.NDArray[np.uint8],
    *,
    quality: Optional[float] = None,
    model: Optional[_ModelLike] = None,
    tile: Union[None, int, Tuple[int, int], str] = None,
    threads: Optional[int] = None,
    checksums: bool = True,
    model_dir: Optional[_PathLike] = None,
    effort: int = 0,
    lambda_: Optional[float] = None,
    step: Optional[float] = None,
    bpp: Optional[float] = None,
    size: Optional[int] = None,
) -> bytes:
    """Encodes a picture to an icm stream: the bytes `icm encode` writes for the same picture,
    model and options.

    Args:
        image: the picture, a numpy ``uint8`` array of shape ``(H, W, 3)`` (RGB), any
            strides; copied once. From 1x1 to the limits of the levels (8192x8192 and 32
            Mpixel at level 1, 32768 a side at level 2).
        quality: zoo quality 1.0 (lowest rate, ~0.17 bpp on Kodak) to 6.0 (~1.13 bpp);
            default 3, the model ``icm-psnr-q3`` (~0.44 bpp). A fraction (``3.5``) codes at
            the geometric mean of the sizes of the two neighbouring models on this picture,
            with the upper one and a global step (spec 12.7). Excludes ``model``.
        model: a :class:`Model`, or a model name or file as :meth:`Model.load` takes it.
        tile: ``None`` (1024x1024), ``N`` (NxN), ``(W, H)`` or ``"WxH"``: multiples of 64
            from 64 to 2048. A tile larger than the picture is the whole picture.
        threads: worker threads (default: one per core). The bytes do not depend on it.
        checksums: follow every tile with its CRC-32C (``tsum``, spec 4.5: a version 1.1
            stream); ``False`` writes a version 1.0 stream, as ``--no-checksums``.
        model_dir: the folder model names are looked up in (default ``$ICM_MODEL_DIR``)
            before the zoo built into the package.
        effort: 0 (default) codes the latents the analysis transform predicts; 1-3 search
            per tile for latents with a lower rate + lambda * distortion (spec 12.6), as
            ``icm encode --effort``: slower encoding, the same decoder.
        lambda_: the rate-distortion weight of the search (``bpp + lambda_ * 255^2 * MSE``);
            default the model's ``lambda`` metadata entry (the zoo has it; give it for an
            imported model).
        step: a global quantisation step (1/256 to 16; 1 is the model's own rate, 2 about
            halves the rate of the latents): a version 1.3 stream (spec 5.4).
        bpp: a target size in bits per pixel: the stream is at most ``floor(bpp * W * H /
            8)`` bytes, with the lowest zoo model (or ``model``) whose stream at step 1
            reaches it and the smallest global step that fits, as ``icm encode --bpp``.
        size: a target size in bytes, as ``bpp``.

    Returns:
        The stream, as ``bytes``.

    Raises:
        UsageError: an image that is not ``uint8`` ``(H, W, 3)``, a bad tile size,
            ``quality`` and ``model`` together, a quality outside 1-6, an effort above 3,
            no lambda for an effort above 0, ``bpp`` or ``size`` with ``quality`` or
            ``step`` (or with each other), a fractional quality with ``step``, a step outside
            1/256-16, a target smaller than the smallest stream.
        ModelError: no model of that name; ``IoError`` when its file cannot be read,
            ``InvalidModelError`` when it fails spec 7.5."""

def decode(
    data: _Stream,
    *,
    model: Optional[_ModelLike] = None,
    model_dir: Optional[_PathLike] = None,
    max_pixels: Optional[int] = None,
    max_memory: Optional[int] = None,
    threads: Optional[int] = None,
) -> npt.NDArray[np.uint8]:
    """Decodes an icm stream to its picture: the pixels `icm decode -o OUT.png` writes.

    Args:
        data: the stream: ``bytes`` (read in place), ``bytearray``, ``memoryview`` or a 1-D
            ``uint8`` array.
        model: a :class:`Model`, or a model name or file as :meth:`Model.load` takes it.
            Default: the model the stream names, looked up by name in ``model_dir`` and then
            in the zoo built into the package (the name only ever selects a model file of
            those, never a path).
        model_dir: the folder model names are looked up in (default ``$ICM_MODEL_DIR``).
        max_pixels: refuse a stream of more pixels (width x height) than this, before any
            work (``LimitError``). Default: the levels' limits only.
        max_memory: refuse a stream whose decode needs more bytes of memory than this,
            before any work; tiles are synthesised as many at a time as fit. Set both limits
            for untrusted streams: a few bytes may declare the largest picture of a level.
        threads: worker threads (default: one per core). The result does not depend on it.

    Returns:
        The picture, a new ``uint8`` array of shape ``(H, W, 3)`` (RGB), backed by the
        decoder's output without a copy.

    Raises:
        Error: the subclass of the stream's error class of spec 13 (``TruncatedError``,
            ``InvalidFieldError``, ``ModelMismatchError``, ``CorruptPayloadError``, ...),
            with ``field``, ``offset`` and ``tile`` where the error names them;
            ``LimitError`` past a limit; ``ModelError`` when the stream's model is not found.
    """

def decode_latents(
    data: _Stream,
    *,
    model: Optional[_ModelLike] = None,
    model_dir: Optional[_PathLike] = None,
    max_pixels: Optional[int] = None,
    max_memory: Optional[int] = None,
    threads: Optional[int] = None,
) -> Latents:
    """Decodes the latents of an icm stream (the normative part of decoding, spec 3 steps 1-4),
    without the synthesis g_s.

    Args:
        data: the stream, as for :func:`decode`.
        model: as for :func:`decode`.
        model_dir: as for :func:`decode`.
        max_pixels: as for :func:`decode`.
        max_memory: as for :func:`decode` (the latents only are counted).
        threads: as for :func:`decode`.

    Returns:
        A dict:

        - ``"y"``: y^ as ``int32`` fixed point (units of 1/256), shape ``(M, 4 * ceil(H / 64),
          4 * ceil(W / 64))`` with the tiles placed at their positions: exactly the array
          ``icm decode --latents Y.npy`` writes.
        - ``"z"``: z^ as ``int32``, shape ``(N, ceil(H / 64), ceil(W / 64))``, placed the same
          way.
        - ``"sha256"``: the conformance hash of the latents (spec Annex A), as
          ``icm decode --hash`` prints it.

    Raises:
        Error: as :func:`decode`.
    """

def info(data: _Stream) -> Dict[str, object]:
    """Reads a stream's header and chunks without decoding it: the fields ``icm info --json``
    prints.

    Args:
        data: the stream, as for :func:`decode`.

    Returns:
        A dict: ``version``, ``major_version``, ``minor_version``, ``profile``,
        ``profile_name``, ``level``, ``width``, ``height``, ``colour_format``,
        ``tile_width``, ``tile_height``, ``tiles``, ``tile_columns``, ``tile_rows``,
        ``tile_bytes`` (per tile), ``model``, ``model_sha256``, ``quality``, ``bytes``,
        ``bpp``, ``skipped_chunks`` (optional chunks skipped), ``verified_tiles`` (tiles
        whose checksum was verified) and ``step_maps`` (per tile with a STEP chunk, spec 4.6:
        ``tile``, ``block_log2`` and its ``steps``).

    Raises:
        Error: the subclass of the container's error class of spec 13 (``BadMagicError``,
            ``TruncatedError``, ...).
    """

def bd_rate(
    anchor: _Curve,
    test: _Curve,
    *,
    metric: str = "psnr",
    method: str = "pchip",
    envelope: bool = False,
) -> Tuple[float, float]:
    """Bjøntegaard-delta rate and metric of a test curve against an anchor, as ``icm bd-rate``
    computes them (the definitions of the PyPI package ``bjontegaard`` 1.3, which they
    match to 1e-6).

    Args:
        anchor: the reference curve: a results file (path; JSON as ``icm eval -o`` writes,
            or CSV with a ``bpp`` column), a dict of columns (``{"bpp": [...], "psnr":
            [...]}``, or a results file's layout ``{"results": {...}}``), or a pair
            ``(rates, qualities)`` of 1-D sequences or arrays (a ``(2, N)`` array). Points
            may come in any order.
        test: the curve under test, given as ``anchor``.
        metric: the quality column: ``"psnr"`` (also found as ``psnr-rgb``), ``"ms-ssim"``,
            ``"map"``, ... Unused for pairs.
        method: ``"pchip"``, ``"akima"`` or ``"cubic"``.
        envelope: keep only each curve's upper envelope (points that a cheaper point matches
            or beats are left out), as ``--envelope``.

    Returns:
        ``(bd_rate, bd_metric)``: the rate difference in percent (negative: the test needs
        less rate for the same quality) and the quality difference in the metric's units.

    Raises:
        BdRateError: curves that do not overlap, too few points, a curve that is not
            monotone (pchip, akima), a results file without the metric.
        UsageError: an unknown method or a curve of another shape; ``IoError``: a results
            file that cannot be read.
    """

def conformance(
    path: Optional[_PathLike] = None,
    decoder: Optional[str] = None,
    *,
    latents_only: bool = False,
    filter: Optional[str] = None,
) -> Dict[str, object]:
    """Runs the conformance suite (spec 11.3, 13, Annex A), as ``icm conformance --json``.

    Args:
        path: the folder holding ``conformance/vectors.json`` (a checkout of the icm
            repository). Default: the repository the package was built from, when it is
            still there.
        decoder: a decoder command to check instead of the built-in decoder, with ``{in}``,
            ``{model}``, ``{out_latents}`` and ``{out_image}`` replaced by paths (run by
            ``sh -c``; see conformance/README.md).
        latents_only: with ``decoder``: check the latents only, not the reconstruction.
        filter: run only the vectors whose name contains this.

    Returns:
        A dict: ``passed``, ``failed``, ``class_checked`` and ``exit_only`` (must-fail
        vectors passed with the error class compared / by exit status only) and ``vectors``,
        a list of ``{"name", "check", "passed", "detail", "latents_sha256",
        "fail_check"}``.

    Raises:
        UsageError: no suite at the default path; ``IoError``: the index cannot be read.
    """

class Error(Exception):
    """Base class of every error raised by icm.

    Attributes (``None`` where the Rust error does not name them):

    - ``error_class``: the error class of spec 13 (``"truncated"``, ``"invalid-field"``,
      ...) as the CLI prints it on its ``error: CLASS`` line; ``None`` for I/O, model
      lookup, usage and BD-rate errors.
    - ``field``: the syntax element, tensor or metadata key at fault (``"width"``,
      ``"tile_index"``, ``"z_payload"``, ``"h_s.0.weight"``, ...).
    - ``offset``: the byte offset in the stream of that element or chunk.
    - ``tile``: the index of the tile at fault.
    - ``path``: the file at fault (a model file, a results file).
    """

    error_class: Optional[str]
    field: Optional[str]
    offset: Optional[int]
    tile: Optional[int]
    path: Optional[str]

class BadMagicError(Error):
    """``bad-magic``: the first 4 bytes are not the icm magic (spec 4.1)."""

class UnsupportedVersionError(Error):
    """``unsupported-version``: ``major_version`` is not 1 (spec 14)."""

class TruncatedError(Error):
    """``truncated``: a syntax element reaches past the end of what holds it (spec 13)."""

class InvalidFieldError(Error):
    """``invalid-field``: a header or chunk field is outside its range (spec 4-6, 13)."""

class UnknownRequiredChunkError(Error):
    """``unknown-required-chunk``: a required chunk type other than TILE and IEND (spec 4.2)."""

class TileCountError(Error):
    """``tile-count``: more or fewer TILE chunks than the tiling has (spec 4.3)."""

class TrailingDataError(Error):
    """``trailing-data``: bytes after IEND (spec 4.4)."""

class ChecksumMismatchError(Error):
    """``checksum-mismatch``: a tile's CRC-32C (``tsum`` chunk) differs from its payload's
    (spec 4.5).
    """

class ModelMismatchError(Error):
    """``model-mismatch``: the stream's ``model_name`` or ``model_sha256`` differ from the
    model's (spec 7.1).
    """

class CorruptPayloadError(Error):
    """``corrupt-payload``: an ANS payload is malformed (spec 8.2, 8.4, 8.5)."""

class InvalidModelError(Error):
    """``invalid-model``: the model file fails the validation of spec 7.5."""

class LimitError(Error):
    """The stream needs more pixels or memory than ``max_pixels`` / ``max_memory`` allow
    (checked against its header before any work); ``field`` says which.
    """

class IoError(Error, OSError):
    """A file could not be read (a model file, a results file, the conformance suite)."""

class ModelError(Error, LookupError):
    """The model could not be found: no model of that name in the model directory nor in
    the package's zoo, or a stream names its model with a name that is not a plain name.
    """

class UsageError(Error, ValueError):
    """An argument is invalid: an image that is not ``uint8`` ``(H, W, 3)``, a tile size
    that is not a multiple of 64, ``quality`` and ``model`` given together, ...
    """

class BdRateError(Error, ValueError):
    """A Bjøntegaard delta cannot be computed: curves that do not overlap, too few points,
    a curve that is not monotone, a results file without the metric, ...
    """

class TaskError(Error):
    """A task evaluation failed: a dataset that does not read, a task network or ONNX
    Runtime that cannot be loaded, a codec that fails on a picture, records that do not
    make up the evaluation (:class:`icm.TaskEvaluation`, ``python -m icm.dist``)."""
