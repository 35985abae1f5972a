"""JAX backend: ``jax.nn.initializers`` look-alikes whose values come from fastinit.

Every name of ``jax.nn.initializers`` is here with JAX's own signature and semantics (layout
``(*kernel, in, out)``, truncated ``glorot_normal`` / ``he_normal`` / ``lecun_normal``, ``uniform(scale)``
= U[0, scale), ``truncated_normal`` bounds in std units, ``orthogonal(column_axis)``): a factory such
as ``he_normal()`` returns ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array`` on the
default device (or on ``out_sharding``), usable wherever JAX or Flax take an initializer
(``nn.Dense(..., kernel_init=...)``).
Factories take one extra keyword, ``name`` (the fastinit stream; default ``""``). Around the values,
JAX's behaviour: complex dtypes with JAX's distributions (``fastinit._complex``), fans as JAX
computes them (explicit axes on 0-D and 1-D shapes), a bare int shape, JAX's exception classes.

Hyperparameters. A concrete real number in the range fastinit's fill takes (``stddev >= 0`` for
``normal``; ``scale > 0`` for ``uniform`` and ``variance_scaling``; ``stddev > 0`` for
``truncated_normal``; any finite ``scale`` for the orthogonal initializers; a 0-d array counts as
its number) goes to the fill itself. Any other value (an array with dims, a value traced under
``jax.jit``, a number outside that range, inf, NaN) multiplies the standard draw (that
hyperparameter at 1) in JAX, as JAX writes it: ``draw * jnp.array(value, dtype)``
(``variance_scaling``: ``draw * jnp.sqrt(jnp.array(value, dtype))``), broadcast as JAX broadcasts;
where both paths apply, the values agree up to rounding. ``truncated_normal`` with ``lower >=
upper`` is JAX's constant: JAX clips its draws to ``(nextafter(lower, inf), nextafter(upper,
-inf))``, which leaves ``nextafter(upper, -inf)`` (in the dtype) times ``stddev``; its bounds must
be concrete numbers. ``zeros``, ``ones`` and ``constant`` draw nothing: they are JAX's own (the key
ignored; every dtype; array and traced values).

``key`` is an int seed or a JAX PRNG key (typed ``jax.random.key(s)`` or raw ``jax.random.PRNGKey(s)``).
A key's data words ``w`` become the fastinit seed: ``w[0] * 2**32 + w[1]`` for the two words of a
threefry key, so ``PRNGKey(s)`` and ``key(s)`` give seed ``s`` for any ``s < 2**64``; other key
implementations use the first 8 bytes of the blake2b digest of their words (little endian). Keys
traced under ``jax.jit`` or ``vmap`` work too: the fill then runs as a host callback. As in JAX, a
key is for one draw: the same key gives the same stream to every initializer, so a longer shape
starts with a shorter one's values and ``normal`` and ``uniform`` of one key are correlated.

``out_sharding``: any ``jax.sharding.Sharding`` (a ``NamedSharding`` of any mesh, Auto or Explicit
axes), a ``PartitionSpec`` of the mesh set by ``jax.set_mesh``, or a device. With a concrete key,
outside ``jit``, the drawing initializers fill each addressable device's shard alone, as a box of the
global tensor (``global_shape`` / ``offset``), one distinct shard at a time on the host, and assemble
the array with ``jax.make_array_from_single_device_arrays``: devices holding the same index
(replicated mesh axes) share one fill, and host memory stays about one shard. ``orthogonal`` and
``delta_orthogonal`` (a QR of the whole matrix), the hyperparameters JAX multiplies in, and
``truncated_normal`` with ``lower >= upper`` build the whole array and place it; a traced key (or a
call under ``jit``) fills the whole array in the host callback under a sharding constraint; ``zeros``,
``ones`` and ``constant`` are JAX's own. Every path gives the values of the unsharded array, bit for
bit. A sharding that does not divide the shape raises JAX's ``ValueError``.

Examples:
    >>> import jax, fastinit.jax as fij
    >>> w = fij.glorot_normal()(jax.random.key(0), (64, 32))
    >>> w.shape, str(w.dtype)
    ((64, 32), 'float32')
    >>> import numpy as np
    >>> rows = jax.NamedSharding(jax.make_mesh((len(jax.devices()),), ("x",)), jax.P("x"))
    >>> sharded = fij.glorot_normal()(jax.random.key(0), (64, 32), out_sharding=rows)
    >>> np.array_equal(np.asarray(sharded), np.asarray(w)), sharded.sharding.spec
    (True, P('x',))
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._complex import complex_disk_, complex_normal_, complex_truncated_normal_
from ._dtypes import FLOAT_NAMES
from ._registry import lookup
from ._validate import check_real, check_seed, check_shape
from .conventions import TABLE
from .initializers import init as _init
from .schemes import orthogonal_tensor, variance_scaling_

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


class JaxDtypeError(TypeError, ValueError):
    """A dtype the initializer does not draw (JAX raises ``ValueError``; fastinit's checks ``TypeError``)."""


def _dtype(dtype: Any) -> np.dtype:
    """JAX's canonical dtype (float64 becomes float32 unless x64 is on); ``None``: JAX's default float."""
    return np.dtype(jax.dtypes.canonicalize_dtype(float if dtype is None else dtype))


def _shape(shape: Any, base: str) -> tuple[int, ...]:
    """The shape as JAX reads it: a bare int is a 1-D shape, except for the orthogonal initializers
    (JAX takes their ``len(shape)``)."""
    if isinstance(shape, int) and base not in _ORTHOGONAL:
        shape = (shape,)
    return check_shape(shape)


def _number(value: Any) -> Any:
    """A concrete 0-d array (JAX or NumPy) as its Python number: JAX's hyperparameters may be arrays."""
    concrete = isinstance(value, (jax.Array, np.ndarray, np.generic)) and not isinstance(value, jax.core.Tracer)
    return value.item() if concrete and np.ndim(value) == 0 else value


def _real(value: Any) -> float | None:
    """A hyperparameter as a float if it is a concrete real number (a 0-d array counts; a bool does
    not), else None (an array with dims, a traced value, anything else)."""
    value = _number(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class _Scale:
    """A factory's hyperparameter that JAX multiplies its standard draw by: JAX's value is
    ``draw(param=1) * factor(value, dtype)``."""

    param: str
    fill_takes: Callable[[float], bool]  # the finite values fastinit's fill draws with itself
    factor: Callable[[Any, np.dtype], jax.Array] = lambda value, dtype: jnp.array(value, dtype)


_SCALES = {
    "normal": _Scale("stddev", lambda x: x >= 0),
    "uniform": _Scale("scale", lambda x: x > 0),
    "truncated_normal": _Scale("stddev", lambda x: x > 0),
    "variance_scaling": _Scale("scale", lambda x: x > 0, lambda value, dtype: jnp.sqrt(jnp.array(value, dtype))),
    "orthogonal": _Scale("scale", lambda x: True),
}


_Fill = Callable[[int, tuple[int, ...], tuple[int, ...]], np.ndarray]
"""``fill(seed, offset, extent)``: the box of ``extent`` at ``offset`` of a global tensor, drawn from ``seed``."""


_FillInto = Callable[[Any, int, tuple[int, ...]], Any]
"""``fill_into(out, seed, offset)``: the box of ``out.shape`` at ``offset`` written into ``out`` (any array
a fastinit fill takes: NumPy, or GPU memory)."""


@dataclass(frozen=True)
class _Values:
    """The values of one initializer call (shape, dtype and hyperparameters fixed): ``fill`` draws any
    box of the global tensor, or, for a ``whole_tensor`` scheme (a QR factorization), only the whole;
    ``fill_into`` writes a box into a given array, where the values are not computed on the host."""

    fill: _Fill
    whole_tensor: bool = False
    fill_into: _FillInto | None = None


def _box_fill(scheme: Any, shape: tuple[int, ...], dtype: np.dtype, name: str, **params: Any) -> _Values:
    """A registered scheme (a name, fastinit function or convention) filling boxes of the global ``shape``."""
    filler = lookup(scheme)

    def fill_into(out: Any, seed: int, offset: tuple[int, ...]) -> Any:
        return filler.fill(out, seed=seed, name=name, global_shape=shape, offset=offset, **params)

    return _Values(lambda seed, offset, extent: fill_into(np.empty(extent, dtype), seed, offset), fill_into=fill_into)


#: ``FASTINIT_JAX_GPU=0``: never fill in GPU memory (fill on the host and transfer, as without numba-cuda);
#: also turned off for the process, with a warning, where numba-cuda cannot compile (no libNVVM)
_FILL_ON_GPUS = os.environ.get("FASTINIT_JAX_GPU", "1") != "0"


def _fills_on(device: Any) -> bool:
    """Whether fastinit fills ``device``'s arrays on the device itself: a CUDA GPU (a ROCm one is
    platform ``"gpu"`` too: its client's platform version tells them apart), with numba-cuda, unless
    ``FASTINIT_JAX_GPU=0``."""
    client = getattr(device, "client", None)
    return (_FILL_ON_GPUS and getattr(device, "platform", None) == "gpu"
            and "cuda" in str(getattr(client, "platform_version", "")).lower() and _numba_cuda_has_a_gpu())


@functools.cache
def _numba_cuda_has_a_gpu() -> bool:
    """Whether numba-cuda is installed and sees a CUDA GPU (asked once per process)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return False
    from numba import cuda

    return bool(cuda.is_available())


def _filled_on(device: Any, extent: tuple[int, ...], dtype: np.dtype, values: _Values, seed: int,
               offset: tuple[int, ...]) -> jax.Array:
    """The box at ``offset`` filled in ``device``'s memory by fastinit's CUDA kernels and handed to JAX
    through DLPack, without a copy: no host memory, no transfer. The memory comes from numba-cuda's
    allocator, outside JAX's pool (which takes most of the GPU by default): where it is out of memory
    the box is filled on the host and transferred into JAX's pool instead; so is it where numba-cuda
    cannot compile (no libNVVM), and every later call of the process."""
    from . import _cuda, _dlpack

    global _FILL_ON_GPUS
    ordinal = None if _cuda.SIMULATOR else device.local_hardware_id  # the simulator has one GPU
    assert values.fill_into is not None
    try:
        array = _cuda.empty(extent, dtype, ordinal)
        values.fill_into(array, seed, offset)
    except MemoryError:
        return jax.device_put(values.fill(seed, offset, extent), device)
    except ImportError as e:  # numba-cuda's NvvmSupportError: no libNVVM to compile the kernels with
        _FILL_ON_GPUS = False
        warnings.warn(f"fastinit.jax fills on the host from now on: numba-cuda cannot compile fastinit's GPU "
                      f"kernels here ({e}); install the CUDA toolkit's libNVVM, or set FASTINIT_JAX_GPU=0",
                      RuntimeWarning, stacklevel=2)
        return jax.device_put(values.fill(seed, offset, extent), device)
    _cuda.synchronize(ordinal)  # the export is ready on every stream
    device_type = _dlpack.CPU if _cuda.SIMULATOR else _dlpack.CUDA
    return jax.dlpack.from_dlpack(_dlpack.Exported(array, array.owner, device_type), device=device)


def _default_device() -> Any:
    """The device ``jnp.asarray`` places a new array on."""
    chosen = getattr(jax.config, "jax_default_device", None)  # jax.default_device(...), or None
    if isinstance(chosen, str):
        return jax.devices(chosen)[0]
    return chosen if chosen is not None else jax.devices()[0]


def _out_sharding(out_sharding: Any, shape: tuple[int, ...]) -> jax.sharding.Sharding | None:
    """``out_sharding`` as a ``Sharding`` of ``shape``: any ``jax.sharding.Sharding``, a ``PartitionSpec``
    of the mesh set by ``jax.set_mesh`` (JAX's rule and message), a device, or None. A sharding that
    does not divide the shape raises JAX's ``ValueError`` (``IndivisibleError``) on every path, traced
    or not, as JAX's initializers do."""
    if out_sharding is None:
        return None
    sharding = _as_sharding(out_sharding)
    sharding.shard_shape(shape)
    return sharding


def _as_sharding(out_sharding: Any) -> jax.sharding.Sharding:
    if isinstance(out_sharding, jax.sharding.Sharding):
        return out_sharding
    if isinstance(out_sharding, jax.sharding.PartitionSpec):
        mesh = jax.sharding.get_mesh()
        if mesh.empty:
            raise ValueError("Using PartitionSpec when you are not under a mesh context is not allowed. Please pass "
                             f"a NamedSharding instance or enter into a mesh context via `jax.set_mesh`. Got "
                             f"{out_sharding}")
        return jax.sharding.NamedSharding(mesh, out_sharding)
    if isinstance(out_sharding, jax.Device):
        return jax.sharding.SingleDeviceSharding(out_sharding)
    raise TypeError("out_sharding must be a jax.sharding.Sharding (NamedSharding, SingleDeviceSharding, ...), a "
                    f"PartitionSpec under jax.set_mesh, a jax.Device or None, got {type(out_sharding).__name__}")


def _shard_filled(shape: tuple[int, ...], dtype: np.dtype, sharding: jax.sharding.Sharding, values: _Values,
                  seed: int) -> jax.Array:
    """The array of ``sharding`` whose every addressable shard is its box of ``values``: on a CUDA GPU
    filled in the GPU's memory (``_filled_on``); elsewhere each distinct shard filled once on the host,
    copied to the devices that hold it, and released before the next is filled (host memory: one shard)."""
    devices_of: dict[tuple[tuple[int, int], ...], list] = {}
    for device, index in sharding.addressable_devices_indices_map(shape).items():
        assert index is not None  # as jax.make_array_from_callback assumes: every shard has an index
        bounds = tuple(part.indices(n)[:2] for part, n in zip(index, shape))
        devices_of.setdefault(bounds, []).append(device)
    shards: list[jax.Array] = []
    for bounds, devices in devices_of.items():
        offset, extent = tuple(lo for lo, _ in bounds), tuple(hi - lo for lo, hi in bounds)
        on_gpu = [d for d in devices if values.fill_into is not None and _fills_on(d)]
        shards += [_filled_on(d, extent, dtype, values, seed, offset) for d in on_gpu]
        if len(on_gpu) < len(devices):
            host = values.fill(seed, offset, extent)
            shards += jax.block_until_ready([jax.device_put(host, d) for d in devices if d not in on_gpu])
            del host
    return jax.make_array_from_single_device_arrays(shape, sharding, shards, dtype=dtype)


def _placed(array: jax.Array, sharding: jax.sharding.Sharding | None) -> jax.Array:
    """``array`` with ``sharding``. Traced, a mesh whose axes are all ``Auto`` takes JAX's sharding
    constraint (``device_put`` under ``jit`` does not constrain it); anything else ``device_put``."""
    if sharding is None:
        return array
    auto = isinstance(sharding, jax.sharding.NamedSharding) and all(
        kind == jax.sharding.AxisType.Auto for kind in sharding.mesh.axis_types)
    if auto and isinstance(array, jax.core.Tracer):
        return jax.lax.with_sharding_constraint(array, sharding)
    return jax.device_put(array, sharding)


def _tracing() -> bool:
    """Whether JAX is staging a computation (under ``jit``): a new constant is then a tracer."""
    return isinstance(jnp.asarray(0), jax.core.Tracer)


def _run(key, shape: tuple[int, ...], dtype: np.dtype, values: _Values,
         sharding: jax.sharding.Sharding | None = None) -> jax.Array:
    """The values drawn from ``key``: with a concrete key and a ``sharding``, outside ``jit``, shard by
    shard (see ``_shard_filled``) unless the scheme needs the whole tensor; otherwise the whole tensor
    (a traced key: in a host callback); on a CUDA GPU filled in its memory (``_filled_on``). The caller
    places the result on ``sharding``."""
    words = _key_words(key)
    origin = (0,) * len(shape)
    if isinstance(words, jax.core.Tracer):
        return jax.pure_callback(lambda w: values.fill(seed_of_key(w), origin, shape),
                                 jax.ShapeDtypeStruct(shape, dtype), words, vmap_method="sequential")
    seed = words if isinstance(words, int) else seed_of_key(np.asarray(words))
    # from_dlpack commits its array to the device, where jnp.asarray's is uncommitted (free to follow
    # the arrays it meets): without a sharding, the GPU path only where the backend has one device
    device = _default_device() if sharding is None and jax.device_count() == 1 else None
    on_gpu = device is not None and values.fill_into is not None and _fills_on(device)
    if values.whole_tensor or (sharding is None and not on_gpu) or _tracing():
        return jnp.asarray(values.fill(seed, origin, shape))
    if sharding is not None:
        return _shard_filled(shape, dtype, sharding, values, seed)
    return _filled_on(device, shape, dtype, values, seed, origin)


def jax_fans(shape: tuple[int, ...], in_axis: Any = -2, out_axis: Any = -1,
             batch_axis: Any = ()) -> tuple[float, float]:
    """``(fan_in, fan_out)`` as ``jax.nn.initializers`` computes them: the sizes of ``in_axis`` and
    ``out_axis`` (an int or a sequence of axes, empty for none) times the receptive field, every
    axis in none of the three; shapes under 2-D need explicit axes."""
    if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(f"Can't compute input and output sizes of a {len(shape)}-dimensional weights tensor with "
                         "default in_axis. Must be at least 2D or specify in_axis explicitly.")

    def size(axes: Any) -> int:
        return shape[axes] if isinstance(axes, int) else math.prod(shape[a] for a in axes)

    receptive = math.prod(shape) / size(in_axis) / size(out_axis) / size(batch_axis)
    return size(in_axis) * receptive, size(out_axis) * receptive


def _complex_view(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A real view of a new complex array: ``(*shape, 2)`` parts of the part dtype."""
    return np.empty((*shape, 2), np.float32 if dtype == np.complex64 else np.float64)


def _as_complex(view: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return view.view(dtype)[..., 0]


def _complex_box_fill(draw: Callable[..., np.ndarray], std: float, shape: tuple[int, ...], dtype: np.dtype,
                      name: str) -> _Values:
    """A complex draw of ``fastinit._complex`` (written on the real view of each box) filling boxes of
    the global ``shape``."""
    return _Values(lambda seed, offset, extent: _as_complex(
        draw(_complex_view(extent, dtype), std, seed=seed, name=name, global_shape=shape, offset=offset), dtype))


def _variance_scaling(params: dict, shape: tuple[int, ...], dtype: np.dtype, name: str) -> _Values:
    """JAX's variance scaling (fans by JAX's rule; complex dtypes as JAX draws them)."""
    scale, mode, distribution = params.pop("scale"), params.pop("mode"), params.pop("distribution")
    fans = jax_fans(shape, params.pop("in_axis", -2), params.pop("out_axis", -1), params.pop("batch_axis", ()))
    scale = check_real("scale", scale)
    denominators = {"fan_in": fans[0], "fan_out": fans[1], "fan_avg": (fans[0] + fans[1]) / 2,
                    "fan_geo_avg": math.sqrt(fans[0] * fans[1])}
    if mode not in denominators:
        raise ValueError(f"invalid mode for variance scaling initializer: {mode}")
    if denominators[mode] == 0:
        raise ZeroDivisionError(f"variance_scaling of a {shape} weight: {mode} is 0")
    if dtype.name in FLOAT_NAMES:
        return _box_fill(variance_scaling_, shape, dtype, name, scale=scale, mode=mode, distribution=distribution,
                         fans=fans)
    std = math.sqrt(scale / denominators[mode])
    draw: Callable[..., np.ndarray]
    if distribution == "truncated_normal":
        draw, std = complex_truncated_normal_, std / _TRUNCATED_COMPLEX_STD
    elif distribution == "normal":
        draw = complex_normal_
    elif distribution == "uniform":
        draw = complex_disk_
    else:
        raise ValueError(f"invalid distribution for variance scaling initializer: {distribution}")
    return _complex_box_fill(draw, std, shape, dtype, name)


#: std of a complex standard normal whose modulus is cut at 2 (JAX's constant)
_TRUNCATED_COMPLEX_STD = 0.95311164380491208
_VARIANCE_SCALING = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                     "variance_scaling")
_CONSTANT = ("zeros", "ones", "constant")
_REAL_ONLY = ("uniform", "truncated_normal")  # JAX draws these in float dtypes only
_COMPLEX_NAMES = ("complex64", "complex128")


def _check_dtype(base: str, dtype: np.dtype) -> None:
    """Refuse a dtype JAX does not draw ``base`` in (JAX's message), or one fastinit does not write
    (JAX's 8-bit float draws have a handful of values, or NaN: draw float32 and cast)."""
    kinds = "a float" if base in _REAL_ONLY else "a float or complex"
    accepted = FLOAT_NAMES if base in _REAL_ONLY else FLOAT_NAMES + _COMPLEX_NAMES
    if dtype.name in accepted:
        return
    if jax.dtypes.issubdtype(dtype, np.floating):
        raise JaxDtypeError(f"fastinit.jax.{base} draws {', '.join(accepted)}; got {dtype.name} (draw float32 and "
                            f"cast: .astype(jnp.{dtype.name}))")
    raise JaxDtypeError(f"dtype argument to `{base}` must be {kinds} dtype, got {dtype.name}")


def _maker(base: str, params: dict, shape: tuple[int, ...], dtype: np.dtype, name: str,
           column_axis: int) -> _Values:
    """JAX's initializer ``base`` with concrete ``params`` for one shape and a dtype it draws."""
    convention = TABLE["jax"][base]
    params = {k: _number(v) for k, v in params.items()}
    complex_ = dtype.name in _COMPLEX_NAMES
    if base in _VARIANCE_SCALING:
        return _variance_scaling({**convention.fixed, **params}, shape, dtype, name)
    if complex_ and base == "normal":
        stddev = check_real("stddev", params["stddev"])
        return _complex_box_fill(complex_normal_, stddev, shape, dtype, name)
    if base == "orthogonal":
        axis = column_axis % len(shape)
        columns_last = shape[:axis] + shape[axis + 1:] + (shape[axis],)
        if complex_:
            gain = check_real("scale", params["scale"])

            def full(seed: int) -> np.ndarray:
                return orthogonal_tensor(columns_last, gain, "jax", seed, name, complex_=True).astype(dtype)
        else:

            def full(seed: int) -> np.ndarray:
                return _init(columns_last, convention, dtype, seed=seed, name=name, **params)

        return _Values(lambda seed, offset, extent: np.ascontiguousarray(np.moveaxis(full(seed), -1, axis)),
                       whole_tensor=True)
    return _box_fill(convention, shape, dtype, name, **params)


def _bound(argname: str, value: Any) -> float:
    """A ``truncated_normal`` bound: a concrete real number (the bounds shape the distribution fastinit draws)."""
    bound = _real(value)
    if bound is None:
        raise TypeError(f"fastinit.jax.truncated_normal: {argname} must be a concrete real number (not an array with "
                        f"dims or a traced value), got {type(value).__name__}")
    return bound


def _clipped_at_upper(upper: float, stddev: Any, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    """JAX's ``truncated_normal`` when ``lower >= upper``: its clip to ``(nextafter(lower, inf),
    nextafter(upper, -inf))`` leaves ``nextafter(upper, -inf)`` (``upper`` converted as JAX converts
    it: to JAX's default float, then to ``dtype``), times ``jnp.array(stddev, dtype)``."""
    top = jax.lax.nextafter(jnp.asarray(upper).astype(dtype), jnp.asarray(-np.inf, dtype))
    return jnp.full(shape, top, dtype) * jnp.array(stddev, dtype)


def _draw(base: str, params: dict, key: Any, shape: tuple[int, ...], dtype: np.dtype, name: str,
          column_axis: Any, sharding: jax.sharding.Sharding | None = None) -> jax.Array:
    """JAX's drawing initializer ``base``: checks in JAX's order, fastinit's fill (shard by shard on
    ``sharding`` where it fills the values itself), and JAX's arithmetic for what the fill does not
    take (see the module docstring)."""
    if base == "delta_orthogonal":  # as JAX builds it: the orthogonal (in, out) matrix at the center tap
        if len(shape) not in (3, 4, 5):
            raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape.")
        if shape[-1] < shape[-2]:
            raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
        matrix = _draw("orthogonal", params, key, shape[-2:], dtype, name, column_axis)
        return jnp.zeros(shape, dtype).at[tuple((k - 1) // 2 for k in shape[:-2])].set(matrix)
    if base == "orthogonal":
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape")
        if 0 in shape:
            return jnp.zeros(shape, dtype)
        if not -len(shape) <= column_axis < len(shape):
            raise IndexError(f"column_axis {column_axis} is out of range for the {len(shape)}-D shape {shape}")
    _check_dtype(base, dtype)
    if base == "truncated_normal":
        lower, upper = _bound("lower", params["lower"]), _bound("upper", params["upper"])
        if lower >= upper:
            _key_words(key)  # checked as for a draw
            return _clipped_at_upper(upper, params["stddev"], shape, dtype)
    scale = _SCALES.get(base)
    value = _real(params[scale.param]) if scale else None
    if scale is None or (value is not None and math.isfinite(value) and scale.fill_takes(value)):
        return _run(key, shape, dtype, _maker(base, params, shape, dtype, name, column_axis), sharding)
    standard = _run(key, shape, dtype, _maker(base, {**params, scale.param: 1.0}, shape, dtype, name, column_axis))
    return standard * scale.factor(params[scale.param], dtype)


def _initializer(scheme: str, params: dict, default_dtype: Any, name: str, column_axis: Any = -1) -> Initializer:
    base = _ALIASES.get(scheme, scheme)
    convention = TABLE["jax"][base]

    # as in JAX: the factory's dtype is the default; an explicit None means JAX's default float
    def init(key: Any, shape: Sequence[int], dtype: Any = default_dtype, out_sharding: Any = None) -> jax.Array:
        if scheme in _CONSTANT:  # nothing drawn: JAX's own
            own = getattr(jax.nn.initializers, scheme)
            return (own(**params) if params else own)(key, shape, dtype, out_sharding)
        shape = _shape(shape, base)
        sharding = _out_sharding(out_sharding, shape)
        return _placed(_draw(base, params, key, shape, _dtype(dtype), name, column_axis, sharding), sharding)

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
