"""JAX backend: ``jax.nn.initializers`` look-alikes whose values come from fastinit.

Every name of ``jax.nn.initializers`` is here with JAX's own signature and semantics (layout
``(*kernel, in, out)``, truncated ``glorot_normal`` / ``he_normal`` / ``lecun_normal``, ``uniform(scale)``
= U[0, scale), ``truncated_normal`` bounds in std units, ``orthogonal(column_axis)``): a factory such
as ``he_normal()`` returns ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array`` on the
default device, usable wherever JAX or Flax take an initializer (``nn.Dense(..., kernel_init=...)``).
Factories take one extra keyword, ``name`` (the fastinit stream; default ``""``).

``key`` is an int seed or a JAX PRNG key (typed ``jax.random.key(s)`` or raw ``jax.random.PRNGKey(s)``).
A key's data words ``w`` become the fastinit seed: ``w[0] * 2**32 + w[1]`` for the two words of a
threefry key, so ``PRNGKey(s)`` and ``key(s)`` give seed ``s`` for any ``s < 2**64``; other key
implementations use the first 8 bytes of the blake2b digest of their words (little endian). Keys
traced under ``jax.jit`` or ``vmap`` work too: the fill then runs as a host callback.

Examples:
    >>> import jax, fastinit.jax as fij
    >>> w = fij.glorot_normal()(jax.random.key(0), (64, 32))
    >>> w.shape, str(w.dtype)
    ((64, 32), 'float32')
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._dtypes import FLOAT_NAMES
from ._validate import check_dtype, check_seed, check_shape
from .conventions import TABLE
from .initializers import init as _init

__all__ = [
    "Initializer", "Factory", "seed_of_key",
    "constant", "delta_orthogonal", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones", "orthogonal", "truncated_normal",
    "uniform", "variance_scaling", "xavier_normal", "xavier_uniform", "zeros",
]

Initializer = Callable[..., jax.Array]
"""``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``, as ``jax.nn.initializers`` returns."""
Factory = Callable[..., Initializer]
"""A ``jax.nn.initializers`` factory: its own parameters, plus ``name``, to an
[`Initializer`][fastinit.jax.Initializer]."""

_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
            "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}
_ORTHOGONAL = ("orthogonal", "delta_orthogonal")


def seed_of_key(words: Any) -> int:
    """The fastinit seed of a PRNG key's data words (see the module docstring)."""
    words = np.asarray(words, np.uint32).ravel()
    if words.size == 2:
        return int(words[0]) << 32 | int(words[1])
    return int.from_bytes(hashlib.blake2b(words.tobytes(), digest_size=8).digest(), "little")


def _key_words(key):
    """An int seed, or the uint32 data of one PRNG key (possibly traced)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return check_seed(key)
    if not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(f"key must be a JAX PRNG key or an int seed, got {type(key).__name__}")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    elif key.dtype != np.uint32:
        raise TypeError(f"key must be a JAX PRNG key (typed, or raw uint32 data) or an int seed, "
                        f"got an array of {key.dtype}")
    if key.ndim != 1:
        raise ValueError(f"key must be a single PRNG key, got key data of shape {key.shape} (split or vmap "
                         "over a batch of keys)")
    return key


def _dtype(dtype: Any) -> np.dtype:
    return check_dtype(np.dtype(jax.dtypes.canonicalize_dtype(float if dtype is None else dtype)), FLOAT_NAMES)


def _run(key, shape: tuple[int, ...], dtype: np.dtype, make: Callable[[int], np.ndarray]) -> jax.Array:
    words = _key_words(key)
    if isinstance(words, int):
        return jnp.asarray(make(words))
    if isinstance(words, jax.core.Tracer):
        return jax.pure_callback(lambda w: make(seed_of_key(w)), jax.ShapeDtypeStruct(shape, dtype), words,
                                 vmap_method="sequential")
    return jnp.asarray(make(seed_of_key(np.asarray(words))))


def _initializer(scheme: str, params: dict, default_dtype, name: str, column_axis: int = -1):
    convention = TABLE["jax"][_ALIASES.get(scheme, scheme)]

    def init(key: Any, shape: Sequence[int], dtype: Any = None, out_sharding: Any = None) -> jax.Array:
        shape = check_shape(shape)
        dtype = _dtype(default_dtype if dtype is None else dtype)
        axis = column_axis % len(shape) if shape else 0
        if scheme in _ORTHOGONAL and shape and axis != len(shape) - 1:
            if scheme == "delta_orthogonal":
                raise ValueError("delta_orthogonal supports only column_axis=-1")
            columns_last = shape[:axis] + shape[axis + 1:] + (shape[axis],)

            def make(seed):  # JAX's orthogonal: columns along column_axis
                out = _init(columns_last, convention, dtype, seed=seed, name=name, **params)
                return np.ascontiguousarray(np.moveaxis(out, -1, axis))
        else:

            def make(seed):
                return _init(shape, convention, dtype, seed=seed, name=name, **params)

        array = _run(key, shape, dtype, make)
        return array if out_sharding is None else jax.device_put(array, out_sharding)

    init.__name__ = scheme
    init.__doc__ = f"fastinit's jax.nn.initializers.{scheme}: {convention.describe}"
    return init


def _factory(scheme: str) -> Callable:
    signature = inspect.signature(getattr(jax.nn.initializers, scheme))

    def factory(*args, name: str = "", **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"fastinit.jax.{scheme}{signature}: {err}") from None
        bound.apply_defaults()
        params = dict(bound.arguments)
        dtype = params.pop("dtype")
        column_axis = params.pop("column_axis", -1)
        return _initializer(scheme, params, dtype, name, column_axis)

    factory.__name__ = factory.__qualname__ = scheme
    stream_name = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default="", annotation=str)
    factory.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), stream_name])
    factory.__doc__ = (f"``jax.nn.initializers.{scheme}`` with fastinit values: "
                       f"{TABLE['jax'][_ALIASES.get(scheme, scheme)].describe}.")
    return factory


zeros: Initializer = _initializer("zeros", {}, None, "")
ones: Initializer = _initializer("ones", {}, None, "")
constant: Factory = _factory("constant")
delta_orthogonal: Factory = _factory("delta_orthogonal")
glorot_normal: Factory = _factory("glorot_normal")
glorot_uniform: Factory = _factory("glorot_uniform")
he_normal: Factory = _factory("he_normal")
he_uniform: Factory = _factory("he_uniform")
kaiming_normal: Factory = _factory("kaiming_normal")
kaiming_uniform: Factory = _factory("kaiming_uniform")
lecun_normal: Factory = _factory("lecun_normal")
lecun_uniform: Factory = _factory("lecun_uniform")
normal: Factory = _factory("normal")
orthogonal: Factory = _factory("orthogonal")
truncated_normal: Factory = _factory("truncated_normal")
uniform: Factory = _factory("uniform")
variance_scaling: Factory = _factory("variance_scaling")
xavier_normal: Factory = _factory("xavier_normal")
xavier_uniform: Factory = _factory("xavier_uniform")
