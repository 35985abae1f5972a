"""Each framework's named schemes, exactly as that framework defines them, from one table.

``fi.conventions.keras.glorot_normal(out, seed=0, name="w")`` fills ``out`` the way Keras'
``GlorotNormal`` would (truncated at 2 std, corrected, ``(*kernel, in, out)`` fans);
``fi.conventions.torch.kaiming_normal(out, nonlinearity="relu", ...)`` the way ``torch.nn.init`` would
(untruncated, ``(out, in, *kernel)`` fans). Parameters keep the framework's names (``stddev``,
``minval``, ``scale`` ...) and defaults; ``seed``, ``name``, ``global_shape``, ``offset`` work as in
every fastinit fill. ``TABLE[framework][scheme].describe`` states the exact distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import schemes as S
from ._registry import lookup
from .distributions import normal_, trunc_normal_, uniform_

__all__ = ["TABLE", "Convention", "torch", "jax", "flax", "keras"]


@dataclass(frozen=True, eq=False)
class Convention:
    """A framework's scheme: the fastinit function, its fixed arguments, and how the framework's
    own parameters translate (``translate`` gets and returns keyword arguments)."""

    function: Callable
    describe: str
    fixed: dict = field(default_factory=dict)
    translate: Callable[[dict], dict] = lambda params: params
    name: str = ""  # "framework.scheme", set when the table is built

    @property
    def __name__(self) -> str:  # the label fastinit.dask and diagnostics show
        return self.name

    def __call__(self, out: np.ndarray, **params: Any) -> np.ndarray:
        return self.function(out, **self.fixed, **self.translate(params))

    @property
    def draws(self) -> bool:
        """Whether it takes ``seed`` and ``name`` (as its fastinit function does)."""
        return lookup(self.function).draws

    @property
    def whole_tensor(self) -> bool:
        """Whether it needs the whole tensor at once (as its fastinit function does)."""
        return lookup(self.function).whole_tensor


def _renamed(**names):
    return lambda p: {names.get(k, k): v for k, v in p.items()}


def _defaults(**defaults):
    return lambda p: {**defaults, **p}


def _keras_truncated(p):  # TruncatedNormal(mean, stddev): cut at 2 stddev around the mean
    mean, std = p.pop("mean", 0.0), p.pop("stddev", 0.05)
    return dict(mean=mean, std=std, a=mean - 2 * std, b=mean + 2 * std, **p)


def _jax_truncated(p):  # truncated_normal(stddev, lower, upper): bounds in std units
    std, lower, upper = p.pop("stddev", 1e-2), p.pop("lower", -2.0), p.pop("upper", 2.0)
    return dict(mean=0.0, std=std, a=lower * std, b=upper * std, **p)


def _jax_uniform(p):  # uniform(scale): U[0, scale)
    return dict(low=0.0, high=p.pop("scale", 1e-2), **p)


def _keras_distribution(p):  # Keras: "normal" is the legacy name of "truncated_normal"
    if p.get("distribution") == "normal":
        p["distribution"] = "truncated_normal"
    return p


def _vs(scale: float, mode: str, distribution: str, layout: str, describe: str) -> Convention:
    return Convention(S.variance_scaling_, describe,
                      dict(scale=scale, mode=mode, distribution=distribution, layout=layout))


_TRUNC = "truncated to +-2 std and scaled by 1/0.8796 (variance kept)"
_KERNEL = "(*kernel, in, out)"


def _jax_like(layout: str, variance_scaling: Convention) -> dict[str, Convention]:
    """The variance-scaling family shared by Keras, JAX and Flax."""
    return {
        "glorot_uniform": _vs(1.0, "fan_avg", "uniform", layout, "U(+-sqrt(6 / (fan_in + fan_out)))"),
        "glorot_normal": _vs(1.0, "fan_avg", "truncated_normal", layout, f"variance 2 / (fan_in + fan_out), {_TRUNC}"),
        "he_uniform": _vs(2.0, "fan_in", "uniform", layout, "U(+-sqrt(6 / fan_in))"),
        "he_normal": _vs(2.0, "fan_in", "truncated_normal", layout, f"variance 2 / fan_in, {_TRUNC}"),
        "lecun_uniform": _vs(1.0, "fan_in", "uniform", layout, "U(+-sqrt(3 / fan_in))"),
        "lecun_normal": _vs(1.0, "fan_in", "truncated_normal", layout, f"variance 1 / fan_in, {_TRUNC}"),
        "variance_scaling": variance_scaling,
        "orthogonal": Convention(S.orthogonal_, f"(semi-)orthogonal, {_KERNEL} flattened to (prod(rest), out)",
                                 dict(layout=layout), _renamed(scale="gain")),
        "zeros": Convention(S.zeros_, "0"),
        "ones": Convention(S.ones_, "1"),
        "constant": Convention(S.constant_, "value", translate=_renamed(value="val")),
    }


_JAX = {
    **_jax_like("jax", Convention(S.variance_scaling_, 'scale / n; "normal" untruncated, "truncated_normal" '
                                  f'{_TRUNC}, "uniform" U(+-sqrt(3 scale / n))', dict(layout="jax"))),
    "normal": Convention(normal_, "N(0, stddev^2), stddev = 0.01", translate=lambda p: _defaults(std=1e-2)(
        _renamed(stddev="std")(p))),
    "uniform": Convention(uniform_, "U[0, scale), scale = 0.01", translate=_jax_uniform),
    "truncated_normal": Convention(trunc_normal_, "N(0, stddev^2) cut at [lower, upper] * stddev (-2, 2; "
                                   "not rescaled)", translate=_jax_truncated),
    "delta_orthogonal": Convention(S.delta_orthogonal_, "orthogonal (in, out) matrix at tap (k - 1) // 2",
                                   dict(layout="jax"), _renamed(scale="gain")),
}

_TABLE: dict[str, dict[str, Convention]] = {
    "torch": {
        "uniform": Convention(uniform_, "U[a, b), default [0, 1)", translate=_renamed(a="low", b="high")),
        "normal": Convention(normal_, "N(mean, std^2), default N(0, 1)"),
        "trunc_normal": Convention(trunc_normal_, "N(mean, std^2) truncated to absolute [a, b], default [-2, 2]"),
        "xavier_uniform": Convention(S.xavier_uniform_, "U(+-gain sqrt(6 / (fan_in + fan_out)))", dict(layout="torch")),
        "xavier_normal": Convention(S.xavier_normal_, "N(0, gain^2 2 / (fan_in + fan_out)), untruncated",
                                    dict(layout="torch")),
        "kaiming_uniform": Convention(S.kaiming_uniform_, "U(+-gain sqrt(3 / fan)), gain from nonlinearity, a",
                                      dict(layout="torch")),
        "kaiming_normal": Convention(S.kaiming_normal_, "N(0, gain^2 / fan), untruncated", dict(layout="torch")),
        "default_weight": Convention(S.xavier_simple_, "U(+-1 / sqrt(fan_in)) = kaiming_uniform_(a=sqrt(5)): "
                                     "Linear / Conv weights", dict(layout="torch")),
        "orthogonal": Convention(S.orthogonal_, "(semi-)orthogonal, (out, in, *kernel) flattened to (out, rest)",
                                 dict(layout="torch")),
        "sparse": Convention(S.sparse_, "N(0, std^2), ceil(sparsity rows) zeros per column"),
        "eye": Convention(S.eye_, "identity matrix"),
        "dirac": Convention(S.dirac_, "identity convolution at tap k // 2, per group"),
        "constant": Convention(S.constant_, "val"),
        "zeros": Convention(S.zeros_, "0"),
        "ones": Convention(S.ones_, "1"),
    },
    "keras": {
        **_jax_like("keras", Convention(S.variance_scaling_, 'scale / n; "truncated_normal" (and legacy "normal") '
                                        f'{_TRUNC}, "untruncated_normal", "uniform"', dict(layout="keras"),
                                        _keras_distribution)),
        "random_normal": Convention(normal_, "N(mean, stddev^2), stddev = 0.05",
                                    translate=lambda p: _defaults(std=0.05)(_renamed(stddev="std")(p))),
        "random_uniform": Convention(uniform_, "U[minval, maxval), default [-0.05, 0.05)",
                                     translate=lambda p: _defaults(low=-0.05, high=0.05)(
                                         _renamed(minval="low", maxval="high")(p))),
        "truncated_normal": Convention(trunc_normal_, "N(mean, stddev^2) cut at mean +- 2 stddev (not rescaled), "
                                       "stddev = 0.05", translate=_keras_truncated),
    },
    "jax": _JAX,
    "flax": {**_JAX, "default_kernel": Convention(
        S.lecun_normal_, f"lecun_normal: variance 1 / fan_in, {_TRUNC} (Dense / Conv default)", dict(layout="jax"))},
}
TABLE: dict[str, dict[str, Convention]] = {
    framework: {scheme: replace(convention, name=f"{framework}.{scheme}") for scheme, convention in table.items()}
    for framework, table in _TABLE.items()
}
"""``TABLE[framework][scheme]``: each framework's schemes (``"torch"``, ``"keras"``, ``"jax"``, ``"flax"``)."""


class _Framework:
    """Attribute access to one framework's conventions: ``fi.conventions.jax.he_normal(out, ...)``."""

    def __init__(self, framework: str):
        self._framework = framework
        self._table = TABLE[framework]

    def __getattr__(self, scheme: str) -> Convention:
        try:
            return self._table[scheme]
        except KeyError:
            raise AttributeError(f"fastinit.conventions.{self._framework} has no scheme {scheme!r}; "
                                 f"known: {', '.join(sorted(self._table))}") from None

    def __dir__(self):
        return sorted(self._table)


torch = _Framework("torch")
"""``torch.nn.init``: ``fi.conventions.torch.kaiming_normal(out, nonlinearity="relu", seed=0, name="w")``."""
jax = _Framework("jax")
"""``jax.nn.initializers``: ``fi.conventions.jax.he_normal(out, seed=0, name="w")``."""
flax = _Framework("flax")
"""Flax: JAX's table plus ``default_kernel`` (``lecun_normal``, the Dense / Conv default)."""
keras = _Framework("keras")
"""Keras: ``fi.conventions.keras.glorot_normal(out, seed=0, name="w")``."""
