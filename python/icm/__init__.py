"""icm: the icm learned image codec (image coding for machines) from Python.

Encode a ``uint8`` numpy array of shape ``(H, W, 3)`` to an icm stream, decode a stream to
its picture or to its latents, read a stream's header, compute Bjøntegaard deltas and run
the conformance suite: the same Rust libraries as the ``icm`` command, with the GIL
released while the codec runs. The zoo of six models (``icm-psnr-q1`` .. ``q6``) is built
into the package. :class:`TaskEvaluation`, :class:`AnchorEvaluation` and
:class:`RdEvaluation` run ``icm task-eval``, ``icm anchor`` and ``icm eval`` one picture and
rate point at a time, for ``python -m icm.dist`` (Ray). Every error is an :class:`Error`; a stream or model a decoder must refuse
raises the subclass of its error class of spec 13.

    >>> import numpy as np, icm
    >>> x = np.zeros((64, 96, 3), dtype=np.uint8)
    >>> data = icm.encode(x, quality=3)
    >>> icm.decode(data).shape
    (64, 96, 3)

The documentation of every name is in ``icm/__init__.pyi`` and in each ``__doc__``.
"""

from ._errors import (
    BadMagicError,
    BdRateError,
    ChecksumMismatchError,
    CorruptPayloadError,
    Error,
    InvalidFieldError,
    InvalidModelError,
    IoError,
    LimitError,
    ModelError,
    ModelMismatchError,
    TaskError,
    TileCountError,
    TrailingDataError,
    TruncatedError,
    UnknownRequiredChunkError,
    UnsupportedVersionError,
    UsageError,
)
from ._icm import (
    DEFAULT_QUALITY,
    SPEC_VERSION,
    ZOO,
    AnchorEvaluation,
    Model,
    RdEvaluation,
    TaskEvaluation,
    bd_rate,
    conformance,
    decode,
    decode_latents,
    encode,
    info,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_QUALITY",
    "SPEC_VERSION",
    "ZOO",
    "Model",
    "TaskEvaluation",
    "AnchorEvaluation",
    "RdEvaluation",
    "encode",
    "decode",
    "decode_latents",
    "info",
    "bd_rate",
    "conformance",
    "Error",
    "BadMagicError",
    "UnsupportedVersionError",
    "TruncatedError",
    "InvalidFieldError",
    "UnknownRequiredChunkError",
    "TileCountError",
    "TrailingDataError",
    "ChecksumMismatchError",
    "ModelMismatchError",
    "CorruptPayloadError",
    "InvalidModelError",
    "LimitError",
    "IoError",
    "ModelError",
    "UsageError",
    "BdRateError",
    "TaskError",
]
