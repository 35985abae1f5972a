"""Signal propagation at initialization: measured in a NumPy MLP with fastinit weights, and predicted.

For widths ``n_0, ..., n_L`` the network is ``z_1 = W_1 x``, ``z_l = W_l s(z_{l-1})`` with weights
``W_l`` of shape ``(n_l, n_{l-1})`` drawn by a fastinit scheme (torch layout, so fan_in = ``n_{l-1}``),
no biases, and inputs ``x ~ N(0, 1)``. A backward pass starts from ``dL/dz_L ~ N(0, 1)`` and gives
``g_l = dL/dz_l`` and the weight gradients ``dL/dW_l = g_l^T s(z_{l-1}) / batch``.

The theory is the infinite-width recursion of Glorot & Bengio (2010), He et al. (2015) and Roberts,
Yaida & Hanin, *The Principles of Deep Learning Theory* (2022): with ``C_l = n_{l-1} E[W_l^2]``
(the weights' second moment, as drawn),

* forward: ``K_1 = C_1 E[x^2]``, ``K_l = C_l E_{z ~ N(0, K_{l-1})}[s(z)^2]``;
* backward: ``B_L = 1``, ``B_{l-1} = n_l E[W_l^2] B_l E_{z ~ N(0, K_{l-1})}[s'(z)^2]``;
* weight gradients: ``Var[dL/dW_l] = B_l E[s(z_{l-1})^2] / batch``;

expectations by Gauss-Hermite quadrature, so any activation works. At finite width a network's
per-input mean square ``G_l = |z_l|^2 / n_l`` fluctuates from instance to instance; to leading order
in 1/n the variance of ``log G_l`` (its relative variance) is ``R_l + 2 / n_l`` with ``R_1 = 0`` and
``R_l = kappa(K_{l-1}) / n_{l-1} + chi_l^2 R_{l-1}``, ``kappa = Var[s(z)^2] / E[s(z)^2]^2``,
``chi_l = d log E[s(z)^2] / d log K``: it grows like ``depth / width`` (5 L / n for ReLU, 2 L / n for
linear networks: Roberts & Yaida's L/n).

Examples:
    >>> import fastinit.diagnostics as fd
    >>> p = fd.propagate([100, 100, 100], "linear", "normal", std=1.0, batch=200)
    >>> [round(float(s), -1) for s in p.forward_std]
    [10.0, 100.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._atomic import atomic_output
from ._registry import lookup, prefixed
from ._validate import check_ints, check_positive_int, check_seed
from .distributions import normal_

__all__ = ["ACTIVATIONS", "Activation", "Propagation", "Recommendation", "alternatives", "gaussian_expectation",
           "plot", "propagate", "recommend"]

Activation = Literal["linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "selu", "softsign"]

_LEAKY_SLOPE = 0.01
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
_GELU_C = math.sqrt(2 / math.pi)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _gelu(z):  # the tanh form of Hendrycks & Gimpel (2016)
    return 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z ** 3)))


def _gelu_grad(z):
    t = np.tanh(_GELU_C * (z + 0.044715 * z ** 3))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * z * z)


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, _LEAKY_SLOPE * z), lambda z: np.where(z > 0, 1.0, _LEAKY_SLOPE)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "gelu": (_gelu, _gelu_grad),
    "silu": (lambda z: z * _sigmoid(z), lambda z: _sigmoid(z) * (1.0 + z * (1.0 - _sigmoid(z)))),
    "selu": (lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0))),
             lambda z: _SELU_SCALE * np.where(z > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(z, 0.0)))),
    "softsign": (lambda z: z / (1.0 + np.abs(z)), lambda z: 1.0 / (1.0 + np.abs(z)) ** 2),
}
"""Each activation's function and derivative, ``name -> (s, s')``, on float64 arrays."""

# Gauss-Hermite nodes: E_{z ~ N(0, K)}[f(z)] = sum(w f(sqrt(2K) x)) / sqrt(pi); an even count puts no
# node at the ReLU kink, so ReLU moments are exact by symmetry
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(128)


def gaussian_expectation(f: Callable, variance: float) -> float:
    """``E[f(z)]`` for ``z ~ N(0, variance)`` by 128-point Gauss-Hermite quadrature."""
    return float(_WEIGHTS @ f(math.sqrt(2.0 * variance) * _NODES) / math.sqrt(math.pi))


@dataclass(frozen=True)
class Propagation:
    """Per-layer statistics (index ``l - 1`` for layer ``l``); ``*_instances`` arrays are
    ``(instances, layers)``, the plain ones their mean over instances."""

    widths: tuple[int, ...]
    activation: str
    init: str
    params: dict
    forward_std_instances: np.ndarray
    backward_std_instances: np.ndarray
    weight_grad_std_instances: np.ndarray
    forward_spread: np.ndarray
    theory_forward_std: np.ndarray
    theory_backward_std: np.ndarray
    theory_weight_grad_std: np.ndarray
    theory_forward_spread: np.ndarray
    forward_std: np.ndarray = field(init=False)
    backward_std: np.ndarray = field(init=False)
    weight_grad_std: np.ndarray = field(init=False)

    def __post_init__(self):
        for name in ("forward_std", "backward_std", "weight_grad_std"):
            object.__setattr__(self, name, getattr(self, f"{name}_instances").mean(axis=0))

    @property
    def layers(self) -> int:
        return len(self.widths) - 1

    def table(self) -> str:
        """A plain-text table, one row per layer."""
        head = ("layer", "width", "forward std", "theory", "backward std", "theory", "weight-grad std", "theory",
                "spread", "theory")
        rows = [head]
        for l in range(self.layers):
            spread = ("-", "-") if np.isnan(self.forward_spread[l]) else (
                f"{self.forward_spread[l]:.3f}", f"{self.theory_forward_spread[l]:.3f}")
            rows.append((str(l + 1), str(self.widths[l + 1]), f"{self.forward_std[l]:.4g}",
                         f"{self.theory_forward_std[l]:.4g}", f"{self.backward_std[l]:.4g}",
                         f"{self.theory_backward_std[l]:.4g}", f"{self.weight_grad_std[l]:.4g}",
                         f"{self.theory_weight_grad_std[l]:.4g}", *spread))
        sizes = [max(len(r[c]) for r in rows) for c in range(len(head))]
        return "\n".join("  ".join(cell.rjust(n) for cell, n in zip(r, sizes)) for r in rows)


def _check(widths, activation, batch, instances, seed) -> tuple[int, ...]:
    widths = check_ints("widths", widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list at least 2 widths (input and one layer), got {list(widths)}")
    if not all(w > 0 for w in widths):
        raise ValueError(f"widths must be positive ints, got {list(widths)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    check_positive_int("batch", batch)
    check_positive_int("instances", instances)
    check_seed(seed)
    return widths


def _theory(widths, activation, second_moments, batch):
    """Forward / backward / weight-gradient std and forward spread from the recursion."""
    s, ds = ACTIVATIONS[activation]
    layers = len(widths) - 1
    c = [widths[l] * second_moments[l] for l in range(layers)]  # C_l = n_{l-1} E[W_l^2]
    k = np.empty(layers)
    h2 = np.empty(layers)  # E[s(z_{l-1})^2], the squared input of layer l (E[x^2] = 1 for l = 1)
    rel = np.empty(layers)  # R_l
    h2[0], k[0], rel[0] = 1.0, c[0], 0.0
    for l in range(1, layers):
        h2[l] = gaussian_expectation(lambda z: s(z) ** 2, k[l - 1])
        k[l] = c[l] * h2[l]
        fourth = gaussian_expectation(lambda z: s(z) ** 4, k[l - 1])
        kappa = fourth / h2[l] ** 2 - 1.0 if h2[l] > 0 else 0.0
        eps = 1e-4
        up = gaussian_expectation(lambda z: s(z) ** 2, k[l - 1] * (1 + eps))
        down = gaussian_expectation(lambda z: s(z) ** 2, k[l - 1] * (1 - eps))
        chi = (math.log(up) - math.log(down)) / (math.log1p(eps) - math.log1p(-eps)) if down > 0 else 0.0
        rel[l] = kappa / widths[l] + chi * chi * rel[l - 1]
    b = np.empty(layers)
    b[-1] = 1.0
    for l in range(layers - 1, 0, -1):  # B_{l-1} from B_l: fan_out n_l times E[W_l^2]
        b[l - 1] = widths[l + 1] * second_moments[l] * b[l] * gaussian_expectation(lambda z: ds(z) ** 2, k[l - 1])
    spread = np.sqrt(rel + 2.0 / np.asarray(widths[1:], float))
    return np.sqrt(k), np.sqrt(b), np.sqrt(b * h2 / batch), spread


def propagate(widths: Sequence[int], activation: Activation, init: str | Callable, *, batch: int = 1000,
              seed: int = 0, instances: int = 1, **init_kwargs: Any) -> Propagation:
    """Run ``instances`` MLPs of ``widths`` at initialization and compare with the theory.

    ``init`` is any fastinit scheme by name (``"kaiming_normal"``, ``"normal"``, ...) or function,
    with its keyword arguments (``std=1.0``, ``nonlinearity="relu"``); layer ``l``'s weight is drawn
    with ``seed`` and name ``"instance{i}.layer{l}.weight"``. The inputs (name ``"input"``) and the
    output gradient (``"output_grad"``) are the same for every instance, so ``forward_spread`` (the
    std across instances of the log of each input's ``|z_l|^2 / n_l``, averaged over inputs; NaN for
    one instance) measures the weights' effect alone. Arithmetic in float64.

    Examples:
        >>> import fastinit.diagnostics as fd
        >>> p = fd.propagate([256] * 11, "relu", "kaiming_normal", nonlinearity="relu", batch=100)
        >>> bool(0.5 < p.forward_std[-1] / p.forward_std[0] < 2)
        True
    """
    widths = _check(widths, activation, batch, instances, seed)
    scheme = lookup(init, "init")
    if isinstance(init, str):
        for shape in dict.fromkeys(zip(widths[1:], widths[:-1])):  # each distinct weight shape once
            with prefixed(f"init ({shape[0]} x {shape[1]} weight)"):
                scheme.check(init_kwargs, shape, "float64")
    s, ds = ACTIVATIONS[activation]
    layers = len(widths) - 1
    x = normal_(np.empty((batch, widths[0])), seed=seed, name="input")
    g_out = normal_(np.empty((batch, widths[-1])), seed=seed, name="output_grad")
    forward, backward, weight_grad = (np.empty((instances, layers)) for _ in range(3))
    per_input = np.empty((instances, layers, batch))
    second_moments = np.zeros(layers)
    for i in range(instances):
        weights = []
        for l in range(layers):
            w = scheme.fill(np.empty((widths[l + 1], widths[l])), seed=seed, name=f"instance{i}.layer{l + 1}.weight",
                            **init_kwargs)
            second_moments[l] += float(np.mean(w * w)) / instances
            weights.append(w)
        inputs, pre = [], []
        h = x
        for l, w in enumerate(weights):
            inputs.append(h)
            z = h @ w.T
            pre.append(z)
            per_input[i, l] = np.mean(z * z, axis=1)
            forward[i, l] = math.sqrt(per_input[i, l].mean())
            h = s(z)
        g = g_out
        for l in range(layers - 1, -1, -1):
            backward[i, l] = math.sqrt(np.mean(g * g))
            grad_w = g.T @ inputs[l] / batch
            weight_grad[i, l] = math.sqrt(np.mean(grad_w * grad_w))
            if l:
                g = (g @ weights[l]) * ds(pre[l - 1])
    if instances > 1:
        spread = np.log(per_input).std(axis=0, ddof=1).mean(axis=1)
    else:
        spread = np.full(layers, np.nan)
    theory = _theory(widths, activation, second_moments, batch)
    label = init if isinstance(init, str) else scheme.name
    return Propagation(widths, activation, label, dict(init_kwargs), forward, backward, weight_grad, spread, *theory)


@dataclass(frozen=True)
class Recommendation:
    """The critical scheme for an activation: ``init`` with ``params``, and why."""

    activation: str
    init: str
    params: dict
    reason: str


_RECOMMENDATIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "linear": ("xavier_normal", {}, "C_W = 1 keeps the forward variance (fan_in) and the backward variance "
               "(fan_out) constant; Glorot & Bengio (2010) average the two fans for unequal widths"),
    "tanh": ("xavier_normal", {}, "tanh is linear near 0 (tanh'(0) = 1), so the critical C_W is 1 as for linear "
             "networks (Glorot & Bengio 2010); LeCun (fan_in only) is the forward-only variant"),
    "softsign": ("xavier_normal", {}, "softsign'(0) = 1: near 0 it is linear, so C_W = 1 as for tanh"),
    "relu": ("kaiming_normal", {"nonlinearity": "relu"}, "ReLU zeroes half of its inputs, E[relu(z)^2] = K / 2, so "
             "C_W = 2 keeps the variance (He et al. 2015)"),
    "leaky_relu": ("kaiming_normal", {"nonlinearity": "leaky_relu", "a": _LEAKY_SLOPE},
                   f"E[s(z)^2] = K (1 + a^2) / 2 with slope a = {_LEAKY_SLOPE}, so C_W = 2 / (1 + a^2) "
                   "(He et al. 2015)"),
    "gelu": ("kaiming_normal", {"nonlinearity": "relu"}, "GELU is ReLU-like away from 0 (E[s(z)^2] ~ K / 2 for "
             "large K): He's C_W = 2 is the closest to critical; the diagnostics show the residual drift"),
    "silu": ("kaiming_normal", {"nonlinearity": "relu"}, "SiLU (swish) is ReLU-like away from 0: He's C_W = 2 "
             "keeps the variance to within a slow drift (check with propagate)"),
    "selu": ("lecun_normal", {}, "SELU's scale and alpha make (mean 0, variance 1) an attracting fixed point "
             "when C_W = 1 with fan_in (Klambauer et al. 2017, self-normalizing networks)"),
    "sigmoid": ("xavier_normal", {}, "sigmoid has no critical initialization (sigma(0) = 1/2 shifts every layer "
                "and sigma'(0) = 1/4 shrinks gradients); Glorot with torch's gain 1 is the usual choice, but "
                "prefer tanh, which is a rescaled, zero-centred sigmoid"),
}


def recommend(activation: Activation) -> Recommendation:
    """The scheme that keeps signals at constant variance through depth for ``activation``, and why.

    Examples:
        >>> import fastinit.diagnostics as fd
        >>> fd.recommend("relu").init
        'kaiming_normal'
    """
    if activation not in _RECOMMENDATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    init, params, reason = _RECOMMENDATIONS[activation]
    return Recommendation(activation, init, dict(params), reason)


def alternatives(activation: Activation) -> list[tuple[str, dict]]:
    """The schemes a plot compares: the recommended one, Glorot, He and LeCun (normal forms)."""
    rec = recommend(activation)
    options = [(rec.init, rec.params), ("xavier_normal", {}), ("kaiming_normal", {"nonlinearity": "relu"}),
               ("lecun_normal", {})]
    return [o for i, o in enumerate(options) if o not in options[:i]]


def plot(results: Sequence[Propagation], path: str, *, overwrite: bool = False) -> None:
    """Forward and backward std per layer, measured (solid) and predicted (dashed), one line per
    result, into an image at ``path`` (written atomically; needs matplotlib: extra ``plot``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'fastinit-philox[plot]'") from None
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for r in results:
        label = r.init + "".join(f", {k}={v}" for k, v in r.params.items())
        depth = np.arange(1, r.layers + 1)
        for ax, measured, theory in ((axes[0], r.forward_std, r.theory_forward_std),
                                     (axes[1], r.backward_std, r.theory_backward_std)):
            (line,) = ax.plot(depth, measured, marker="o", markersize=3, label=label)
            ax.plot(depth, theory, linestyle="--", color=line.get_color(), linewidth=1)
    for ax, title in zip(axes, ("forward: std of pre-activations z_l", "backward: std of dL/dz_l")):
        ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    first = results[0]
    figure.suptitle(f"{first.activation}, widths {first.widths[0]}" + (
        f" -> {first.widths[1]} x {first.layers}" if len(set(first.widths[1:])) == 1 else f" {first.widths}")
        + " (dashed: infinite-width theory)")
    try:
        with atomic_output(path, overwrite=overwrite, hint="pass --overwrite (overwrite=True) to replace it",
                           keep_extension=True) as partial:
            figure.savefig(partial, dpi=110)
    finally:
        plt.close(figure)
