"""PyTorch backend: the ``torch.nn.init`` functions, whole modules, meta materialization, DTensor shards.

Every function here only translates a tensor (or a DTensor's local shard) into a NumPy view of
the box ``(global_shape, offset)`` it holds, and hands it to the fastinit fill of the same name:
the values are exactly those of the NumPy API, whatever the tensor's strides or sharding.

* Drop-in fills: ``fastinit.torch.kaiming_uniform_(w, a=math.sqrt(5), seed=0, name="fc.weight")``
  takes ``torch.nn.init``'s arguments plus ``seed`` and ``name``, and behaves as torch does around
  the values: meta and fake tensors are no-ops, complex tensors are filled through their real view,
  0-d tensors and bools are accepted as hyperparameters, degenerate parameters, warnings, exception
  classes and ``__torch_function__`` overrides are torch's (see ``fastinit._torch_init``). CPU
  tensors of float32, float64, float16 and bfloat16 (and complex) are written in place through
  shared memory; a non-contiguous tensor is filled by logical index (through a contiguous
  temporary of its size). Nothing is recorded by autograd; the tensor's version counter is bumped
  as an in-place torch op would.
* DTensor: a ``torch.distributed.tensor.DTensor`` is filled shard by shard: each rank fills only its
  local tensor, at the global offset given by its placements (``Shard(dim)`` as ``torch.chunk``
  splits, also uneven; ``Replicate``; any mesh), so the assembled tensor is the single-process
  tensor bit for bit. Every rank must pass the same explicit ``seed``.
* [`init_module`][fastinit.torch.init_module], [`materialize`][fastinit.torch.materialize],
  [`spec_from_module`][fastinit.torch.spec_from_module]: see their docstrings and
  ``fastinit._torch_modules`` for each layer type's default.
* [`patched`][fastinit.torch.patched]: every ``torch.nn.init`` function is fastinit's inside a
  ``with`` block, keyed by parameter name, so a module's own ``reset_parameters()`` draws
  fastinit values (see ``fastinit._torch_patch`` for what it reaches and how it keys a tensor).

Examples:
    >>> import torch, fastinit.torch as fit
    >>> w = fit.kaiming_uniform_(torch.empty(4, 3), a=5 ** 0.5, seed=0, name="fc.weight")
    >>> bool(w.abs().max() <= 3 ** -0.5)
    True
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ._torch_init import (
    calculate_gain,
    constant_,
    deprecated,
    dirac_,
    eye_,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    ones_,
    orthogonal_,
    sparse_,
    trunc_normal_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)
from ._torch_modules import Recipe, SchemeMap, plan, replace_meta_tensors
from ._torch_patch import patched
from ._torch_tensors import DTYPES
from .recipes import RECIPES
from .spec import Spec

__all__ = [
    "calculate_gain", "constant_", "dirac_", "eye_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "orthogonal_", "sparse_", "trunc_normal_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
    "init_module", "materialize", "spec_from_module", "patched",
    "constant", "dirac", "eye", "kaiming_normal", "kaiming_uniform", "normal", "orthogonal", "sparse", "uniform",
    "xavier_normal", "xavier_uniform",
]

# torch's deprecated names (a FutureWarning, then the function), as torch.nn.init keeps them
uniform = deprecated(uniform_)
normal = deprecated(normal_)
constant = deprecated(constant_)
eye = deprecated(eye_)
dirac = deprecated(dirac_)
xavier_uniform = deprecated(xavier_uniform_)
xavier_normal = deprecated(xavier_normal_)
kaiming_uniform = deprecated(kaiming_uniform_)
kaiming_normal = deprecated(kaiming_normal_)
orthogonal = deprecated(orthogonal_)
sparse = deprecated(sparse_)


# --------------------------------------------------------------------------------- modules
def _check_dtype(dtype: torch.dtype | None) -> None:
    if dtype is not None and dtype not in DTYPES:
        raise TypeError(f"dtype must be one of {', '.join(map(str, DTYPES))} or None, got {dtype}")


def _recipe(recipe: str | None, options: dict[str, Any]) -> Recipe | None:
    if recipe is None:
        if options:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(sorted(options))}: recipe options "
                            "need recipe= (one of " + ", ".join(map(repr, RECIPES)) + ")")
        return None
    return recipe, options


def init_module(module: torch.nn.Module, seed: int = 0, schemes: SchemeMap | None = None,
                recipe: str | None = None, **recipe_options: Any) -> torch.nn.Module:
    """Fill every parameter of ``module`` in place, each keyed by its ``named_parameters()`` name.

    By default each parameter gets its layer type's own torch initialization (Linear / Conv* /
    ConvTranspose* / Bilinear: ``kaiming_uniform_(a=sqrt(5))`` weights and U(+-1/sqrt(fan_in))
    biases; Embedding N(0, 1) with the padding row zeroed; norms ones and zeros; MultiheadAttention
    Xavier; RNN / LSTM / GRU U(+-1/sqrt(hidden)); ...; see ``fastinit._torch_modules``). ``schemes``
    overrides them; its keys are

    * ``fnmatch`` patterns of parameter names (``"*.bias"``, ``"layers.*.mlp.*"``), tried first, in order;
    * module types (``torch.nn.Linear``): a scheme for all of that module's own parameters, or a
      ``{"weight": scheme, "bias": scheme}`` dict;

    and a scheme is a fastinit scheme name as in a spec file (``"zeros"``, ``"xavier_uniform"``) or
    ``(name, params)``, e.g. HF-style ``{torch.nn.Linear: {"weight": ("normal", {"std": 0.02}),
    "bias": "zeros"}}``. Every scheme is checked before any parameter is written.

    ``recipe`` (one of [`fastinit.recipes.RECIPES`][fastinit.recipes.RECIPES]: ``"torchtitan-llama3"``,
    ``"megatron"``, ``"olmo-core"``, ``"gpt-neox"``) replaces torch's defaults by a trainer's own
    initialization, by parameter name, with ``recipe_options`` (e.g. ``depth_init=False``,
    ``init_method="llama_depth"``); ``schemes`` still take precedence, and a parameter that neither
    covers is an error naming it. See ``docs/recipes.md``.

    A value depends only on ``(seed, parameter name, index)``: not on the order in which modules were
    built, on torch's RNG, or on sharding (DTensor parameters are filled shard by shard). A
    parameter shared by several modules is keyed by its smallest name.
    """
    for entry in plan(module, schemes, seed=seed, recipe=_recipe(recipe, recipe_options)):
        entry.fill_parameter(seed)
    return module


def materialize(module: torch.nn.Module, seed: int = 0, dtype: torch.dtype | None = None,
                schemes: SchemeMap | None = None, recipe: str | None = None,
                **recipe_options: Any) -> torch.nn.Module:
    """Give every meta-device parameter and buffer of ``module`` CPU storage and fill the parameters
    as [`init_module`][fastinit.torch.init_module] would (``schemes``, ``recipe`` and its options as
    there), without running torch's own initialization.

    Build the module under ``torch.device("meta")`` (nothing is allocated or drawn), then call this.
    ``dtype`` (one of float32, float64, float16, bfloat16) replaces the floating dtype of the new
    tensors. Parameters shared by several modules stay shared (``Module.to_empty`` would split
    them). Buffers get their module's value where it is known (BatchNorm running statistics);
    any other meta buffer is an error raised before anything changes. Parameters that were already
    real are left as they are.
    """
    _check_dtype(dtype)
    entries = plan(module, schemes, seed=seed, only_meta=True,
                   recipe=_recipe(recipe, recipe_options))  # validate before any change
    real = replace_meta_tensors(module, dtype)
    for entry in entries:
        replace(entry, parameter=real[id(entry.parameter)]).fill_parameter(seed)
    return module


def spec_from_module(module: torch.nn.Module, schemes: SchemeMap | None = None,
                     dtype: torch.dtype | None = None, recipe: str | None = None, **recipe_options: Any) -> Spec:
    """The checkpoint spec (see ``docs/checkpoints.md``) of ``module``'s parameters with the schemes of
    [`init_module`][fastinit.torch.init_module]: ``fastinit generate`` (or ``fastinit.checkpoint.generate``)
    with seed ``s`` then writes exactly the tensors ``init_module(module, seed=s)`` makes (with the same
    ``schemes``, ``recipe`` and options). Works on meta modules.

    Examples:
        >>> import torch, fastinit.torch as fit
        >>> spec = fit.spec_from_module(torch.nn.Linear(3, 2, device="meta"))
        >>> [(t.name, t.shape, t.init) for t in spec.tensors]
        [('weight', (2, 3), 'kaiming_uniform'), ('bias', (2,), 'uniform')]
    """
    _check_dtype(dtype)
    return Spec(tuple(entry.tensor_spec(DTYPES[dtype if dtype is not None else entry.dtype])
                      for entry in plan(module, schemes, seed=0, recipe=_recipe(recipe, recipe_options))))

