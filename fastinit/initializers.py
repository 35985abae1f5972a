"""Allocating forms on top of the in-place schemes.

* [`init`][fastinit.initializers.init] returns a new array (or a new ``.npy`` memory map) filled by any fastinit scheme;
* JAX-style factories, one per ``jax.nn.initializers`` name with JAX's semantics (layout
  ``(*kernel, in, out)``, truncated normals): ``fastinit.initializers.he_normal()`` returns
  ``init(seed, shape, dtype=np.float32, name="")``.

Examples:
    >>> import fastinit as fi
    >>> w = fi.initializers.glorot_normal()(0, (3, 3, 16, 32))
    >>> w.shape, w.dtype.name
    ((3, 3, 16, 32), 'float32')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._atomic import atomic_output
from ._dtypes import FLOAT_NAMES
from ._registry import Scheme, lookup
from ._validate import check_dtype, check_shape
from .conventions import TABLE

__all__ = [
    "init", "Initializer", "Factory",
    "constant", "delta_orthogonal", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "normal", "ones", "orthogonal", "truncated_normal", "uniform", "variance_scaling", "zeros",
]

Initializer = Callable[..., np.ndarray]
"""``initializer(seed, shape, dtype=np.float32, name="") -> np.ndarray``."""
Factory = Callable[..., Initializer]
"""``factory(**params) -> Initializer``, the framework's parameters as keywords."""


def init(shape: Sequence[int], scheme: str | Callable | Scheme, dtype: Any = "float32", *, seed: int | None = None,
         name: str = "", path: str | os.PathLike | None = None, overwrite: bool = False,
         **params: Any) -> np.ndarray:
    """A new array of ``shape`` and ``dtype`` filled by ``scheme`` (a name such as ``"kaiming_normal"``
    or any fastinit in-place function) with its ``params``.

    With ``path``, the array is a ``.npy`` file memory-mapped in mode ``r+``: written to
    ``path + ".partial"`` first, flushed, then renamed, so ``path`` only ever holds a complete file;
    an existing ``path`` is an error unless ``overwrite=True``. (``.npy`` has no bfloat16 type: such a
    file reads back as 2-byte void records; view it as ``ml_dtypes.bfloat16``.)

    Examples:
        >>> import fastinit as fi
        >>> fi.init((2, 3), "kaiming_uniform", seed=0, name="w", nonlinearity="relu").shape
        (2, 3)
    """
    filler = lookup(scheme)
    shape = check_shape(shape)
    dtype = check_dtype(dtype, (*FLOAT_NAMES, "uint32"))  # uint32: random_bits
    if path is None:
        return filler.fill(np.empty(shape, dtype), seed=seed, name=name, **params)
    with atomic_output(path, overwrite=overwrite) as partial:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
        filler.fill(out, seed=seed, name=name, **params)
        out.flush()
        del out
    return np.load(os.fspath(path), mmap_mode="r+")


def _factory(scheme: str) -> Factory:
    convention = TABLE["jax"][scheme]

    def factory(**params: Any) -> Initializer:
        def initializer(seed: int, shape: Sequence[int], dtype: Any = np.float32, name: str = "") -> np.ndarray:
            return init(shape, convention, dtype, seed=seed, name=name, **params)

        initializer.__name__ = scheme
        initializer.__doc__ = f"jax.nn.initializers.{scheme}: {convention.describe}"
        return initializer

    factory.__name__ = factory.__qualname__ = scheme
    factory.__doc__ = (f"JAX-style ``{scheme}(**params)`` returning ``init(seed, shape, dtype=np.float32, "
                       f"name='')``: {convention.describe}.")
    return factory


constant: Factory = _factory("constant")
delta_orthogonal: Factory = _factory("delta_orthogonal")
glorot_normal: Factory = _factory("glorot_normal")
glorot_uniform: Factory = _factory("glorot_uniform")
he_normal: Factory = _factory("he_normal")
he_uniform: Factory = _factory("he_uniform")
lecun_normal: Factory = _factory("lecun_normal")
lecun_uniform: Factory = _factory("lecun_uniform")
normal: Factory = _factory("normal")
ones: Factory = _factory("ones")
orthogonal: Factory = _factory("orthogonal")
truncated_normal: Factory = _factory("truncated_normal")
uniform: Factory = _factory("uniform")
variance_scaling: Factory = _factory("variance_scaling")
zeros: Factory = _factory("zeros")
