"""Criticality in the sense of Roberts, Yaida & Hanin, *The Principles of Deep Learning Theory*
(2022), chapter 5: the kernel recursion ``K' = C_b + C_W <s(z)^2>_K`` and its susceptibilities

* parallel: ``chi_par(K) = C_W d<s^2>_K / dK = C_W <s(z)^2 (z^2 - K)>_K / (2 K^2)``;
* perpendicular: ``chi_perp(K) = C_W <s'(z)^2>_K``.

The solver is ``critical``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._activations import ACTIVATIONS, gaussian_moment
from ._validate import check_real

__all__ = ["Criticality", "Universality", "critical", "check_activation", "susceptibilities", "kernel_map"]

Universality = Literal["K*=0", "scale-invariant", "neither", "none"]

_GRID = np.geomspace(1e-4, 1e3, 211)
_TINY = 1e-12  # a kernel below this is read at this variance
_SIDE = 1e-150  # s'(0+) and s'(0-) are read here
_SCALE_FREE = 1e-9
_SMALL_K = 1e-3  # where the K* = 0 class is told from a repelling K = 0


def check_activation(activation: object) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    return activation


@dataclass(frozen=True)
class Criticality:
    """The critical point of an activation: bias variance ``c_b``, weight variance ``c_w`` (times
    fan_in), fixed point ``k_star`` (None: every K is one, the scale-invariant class) and its
    ``universality`` class; ``exists`` is False (and the numbers None) where there is none, and
    ``reason`` says why, in words."""

    activation: str
    universality: Universality
    c_b: float | None
    c_w: float | None
    k_star: float | None
    reason: str

    @property
    def exists(self) -> bool:
        return self.universality != "none"


def _moments(s: Callable, ds: Callable, k: float) -> tuple[float, float, float]:
    """``<s^2>_K``, ``d<s^2>/dK`` and ``<s'^2>_K``."""
    k = max(k, _TINY)
    second = gaussian_moment(lambda z: s(z) ** 2, k)
    slope = gaussian_moment(lambda z: s(z) ** 2 * (z * z - k), k) / (2.0 * k * k)
    return second, slope, gaussian_moment(lambda z: ds(z) ** 2, k)


def susceptibilities(activation: str, k: float, c_w: float) -> tuple[float, float]:
    """``(chi_par, chi_perp)`` at kernel ``k`` and weight variance ``c_w`` (``chi = 1``: critical;
    ``< 1``: signals converge, ``> 1``: they diverge)."""
    s, ds = ACTIVATIONS[check_activation(activation)]
    _, slope, grad2 = _moments(s, ds, check_real("k", k))
    return c_w * slope, c_w * grad2


def kernel_map(activation: str, k: float, c_b: float, c_w: float) -> float:
    """One layer of the recursion: ``C_b + C_W <s(z)^2>_K``."""
    s, ds = ACTIVATIONS[check_activation(activation)]
    return c_b + c_w * _moments(s, ds, k)[0]


def _root(f: Callable[[float], float], lo: float, hi: float) -> float:
    """A zero of ``f`` in ``[lo, hi]`` (a sign change) by bisection in log K, to float precision."""
    f_lo = f(lo)
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        f_mid = f(mid)
        if (f_mid < 0) == (f_lo < 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
        if hi / lo - 1.0 < 1e-15:
            break
    return math.sqrt(lo * hi)


def _solve(activation: str) -> Criticality:
    s, ds = ACTIVATIONS[activation]
    moments = [_moments(s, ds, k) for k in _GRID]
    gap = np.array([slope - grad2 for _, slope, grad2 in moments])
    grad2 = np.array([g for _, _, g in moments])
    if np.all(np.abs(gap) <= _SCALE_FREE * grad2) and np.ptp(grad2) <= _SCALE_FREE * grad2.max():
        c_w = 1.0 / float(grad2.mean())
        return Criticality(activation, "scale-invariant", 0.0, c_w, None,
                           f"<s^2>_K = K / C_W at every K: chi_par = chi_perp = C_W <s'^2> = 1 at C_W = {c_w:.6g}, "
                           "C_b = 0, and every K is a fixed point (K' = K): signals neither grow nor shrink")
    at_zero = float(s(np.zeros(1))[0])
    grad2_zero = float(np.mean(ds(np.array([_SIDE, -_SIDE])) ** 2))  # <s'^2>_K as K -> 0: kinks included
    if at_zero == 0.0 and grad2_zero > 0.0:
        c_w = 1.0 / grad2_zero
        if c_w * _moments(s, ds, _SMALL_K)[0] < _SMALL_K:
            return Criticality(activation, "K*=0", 0.0, c_w, 0.0,
                               f"s(0) = 0 and s'(0)^2 = {grad2_zero:.6g}: at C_b = 0, C_W = {c_w:.6g} the fixed "
                               "point K* = 0 has chi_par = chi_perp = 1 and attracts (K' < K for small K), so "
                               "signals decay towards it slowly, by a power of the depth")
    for i in np.flatnonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) < 0):
        k_star = _root(lambda k: (lambda m: m[1] - m[2])(_moments(s, ds, k)), float(_GRID[i]), float(_GRID[i + 1]))
        second, _, grad2_star = _moments(s, ds, k_star)
        c_w = 1.0 / grad2_star
        c_b = k_star - c_w * second
        if c_b >= -1e-12 * k_star:
            c_b = max(c_b, 0.0)
            step = sum(c_b + c_w * _moments(s, ds, k_star * f)[0] - k_star * f for f in (0.99, 1.01))
            near, away = ("below", "above") if step > 0 else ("above", "below")
            return Criticality(activation, "neither", c_b, c_w, k_star,
                               f"chi_par = chi_perp = 1 at K* = {k_star:.6g} with C_b = {c_b:.6g}, C_W = {c_w:.6g}; "
                               f"the fixed point is half-stable (K' - K ~ (K - K*)^2, {'>' if step > 0 else '<'} 0): "
                               f"a kernel just {near} K* flows to it, one {away} drifts away")
    why = f"s(0) = {at_zero:.6g} != 0, so K = 0 is no fixed point, and" if at_zero != 0.0 else \
        "K = 0 repels (K' > K for small K at chi = 1), and"
    return Criticality(activation, "none", None, None, None,
                       f"no critical point: {why} chi_par != chi_perp at every K in [1e-4, 1e3]")


_SOLVED: dict[str, Criticality] = {}


def critical(activation: str, *, c_b: float | None = None) -> Criticality:
    """The critical point of ``activation``; with ``c_b``, the critical point with that bias
    variance, or an answer saying there is none (``exists`` False, with the reason).

    A critical point ``(C_b, C_W, K*)`` has ``K*`` a fixed point with ``chi_par = chi_perp = 1``. So
    ``C_W = 1 / <s'^2>_{K*}``, ``C_b = K* - C_W <s^2>_{K*} >= 0``, and ``K*`` is a zero of
    ``D(K) = d<s^2>_K/dK - <s'^2>_K`` (``= <s s''>_K`` for smooth ``s``), or ``K* = 0``. The solver:

    1. ``D = 0`` at every K (to 1e-9): the **scale-invariant** class (ReLU, leaky ReLU, linear),
       ``C_b = 0``, ``C_W = 1 / <s'^2>``, every K is a fixed point (``k_star`` is None);
    2. ``s(0) = 0``, ``s'(0) != 0`` and, at ``C_b = 0``, ``C_W = 1 / s'(0)^2``, the map pulls small
       ``K`` towards 0 (``K' < K``): the **K* = 0** class (tanh, softsign, ELU, SELU);
    3. otherwise the smallest zero of ``D`` in ``[1e-4, 1e3]`` with ``C_b >= 0``: a critical point of
       **neither** class, half-stable (``K' - K ~ (K - K*)^2`` keeps one sign: a perturbation on one
       side decays, on the other grows; the reason says which), as the book finds for SWISH and GELU;
    4. else there is **none** (sigmoid, softplus: ``s(0) != 0`` and ``D`` keeps its sign).

    Expectations are Gauss-Legendre panels on both sides of 0 (``gaussian_moment``).

    Examples:
        >>> c = critical("gelu_erf")
        >>> c.universality, round(c.k_star, 5), round(c.c_w, 5), round(c.c_b, 5)
        ('neither', 3.56155, 1.98306, 0.17292)
        >>> critical("relu", c_b=0.1).exists
        False
    """
    activation = check_activation(activation)
    if c_b is not None:
        c_b = check_real("c_b", c_b)
        if c_b < 0:
            raise ValueError(f"c_b must be >= 0 (a variance), got {c_b}")
    if activation not in _SOLVED:
        _SOLVED[activation] = _solve(activation)
    found = _SOLVED[activation]
    if c_b is None or not found.exists:
        return found
    assert found.c_b is not None
    if abs(c_b - found.c_b) <= 1e-9 * max(1.0, c_b):
        return found
    if found.universality == "scale-invariant":
        why = (f"criticality needs C_W = {found.c_w:.6g} (chi = 1 at every K), and then K' = C_b + K grows by C_b "
               "each layer: no fixed point unless C_b = 0")
    else:
        why = f"its only critical point has C_b = {found.c_b:.6g}"
    return Criticality(activation, "none", None, None, None, f"no critical point with C_b = {c_b:g}: {why}")
