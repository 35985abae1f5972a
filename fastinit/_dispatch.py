"""From a user's array and box to a kernel call: dtype and layout checks, box canonicalization,
representable bounds per dtype, the default seed stream. Nothing here draws a random number."""

from __future__ import annotations

import functools
import math
import operator
import threading
from collections.abc import Sequence

import numpy as np

from . import _kernels
from ._jit import get_num_threads
from ._kernels import BF16, F16, F32, F64, U32
from ._philox import SEED_LIMIT, check_name, check_seed, key, philox4x32

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
_STORAGE = {"float32": F32, "float64": F64, "float16": F16, "bfloat16": BF16, "uint32": U32}
_KERNEL_VIEW = {F32: np.float32, F64: np.float64, F16: np.uint16, BF16: np.uint16, U32: np.uint32}
_BITS_VIEW = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_MAX_ELEMENTS = 1 << 62

# Numba's default "workqueue" threading layer must not be entered by two threads at once; the
# fills are parallel already, so concurrent calls are serialized.
_LAUNCH_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- target array
class Target:
    """A validated output array and the box of the global tensor it holds."""

    __slots__ = ("out", "storage", "dtype", "flat", "global_shape", "offset", "lead_shape", "lead_strides",
                 "base", "row_len")

    def __init__(self, out, accepted: Sequence[str], global_shape, offset):
        if not isinstance(out, np.ndarray):
            raise TypeError(
                f"out must be a NumPy array or np.memmap, got {type(out).__module__}.{type(out).__name__}"
                " (for torch tensors use fastinit.torch)"
            )
        name = out.dtype.name
        if name not in accepted:
            raise TypeError(f"out must have dtype {' / '.join(accepted)}, got {name}")
        if not out.dtype.isnative:
            raise ValueError(f"out must be in the machine's byte order, got {out.dtype.str} "
                             "(fill a native array and convert it with .astype)")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous (fill a contiguous array and copy it into place)")
        if not out.flags.writeable:
            raise ValueError("out must be writable (got a read-only array or a mode='r' memmap)")
        self.out = out
        self.dtype = out.dtype
        self.storage = _STORAGE[name]
        self.flat = np.asarray(out).reshape(-1).view(_KERNEL_VIEW[self.storage])
        self.global_shape, self.offset = _check_box(out.shape, global_shape, offset)
        self._canonicalize(out.shape, self.offset)

    def _canonicalize(self, shape, box_offset):
        """Rows along which the box is contiguous in the global C order, and where they start."""
        gshape = self.global_shape
        strides = [math.prod(gshape[d + 1:]) for d in range(len(gshape))]
        self.base = sum(o * s for o, s in zip(box_offset, strides))
        # dims [split:] are one contiguous run of global indices: every trailing dim that spans the
        # full global extent, and the first one (from the end) that does not
        split = len(shape)
        while split > 0:
            split -= 1
            if shape[split] != gshape[split]:
                break
        lead = [(n, s) for n, s in zip(shape[:split], strides[:split]) if n != 1]
        self.row_len = math.prod(shape[split:])
        self.lead_shape = np.array([n for n, _ in lead], dtype=np.int64)
        self.lead_strides = np.array([s for _, s in lead], dtype=np.int64)

    @property
    def size(self) -> int:
        return self.out.size

    @property
    def box(self) -> tuple[slice, ...]:
        """The slices of the global tensor that ``out`` holds."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.out.shape))


def _int_tuple(value, argname: str) -> tuple[int, ...]:
    try:
        items = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"{argname} must be a sequence of non-negative ints, got {value!r}") from None
    if any(v < 0 for v in items):
        raise ValueError(f"{argname} must be non-negative, got {items}")
    return items


def _check_box(shape, global_shape, offset):
    if global_shape is None:
        if offset is not None:
            raise ValueError("offset needs global_shape: the shape of the full tensor that out is a box of")
        return tuple(shape), (0,) * len(shape)
    gshape = _int_tuple(global_shape, "global_shape")
    if len(gshape) != len(shape):
        raise ValueError(f"global_shape {gshape} must have out's {len(shape)} dims (out.shape = {shape})")
    if math.prod(gshape) > _MAX_ELEMENTS:
        raise ValueError(f"global_shape {gshape} has more than 2**62 elements")
    if offset is None:
        if tuple(shape) != gshape:
            raise ValueError(f"offset is required when out.shape {tuple(shape)} differs from global_shape {gshape}")
        return gshape, (0,) * len(shape)
    box_offset = _int_tuple(offset, "offset")
    if len(box_offset) != len(shape):
        raise ValueError(f"offset {box_offset} must have out's {len(shape)} dims")
    for d, (o, n, g) in enumerate(zip(box_offset, shape, gshape)):
        if o + n > g:
            raise ValueError(
                f"the box offset {box_offset} + out.shape {tuple(shape)} lies outside global_shape "
                f"{gshape} in dim {d}"
            )
    return gshape, box_offset


def numpy_dtype(name) -> np.dtype:
    """The NumPy dtype of a dtype name or dtype-like; "bfloat16" needs ml_dtypes."""
    if str(name) == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ImportError("bfloat16 tensors need ml_dtypes: pip install 'fastinit-philox[bfloat16]'") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


# --------------------------------------------------------------------- parameters and bounds
def check_real(argname: str, value, *, allow_inf: bool = False) -> float:
    """``value`` as a float, or a TypeError / ValueError naming ``argname``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{argname} must be a real number, got {type(value).__name__}")
    x = float(value)
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise ValueError(f"{argname} must be finite, got {x}")
    return x


def _scalar(x: float, dtype: np.dtype):
    return np.array(x, dtype=np.float64).astype(dtype)[()]


def _step(v, up: bool):
    """The neighbour of the dtype scalar ``v`` towards +inf (``up``) or -inf."""
    bits = np.array(v).view(_BITS_VIEW[v.dtype.itemsize])[()]
    sign = bits >> np.array(8 * v.dtype.itemsize - 1, bits.dtype)
    if float(v) == 0.0:
        tiny = np.array(1, bits.dtype).view(v.dtype)[()]
        return tiny if up else -tiny
    grow = up != bool(sign)
    return np.array(bits + 1 if grow else bits - 1, bits.dtype).view(v.dtype)[()]


def smallest_at_least(x: float, dtype: np.dtype) -> float:
    """The smallest value of ``dtype`` that is >= x."""
    return _smallest_at_least(float(x).hex(), dtype)


def largest_below(x: float, dtype: np.dtype, *, strictly: bool) -> float:
    """The largest value of ``dtype`` that is < x (``strictly``) or <= x."""
    return _largest_below(float(x).hex(), dtype, strictly)


# memoized on the exact bits of x (0.0 and -0.0 are equal keys to a plain float cache)
@functools.lru_cache(maxsize=1024)
def _smallest_at_least(x_hex: str, dtype: np.dtype) -> float:
    x = float.fromhex(x_hex)
    v = _scalar(x, dtype)
    while float(v) < x:
        v = _step(v, up=True)
    return float(v)


@functools.lru_cache(maxsize=1024)
def _largest_below(x_hex: str, dtype: np.dtype, strictly: bool) -> float:
    x = float.fromhex(x_hex)
    v = _scalar(x, dtype)
    while float(v) > x or (strictly and float(v) == x):
        v = _step(v, up=False)
    return float(v)


_FINITE_MAX = {
    "float64": float(np.finfo(np.float64).max),
    "float32": float(np.finfo(np.float32).max),
    "bfloat16": float.fromhex("0x1.FEp127"),
    "float16": 65504.0,
}


def finite_max(dtype: np.dtype) -> float:
    """The largest finite value of a float dtype (bfloat16 without importing ml_dtypes)."""
    return _FINITE_MAX[dtype.name]


# ---------------------------------------------------------------------------- default seeds
class _DefaultSeeds:
    """The process-wide stream of seeds used when a fill gets ``seed=None``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._base = int.from_bytes(np.random.SeedSequence().generate_state(2, np.uint32).tobytes(), "little")
        self._count = 0

    def manual_seed(self, seed) -> None:
        seed = check_seed(seed)
        with self._lock:
            self._base, self._count = seed, 0

    def next(self) -> int:
        with self._lock:
            count, base = self._count, self._base
            self._count += 1
        w = philox4x32((count & 0xFFFFFFFF, count >> 32, 0x5EED, 0), (base & 0xFFFFFFFF, base >> 32))
        return (w[0] | w[1] << 32) % SEED_LIMIT


DEFAULT_SEEDS = _DefaultSeeds()


def manual_seed(seed: int) -> None:
    """Reset the default seed stream: calls with ``seed=None`` then repeat from the start.

    Each call with ``seed=None`` takes the next 64-bit seed of a process-wide stream (thread
    safe), so two same-shaped layers never get equal weights by accident. An explicit ``seed``
    (with ``name``) is the reproducible, shard-invariant contract and ignores this stream.
    """
    DEFAULT_SEEDS.manual_seed(seed)


def concrete_seed(seed) -> int:
    """An explicit seed, checked; ``None``: the next seed of the default stream (taken once, so a
    scheme that makes several draws uses one seed for all of them)."""
    return DEFAULT_SEEDS.next() if seed is None else check_seed(seed)


def resolve_key(seed, name) -> tuple[np.uint32, np.uint32]:
    name = check_name(name)
    k0, k1 = key(concrete_seed(seed), name)
    return np.uint32(k0), np.uint32(k1)


# --------------------------------------------------------------------------------- the call
def _chunk(row_len: int) -> int:
    """Elements per parallel task: whole blocks, enough tasks to balance the threads."""
    return max(1 << 14, min(1 << 18, -(-row_len // (8 * get_num_threads())))) // 4 * 4


def launch(target: Target, fill: int, k: tuple, params: Sequence[float]) -> None:
    """Run the parallel kernel for ``fill`` on ``target`` with the six float64 ``params``."""
    if target.size == 0:
        return
    p = [float(x) for x in params] + [0.0] * (6 - len(params))
    kernel = _kernels.box_filler(fill, target.storage)
    with _LAUNCH_LOCK:
        kernel(target.flat, target.lead_shape, target.lead_strides, target.base, target.row_len,
               _chunk(target.row_len), get_num_threads(), k[0], k[1], *p)
