"""The standard normal CDF on the host, correctly rounded to float64 on every platform.

Truncated-normal fills map ``u`` to ``ppf(Phi(alpha) + u * (Phi(beta) - Phi(alpha)))``; the two
CDF values are per-call constants, so they are computed once here in 60-digit decimal arithmetic
(Python's ``decimal`` module: exact, platform independent) instead of through libm's ``erfc``,
whose last bit varies between C libraries.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext

_DIGITS = 60
_SQRT_PI = Decimal(
    "1.77245385090551602729816748334114518279754945612238712821380778985291128459103218137495065673854"
)
_CF_TERMS = 2000


def _erf_series(t: Decimal) -> Decimal:
    """erf(t) by its Taylor series (used for 0 <= t < 3, where terms stay below e**9)."""
    t2 = t * t
    term = t  # (-1)^n t^(2n+1) / n!
    total = t
    n = 0
    eps = Decimal(10) ** -(_DIGITS + 10)
    while abs(term) > eps:
        n += 1
        term = -term * t2 / n
        total += term / (2 * n + 1)
    return 2 * total / _SQRT_PI


def _erfc_continued_fraction(t: Decimal) -> Decimal:
    """erfc(t) = exp(-t^2) / sqrt(pi) / (t + (1/2) / (t + 1 / (t + (3/2) / (t + ...)))), t >= 3."""
    tail = Decimal(0)
    for k in range(_CF_TERMS, 0, -1):
        tail = (Decimal(k) / 2) / (t + tail)
    return (-t * t).exp() / _SQRT_PI / (t + tail)


@functools.lru_cache(maxsize=4096)
def normal_cdf(x: float) -> float:
    """Phi(x) = P(Z <= x) for a standard normal Z, as the float64 nearest to the exact value.

    Examples:
        >>> normal_cdf(0.0), normal_cdf(-2.0)
        (0.5, 0.02275013194817921)
    """
    if math.isinf(x):
        return 0.0 if x < 0 else 1.0
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        t = abs(Decimal(x)) / Decimal(2).sqrt()
        erfc = 1 - _erf_series(t) if t < 3 else _erfc_continued_fraction(t)
        upper = erfc / 2  # P(Z > |x|)
        return float(upper) if x < 0 else float(1 - upper)
