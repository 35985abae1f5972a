"""The one registry of schemes: every in-place fastinit fill by name, what it needs, and one way
to call it.

Everything that looks a scheme up by name — ``fi.init``, checkpoint specs, ``fastinit.dask``,
``fastinit.torch``, ``fastinit.diagnostics`` — goes through ``lookup`` and ``Scheme.fill``.

Examples:
    >>> scheme = lookup("kaiming_normal")
    >>> scheme.draws, scheme.whole_tensor
    (True, False)
    >>> import numpy as np
    >>> scheme.fill(np.empty((2, 3), np.float32), seed=0, name="w", nonlinearity="relu").shape
    (2, 3)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import distributions as D
from . import schemes as S
from ._dtypes import numpy_dtype

__all__ = ["Scheme", "SCHEMES", "STREAM_ARGUMENTS", "lookup", "prefixed"]

#: the arguments every scheme gets from its caller, never from its parameters
STREAM_ARGUMENTS = ("out", "seed", "name", "global_shape", "offset")
#: whole-tensor schemes are dry-run (to check their parameters) only up to this size
_DRY_RUN_LIMIT = 1 << 20


def _qr_bytes(shape: tuple[int, ...]) -> int:
    """Memory of a whole-tensor orthogonal fill: the float64 Gaussian, its Q, the float64 tensor and
    the copies between them (about 32 bytes per element)."""
    return 32 * math.prod(shape)


def _sparse_bytes(shape: tuple[int, ...]) -> int:
    """Memory of ``sparse_``: each pass ranks whole columns (a uint32 word, an int64 argsort index
    and a mask per row; passes of at least 2**21 elements)."""
    return 32 * max(shape[0], 1 << 21) if len(shape) == 2 else 0


def physical_memory() -> int | None:
    """This machine's memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Scheme:
    """One scheme: its fastinit in-place function, whether it draws random numbers (and so takes
    ``seed`` and ``name``), and whether it needs the whole tensor at once (a QR factorization) or
    fills any box on its own."""

    name: str
    function: Callable[..., np.ndarray]
    draws: bool = True
    whole_tensor: bool = False
    #: the working memory of a fill of the whole tensor of a shape, when it grows with the tensor
    working_bytes: Callable[[tuple[int, ...]], int] | None = None

    def fill(self, out: np.ndarray, *, seed: Any = None, name: str = "", global_shape: Any = None,
             offset: Any = None, **params: Any) -> np.ndarray:
        """``function(out, **params)`` for the box ``(global_shape, offset)`` (default: ``out`` is the
        whole tensor) of stream ``(seed, name)`` (ignored by schemes that do not draw)."""
        stream = {"seed": seed, "name": name} if self.draws else {}
        box = {} if global_shape is None and offset is None else {"global_shape": global_shape, "offset": offset}
        return self.function(out, **box, **stream, **params)

    @functools.cached_property
    def parameters(self) -> tuple[str, ...]:
        """The scheme's own parameters: everything but the stream arguments."""
        return tuple(p for p in inspect.signature(self.function).parameters if p not in STREAM_ARGUMENTS)

    def check(self, params: Mapping[str, Any], shape: tuple[int, ...], dtype: str) -> None:
        """Raise ``ValueError`` unless ``params`` are valid for a tensor of ``shape`` and ``dtype``: they
        bind to the function, and a dry run on one element accepts them (std > 0, shape rank, ...,
        with the function's own messages)."""
        reserved = [k for k in params if k in STREAM_ARGUMENTS]
        if reserved:
            raise ValueError(f"{', '.join(map(repr, reserved))} cannot be set as parameters (the tensor's name "
                             "and the run's seed are the stream; boxes are chosen by the writer)")
        try:
            inspect.signature(self.function).bind(None, **params)
        except TypeError as err:
            raise ValueError(f"init {self.name!r} does not take these parameters ({err}); it takes "
                             f"{', '.join(self.parameters) or 'no parameters'}") from None
        size = math.prod(shape)
        if size == 0:
            return
        need, have = (self.working_bytes(shape) if self.working_bytes else 0), physical_memory()
        if have is not None and need > have:
            raise ValueError(f"init {self.name!r} needs about {need / 2**30:.3g} GiB of memory for shape {list(shape)} "
                             f"(it works on {'the whole tensor' if self.whole_tensor else 'whole columns'} at once); "
                             f"this machine has {have / 2**30:.3g} GiB")
        if self.whole_tensor and size > _DRY_RUN_LIMIT:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.fill(np.empty((1,) * len(shape), numpy_dtype(dtype)), seed=0, name="", global_shape=shape,
                          offset=(0,) * len(shape), **params)
        except TypeError as err:
            raise ValueError(str(err)) from None


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("random_bits", D.random_bits_),
    Scheme("uniform", D.uniform_),
    Scheme("normal", D.normal_),
    Scheme("trunc_normal", D.trunc_normal_),
    Scheme("variance_scaling", S.variance_scaling_),
    Scheme("xavier_uniform", S.xavier_uniform_),
    Scheme("xavier_normal", S.xavier_normal_),
    Scheme("xavier_simple", S.xavier_simple_),
    Scheme("glorot_uniform", S.glorot_uniform_),
    Scheme("glorot_normal", S.glorot_normal_),
    Scheme("kaiming_uniform", S.kaiming_uniform_),
    Scheme("kaiming_normal", S.kaiming_normal_),
    Scheme("he_uniform", S.he_uniform_),
    Scheme("he_normal", S.he_normal_),
    Scheme("lecun_uniform", S.lecun_uniform_),
    Scheme("lecun_normal", S.lecun_normal_),
    Scheme("orthogonal", S.orthogonal_, whole_tensor=True, working_bytes=_qr_bytes),
    Scheme("delta_orthogonal", S.delta_orthogonal_, whole_tensor=True, working_bytes=_qr_bytes),
    Scheme("sparse", S.sparse_, working_bytes=_sparse_bytes),
    Scheme("eye", S.eye_, draws=False),
    Scheme("dirac", S.dirac_, draws=False),
    Scheme("constant", S.constant_, draws=False),
    Scheme("zeros", S.zeros_, draws=False),
    Scheme("ones", S.ones_, draws=False),
)}

_BY_FUNCTION = {s.function: s for s in reversed(SCHEMES.values())}  # aliases: the first name wins


def _takes_seed(function: Callable) -> bool:
    parameters = inspect.signature(function).parameters
    return "seed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def lookup(scheme: str | Callable | Scheme, argname: str = "scheme") -> Scheme:
    """The ``Scheme`` of a name (``"kaiming_normal"``), of a fastinit in-place function, or of
    any other fill function ``f(out, ..., global_shape=, offset=)`` (it draws if it takes ``seed``;
    a framework convention such as ``fi.conventions.jax.he_normal`` says so itself)."""
    if isinstance(scheme, Scheme):
        return scheme
    if isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown {argname} {scheme!r}; known: {', '.join(sorted(SCHEMES))}")
        return SCHEMES[scheme]
    if not callable(scheme):
        raise TypeError(f"{argname} must be a scheme name or a fastinit function, got {type(scheme).__name__}")
    try:
        return _BY_FUNCTION[scheme]
    except (KeyError, TypeError):  # not registered, or unhashable
        pass
    draws = getattr(scheme, "draws", None)
    return Scheme(getattr(scheme, "__name__", type(scheme).__name__).rstrip("_"), scheme,
                  _takes_seed(scheme) if draws is None else bool(draws), bool(getattr(scheme, "whole_tensor", False)))


@contextlib.contextmanager
def prefixed(where: str) -> Iterator[None]:
    """Re-raise a ``ValueError`` / ``TypeError`` inside the block as ``ValueError(f"{where}: {error}")``."""
    try:
        yield
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
