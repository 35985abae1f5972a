"""The residual stream of a pre-norm transformer block stack at initialization, measured with
fastinit weights and predicted.

The stack is Llama's block: ``x += W_o attention(norm(x))`` then
``x += W_2 (silu(W_1 norm(x)) * W_3 norm(x))``, causal multi-head attention, RMSNorm (or
LayerNorm) with unit weights, no biases; the stream starts as embedding rows of distinct tokens,
N(0, std_emb^2). The weights follow one of the common recipes (``RECIPES``; stds by formula):

* ``"torch"``: torch's defaults, ``Linear`` = U(+-1/sqrt(fan_in)) (variance ``1 / (3 fan_in)``),
  ``Embedding`` N(0, 1);
* ``"hf"``: transformers' ``initializer_range``: N(0, 0.02^2) for every matrix and the embedding;
* ``"gpt2"``: the same, with the branch outputs (``W_o``, ``W_2``) at ``0.02 / sqrt(2 L)``
  (Radford et al. 2019);
* ``"torchtitan"``: torchtitan's Llama ``depth_init``: truncated normal std 0.02 on ``W_q``,
  ``W_k``, ``W_v``, ``W_1``; ``W_o``, ``W_2`` and ``W_3`` at ``0.02 / sqrt(2 (l + 1))`` for block ``l``
  (from 0); embedding N(0, 1).

The prediction: the norm hands every branch a unit-variance input whatever the stream's size, so
each branch adds a fixed variance, ``V_{l+1} = V_l + v_attn,l + v_mlp,l`` with

* ``v_mlp = hidden s_2^2 E[silu(u_1)^2] E[u_3^2]``, ``u_i ~ N(0, width s_i^2)``;
* ``v_attn = width s_o^2 width s_v^2 P``, ``P`` the mean over query positions ``t`` of
  ``sum_j p_tj^2``: for attention logits of variance ``s^2 = width s_q^2 width s_k^2`` over ``t + 1``
  keys, ``P_t = e^{s^2} / (t + e^{s^2})`` (``1 / (t + 1)`` for uniform attention).

So the stream grows linearly in depth with HF's recipe, saturates with GPT-2's ``1 / sqrt(2 L)``
(the total is independent of L), and grows like ``log L`` with torchtitan's depth_init.

Examples:
    >>> r = residual_stream("gpt2", width=64, layers=4, heads=4, seq_len=8, batch=2)
    >>> bool(abs(r.measured_variance[-1] / r.predicted_variance[-1] - 1) < 0.3)
    True
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import _plotting
from ._activations import ACTIVATIONS
from ._validate import check_choice, check_positive_int, check_seed
from .distributions import normal_, trunc_normal_
from .schemes import kaiming_uniform_

__all__ = ["RECIPES", "Recipe", "ResidualStream", "residual_stream", "plot_residual_stream"]

Recipe = Literal["torch", "hf", "gpt2", "torchtitan"]
RECIPES: tuple[str, ...] = ("torch", "hf", "gpt2", "torchtitan")
_NORMS = ("rms", "layer")
_MATRICES = ("q", "k", "v", "o", "w1", "w3", "w2")
_EPS = 1e-6


@dataclass(frozen=True)
class ResidualStream:
    """The stream's variance after the embedding (index 0) and after each block (index ``l``),
    measured and predicted, and the branches' measured variances per block."""

    recipe: str
    width: int
    layers: int
    heads: int
    hidden: int
    seq_len: int
    batch: int
    norm: str
    measured_variance: np.ndarray
    predicted_variance: np.ndarray
    attention_variance: np.ndarray
    mlp_variance: np.ndarray

    def table(self) -> str:
        """A plain-text table, one row per block."""
        rows = [("block", "stream var", "predicted", "ratio", "attn branch", "mlp branch")]
        for l, (m, p) in enumerate(zip(self.measured_variance, self.predicted_variance)):
            branches = ("-", "-") if l == 0 else (f"{self.attention_variance[l - 1]:.4g}",
                                                  f"{self.mlp_variance[l - 1]:.4g}")
            rows.append(("embed" if l == 0 else str(l), f"{m:.4g}", f"{p:.4g}", f"{m / p:.3f}", *branches))
        sizes = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        return "\n".join("  ".join(cell.rjust(n) for cell, n in zip(r, sizes)) for r in rows)


def _stds(recipe: str, width: int, hidden: int, layers: int, block: int) -> tuple[float, dict[str, float]]:
    """The embedding's std and each matrix's std in ``block`` (torch: the uniform's std)."""
    fan_in = {"q": width, "k": width, "v": width, "o": width, "w1": width, "w3": width, "w2": hidden}
    if recipe == "torch":
        return 1.0, {m: math.sqrt(1.0 / (3.0 * fan_in[m])) for m in _MATRICES}
    if recipe == "hf":
        return 0.02, dict.fromkeys(_MATRICES, 0.02)
    if recipe == "gpt2":
        out = 0.02 / math.sqrt(2.0 * layers)
        return 0.02, {m: out if m in ("o", "w2") else 0.02 for m in _MATRICES}
    depth = 0.02 / math.sqrt(2.0 * (block + 1))
    return 1.0, {m: depth if m in ("o", "w2", "w3") else 0.02 for m in _MATRICES}


def _fill(recipe: str, shape: tuple[int, int], std: float, seed: int, name: str) -> np.ndarray:
    out = np.empty(shape)
    if recipe == "torch":  # torch's default Linear: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in))
        return kaiming_uniform_(out, a=math.sqrt(5.0), seed=seed, name=name)
    if recipe == "torchtitan":
        return trunc_normal_(out, 0.0, std, -2.0, 2.0, seed=seed, name=name)  # a, b absolute, as torchtitan
    return normal_(out, 0.0, std, seed=seed, name=name)


def _norm(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "layer":
        x = x - x.mean(axis=-1, keepdims=True)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + _EPS)


def _attention(h: np.ndarray, w: dict[str, np.ndarray], heads: int) -> np.ndarray:
    batch, seq, width = h.shape
    dh = width // heads

    def split(m):
        return (h @ w[m].T).reshape(batch, seq, heads, dh).transpose(0, 2, 1, 3)

    q, k, v = split("q"), split("k"), split("v")
    logits = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh)
    logits = np.where(np.tril(np.ones((seq, seq), bool)), logits, -np.inf)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    a = (p @ v).transpose(0, 2, 1, 3).reshape(batch, seq, width)
    return a @ w["o"].T


_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(48)
_RHO = np.linspace(-1.0, 1.0, 201)


def _silu_kernel(variance: float) -> np.ndarray:
    """``E[silu(u) silu(u')]`` for unit-correlation ``rho`` on ``_RHO``, ``u, u' ~ N(0, variance)``."""
    silu, _ = ACTIVATIONS["silu"]
    x1, x2 = (math.sqrt(2.0 * variance) * n for n in np.meshgrid(_NODES, _NODES, indexing="ij"))
    w = np.outer(_WEIGHTS, _WEIGHTS) / math.pi
    first = silu(x1)
    return np.array([np.sum(w * first * silu(r * x1 + math.sqrt(max(1.0 - r * r, 0.0)) * x2)) for r in _RHO])


def _attention_mix(rho: np.ndarray, logit_variance: float) -> np.ndarray:
    """``E[sum_jk p_tj p_t'k rho_jk]``: causal attention over tokens of correlation ``rho``, the
    weights near uniform: for one query, logits of variance ``s^2 (1 - mean rho)`` over its ``n``
    keys give ``E[sum_j p_j^2] = e^{s^2} / (n - 1 + e^{s^2})``; two queries mix independently."""
    seq = rho.shape[0]
    n = np.arange(1, seq + 1, dtype=float)
    uniform = np.tril(np.ones((seq, seq))) / n[:, None]
    mixed = uniform @ rho @ uniform.T
    sums = np.cumsum(np.cumsum(rho, axis=0), axis=1).diagonal()  # sum of rho_jk over j, k <= t
    off = np.where(n > 1, (sums - n) / np.maximum(n * (n - 1), 1.0), 0.0)  # mean rho_jk, j != k
    spread = np.exp(logit_variance * (1.0 - off))
    concentration = spread / (n - 1.0 + spread)  # E[sum_j p_j^2]
    pair = np.where(n > 1, (1.0 - concentration) / np.maximum(n * (n - 1), 1.0), 0.0)
    np.fill_diagonal(mixed, pair * (sums - n) + concentration / n * n)
    return mixed


def _predict(recipe: str, width: int, hidden: int, layers: int, seq_len: int) -> np.ndarray:
    """The stream's variance after the embedding and each block: each branch adds its covariance
    across tokens (its output is uncorrelated with the stream it is added to)."""
    embed_std, stds = _stds(recipe, width, hidden, layers, 0)
    cov = np.eye(seq_len) * embed_std ** 2  # E[x_t . x_t'] / width, distinct tokens
    variances = [embed_std ** 2]
    kernel = _silu_kernel(width * stds["w1"] ** 2)  # W_1's std is one for every block of every recipe
    for l in range(layers):
        _, stds = _stds(recipe, width, hidden, layers, l)
        for branch in ("attention", "mlp"):
            diag = np.sqrt(np.diag(cov))
            rho = np.clip(cov / np.outer(diag, diag), -1.0, 1.0)  # the norm's output: unit variance
            if branch == "attention":
                logits = width * stds["q"] ** 2 * width * stds["k"] ** 2
                cov = cov + width * stds["o"] ** 2 * width * stds["v"] ** 2 * _attention_mix(rho, logits)
            else:
                cov = cov + hidden * stds["w2"] ** 2 * width * stds["w3"] ** 2 * np.interp(rho, _RHO, kernel) * rho
        variances.append(float(np.mean(np.diag(cov))))
    return np.array(variances)


def residual_stream(recipe: Recipe, *, width: int = 512, layers: int = 12, heads: int = 8, hidden: int | None = None,
                    seq_len: int = 64, batch: int = 8, norm: Literal["rms", "layer"] = "rms",
                    seed: int = 0) -> ResidualStream:
    """Measure the residual stream of ``layers`` pre-norm blocks initialized by ``recipe`` and
    predict it (see the module text). ``hidden`` defaults to Llama's ``8 width / 3`` rounded up
    to a multiple of 64; matrix ``m`` of block ``l`` is drawn with name ``"layers.{l}.{m}"``, the
    embedding rows with ``"embedding"``. Arithmetic in float64.

    Examples:
        >>> r = residual_stream("hf", width=64, layers=2, heads=4, seq_len=8, batch=2)
        >>> len(r.measured_variance), round(float(r.predicted_variance[0]), 6)
        (3, 0.0004)
    """
    check_choice("recipe", recipe, RECIPES)
    check_choice("norm", norm, _NORMS)
    for argname, value in (("width", width), ("layers", layers), ("heads", heads), ("seq_len", seq_len),
                           ("batch", batch)):
        check_positive_int(argname, value)
    check_seed(seed)
    if width % heads:
        raise ValueError(f"width must be a multiple of heads, got width {width}, heads {heads}")
    hidden = 64 * math.ceil(8 * width / 3 / 64) if hidden is None else check_positive_int("hidden", hidden)
    shapes = {"q": (width, width), "k": (width, width), "v": (width, width), "o": (width, width),
              "w1": (hidden, width), "w3": (hidden, width), "w2": (width, hidden)}
    silu, _ = ACTIVATIONS["silu"]
    embed_std, _ = _stds(recipe, width, hidden, layers, 0)
    x = normal_(np.empty((batch, seq_len, width)), 0.0, embed_std, seed=seed, name="embedding")
    measured = [float(np.mean(x * x))]
    attention, mlp = np.empty(layers), np.empty(layers)
    for l in range(layers):
        _, stds = _stds(recipe, width, hidden, layers, l)
        w = {m: _fill(recipe, shapes[m], stds[m], seed, f"layers.{l}.{m}") for m in _MATRICES}
        branch = _attention(_norm(x, norm), w, heads)
        attention[l] = float(np.mean(branch * branch))
        x = x + branch
        h = _norm(x, norm)
        branch = (silu(h @ w["w1"].T) * (h @ w["w3"].T)) @ w["w2"].T
        mlp[l] = float(np.mean(branch * branch))
        x = x + branch
        measured.append(float(np.mean(x * x)))
    return ResidualStream(recipe, width, layers, heads, hidden, seq_len, batch, norm, np.array(measured),
                          _predict(recipe, width, hidden, layers, seq_len), attention, mlp)


def plot_residual_stream(results: Sequence[ResidualStream], path: str | os.PathLike, *,
                         overwrite: bool = False) -> None:
    """The stream's variance per block relative to the embedding's, measured (solid) and predicted
    (dashed), one line per result, into an image at ``path`` (written atomically; needs matplotlib)."""
    plt = _plotting.pyplot()
    figure, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for r in results:
        depth = np.arange(r.layers + 1)
        (line,) = ax.plot(depth, r.measured_variance, marker="o", markersize=3, label=r.recipe)
        ax.plot(depth, r.predicted_variance, linestyle="--", color=line.get_color(), linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("block")
    ax.set_ylabel("variance of the residual stream")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    first = results[0]
    ax.set_title(f"pre-norm stack, width {first.width}, {first.layers} blocks (dashed: each branch adds its variance)",
                 fontsize=9)
    _plotting.save(figure, path, overwrite=overwrite)
