"""The exceptions of the icm package.

Every error the package raises is an :class:`Error`. A stream or model file that a decoder
must refuse raises the subclass of its error class of spec section 13 (``truncated`` ->
:class:`TruncatedError`, ...); the extension (``icm._icm``) creates them through
:func:`_make`, the only place that maps the Rust errors' classes to Python classes.
"""

from typing import Dict, Optional, Type


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

    error_class: Optional[str] = None
    field: Optional[str] = None
    offset: Optional[int] = None
    tile: Optional[int] = None
    path: Optional[str] = None


class BadMagicError(Error):
    """``bad-magic``: the first 4 bytes are not the icm magic (spec 4.1)."""

    error_class = "bad-magic"


class UnsupportedVersionError(Error):
    """``unsupported-version``: ``major_version`` is not 1 (spec 14)."""

    error_class = "unsupported-version"


class TruncatedError(Error):
    """``truncated``: a syntax element reaches past the end of what holds it (spec 13)."""

    error_class = "truncated"


class InvalidFieldError(Error):
    """``invalid-field``: a header or chunk field is outside its range (spec 4-6, 13)."""

    error_class = "invalid-field"


class UnknownRequiredChunkError(Error):
    """``unknown-required-chunk``: a required chunk type other than TILE and IEND (spec 4.2)."""

    error_class = "unknown-required-chunk"


class TileCountError(Error):
    """``tile-count``: more or fewer TILE chunks than the tiling has (spec 4.3)."""

    error_class = "tile-count"


class TrailingDataError(Error):
    """``trailing-data``: bytes after IEND (spec 4.4)."""

    error_class = "trailing-data"


class ChecksumMismatchError(Error):
    """``checksum-mismatch``: a tile's CRC-32C (``tsum`` chunk) differs from its payload's
    (spec 4.5)."""

    error_class = "checksum-mismatch"


class ModelMismatchError(Error):
    """``model-mismatch``: the stream's ``model_name`` or ``model_sha256`` differ from the
    model's (spec 7.1)."""

    error_class = "model-mismatch"


class CorruptPayloadError(Error):
    """``corrupt-payload``: an ANS payload is malformed (spec 8.2, 8.4, 8.5)."""

    error_class = "corrupt-payload"


class InvalidModelError(Error):
    """``invalid-model``: the model file fails the validation of spec 7.5."""

    error_class = "invalid-model"


class LimitError(Error):
    """The stream needs more pixels or memory than ``max_pixels`` / ``max_memory`` allow
    (checked against its header before any work); ``field`` says which."""

    error_class = "limit"


class IoError(Error, OSError):
    """A file could not be read (a model file, a results file, the conformance suite)."""


class ModelError(Error, LookupError):
    """The model could not be found: no model of that name in the model directory nor in
    the package's zoo, or a stream names its model with a name that is not a plain name."""


class UsageError(Error, ValueError):
    """An argument is invalid: an image that is not ``uint8`` ``(H, W, 3)``, a tile size
    that is not a multiple of 64, ``quality`` and ``model`` given together, ..."""


class BdRateError(Error, ValueError):
    """A Bjøntegaard delta cannot be computed: curves that do not overlap, too few points,
    a curve that is not monotone, a results file without the metric, ..."""


class TaskError(Error):
    """A task evaluation failed: a dataset that does not read, a task network or ONNX
    Runtime that cannot be loaded, a codec that fails on a picture, records that do not
    make up the evaluation (:class:`icm.TaskEvaluation`, ``python -m icm.dist``)."""


# What the extension names each error (the classes of spec 13 as CodecError::class() and
# ModelError::class() give them, and the package's own kinds) -> the class raised.
_KINDS: Dict[str, Type[Error]] = {
    cls.error_class: cls
    for cls in (
        BadMagicError,
        UnsupportedVersionError,
        TruncatedError,
        InvalidFieldError,
        UnknownRequiredChunkError,
        TileCountError,
        TrailingDataError,
        ChecksumMismatchError,
        ModelMismatchError,
        CorruptPayloadError,
        InvalidModelError,
        LimitError,
    )
    if cls.error_class is not None
}
_KINDS.update(
    {
        "io": IoError,
        "model": ModelError,
        "usage": UsageError,
        "bd-rate": BdRateError,
        "task": TaskError,
    }
)


def _make(
    kind: str,
    message: str,
    field: Optional[str] = None,
    offset: Optional[int] = None,
    tile: Optional[int] = None,
    path: Optional[str] = None,
) -> Error:
    """The exception for an error of the extension: ``kind`` is an error class of spec 13
    (or another class the Rust codec reports, such as ``"limit"`` or ``"other"``) or one of
    ``"io"``, ``"model"``, ``"usage"``, ``"bd-rate"``."""
    cls = _KINDS.get(kind, Error)
    err = cls(message)
    if cls is Error and kind not in ("io", "model", "usage", "bd-rate"):
        err.error_class = kind
    err.field = field
    err.offset = offset
    err.tile = tile
    err.path = path
    return err
