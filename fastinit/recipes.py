"""The initialization recipes of large-model trainers, by name, as schemes for parameter names.

A recipe maps each parameter name of a trainer's model (and its shape) to a fastinit scheme, as the
trainer's own code initializes that parameter; the values then come from fastinit, keyed by
``(seed, name, global index)`` like every other fill, so they do not depend on world size, mesh or
pipeline layout. Apply one with ``fastinit.torch.init_module(model, seed=0,
recipe="torchtitan-llama3")``, ``materialize`` or ``spec_from_module``, or name it in a spec file
(``"recipe": {"name": "olmo-core", "init_method": "llama_depth"}``). ``L`` is the number of layers,
``i`` the 0-based layer index, ``d`` the model width; every bias is zeros and every norm weight
ones unless said otherwise. ``TN(s; a, b)`` is the normal of std ``s`` truncated to the absolute
bounds ``[a, b]``, ``N(s)`` the plain normal.

* ``"torchtitan-llama3"`` (torchtitan's Llama 3): ``tok_embeddings`` N(1); the attention's ``wq``,
  ``wk``, ``wv`` (or fused ``wqkv``, also under ``qkv_linear``) and ``feed_forward.w1``
  TN(0.02; -2, 2); ``wo``, ``w2`` and ``w3`` TN(s; -2, 2) with s = 0.02/sqrt(2(i+1)) (``depth_init``,
  the default) or 0.02/sqrt(2L); the output (``output`` or ``lm_head``) TN(d**-0.5; +-3 d**-0.5).
* ``"megatron"`` (Megatron-LM's ``init_method_normal(sigma)`` and ``scaled_init_method_normal(sigma,
  num_layers)``): every weight N(sigma) (sigma = ``init_method_std``, 0.02), the embeddings
  N(``embedding_init_method_std``), the residual outputs (``linear_proj``, ``linear_fc2``, the
  experts' second matrix) N(sigma/sqrt(multiplier L)), ``output_layer`` N(sigma); norm weights ones
  (zeros with ``zero_centered_gamma``, Megatron's ``--apply-layernorm-1p``).
* ``"olmo-core"`` (OLMo-core's ``InitMethod``, chosen by ``init_method``): every linear TN(s; +-3s).
  ``normal`` (default): s = ``init_std`` (0.02) everywhere, the embeddings TN(``embedding_init_std``).
  ``llama``: embeddings N(1); ``w_out``, ``w2``, ``w3`` at s/sqrt(2L); ``lm_head`` d**-0.5.
  ``llama_depth``: as ``llama`` with s/sqrt(2(i+1)). ``normalized`` (nGPT, before the model's own
  normalization of the matrices): embeddings N(d**-0.5), every matrix TN(d**-0.5), ``w_out`` and
  ``w2`` d**-0.5/sqrt(2L). ``fan_in``: every matrix TN(fan_in**-0.5), embeddings N(1/``embed_scale``)
  (N(1) without it). MoE routers and experts (``feed_forward_moe``): all at ``w2``'s std under
  ``llama`` / ``llama_depth``, at the inner std otherwise (``fan_in`` MoE is not covered); the
  shared MLP (``shared_mlp``), which OLMo-core's init does not reach, keeps torch's Linear default.
* ``"gpt-neox"`` (GPT-NeoX, the Hugging Face ``GPTNeoX`` names or NeoX's own): ``init_method`` on the
  embeddings, ``query_key_value``, ``dense_h_to_4h`` (``w1``, ``w3``) and the output;
  ``output_layer_init_method`` on ``attention.dense`` and ``dense_4h_to_h`` (``w2``). Each is one of
  ``normal`` N(sigma), ``scaled_normal`` N(sigma/sqrt(2L)), ``single_residual_scaled_normal``
  N(sigma/sqrt(L)), ``small_init`` N(sqrt(2/(5d))) (Nguyen & Salazar 2019), ``wang_init``
  N(2/(L sqrt(d))), ``xavier_uniform``, ``xavier_normal``; the defaults are NeoX's shipped
  configurations, ``small_init`` and ``wang_init``.

``L`` and ``d`` are read from the names and shapes (the largest layer index + 1; the embedding's
or output's width); pass them (``n_layers`` / ``num_layers``, ``dim`` / ``d_model`` /
``hidden_size``) when the model holds only part of the network (a pipeline stage). Names may
carry a wrapper's prefix (``module.``, ``_orig_mod.``). A parameter no rule covers is an error
that names it.

Examples:
    >>> from fastinit.recipes import recipe_schemes
    >>> shapes = {"layers.0.attention.wo.weight": (64, 64), "layers.1.attention.wo.weight": (64, 64)}
    >>> recipe_schemes("torchtitan-llama3", shapes)["layers.1.attention.wo.weight"]
    ('trunc_normal', {'std': 0.01, 'a': -2.0, 'b': 2.0})
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._validate import check_choice, check_positive_int, check_real

__all__ = ["RECIPES", "recipe_schemes"]

SchemeRule = tuple[str, dict]
Shapes = Mapping[str, Sequence[int]]
_Rules = list[tuple[str, Callable[[re.Match, tuple[int, ...]], SchemeRule]]]

_ANY = r"(?:.+\.)?"  # a wrapper's module path above the trainer's model
_LAYER = r"(?P<layer>\d+)"
ONES: SchemeRule = ("ones", {})
ZEROS: SchemeRule = ("zeros", {})


def _normal(std: float) -> SchemeRule:
    return ("normal", {"std": std})


def _trunc(std: float, a: float, b: float) -> SchemeRule:
    return ("trunc_normal", {"std": std, "a": a, "b": b})


def _trunc3(std: float) -> SchemeRule:
    """TN(std; +-3 std)."""
    return _trunc(std, -3 * std, 3 * std)


def _std(argname: str, value: Any) -> float:
    """A recipe's std (or scale) option: a finite real > 0."""
    std = check_real(argname, value)
    if std <= 0:
        raise ValueError(f"{argname} must be > 0, got {std}")
    return std


def _const(rule: SchemeRule) -> Callable[[re.Match, tuple[int, ...]], SchemeRule]:
    return lambda match, shape: rule


def _layers(shapes: Shapes, pattern: str, given: int | None, option: str, recipe: str) -> int:
    """``given``, or the largest layer index in the names + 1."""
    if given is not None:
        return check_positive_int(option, given)
    found = [int(m.group("layer")) for name in shapes if (m := re.fullmatch(f"{_ANY}{pattern}\\..+", name))]
    if not found:
        where = pattern.replace(_LAYER, "{i}").replace("\\", "")
        raise ValueError(f"{recipe}: no parameter name has a layer index ({where}.*) to count the layers "
                         f"from; pass {option}=")
    return max(found) + 1


def _width(shapes: Shapes, patterns: Sequence[str], given: int | None, option: str, recipe: str) -> int:
    """``given``, or dim 1 of the first parameter matching one of ``patterns`` (an embedding's or an
    output projection's width)."""
    if given is not None:
        return check_positive_int(option, given)
    for pattern in patterns:
        for name, shape in shapes.items():
            if re.fullmatch(f"{_ANY}(?:{pattern})", name) and len(shape) == 2:
                return int(shape[1])
    raise ValueError(f"{recipe}: no {' or '.join(patterns)} to read the model width from; pass {option}=")


def _norms_and_biases(norm: SchemeRule = ONES) -> _Rules:
    return [(r".*norm[^.]*\.(?:weight|scale|g)|.*layer_norm_weight", _const(norm)),
            (r".*(?:\.|_)bias", _const(ZEROS))]


# ------------------------------------------------------------------------------ torchtitan
def _torchtitan_llama3(shapes: Shapes, *, depth_init: bool = True, n_layers: int | None = None,
                       dim: int | None = None) -> _Rules:
    if not isinstance(depth_init, bool):
        raise TypeError(f"depth_init must be True or False, got {depth_init!r}")
    name = "torchtitan-llama3"
    layers = functools.cache(lambda: _layers(shapes, r"layers\." + _LAYER, n_layers, "n_layers", name))
    width = functools.cache(lambda: _width(shapes, (r"tok_embeddings\.weight", r"(?:output|lm_head)\.weight"), dim,
                                           "dim", name))

    def scaled(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        depth = int(match.group("layer")) + 1 if depth_init else layers()
        return _trunc(0.02 / math.sqrt(2 * depth), -2.0, 2.0)

    block = r"layers\." + _LAYER + r"\."
    return [
        (r"tok_embeddings\.weight", _const(_normal(1.0))),
        (block + r"attention\.(?:qkv_linear\.)?(?:wq|wk|wv|wqkv)\.weight", _const(_trunc(0.02, -2.0, 2.0))),
        (block + r"feed_forward\.w1\.weight", _const(_trunc(0.02, -2.0, 2.0))),
        (block + r"(?:attention\.wo|feed_forward\.w2|feed_forward\.w3)\.weight", scaled),
        (r"(?:output|lm_head)\.weight", lambda match, shape: _trunc3(width() ** -0.5)),
        *_norms_and_biases(),
    ]


# ------------------------------------------------------------------------------- Megatron
def _megatron(shapes: Shapes, *, init_method_std: float = 0.02, num_layers: int | None = None,
              multiplier: float = 2.0, embedding_init_method_std: float | None = None,
              zero_centered_gamma: bool = False) -> _Rules:
    sigma, factor = _std("init_method_std", init_method_std), _std("multiplier", multiplier)
    embedding = sigma if embedding_init_method_std is None else _std("embedding_init_method_std",
                                                                     embedding_init_method_std)
    if not isinstance(zero_centered_gamma, bool):
        raise TypeError(f"zero_centered_gamma must be True or False, got {zero_centered_gamma!r}")
    layers = functools.cache(lambda: _layers(shapes, r"layers\." + _LAYER, num_layers, "num_layers", "megatron"))
    block = r"layers\." + _LAYER + r"\."
    return [
        (r"embedding\.(?:word|position)_embeddings\.weight", _const(_normal(embedding))),
        (block + r"(?:self_attention\.linear_proj\.weight|mlp\.(?:shared_experts\.)?linear_fc2\.weight"
                 r"|mlp\.experts\..*(?:linear_fc2\.weight\d*|weight2))",
         lambda match, shape: _normal(sigma / math.sqrt(factor * layers()))),
        (r".*(?:layernorm|layer_norm)[^.]*\.weight|.*layer_norm_weight",
         _const(ZEROS if zero_centered_gamma else ONES)),
        (r".*(?:\.|_)bias\d*", _const(ZEROS)),
        (block + r".*weight\d*|output_layer\.weight", _const(_normal(sigma))),
    ]


# ------------------------------------------------------------------------------ OLMo-core
_OLMO_METHODS = ("normal", "llama", "llama_depth", "normalized", "fan_in")


def _olmo_core(shapes: Shapes, *, init_method: str = "normal", init_std: float = 0.02,
               embedding_init_std: float | None = None, embed_scale: float | None = None,
               n_layers: int | None = None, d_model: int | None = None) -> _Rules:
    method = check_choice("init_method", init_method, _OLMO_METHODS)
    std = _std("init_std", init_std)
    embedding = std if embedding_init_std is None else _std("embedding_init_std", embedding_init_std)
    scale = None if embed_scale is None else _std("embed_scale", embed_scale)
    layers = functools.cache(lambda: _layers(shapes, r"blocks\." + _LAYER, n_layers, "n_layers", "olmo-core"))
    width = functools.cache(lambda: _width(shapes, (r"embeddings\.weight", r"lm_head\.w_out\.weight"), d_model,
                                 "d_model", "olmo-core"))

    def residual(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        """w_out, w2 (and w3 under llama / llama_depth)."""
        if method == "fan_in":
            return _trunc3(shape[-1] ** -0.5)
        if method == "normalized":
            return _trunc3(width() ** -0.5 / math.sqrt(2 * layers()))
        if method == "normal":
            return _trunc3(std)
        depth = int(match.group("layer")) + 1 if method == "llama_depth" else layers()
        return _trunc3(std / math.sqrt(2 * depth))

    def inner(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        """The other matrices of a block (q, k, v, gates, w1, routers)."""
        if method == "fan_in":
            return _trunc3(shape[-1] ** -0.5)
        return _trunc3(width() ** -0.5 if method == "normalized" else std)

    def w3(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        return inner(match, shape) if method in ("normalized", "fan_in") else residual(match, shape)

    def experts(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        """MoE router and experts: all at the depth-scaled std under llama / llama_depth."""
        if method == "fan_in":
            raise ValueError("olmo-core: init_method='fan_in' of a mixture-of-experts block (fans of its "
                             "fused expert matrices) is not covered; give feed_forward_moe parameters schemes=")
        return residual(match, shape) if method in ("llama", "llama_depth") else inner(match, shape)

    def embeddings(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        if method == "normal":
            return _trunc3(embedding)
        if method == "normalized":
            return _normal(width() ** -0.5)
        return _normal(1.0 / scale if method == "fan_in" and scale is not None else 1.0)

    def head(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
        return _trunc3(std if method == "normal" else width() ** -0.5)

    block = r"blocks\." + _LAYER + r"\."
    return [
        (r"embeddings\.weight", embeddings),
        (r"lm_head\.w_out\.weight", head),
        (block + r"attention\.sinks", lambda match, shape: ("normal", {"std": residual(match, shape)[1]["std"]})),
        (block + r"(?:attention\.w_out|feed_forward\.w2)\.weight", residual),
        (block + r"feed_forward\.w3\.weight", w3),
        # OLMo-core's InitMethod does not reach a MoE block's shared MLP: torch's Linear default stays
        (block + r"feed_forward_moe\.shared_mlp\.w[123]\.weight", _const(("kaiming_uniform", {"a": math.sqrt(5)}))),
        (block + r"feed_forward_moe\..+", experts),
        *_norms_and_biases(),
        (block + r".+\.weight", inner),
    ]


# ------------------------------------------------------------------------------- GPT-NeoX
_NEOX_METHODS = ("normal", "scaled_normal", "single_residual_scaled_normal", "small_init", "wang_init",
                 "xavier_uniform", "xavier_normal")


def _gpt_neox(shapes: Shapes, *, init_method: str = "small_init", output_layer_init_method: str = "wang_init",
              init_method_std: float = 0.02, num_layers: int | None = None,
              hidden_size: int | None = None) -> _Rules:
    methods = (check_choice("init_method", init_method, _NEOX_METHODS),
               check_choice("output_layer_init_method", output_layer_init_method, _NEOX_METHODS))
    sigma = _std("init_method_std", init_method_std)
    layers = functools.cache(lambda: _layers(shapes, r"layers\." + _LAYER, num_layers, "num_layers", "gpt-neox"))
    width = functools.cache(lambda: _width(shapes, (r"(?:embed_in|word_embeddings)\.weight",
                                                    r"(?:embed_out|lm_head|final_linear)\.weight"),
                                           hidden_size, "hidden_size", "gpt-neox"))

    def method(which: int) -> Callable[[re.Match, tuple[int, ...]], SchemeRule]:
        def rule(match: re.Match, shape: tuple[int, ...]) -> SchemeRule:
            kind = methods[which]
            if kind.startswith("xavier"):
                return (kind, {})
            return _normal({"normal": lambda: sigma,
                            "scaled_normal": lambda: sigma / math.sqrt(2 * layers()),
                            "single_residual_scaled_normal": lambda: sigma / math.sqrt(layers()),
                            "small_init": lambda: math.sqrt(2 / (5 * width())),
                            "wang_init": lambda: 2 / (layers() * math.sqrt(width()))}[kind]())
        return rule

    return [
        (r"(?:attention\.dense|mlp\.dense_4h_to_h|mlp\.w2)\.weight", method(1)),
        (r"(?:embed_in|word_embeddings|position_embeddings|attention\.query_key_value|mlp\.dense_h_to_4h"
         r"|mlp\.w1|mlp\.w3|embed_out|lm_head|final_linear)\.weight", method(0)),
        *_norms_and_biases(),
    ]


RECIPES: dict[str, Callable[..., _Rules]] = {
    "torchtitan-llama3": _torchtitan_llama3,
    "megatron": _megatron,
    "olmo-core": _olmo_core,
    "gpt-neox": _gpt_neox,
}
"""Every recipe by name; its keyword options are those of ``recipe_schemes``'s ``**options``."""


def _options(recipe: str, options: Mapping[str, Any]) -> None:
    accepted = [p for p in inspect.signature(RECIPES[recipe]).parameters if p != "shapes"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"recipe {recipe!r} takes the options {', '.join(accepted)}; got {', '.join(unknown)}")


def recipe_schemes(recipe: str, shapes: Shapes, **options: Any) -> dict[str, SchemeRule]:
    """The scheme ``(init, params)`` of each parameter in ``shapes`` (name -> shape) under
    ``recipe`` with ``options``; the first rule whose pattern matches the whole name wins.

    Raises ``ValueError`` naming every parameter no rule covers, ``TypeError`` for an option the
    recipe does not take.
    """
    check_choice("recipe", recipe, tuple(RECIPES))
    _options(recipe, options)
    rules = [(re.compile(f"{_ANY}(?:{pattern})"), rule) for pattern, rule in RECIPES[recipe](shapes, **options)]
    schemes: dict[str, SchemeRule] = {}
    unmatched = []
    for name, shape in shapes.items():
        match = next(((m, rule) for pattern, rule in rules if (m := pattern.fullmatch(name))), None)
        if match is None:
            unmatched.append(name)
        else:
            schemes[name] = match[1](match[0], tuple(int(n) for n in shape))
    if unmatched:
        raise ValueError(f"recipe {recipe!r} has no rule for {len(unmatched)} parameter(s): "
                         f"{', '.join(unmatched[:8])}{', ...' if len(unmatched) > 8 else ''}; is this a "
                         f"{recipe} model? Give those parameters their own scheme (schemes= in fastinit.torch, "
                         "an init field in a spec), which takes precedence over the recipe")
    return schemes
