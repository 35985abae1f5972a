"""The critical initialization of an activation as fastinit schemes: ``recommend`` reads the
critical point from ``critical`` and names the scheme that draws it (He, Glorot, or a variance
scaling with the critical ``C_W``, plus N(0, C_b) biases where ``C_b > 0``).

Examples:
    >>> r = recommend("gelu_erf")
    >>> r.init, round(r.params["scale"], 4), r.bias_init, round(r.bias_params["std"] ** 2, 4)
    ('variance_scaling', 1.9831, 'normal', 0.1729)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._activations import LEAKY_SLOPE, Activation
from ._criticality import Criticality, check_activation, critical

__all__ = ["Recommendation", "recommend", "alternatives"]


@dataclass(frozen=True)
class Recommendation:
    """The critical scheme for an activation: ``init`` with ``params`` for the weights,
    ``bias_init`` with ``bias_params`` for the biases (None: no biases, or zeros), the
    ``criticality`` it comes from, and why."""

    activation: str
    init: str
    params: dict
    reason: str
    bias_init: str | None = None
    bias_params: dict = field(default_factory=dict)
    criticality: Criticality | None = None


_HALF_STABLE = ("the critical point of Roberts, Yaida & Hanin: weights C_W / fan_in and biases of variance C_b; "
                "He's C_W = 2 without biases is close, and the chi columns of propagate show its drift")
_NOTES: dict[str, str] = {
    "linear": "C_W = 1 keeps the forward variance (fan_in) and the backward variance (fan_out) constant; Glorot & "
              "Bengio (2010) average the two fans for unequal widths",
    "tanh": "tanh is linear near 0 (tanh'(0) = 1), so the critical C_W is 1 as for linear networks (Glorot & Bengio "
            "2010); LeCun (fan_in only) is the forward-only variant",
    "softsign": "softsign'(0) = 1: near 0 it is linear, so C_W = 1 as for tanh",
    "elu": "ELU has slope 1 on both sides of 0, so its critical C_W is 1 (Glorot's for equal widths), not He's 2",
    "relu": "ReLU zeroes half of its inputs, E[relu(z)^2] = K / 2, so C_W = 2 keeps the variance (He et al. 2015)",
    "leaky_relu": f"E[s(z)^2] = K (1 + a^2) / 2 with slope a = {LEAKY_SLOPE}, so C_W = 2 / (1 + a^2) (He et al. 2015)",
    "gelu": _HALF_STABLE, "gelu_erf": _HALF_STABLE, "silu": _HALF_STABLE, "mish": _HALF_STABLE,
    "selu": "SELU's scale and alpha make (mean 0, variance 1) an attracting fixed point when C_W = 1 with fan_in "
            "(Klambauer et al. 2017, self-normalizing networks); the zero-mean recursion's own critical point "
            "(K* = 0) is not what SELU is designed for",
    "sigmoid": "sigma(0) = 1/2 shifts every layer and sigma'(0) = 1/4 shrinks gradients; Glorot with torch's gain 1 "
               "is the usual choice, but prefer tanh, which is a rescaled, zero-centred sigmoid",
    "softplus": "softplus(0) = log 2 shifts every layer, as sigmoid does; Glorot is the usual choice",
}


def _weights(activation: str, found: Criticality) -> tuple[str, dict[str, Any]]:
    """The named scheme that draws weights of variance ``C_W / fan_in``."""
    c_w = found.c_w
    assert c_w is not None
    if activation == "selu":
        return "lecun_normal", {}
    if found.c_b == 0.0:
        if math.isclose(c_w, 2.0, rel_tol=1e-9):
            return "kaiming_normal", {"nonlinearity": "relu"}
        if activation == "leaky_relu":
            return "kaiming_normal", {"nonlinearity": "leaky_relu", "a": LEAKY_SLOPE}
        if math.isclose(c_w, 1.0, rel_tol=1e-9):
            return "xavier_normal", {}
    return "variance_scaling", {"scale": c_w, "mode": "fan_in", "distribution": "normal"}


def recommend(activation: Activation) -> Recommendation:
    """The scheme that keeps signals at constant variance through depth for ``activation`` (its
    critical point, from ``critical``), and why.

    Examples:
        >>> import fastinit.diagnostics as fd
        >>> fd.recommend("relu").init
        'kaiming_normal'
        >>> fd.recommend("sigmoid").criticality.exists
        False
    """
    name = check_activation(activation)
    found = critical(name)
    note = _NOTES[name]
    if not found.exists:
        return Recommendation(name, "xavier_normal", {}, f"{note}. {found.reason}", criticality=found)
    init, params = _weights(name, found)
    assert found.c_b is not None
    bias = ("normal", {"std": math.sqrt(found.c_b)}) if found.c_b > 0 and name != "selu" else (None, {})
    return Recommendation(name, init, params, f"{note}. Critical point ({found.universality}): {found.reason}",
                          bias[0], bias[1], found)


def alternatives(activation: Activation) -> list[tuple[str, dict]]:
    """The schemes a plot compares: the recommended one, Glorot, He and LeCun (normal forms)."""
    rec = recommend(activation)
    options = [(rec.init, rec.params), ("xavier_normal", {}), ("kaiming_normal", {"nonlinearity": "relu"}),
               ("lecun_normal", {})]
    return [o for i, o in enumerate(options) if o not in options[:i]]
