"""Fill cases shared by the reference, golden and invariance tests: each knows how to call
fastinit and what parameters the documented formulas use (derived independently of the package)."""

from __future__ import annotations

import numpy as np

import fastinit as fi
from fastinit._ndtr import normal_cdf


def _largest_below(x, dtype):
    v = np.array(x, dtype)
    return float(np.nextafter(v, np.array(-np.inf, dtype)) if float(v) >= x else v)


def uniform_case(low=-1.5, high=2.5):
    def call(out, **kw):
        return fi.uniform_(out, low, high, **kw)

    def params(dtype):
        return (low, high - low, low, _largest_below(high, dtype))

    return "uniform", call, params


def normal_case(mean=0.25, std=1.5):
    def call(out, **kw):
        return fi.normal_(out, mean, std, **kw)

    return "normal", call, lambda dtype: (mean, std)


def trunc_case(mean=0.0, std=1.0, a=-1.5, b=2.25):
    """``a`` and ``b`` must be representable in every float dtype (they are the clamps)."""

    def call(out, **kw):
        return fi.trunc_normal_(out, mean, std, a, b, **kw)

    def params(dtype):
        alpha, beta = (a - mean) / std, (b - mean) / std
        mirrored = alpha + beta > 0
        lo, hi = (-beta, -alpha) if mirrored else (alpha, beta)
        pa, pb = normal_cdf(lo), normal_cdf(hi)
        return (pa, pb - pa, -std if mirrored else std, mean, a, b)

    return "trunc_normal", call, params


def bits_case():
    def call(out, **kw):
        return fi.random_bits_(out, **kw)

    return "bits", call, lambda dtype: ()


FLOAT_CASES = {
    "uniform": uniform_case(),
    "normal": normal_case(),
    "trunc_normal": trunc_case(),
    "trunc_tail": trunc_case(a=3.0, b=6.0),
    "trunc_tiny_std": trunc_case(std=0.02, a=-2.0, b=2.0),
}
