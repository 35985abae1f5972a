"""The one dtype registry: every dtype fastinit writes, what its kernels see, how files store it,
and the neighbours of a float in each dtype (for bounds rounded inward).

bfloat16 is ``ml_dtypes.bfloat16`` in NumPy (imported only when a bfloat16 array is made); the
kernels see 16-bit dtypes through ``uint16`` views and write float32 values rounded to nearest-even.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._kernels import BF16, F16, F32, F64, U32

__all__ = ["DType", "DTYPES", "FLOAT_NAMES", "numpy_dtype", "raw_dtype", "smallest_at_least", "largest_below"]


@dataclass(frozen=True)
class DType:
    """A dtype fastinit fills, by its NumPy name."""

    name: str
    itemsize: int
    storage: int  # the kernels' storage code (``_kernels.F32``, ...)
    kernel_view: type  # the NumPy scalar type of the array a kernel writes
    finite_max: float  # the largest finite value (0 for integers)
    safetensors: str  # the dtype code in a safetensors header
    npy_descr: str  # the type descriptor in an .npy header (bfloat16: 2-byte void records)


DTYPES: dict[str, DType] = {d.name: d for d in (
    DType("float32", 4, F32, np.float32, float(np.finfo(np.float32).max), "F32", "<f4"),
    DType("float64", 8, F64, np.float64, float(np.finfo(np.float64).max), "F64", "<f8"),
    DType("float16", 2, F16, np.uint16, 65504.0, "F16", "<f2"),
    DType("bfloat16", 2, BF16, np.uint16, float.fromhex("0x1.FEp127"), "BF16", "|V2"),
    DType("uint32", 4, U32, np.uint32, 0.0, "U32", "<u4"),
)}

#: the float dtypes every fill and scheme writes
FLOAT_NAMES = ("float32", "float64", "float16", "bfloat16")


def numpy_dtype(name: Any) -> np.dtype:
    """The NumPy dtype of a dtype name or dtype-like; "bfloat16" needs ml_dtypes."""
    if str(name) == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ImportError("bfloat16 tensors need ml_dtypes: pip install 'fastinit-philox[bfloat16]'") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def raw_dtype(name: str) -> np.dtype:
    """The NumPy dtype a file's bytes of dtype ``name`` are read as without ml_dtypes (bfloat16: uint16)."""
    return np.dtype(np.uint16) if name == "bfloat16" else np.dtype(name)


# ------------------------------------------------------------------------ neighbours of a float
def _scalar(x: float, dtype: np.dtype) -> Any:
    return np.array(x, dtype=np.float64).astype(dtype)[()]


def _step(v: Any, up: bool) -> Any:
    """The neighbour of the dtype scalar ``v`` towards +inf (``up``) or -inf."""
    bits_type = np.dtype(f"uint{8 * v.dtype.itemsize}")
    bits = np.array(v).view(bits_type)[()]
    sign = bits >> np.array(8 * v.dtype.itemsize - 1, bits_type)
    if float(v) == 0.0:
        tiny = np.array(1, bits_type).view(v.dtype)[()]
        return tiny if up else -tiny
    grow = up != bool(sign)
    return np.array(bits + 1 if grow else bits - 1, bits_type).view(v.dtype)[()]


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
