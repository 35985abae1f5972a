"""Complex draws built from the real fills, for frameworks whose initializers return complex arrays.

A complex tensor of shape ``S`` is written through its real view of shape ``(*S, 2)`` (real and
imaginary part of each element side by side): in the stream contract it is that float tensor, so
any box of it is the same slice of the whole. Each element's two parts are one Box-Muller pair of
the real view's ``normal_`` fill, so ``(x, y) / |(x, y)|`` has a uniform angle; a radius drawn
on its own (stream ``name + "/radius"``) turns it into a disk or a truncated complex normal.
Everything after the fills is IEEE arithmetic (and ``_kernels.neg_log1m_``): the same bits on
every CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._kernels import neg_log1m_
from ._streams import concrete_seed
from ._validate import check_name
from .distributions import normal_, uniform_

__all__ = ["complex_normal_", "complex_disk_", "complex_truncated_normal_"]

Box = Sequence[int] | None


def _boxes(view: np.ndarray, global_shape: Box, offset: Box) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The complex tensor's global shape and offset for a real view box ``view`` (last dim 2)."""
    shape = tuple(view.shape[:-1]) if global_shape is None else tuple(global_shape)
    return shape, ((0,) * len(shape) if offset is None else tuple(offset))


def complex_normal_(view: np.ndarray, std: float, *, seed: int | None = None, name: str = "",
                    global_shape: Box = None, offset: Box = None) -> np.ndarray:
    """A complex normal of variance ``std**2``: each part N(0, std**2 / 2) (``view``: the real view;
    ``global_shape`` / ``offset``: the complex tensor's)."""
    shape, start = _boxes(view, global_shape, offset)
    return normal_(view, 0.0, std / math.sqrt(2), seed=seed, name=name, global_shape=(*shape, 2),
                   offset=(*start, 0))


def _polar(view: np.ndarray, radius: np.ndarray, seed: int, name: str, shape: tuple[int, ...],
           start: tuple[int, ...]) -> np.ndarray:
    """``radius`` times the unit vector of each element's normal pair, into ``view``."""
    normal_(view, seed=seed, name=name, global_shape=(*shape, 2), offset=(*start, 0))
    x, y = view[..., 0], view[..., 1]
    length = np.sqrt(x * x + y * y)
    view *= (radius.astype(view.dtype) / length)[..., None]
    return view


def _uniform_radius(view: np.ndarray, seed: int, name: str, shape: tuple[int, ...], start: tuple[int, ...]):
    return uniform_(np.empty(view.shape[:-1], np.float64), seed=seed, name=name + "/radius", global_shape=shape,
                    offset=start)


def complex_disk_(view: np.ndarray, scale: float, *, seed: int | None = None, name: str = "",
                  global_shape: Box = None, offset: Box = None) -> np.ndarray:
    """Uniform on the disk of radius ``scale * sqrt(2)`` (variance ``scale**2``): modulus
    ``scale * sqrt(2 v)``, ``v`` uniform in [0, 1)."""
    seed, name = concrete_seed(seed), check_name(name)
    shape, start = _boxes(view, global_shape, offset)
    radius = np.sqrt(2.0 * _uniform_radius(view, seed, name, shape, start)) * scale
    return _polar(view, radius, seed, name, shape, start)


def complex_truncated_normal_(view: np.ndarray, scale: float, upper: float = 2.0, *, seed: int | None = None,
                              name: str = "", global_shape: Box = None, offset: Box = None) -> np.ndarray:
    """A complex standard normal (variance 1 before truncation) whose modulus is cut at ``upper``,
    times ``scale``: modulus ``scale * sqrt(-ln(1 - (1 - exp(-upper**2)) v))``."""
    seed, name = concrete_seed(seed), check_name(name)
    shape, start = _boxes(view, global_shape, offset)
    mass = _ONE_MINUS_EXP_MINUS_4 if upper == 2.0 else -math.expm1(-upper * upper)
    t = _uniform_radius(view, seed, name, shape, start) * mass
    neg_log1m_(t.reshape(-1))
    return _polar(view, np.sqrt(t) * scale, seed, name, shape, start)


#: 1 - exp(-4), written out so that the default truncation does not depend on the C library's exp
_ONE_MINUS_EXP_MINUS_4 = 0.9816843611112658
