"""Dask backend: lazy ``dask.array`` arrays whose blocks are filled by fastinit at their global offsets.

Each block is ``scheme(np.empty(block_shape), global_shape=shape, offset=block_start, ...)``, so any
chunking, computed by any scheduler on any number of machines, equals the NumPy array
``fastinit.init(shape, scheme, ...)`` bit for bit. The seed is fixed when the array is built (an
explicit int, or the next seed of fastinit's default stream), never on a worker.

Examples:
    >>> import fastinit.dask as fid
    >>> x = fid.normal((4096, 1024), std=0.02, chunks=(1024, 512), seed=0, name="w")
    >>> x.chunks
    ((1024, 1024, 1024, 1024), (512, 512))

Writing a checkpoint on a cluster: ``fid.init(shape, "kaiming_normal", seed=0, name="w").to_zarr(url)``
with a ``dask.distributed.Client`` connected; workers need fastinit installed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ._dtypes import FLOAT_NAMES
from ._registry import Scheme, lookup, prefixed
from ._streams import concrete_seed
from ._validate import check_dtype, check_name, check_shape

__all__ = [
    "init", "Constructor", "uniform", "normal", "trunc_normal",
    "constant", "delta_orthogonal", "dirac", "eye", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
    "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform", "ones", "orthogonal", "random_bits",
    "sparse", "variance_scaling", "xavier_normal", "xavier_simple", "xavier_uniform", "zeros",
]

Constructor = Callable[..., da.Array]
"""``constructor(shape, dtype="float32", *, chunks="auto", seed=None, name="", **params) -> dask.array.Array``."""


def _block(scheme: Scheme, shape: tuple[int, ...], dtype: np.dtype, global_shape: tuple[int, ...],
           offset: tuple[int, ...], kw: dict) -> np.ndarray:
    return scheme.fill(np.empty(shape, dtype), global_shape=global_shape, offset=offset, **kw)


def init(shape: Sequence[int], scheme: str | Callable, dtype: Any = "float32", *, chunks: Any = "auto",
         seed: int | None = None, name: str = "", **params: Any) -> da.Array:
    """A dask array of ``shape`` and ``dtype`` filled by ``scheme`` (a fastinit scheme name such as
    ``"kaiming_normal"``, or any fastinit in-place function) with its ``params``.

    ``chunks`` is anything ``dask.array`` accepts (``"auto"``, ``(1024, 512)``, explicit tuples).
    Schemes that need the whole tensor (``orthogonal``, ``delta_orthogonal``) build it once per block.
    """
    filler = lookup(scheme)
    shape = check_shape(shape)
    dtype = check_dtype(dtype, (*FLOAT_NAMES, "uint32"))
    kw: dict[str, Any] = dict(params)
    if filler.draws:
        kw.update(seed=concrete_seed(seed), name=check_name(name))
    if isinstance(scheme, str):  # check the parameters now, not in a worker at compute time
        with prefixed(f"fastinit.dask.{scheme}"):
            filler.check(params, shape, dtype.name)
    chunks = da.core.normalize_chunks(chunks, shape, dtype=dtype)
    key = f"fastinit-{filler.name}-" + da.core.tokenize(shape, dtype, chunks, filler.name, filler.function, kw)
    starts = [tuple(itertools.accumulate((0, *c[:-1]))) for c in chunks]
    graph: dict[Any, Any] = {
        (key, *index): (_block, filler, tuple(c[i] for c, i in zip(chunks, index)), dtype, shape,
                        tuple(s[i] for s, i in zip(starts, index)), kw)
        for index in itertools.product(*(range(len(c)) for c in chunks))
    }
    return da.Array(HighLevelGraph.from_collections(key, graph, dependencies=()), key, chunks, dtype=dtype)


def uniform(shape: Sequence[int], low: float = 0.0, high: float = 1.0, dtype: Any = "float32", *,
            chunks: Any = "auto", seed: int | None = None, name: str = "") -> da.Array:
    """U[low, high) (see ``fastinit.uniform_``)."""
    return init(shape, "uniform", dtype, chunks=chunks, seed=seed, name=name, low=low, high=high)


def normal(shape: Sequence[int], mean: float = 0.0, std: float = 1.0, dtype: Any = "float32", *,
           chunks: Any = "auto", seed: int | None = None, name: str = "") -> da.Array:
    """N(mean, std**2) (see ``fastinit.normal_``)."""
    return init(shape, "normal", dtype, chunks=chunks, seed=seed, name=name, mean=mean, std=std)


def trunc_normal(shape: Sequence[int], mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                 dtype: Any = "float32", *, chunks: Any = "auto", seed: int | None = None,
                 name: str = "") -> da.Array:
    """N(mean, std**2) truncated to the absolute interval [a, b] (see ``fastinit.trunc_normal_``)."""
    return init(shape, "trunc_normal", dtype, chunks=chunks, seed=seed, name=name, mean=mean, std=std, a=a, b=b)


def _by_name(scheme: str) -> Constructor:
    def constructor(shape: Sequence[int], dtype: Any = "float32", *, chunks: Any = "auto", seed: int | None = None,
                    name: str = "", **params: Any) -> da.Array:
        return init(shape, scheme, dtype, chunks=chunks, seed=seed, name=name, **params)

    constructor.__name__ = constructor.__qualname__ = scheme
    constructor.__doc__ = (f"``init(shape, {scheme!r}, ...)``: a dask array filled by ``fastinit.{scheme}_`` "
                           "(its parameters as keywords).")
    return constructor


constant: Constructor = _by_name("constant")
delta_orthogonal: Constructor = _by_name("delta_orthogonal")
dirac: Constructor = _by_name("dirac")
eye: Constructor = _by_name("eye")
glorot_normal: Constructor = _by_name("glorot_normal")
glorot_uniform: Constructor = _by_name("glorot_uniform")
he_normal: Constructor = _by_name("he_normal")
he_uniform: Constructor = _by_name("he_uniform")
kaiming_normal: Constructor = _by_name("kaiming_normal")
kaiming_uniform: Constructor = _by_name("kaiming_uniform")
lecun_normal: Constructor = _by_name("lecun_normal")
lecun_uniform: Constructor = _by_name("lecun_uniform")
ones: Constructor = _by_name("ones")
orthogonal: Constructor = _by_name("orthogonal")
random_bits: Constructor = _by_name("random_bits")
sparse: Constructor = _by_name("sparse")
variance_scaling: Constructor = _by_name("variance_scaling")
xavier_normal: Constructor = _by_name("xavier_normal")
xavier_simple: Constructor = _by_name("xavier_simple")
xavier_uniform: Constructor = _by_name("xavier_uniform")
zeros: Constructor = _by_name("zeros")
