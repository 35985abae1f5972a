"""Dask backend: lazy ``dask.array`` arrays whose blocks are filled by fastinit at their global offsets.

Each block is ``scheme(np.empty(block_shape), global_shape=shape, offset=block_start, ...)``, so any
chunking, computed by any scheduler on any number of machines, equals the NumPy array
``fastinit.init(shape, scheme, ...)`` bit for bit. The seed is fixed when the array is built (an
explicit int, or the next seed of fastinit's default stream), never on a worker.

>>> import fastinit.dask as fid
>>> x = fid.normal((4096, 1024), std=0.02, chunks=(1024, 512), seed=0, name="w")
>>> x.chunks
((1024, 1024, 1024, 1024), (512, 512))

Writing a checkpoint on a cluster: ``fid.init(shape, "kaiming_normal", seed=0, name="w").to_zarr(url)``
with a ``dask.distributed.Client`` connected; workers need fastinit installed.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ._dispatch import FLOAT_DTYPES, concrete_seed, numpy_dtype
from ._philox import check_name
from .initializers import SCHEMES, _takes
from .spec import check_init

_BY_NAME = sorted(set(SCHEMES) - {"uniform", "normal", "trunc_normal"})  # constructors generated below
__all__ = ["init", "uniform", "normal", "trunc_normal", *_BY_NAME]


def _block(function: Callable, shape: tuple[int, ...], dtype: np.dtype, global_shape: tuple[int, ...],
           offset: tuple[int, ...], kw: dict) -> np.ndarray:
    return function(np.empty(shape, dtype), global_shape=global_shape, offset=offset, **kw)


def init(shape: Sequence[int], scheme: str | Callable, dtype="float32", *, chunks="auto", seed=None,
         name: str = "", **params) -> da.Array:
    """A dask array of ``shape`` and ``dtype`` filled by ``scheme`` (a fastinit scheme name such as
    ``"kaiming_normal"``, or any fastinit in-place function) with its ``params``.

    ``chunks`` is anything ``dask.array`` accepts (``"auto"``, ``(1024, 512)``, explicit tuples).
    Schemes that need the whole tensor (``orthogonal``, ``delta_orthogonal``) build it once per block.
    """
    if isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(sorted(SCHEMES))}")
        function = SCHEMES[scheme]
    elif callable(scheme):
        function = scheme
    else:
        raise TypeError(f"scheme must be a scheme name or a fastinit function, got {type(scheme).__name__}")
    try:
        if isinstance(shape, (str, bytes)):
            raise TypeError
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"shape must not have negative dimensions, got {shape}")
    dtype = numpy_dtype(dtype)
    if dtype.name not in (*FLOAT_DTYPES, "uint32"):
        raise TypeError(f"dtype must be one of {', '.join(FLOAT_DTYPES)} (uint32 for random_bits), got {dtype.name}")
    kw = dict(params)
    if _takes(function, "seed"):
        kw.update(seed=concrete_seed(seed), name=check_name(name))
    if isinstance(scheme, str):  # check the parameters now, not in a worker at compute time
        check_init(f"fastinit.dask.{scheme}", scheme, params, shape, dtype.name)
    chunks = da.core.normalize_chunks(chunks, shape, dtype=dtype)
    label = getattr(scheme, "__name__", str(scheme)).rstrip("_")
    key = f"fastinit-{label}-" + da.core.tokenize(shape, dtype, chunks, label, kw)
    starts = [tuple(itertools.accumulate((0, *c[:-1]))) for c in chunks]
    graph = {
        (key, *index): (_block, function, tuple(c[i] for c, i in zip(chunks, index)), dtype, shape,
                        tuple(s[i] for s, i in zip(starts, index)), kw)
        for index in itertools.product(*(range(len(c)) for c in chunks))
    }
    return da.Array(HighLevelGraph.from_collections(key, graph, dependencies=()), key, chunks, dtype=dtype)


def uniform(shape, low=0.0, high=1.0, dtype="float32", *, chunks="auto", seed=None, name="") -> da.Array:
    """U[low, high) (see ``fastinit.uniform_``)."""
    return init(shape, "uniform", dtype, chunks=chunks, seed=seed, name=name, low=low, high=high)


def normal(shape, mean=0.0, std=1.0, dtype="float32", *, chunks="auto", seed=None, name="") -> da.Array:
    """N(mean, std**2) (see ``fastinit.normal_``)."""
    return init(shape, "normal", dtype, chunks=chunks, seed=seed, name=name, mean=mean, std=std)


def trunc_normal(shape, mean=0.0, std=1.0, a=-2.0, b=2.0, dtype="float32", *, chunks="auto", seed=None,
                 name="") -> da.Array:
    """N(mean, std**2) truncated to the absolute interval [a, b] (see ``fastinit.trunc_normal_``)."""
    return init(shape, "trunc_normal", dtype, chunks=chunks, seed=seed, name=name, mean=mean, std=std, a=a, b=b)


def _by_name(scheme: str) -> Callable:
    def constructor(shape, dtype="float32", *, chunks="auto", seed=None, name="", **params) -> da.Array:
        return init(shape, scheme, dtype, chunks=chunks, seed=seed, name=name, **params)

    constructor.__name__ = constructor.__qualname__ = scheme
    constructor.__doc__ = (f"``init(shape, {scheme!r}, ...)``: a dask array filled by ``fastinit.{scheme}_`` "
                           "(its parameters as keywords).")
    return constructor


globals().update({scheme: _by_name(scheme) for scheme in _BY_NAME})
