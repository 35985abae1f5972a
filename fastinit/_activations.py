"""The activations the diagnostics know, each as ``name -> (s, s')`` on float64 arrays, and two
Gaussian expectations: ``gaussian_expectation`` (128-point Gauss-Hermite, the forward theory of
``propagate``) and ``gaussian_moment`` (Gauss-Legendre panels split at the kink z = 0, accurate to
~1e-13 for every activation here at any variance: what the criticality solver needs).

Examples:
    >>> s, ds = ACTIVATIONS["gelu_erf"]
    >>> round(float(s(np.array(1.0))), 6), round(float(ds(np.array(0.0))), 6)
    (0.841345, 0.5)
    >>> round(gaussian_moment(lambda z: np.maximum(z, 0.0) ** 2, 3.0), 12)
    1.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np

__all__ = ["ACTIVATIONS", "Activation", "LEAKY_SLOPE", "gaussian_expectation", "gaussian_moment"]

Activation = Literal["linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "gelu_erf", "silu", "selu",
                     "softsign", "softplus", "mish", "elu"]

LEAKY_SLOPE = 0.01
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
_GELU_C = math.sqrt(2 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softplus(z):
    return np.logaddexp(0.0, z)


def _gelu(z):  # the tanh form of Hendrycks & Gimpel (2016): torch's GELU(approximate="tanh")
    return 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z ** 3)))


def _gelu_grad(z):
    t = np.tanh(_GELU_C * (z + 0.044715 * z ** 3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z)


def _normal_cdf(z):
    return 0.5 * (1.0 + np.asarray(_erf(np.asarray(z, float) / math.sqrt(2.0)), float))


def _mish_grad(z):
    t = np.tanh(_softplus(z))
    return t + z * (1.0 - t * t) * _sigmoid(z)


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, LEAKY_SLOPE * z), lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "gelu": (_gelu, _gelu_grad),
    "gelu_erf": (lambda z: z * _normal_cdf(z),
                 lambda z: _normal_cdf(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)),
    "silu": (lambda z: z * _sigmoid(z), lambda z: _sigmoid(z) * (1.0 + z * (1.0 - _sigmoid(z)))),
    "selu": (lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0))),
             lambda z: _SELU_SCALE * np.where(z > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(z, 0.0)))),
    "softsign": (lambda z: z / (1.0 + np.abs(z)), lambda z: 1.0 / (1.0 + np.abs(z)) ** 2),
    "softplus": (_softplus, _sigmoid),
    "mish": (lambda z: z * np.tanh(_softplus(z)), _mish_grad),
    "elu": (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
            lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))),
}
"""Each activation's function and derivative, ``name -> (s, s')``, on float64 arrays: ``gelu`` is
the tanh form (torch's ``GELU(approximate="tanh")``), ``gelu_erf`` the exact ``z Phi(z)`` (torch's
default ``GELU()``); ``leaky_relu`` has slope 0.01, ``elu`` alpha 1, ``softplus`` beta 1 and
``mish`` is ``z tanh(softplus(z))``."""

# Gauss-Hermite nodes: E_{z ~ N(0, K)}[f(z)] = sum(w f(sqrt(2K) x)) / sqrt(pi); an even count puts no
# node at the ReLU kink, so ReLU moments are exact by symmetry
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(128)


def gaussian_expectation(f: Callable, variance: float) -> float:
    """``E[f(z)]`` for ``z ~ N(0, variance)`` by 128-point Gauss-Hermite quadrature."""
    return float(_WEIGHTS @ f(math.sqrt(2.0 * variance) * _NODES) / math.sqrt(math.pi))


_LEGENDRE_X, _LEGENDRE_W = np.polynomial.legendre.leggauss(24)
_REACH = 13.0  # panels cover |z| <= 13 standard deviations: the Gaussian beyond is below e**-84


def _panel_rule(variance: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (Gaussian density included) on ``[0, 13 sd]``: panels at most sd / 2 and
    1 wide, so both the Gaussian's scale and an activation's own unit scale are resolved."""
    sd = math.sqrt(variance)
    width = min(0.5 * sd, 1.0)
    edges = np.linspace(0.0, _REACH * sd, math.ceil(_REACH * sd / width) + 1)
    half = 0.5 * np.diff(edges)[:, None]
    z = (0.5 * (edges[1:] + edges[:-1]))[:, None] + half * _LEGENDRE_X
    w = half * _LEGENDRE_W * np.exp(-0.5 * z * z / variance) / math.sqrt(2.0 * math.pi * variance)
    return z.ravel(), w.ravel()


def gaussian_moment(f: Callable, variance: float) -> float:
    """``E[f(z)]`` for ``z ~ N(0, variance)``, ``variance > 0``, by 24-point Gauss-Legendre panels
    on each side of 0 (a kink at 0, as in ReLU, ELU or softsign, costs no accuracy)."""
    z, w = _panel_rule(variance)
    return float(w @ (f(z) + f(-z)))
