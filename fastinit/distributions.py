"""The four in-place fills every scheme stands on: raw bits, uniform, normal, truncated normal.

Each value depends only on ``(seed, name, global index)``: ``out`` may be the whole tensor or any
N-d box of it (``global_shape`` + ``offset``), filled by any number of threads, on any machine,
and it equals that box of the whole tensor bit for bit. See ``docs/contract.md``.

Float outputs are float32, float64, float16 or ``ml_dtypes.bfloat16``. float16 / bfloat16 values
are the float32 value rounded to nearest-even (bounds first rounded inward to the output dtype);
float64 values use 53-bit uniforms.

``out`` may also be an array in GPU memory: any object with ``__cuda_array_interface__`` (CuPy,
Numba device arrays) or a DLPack producer on a CUDA device (``__dlpack__``), filled in place by
the same kernels compiled for CUDA (``fastinit._cuda``, with the ``cuda`` extra), with the same
values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ._dtypes import DTYPES, FLOAT_NAMES, largest_below, smallest_at_least
from ._kernels import BITS, F64, NORMAL, TRUNC_NORMAL, UNIFORM
from ._launch import launch
from ._ndtr import normal_cdf
from ._streams import resolve_key
from ._target import Target
from ._validate import check_real

__all__ = ["random_bits_", "uniform_", "normal_", "trunc_normal_"]

#: a truncated normal's interval must keep this much probability mass (about 36 std from the mean)
_MIN_TAIL_MASS = 2.0**-960
#: normal draws stay within this many std (8.57 for float64, 6.8 for the rest)
_NORMAL_REACH = 9.0


def _f32(x: float) -> float:
    return float(np.float32(x))


def make_target(out: Any, accepted: Sequence[str], global_shape: Any, offset: Any) -> Target:
    """``out`` as a kernel target: a NumPy array, or an array in GPU memory (an object with
    ``__cuda_array_interface__``, or a DLPack producer on a CUDA device, read through
    ``fastinit._dlpack`` and filled on the legacy default stream; importing ``fastinit._cuda``
    needs numba-cuda)."""
    if not in_gpu_memory(out):
        return Target(out, accepted, global_shape, offset)
    from ._cuda import DeviceTarget

    if not hasattr(out, "__cuda_array_interface__"):
        from . import _dlpack

        out = _dlpack.consume(out, stream=_dlpack.LEGACY_DEFAULT_STREAM)
    return DeviceTarget(out, accepted, global_shape, offset)


def in_gpu_memory(out: Any) -> bool:
    """Whether ``out`` is GPU memory the fills take: ``__cuda_array_interface__``, or a DLPack
    producer on a CUDA device."""
    if isinstance(out, np.ndarray):
        return False
    if hasattr(out, "__cuda_array_interface__"):
        return True
    if not hasattr(out, "__dlpack_device__"):
        return False
    from . import _dlpack

    return (_dlpack.dlpack_device(out) or (0, 0))[0] in (_dlpack.CUDA, _dlpack.CUDA_MANAGED)


def _launch(target: Target, fill: int, k: tuple, params: Sequence[float]) -> None:
    """Run ``fill`` where ``target``'s memory is: on the CPU threads, or queued on its GPU."""
    if type(target) is Target:
        launch(target, fill, k, params)
    else:  # a DeviceTarget: make_target has imported fastinit._cuda
        from ._cuda import DeviceTarget
        from ._cuda import launch as launch_on_gpu

        launch_on_gpu(cast(DeviceTarget, target), fill, k, params)


def random_bits_(out: np.ndarray, *, seed: int | None = None, name: str = "", global_shape: Sequence[int] | None = None,
                 offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill a uint32 array with raw Philox4x32-10 words.

    Element ``i`` (global C-order index) is word ``i % 4`` of
    ``philox4x32((i // 4) % 2**32, i // 2**34, 0, 0), key(seed, name))``.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> words = fi.random_bits_(np.empty(4, np.uint32), seed=0, name="w")
        >>> words.tolist() == list(fi.philox4x32((0, 0, 0, 0), fi.key(0, "w")))
        True
    """
    target = make_target(out, ("uint32",), global_shape, offset)
    _launch(target, BITS, resolve_key(seed, name), ())
    return out


def uniform_(out: np.ndarray, low: float = 0.0, high: float = 1.0, *, seed: int | None = None, name: str = "",
             global_shape: Sequence[int] | None = None, offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill ``out`` with U[low, high): ``low + (high - low) * u``, never ``high``.

    * float32 / float16 / bfloat16: ``u = (w >> 8) * 2**-24`` from the element's word ``w``, and
      ``x = f32(low) + f32(high - low) * u`` in float32 arithmetic;
    * float64: ``u = k * 2**-53`` from 53 bits of two words, arithmetic in float64.

    ``x`` is then clamped to the output dtype's values in [low, high) (a rounding can otherwise
    reach ``high``), and rounded to nearest-even for 16-bit dtypes.

    Args:
        out: writable C-contiguous array (or memmap) of float32, float64, float16 or bfloat16.
        low: the lower bound (finite), included.
        high: the upper bound (finite, ``low < high``), excluded.
        seed: int in [0, 2**64); ``None`` takes the next seed of the default stream
            (see [`fastinit.manual_seed`][fastinit.manual_seed]).
        name: the tensor's name; each name is an independent stream.
        global_shape: the full tensor's shape (default: ``out.shape``).
        offset: where ``out``'s box starts in the full tensor (default: the origin).

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.uniform_(np.empty((2, 3), np.float32), -1.0, 1.0, seed=7, name="w")
        >>> bool(((-1 <= w) & (w < 1)).all())
        True
    """
    target = make_target(out, FLOAT_NAMES, global_shape, offset)
    low, high = check_real("low", low), check_real("high", high)
    if not low < high:
        raise ValueError(f"uniform_ needs low < high, got low={low}, high={high}")
    top = DTYPES[target.dtype.name].finite_max
    if low < -top or high > top:
        raise ValueError(f"[low, high) = [{low}, {high}) exceeds the range of {target.dtype.name} (+-{top})")
    lo, hi = smallest_at_least(low, target.dtype), largest_below(high, target.dtype, strictly=True)
    if lo > hi:
        raise ValueError(f"no {target.dtype.name} value lies in [{low}, {high})")
    if target.storage == F64:
        params = (low, high - low, lo, hi)
    else:
        params = (_f32(low), _f32(high - low), lo, hi)
    if not math.isfinite(params[1]):
        raise ValueError(f"high - low overflows {target.dtype.name}: low={low}, high={high}")
    _launch(target, UNIFORM, resolve_key(seed, name), params)
    return out


def normal_(out: np.ndarray, mean: float = 0.0, std: float = 1.0, *, seed: int | None = None, name: str = "",
            global_shape: Sequence[int] | None = None, offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill ``out`` with N(mean, std**2) by Box-Muller: ``mean + std * z``.

    * float32 / float16 / bfloat16: the two words of a pair give ``u`` in (0, 1) (32-bit,
      smallest 2**-33) and an angle; ``z = sqrt(-2 ln u) * (cos, sin)(angle)`` in float32, so
      tails reach 6.7 std; elements ``4b, 4b+1`` use words (0, 1) of block ``b``, ``4b+2, 4b+3``
      words (2, 3);
    * float64: 53-bit ``u`` and angle from the four words of block ``b`` for elements
      ``2b, 2b+1``; tails reach 8.5 std.

    ``ln``, ``sin`` and ``cos`` are fixed polynomials (see ``fastinit._convert``), so values are
    identical on every CPU.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> x = fi.normal_(np.empty(100_000, np.float32), 0.0, 0.02, seed=1, name="emb")
        >>> round(float(x.std()), 3)
        0.02
    """
    target = make_target(out, FLOAT_NAMES, global_shape, offset)
    mean, std = check_real("mean", mean), check_real("std", std)
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    if abs(mean) + _NORMAL_REACH * std > DTYPES[target.dtype.name].finite_max:
        raise ValueError(f"normal_(mean={mean}, std={std}) would overflow {target.dtype.name}")
    params = (mean, std) if target.storage == F64 else (_f32(mean), _f32(std))
    _launch(target, NORMAL, resolve_key(seed, name), params)
    return out


def trunc_normal_(out: np.ndarray, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, *,
                  seed: int | None = None, name: str = "", global_shape: Sequence[int] | None = None,
                  offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill ``out`` with N(mean, std**2) truncated to [a, b] by the inverse CDF, in float64.

    ``a`` and ``b`` are absolute values, as in ``torch.nn.init.trunc_normal_`` (not in std units);
    ``a = -inf`` or ``b = inf`` truncate one side only. With ``alpha, beta = (a - mean) / std,
    (b - mean) / std`` (mirrored when the interval lies mostly above the mean, so the CDF is taken
    where it has full relative precision), each element's uniform ``u`` in (0, 1) maps to
    ``mean + std * ppf(Phi(alpha) + u * (Phi(beta) - Phi(alpha)))``: one draw per element, no
    rejection, exact in far tails (e.g. [3, 6] std) and for tiny std with wide bounds. ``Phi`` is
    correctly rounded, ``ppf`` is Wichura's AS 241. Results are clamped to the output dtype's
    values in [a, b], so no value lies outside and none piles up at a bound.

    * float32 / float16 / bfloat16: ``u = (w + 1/2) * 2**-32`` from one word; the float64 result
      is rounded to float32, then to nearest-even for 16-bit dtypes;
    * float64: ``u`` has 53 bits from two words.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> x = fi.trunc_normal_(np.empty(10_000, np.float32), std=0.02, a=-0.04, b=0.04, seed=3)
        >>> bool(x.min() >= -0.04 and x.max() <= 0.04)
        True
    """
    target = make_target(out, FLOAT_NAMES, global_shape, offset)
    mean, std = check_real("mean", mean), check_real("std", std)
    a, b = check_real("a", a, allow_inf=True), check_real("b", b, allow_inf=True)
    if not std > 0:
        raise ValueError(f"trunc_normal_ needs std > 0, got {std}")
    if not a < b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    alpha, beta = (a - mean) / std, (b - mean) / std
    mirrored = alpha + beta > 0 if math.isfinite(alpha + beta) else math.isinf(alpha) and alpha > 0
    lo_std, hi_std = (-beta, -alpha) if mirrored else (alpha, beta)
    p_lo, p_hi = normal_cdf(lo_std), normal_cdf(hi_std)
    if p_hi < _MIN_TAIL_MASS:
        raise ValueError(
            f"[a, b] = [{a}, {b}] lies more than 36 std from mean={mean} (std={std}); "
            "its probability underflows float64"
        )
    top = DTYPES[target.dtype.name].finite_max
    reach = 38.5 * std
    if max(a, mean - reach) < -top or min(b, mean + reach) > top:
        raise ValueError(f"trunc_normal_(mean={mean}, std={std}, a={a}, b={b}) exceeds {target.dtype.name}")
    lo = smallest_at_least(a, target.dtype) if math.isfinite(a) else -math.inf
    hi = largest_below(b, target.dtype, strictly=False) if math.isfinite(b) else math.inf
    if lo > hi:
        raise ValueError(f"no {target.dtype.name} value lies in [{a}, {b}]")
    params = (p_lo, p_hi - p_lo, -std if mirrored else std, mean, lo, hi)
    _launch(target, TRUNC_NORMAL, resolve_key(seed, name), params)
    return out
