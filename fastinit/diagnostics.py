"""Signal propagation at initialization: measured in NumPy networks with fastinit weights, and predicted.

For widths ``n_0, ..., n_L`` the network is ``z_1 = W_1 x + b_1``, ``z_l = W_l s(z_{l-1}) + b_l``
with weights ``W_l`` of shape ``(n_l, n_{l-1})`` drawn by a fastinit scheme (torch layout, so
fan_in = ``n_{l-1}``), biases ``b_l`` drawn by another (or none), and inputs ``x ~ N(0, 1)``. With
``residual=(xi, gamma)`` the layers after the first are residual blocks,
``z_l = xi z_{l-1} + gamma (W_l s(z_{l-1}) + b_l)``. A backward pass starts from
``dL/dz_L ~ N(0, 1)`` and gives ``g_l = dL/dz_l`` and the weight gradients.

The theory is the infinite-width recursion of Glorot & Bengio (2010), He et al. (2015) and Roberts,
Yaida & Hanin, *The Principles of Deep Learning Theory* (2022): with ``C_l = n_{l-1} E[W_l^2]`` and
``C_b,l = E[b_l^2]`` (the second moments, as drawn),

* forward: ``K_1 = C_b,1 + C_1 E[x^2]``, ``K_l = C_b,l + C_l E_{z ~ N(0, K_{l-1})}[s(z)^2]``
  (residual: ``K_l = xi^2 K_{l-1} + gamma^2 (C_b,l + C_l E[s(z)^2])``);
* backward: ``B_L = 1``, ``B_{l-1} = n_l E[W_l^2] B_l E[s'(z)^2]`` (residual:
  ``B_{l-1} = B_l (xi^2 + gamma^2 n_l E[W_l^2] E[s'(z)^2])``);
* weight gradients: ``Var[dL/dW_l] = B_l E[s(z_{l-1})^2] / batch`` (times ``gamma^2`` in a block);
* susceptibilities of each layer's map: ``chi_par = dK_l / dK_{l-1}`` and ``chi_perp``, the
  factor of the backward recursion; both 1 at criticality (``critical``), so the table shows how
  far, and which way, a scheme drifts from it;

expectations by Gauss-Hermite quadrature, so any activation works. At finite width a network's
per-input mean square ``G_l = |z_l|^2 / n_l`` fluctuates from instance to instance; to leading order
in 1/n the variance of ``log G_l`` (its relative variance) is ``R_l + 2 / n_l`` with ``R_1 = 0`` and
``R_l = f_l^2 (kappa(K_{l-1}) / n_{l-1} + chi_l^2 R_{l-1})``, ``kappa = Var[s(z)^2] / E[s(z)^2]^2``,
``chi_l = d log E[s(z)^2] / d log K``, ``f_l = 1 - C_b,l / K_l``: it grows like ``depth / width``
(5 L / n for ReLU, 2 L / n for linear networks: Roberts & Yaida's L/n). For residual networks the
spread is measured, not predicted.

Beyond the MLP: ``residual_stream`` measures a pre-norm transformer block stack under the common
init recipes against the prediction that each branch adds its variance; ``diagnose`` records
per-module statistics of any torch module at initialization.

Examples:
    >>> import fastinit.diagnostics as fd
    >>> p = fd.propagate([100, 100, 100], "linear", "normal", std=1.0, batch=200)
    >>> [round(float(s), -1) for s in p.forward_std]
    [10.0, 100.0]
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _plotting
from ._activations import ACTIVATIONS, Activation, gaussian_expectation
from ._criticality import Criticality, check_activation, critical, kernel_map, susceptibilities
from ._diagnose_torch import Diagnosis, ModuleStats, diagnose, diagnose_config
from ._recommend import Recommendation, alternatives, recommend
from ._registry import lookup, prefixed
from ._residual_stream import RECIPES, ResidualStream, plot_residual_stream, residual_stream
from ._validate import check_ints, check_positive_int, check_real, check_seed
from .distributions import normal_

__all__ = ["ACTIVATIONS", "Activation", "Criticality", "Diagnosis", "ModuleStats", "Propagation", "RECIPES",
           "Recommendation", "ResidualStream", "alternatives", "critical", "diagnose", "diagnose_config",
           "gaussian_expectation", "kernel_map", "plot", "plot_residual_stream", "propagate", "recommend",
           "residual_stream", "susceptibilities"]


@dataclass(frozen=True)
class Propagation:
    """Per-layer statistics (index ``l - 1`` for layer ``l``); ``*_instances`` arrays are
    ``(instances, layers)``, the plain ones their mean over instances. ``theory_chi_parallel`` and
    ``theory_chi_perp`` are the susceptibilities of the map into layer ``l`` (NaN for layer 1)."""

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
    theory_chi_parallel: np.ndarray
    theory_chi_perp: np.ndarray
    bias_init: str | None = None
    bias_params: dict = field(default_factory=dict)
    residual: tuple[float, float] | None = None
    forward_std: np.ndarray = field(init=False)
    backward_std: np.ndarray = field(init=False)
    weight_grad_std: np.ndarray = field(init=False)

    def __post_init__(self):
        for name in ("forward_std", "backward_std", "weight_grad_std"):
            object.__setattr__(self, name, getattr(self, f"{name}_instances").mean(axis=0))

    @property
    def layers(self) -> int:
        return len(self.widths) - 1

    @property
    def label(self) -> str:
        """The init, its parameters, the bias init and the residual weights, in words."""
        text = self.init + "".join(f", {k}={v}" for k, v in self.params.items())
        if self.bias_init is not None:
            text += f"; bias {self.bias_init}" + "".join(f", {k}={v}" for k, v in self.bias_params.items())
        if self.residual is not None:
            text += f"; residual xi={self.residual[0]:g}, gamma={self.residual[1]:g}"
        return text

    def table(self) -> str:
        """A plain-text table, one row per layer."""
        head = ("layer", "width", "forward std", "theory", "backward std", "theory", "weight-grad std", "theory",
                "spread", "theory", "chi_par", "chi_perp")
        rows: list[tuple[str, ...]] = [head]
        for l in range(self.layers):
            spread = tuple("-" if np.isnan(v) else f"{v:.3f}"
                           for v in (self.forward_spread[l], self.theory_forward_spread[l]))
            chis = tuple("-" if np.isnan(v) else f"{v:.4f}" for v in (self.theory_chi_parallel[l],
                                                                       self.theory_chi_perp[l]))
            rows.append((str(l + 1), str(self.widths[l + 1]), f"{self.forward_std[l]:.4g}",
                         f"{self.theory_forward_std[l]:.4g}", f"{self.backward_std[l]:.4g}",
                         f"{self.theory_backward_std[l]:.4g}", f"{self.weight_grad_std[l]:.4g}",
                         f"{self.theory_weight_grad_std[l]:.4g}", *spread, *chis))
        sizes = [max(len(r[c]) for r in rows) for c in range(len(head))]
        return "\n".join("  ".join(cell.rjust(n) for cell, n in zip(r, sizes)) for r in rows)


def _check(widths, activation, batch, instances, seed, residual) -> tuple[tuple[int, ...], tuple[float, float] | None]:
    widths = check_ints("widths", widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list at least 2 widths (input and one layer), got {list(widths)}")
    if not all(w > 0 for w in widths):
        raise ValueError(f"widths must be positive ints, got {list(widths)}")
    check_activation(activation)
    check_positive_int("batch", batch)
    check_positive_int("instances", instances)
    check_seed(seed)
    if residual is None:
        return widths, None
    if isinstance(residual, (str, bytes)) or not isinstance(residual, Sequence) or len(residual) != 2:
        raise TypeError(f"residual must be a pair (xi, gamma) of real numbers, got {residual!r}")
    pair = (check_real("residual xi", residual[0]), check_real("residual gamma", residual[1]))
    if len(set(widths[1:])) != 1:
        raise ValueError(f"residual blocks need every layer of one width (the input may differ), got {list(widths)}")
    return widths, pair


def _scheme(init, params, shapes, what):
    scheme = lookup(init, what)
    if isinstance(init, str):
        for shape in dict.fromkeys(shapes):  # each distinct shape once
            with prefixed(f"{what} ({' x '.join(map(str, shape))} {'weight' if len(shape) == 2 else 'bias'})"):
                scheme.check(params, shape, "float64")
    return scheme


def _theory(widths, activation, weight_moments, bias_moments, residual, batch):
    """Forward / backward / weight-gradient std, forward spread and susceptibilities from the recursion."""
    s, ds = ACTIVATIONS[activation]
    layers = len(widths) - 1
    xi2, gamma2 = (1.0, 1.0) if residual is None else (residual[0] ** 2, residual[1] ** 2)
    c = [widths[l] * weight_moments[l] for l in range(layers)]  # C_l = n_{l-1} E[W_l^2]
    k = np.empty(layers)
    h2 = np.empty(layers)  # E[s(z_{l-1})^2], the squared input of layer l (E[x^2] = 1 for l = 1)
    rel = np.empty(layers)  # R_l
    chi_par, chi_perp = np.full(layers, np.nan), np.full(layers, np.nan)
    grad2 = np.empty(layers)  # E[s'(z_{l-1})^2]
    h2[0], k[0], rel[0], grad2[0] = 1.0, bias_moments[0] + c[0], 0.0, 1.0
    for l in range(1, layers):
        h2[l] = gaussian_expectation(lambda z: s(z) ** 2, k[l - 1])
        grad2[l] = gaussian_expectation(lambda z: ds(z) ** 2, k[l - 1])
        branch = bias_moments[l] + c[l] * h2[l]
        k[l] = branch if residual is None else xi2 * k[l - 1] + gamma2 * branch
        par, perp = susceptibilities(activation, k[l - 1], c[l])
        chi_par[l], chi_perp[l] = (par, perp) if residual is None else (xi2 + gamma2 * par, xi2 + gamma2 * perp)
        if residual is not None:
            rel[l] = np.nan
            continue
        fourth = gaussian_expectation(lambda z: s(z) ** 4, k[l - 1])
        kappa = fourth / h2[l] ** 2 - 1.0 if h2[l] > 0 else 0.0
        eps = 1e-4
        up = gaussian_expectation(lambda z: s(z) ** 2, k[l - 1] * (1 + eps))
        down = gaussian_expectation(lambda z: s(z) ** 2, k[l - 1] * (1 - eps))
        chi = (math.log(up) - math.log(down)) / (math.log1p(eps) - math.log1p(-eps)) if down > 0 else 0.0
        share = (k[l] - bias_moments[l]) / k[l]  # the part of K_l that depends on layer l - 1
        rel[l] = share * share * (kappa / widths[l] + chi * chi * rel[l - 1])
    b = np.empty(layers)
    b[-1] = 1.0
    for l in range(layers - 1, 0, -1):  # B_{l-1} from B_l: fan_out n_l times E[W_l^2]
        if residual is None:
            b[l - 1] = widths[l + 1] * weight_moments[l] * b[l] * grad2[l]
        else:
            b[l - 1] = b[l] * (xi2 + gamma2 * widths[l + 1] * weight_moments[l] * grad2[l])
    weight_grad = b * h2 / batch
    if residual is not None:
        weight_grad[1:] *= gamma2
    spread = np.sqrt(rel + 2.0 / np.asarray(widths[1:], float))
    return np.sqrt(k), np.sqrt(b), np.sqrt(weight_grad), spread, chi_par, chi_perp


def propagate(widths: Sequence[int], activation: Activation, init: str | Callable, *, batch: int = 1000,
              seed: int = 0, instances: int = 1, bias_init: str | Callable | None = None,
              bias_params: Mapping[str, Any] | None = None, residual: tuple[float, float] | None = None,
              **init_kwargs: Any) -> Propagation:
    """Run ``instances`` networks of ``widths`` at initialization and compare with the theory.

    ``init`` is any fastinit scheme by name (``"kaiming_normal"``, ``"normal"``, ...) or function,
    with its keyword arguments (``std=1.0``, ``nonlinearity="relu"``); layer ``l``'s weight is drawn
    with ``seed`` and name ``"instance{i}.layer{l}.weight"``. ``bias_init`` (a scheme, with
    ``bias_params``) draws the biases ``"instance{i}.layer{l}.bias"``; none by default.
    ``residual=(xi, gamma)`` makes layers 2..L residual blocks (every layer one width). The inputs
    (name ``"input"``) and the output gradient (``"output_grad"``) are the same for every instance,
    so ``forward_spread`` (the std across instances of the log of each input's ``|z_l|^2 / n_l``,
    averaged over inputs; NaN for one instance) measures the weights' effect alone. Arithmetic in
    float64.

    Examples:
        >>> import fastinit.diagnostics as fd
        >>> p = fd.propagate([256] * 11, "relu", "kaiming_normal", nonlinearity="relu", batch=100)
        >>> bool(0.5 < p.forward_std[-1] / p.forward_std[0] < 2)
        True
        >>> q = fd.propagate([256] * 6, "tanh", "normal", std=0.2, batch=50, bias_init="normal",
        ...                  bias_params={"std": 0.5})
        >>> [round(float(v), 1) for v in q.theory_chi_perp[1:]]    # C_W = 10, C_b = 0.25: chi_perp > 1
        [1.6, 1.9, 1.9, 1.9]
    """
    widths, residual = _check(widths, activation, batch, instances, seed, residual)
    shapes = list(zip(widths[1:], widths[:-1]))
    scheme = _scheme(init, init_kwargs, shapes, "init")
    if bias_init is None and bias_params:
        raise ValueError("bias_params needs bias_init: the scheme that draws the biases")
    bias_params = dict(bias_params or {})
    bias_scheme = None if bias_init is None else _scheme(bias_init, bias_params, [(n,) for n in widths[1:]],
                                                         "bias_init")
    s, ds = ACTIVATIONS[activation]
    layers = len(widths) - 1
    xi, gamma = (1.0, 1.0) if residual is None else residual
    x = normal_(np.empty((batch, widths[0])), seed=seed, name="input")
    g_out = normal_(np.empty((batch, widths[-1])), seed=seed, name="output_grad")
    forward, backward, weight_grad = (np.empty((instances, layers)) for _ in range(3))
    per_input = np.empty((instances, layers, batch))
    weight_moments, bias_moments = np.zeros(layers), np.zeros(layers)
    for i in range(instances):
        weights, biases = [], []
        for l in range(layers):
            w = scheme.fill(np.empty(shapes[l]), seed=seed, name=f"instance{i}.layer{l + 1}.weight", **init_kwargs)
            weight_moments[l] += float(np.mean(w * w)) / instances
            weights.append(w)
            bias = np.zeros(widths[l + 1]) if bias_scheme is None else bias_scheme.fill(
                np.empty(widths[l + 1]), seed=seed, name=f"instance{i}.layer{l + 1}.bias", **bias_params)
            bias_moments[l] += float(np.mean(bias * bias)) / instances
            biases.append(bias)
        inputs, pre = [], []
        h: np.ndarray = x
        z: Any = None
        for l, w in enumerate(weights):
            inputs.append(h)
            branch = h @ w.T + biases[l]
            z = branch if residual is None or l == 0 else xi * z + gamma * branch
            pre.append(z)
            per_input[i, l] = np.mean(z * z, axis=1)
            forward[i, l] = math.sqrt(per_input[i, l].mean())
            h = s(z)
        g = g_out
        for l in range(layers - 1, -1, -1):
            backward[i, l] = math.sqrt(np.mean(g * g))
            scale = gamma if residual is not None and l > 0 else 1.0
            grad_w = scale * (g.T @ inputs[l]) / batch
            weight_grad[i, l] = math.sqrt(np.mean(grad_w * grad_w))
            if l:
                through = (g @ weights[l]) * ds(pre[l - 1])
                g = through if residual is None else xi * g + gamma * through
    if instances > 1:
        spread = np.log(per_input).std(axis=0, ddof=1).mean(axis=1)
    else:
        spread = np.full(layers, np.nan)
    k, b, grad_w, theory_spread, chi_par, chi_perp = _theory(widths, activation, weight_moments, bias_moments,
                                                             residual, batch)
    label = init if isinstance(init, str) else scheme.name
    bias_label = None if bias_scheme is None else bias_init if isinstance(bias_init, str) else bias_scheme.name
    return Propagation(widths, activation, label, dict(init_kwargs), forward, backward, weight_grad, spread, k, b,
                       grad_w, theory_spread, chi_par, chi_perp, bias_init=bias_label, bias_params=bias_params,
                       residual=residual)


def plot(results: Sequence[Propagation], path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Forward and backward std per layer, measured (solid) and predicted (dashed), one line per
    result, into an image at ``path`` (written atomically; needs matplotlib: extra ``plot``)."""
    plt = _plotting.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for r in results:
        depth = np.arange(1, r.layers + 1)
        for ax, measured, theory in ((axes[0], r.forward_std, r.theory_forward_std),
                                     (axes[1], r.backward_std, r.theory_backward_std)):
            (line,) = ax.plot(depth, measured, marker="o", markersize=3, label=r.label)
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
    _plotting.save(figure, path, overwrite=overwrite)
