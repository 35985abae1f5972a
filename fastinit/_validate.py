"""The one home of user-input checks: seeds, names, numbers, choices, shapes, boxes and dtypes.

Every check returns the canonical value (a Python int, a tuple of ints, a float, a NumPy dtype) or
raises a ``TypeError`` or ``ValueError`` whose message names the argument and says what is accepted
(``TypeError`` for a value of the wrong kind and for a dtype fastinit does not write, ``ValueError``
for a bad value and for a choice outside its list).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._dtypes import FLOAT_NAMES, numpy_dtype

__all__ = ["SEED_LIMIT", "MAX_ELEMENTS", "check_seed", "check_name", "check_real", "check_choice",
           "check_positive_int", "check_ints", "check_shape", "check_box", "check_dtype"]

SEED_LIMIT = 1 << 64
#: the most elements a global tensor may have (global flat indices are 64-bit)
MAX_ELEMENTS = 1 << 62


def _is_int(value: Any) -> bool:
    """An integer that is not a bool (NumPy, torch and JAX integer scalars included)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def check_seed(seed: Any) -> int:
    """``seed`` as a Python int in [0, 2**64)."""
    if not _is_int(seed):
        raise TypeError(f"seed must be an int in [0, 2**64), got {type(seed).__name__}")
    seed = operator.index(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def check_name(name: Any) -> str:
    """``name`` as a str that encodes to UTF-8."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"name must be encodable as UTF-8: {err}") from None
    return name


def check_real(argname: str, value: Any, *, allow_inf: bool = False, allow_nan: bool = False) -> float:
    """``value`` as a finite float (``allow_inf``: or +-inf; ``allow_nan``: or NaN)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{argname} must be a real number, got {type(value).__name__}")
    x = float(value)
    if (math.isnan(x) and not allow_nan) or (math.isinf(x) and not allow_inf):
        raise ValueError(f"{argname} must be finite, got {x}")
    return x


def check_choice(argname: str, value: Any, accepted: Sequence[str]) -> str:
    """``value`` if it is one of ``accepted``."""
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{argname} must be one of {', '.join(map(repr, accepted))}; got {value!r}")
    return value


def check_positive_int(argname: str, value: Any) -> int:
    """``value`` as a Python int >= 1."""
    if not _is_int(value) or operator.index(value) < 1:
        raise ValueError(f"{argname} must be a positive int, got {value!r}")
    return operator.index(value)


def check_ints(argname: str, value: Any, *, count: int | None = None, below: int | None = None) -> tuple[int, ...]:
    """``value`` as a tuple of non-negative ints (``count`` of them, each < ``below``, when given)."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        items = tuple(value)
        if not all(_is_int(v) for v in items):
            raise TypeError
        items = tuple(operator.index(v) for v in items)
    except TypeError:
        what = f"{count} " if count is not None else "a sequence of "
        bound = f"ints in [0, {_power(below)})" if below is not None else "non-negative ints"
        raise TypeError(f"{argname} must be {what}{bound}, got {value!r}") from None
    if count is not None and len(items) != count:
        raise ValueError(f"{argname} must have {count} items, got {value!r}")
    if any(v < 0 for v in items) or (below is not None and any(v >= below for v in items)):
        bound = f"in [0, {_power(below)})" if below is not None else "non-negative"
        raise ValueError(f"{argname} must be {bound}, got {items}")
    return items


def _power(n: int) -> str:
    """``n`` as ``2**k`` when it is a large power of two (as the messages state bounds)."""
    return f"2**{n.bit_length() - 1}" if n >= 1 << 16 and n & (n - 1) == 0 else str(n)


def check_shape(shape: Any, argname: str = "shape") -> tuple[int, ...]:
    """A tensor shape: non-negative ints, at most ``MAX_ELEMENTS`` elements in all and in each dim
    (a zero-size shape too: file formats and NumPy store each dim in 64 bits)."""
    dims = check_ints(argname, shape)
    if math.prod(dims) > MAX_ELEMENTS or any(n > MAX_ELEMENTS for n in dims):
        raise ValueError(f"{argname} {dims} has more than 2**62 elements (in all or in one dim)")
    return dims


def check_box(shape: tuple[int, ...], global_shape: Any, offset: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(global_shape, offset)`` of the box of ``shape`` that an array holds (defaults: the whole tensor)."""
    if global_shape is None:
        if offset is not None:
            raise ValueError("offset needs global_shape: the shape of the full tensor that out is a box of")
        return tuple(shape), (0,) * len(shape)
    gshape = check_shape(global_shape, "global_shape")
    if len(gshape) != len(shape):
        raise ValueError(f"global_shape {gshape} must have out's {len(shape)} dims (out.shape = {shape})")
    if offset is None:
        if tuple(shape) != gshape:
            raise ValueError(f"offset is required when out.shape {tuple(shape)} differs from global_shape {gshape}")
        return gshape, (0,) * len(shape)
    box_offset = check_ints("offset", offset)
    if len(box_offset) != len(shape):
        raise ValueError(f"offset {box_offset} must have out's {len(shape)} dims")
    for d, (o, n, g) in enumerate(zip(box_offset, shape, gshape)):
        if o + n > g:
            raise ValueError(
                f"the box offset {box_offset} + out.shape {tuple(shape)} lies outside global_shape "
                f"{gshape} in dim {d}"
            )
    return gshape, box_offset


def check_dtype(dtype: Any, accepted: Sequence[str] = FLOAT_NAMES, argname: str = "dtype") -> np.dtype:
    """``dtype`` (a NumPy dtype, scalar type or name NumPy knows, or ``"bfloat16"``) as a NumPy dtype,
    if its name is ``accepted``; ``None`` is not a dtype here (NumPy would read it as float64)."""
    try:
        if dtype is None:
            raise TypeError
        name = "bfloat16" if str(dtype) == "bfloat16" else np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in accepted:
        raise TypeError(f"{argname} must be one of {', '.join(accepted)}, got {name}")
    return numpy_dtype(name)
