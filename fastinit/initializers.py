"""Allocating forms on top of the in-place schemes.

* :func:`init` returns a new array (or a new ``.npy`` memory map) filled by any fastinit scheme;
* JAX-style factories, one per ``jax.nn.initializers`` name with JAX's semantics (layout
  ``(*kernel, in, out)``, truncated normals): ``fastinit.initializers.he_normal()`` returns
  ``init(seed, shape, dtype=np.float32, name="")``.

>>> import fastinit as fi
>>> w = fi.initializers.glorot_normal()(0, (3, 3, 16, 32))
>>> w.shape, w.dtype.name
((3, 3, 16, 32), 'float32')
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Sequence

import numpy as np

from . import distributions, schemes
from ._dispatch import numpy_dtype
from .conventions import TABLE

__all__ = ["init", "SCHEMES", *sorted(TABLE["jax"])]

#: every in-place fastinit function by its name without the trailing underscore
SCHEMES: dict[str, Callable] = {
    n[:-1]: getattr(module, n) for module in (distributions, schemes) for n in module.__all__ if n.endswith("_")
}


@functools.cache
def _takes(function: Callable, parameter: str) -> bool:
    target = function.function if hasattr(function, "function") else function
    parameters = inspect.signature(target).parameters
    return parameter in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _scheme(scheme) -> Callable:
    if callable(scheme):
        return scheme
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(sorted(SCHEMES))}")
    return SCHEMES[scheme]


def init(shape: Sequence[int], scheme: str | Callable, dtype="float32", *, seed=None, name: str = "",
         path: str | os.PathLike | None = None, overwrite: bool = False, **params) -> np.ndarray:
    """A new array of ``shape`` and ``dtype`` filled by ``scheme`` (a name such as ``"kaiming_normal"``
    or any fastinit in-place function) with its ``params``.

    With ``path``, the array is a ``.npy`` file memory-mapped in mode ``r+``: written to
    ``path + ".partial"`` first, flushed, then renamed, so ``path`` only ever holds a complete file;
    an existing ``path`` is an error unless ``overwrite=True``. (``.npy`` has no bfloat16 type: such a
    file reads back as 2-byte void records; view it as ``ml_dtypes.bfloat16``.)

    >>> import fastinit as fi
    >>> fi.init((2, 3), "kaiming_uniform", seed=0, name="w", nonlinearity="relu").shape
    (2, 3)
    """
    function = _scheme(scheme)
    dtype = numpy_dtype(dtype)
    kw = {k: v for k, v in (("seed", seed), ("name", name)) if _takes(function, k)}
    if path is None:
        return function(np.empty(tuple(shape), dtype), **kw, **params)
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    partial = path + ".partial"
    try:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=tuple(shape))
        function(out, **kw, **params)
        out.flush()
        del out
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return np.load(path, mmap_mode="r+")


def _factory(scheme: str) -> Callable:
    convention = TABLE["jax"][scheme]

    def factory(**params):
        def initializer(seed, shape, dtype=np.float32, name: str = ""):
            return init(shape, convention, dtype, seed=seed, name=name, **params)

        initializer.__name__ = scheme
        initializer.__doc__ = f"jax.nn.initializers.{scheme}: {convention.describe}"
        return initializer

    factory.__name__ = factory.__qualname__ = scheme
    factory.__doc__ = (f"JAX-style ``{scheme}(**params)`` returning ``init(seed, shape, dtype=np.float32, "
                       f"name='')``: {convention.describe}.")
    return factory


globals().update({scheme: _factory(scheme) for scheme in TABLE["jax"]})
