"""Which scheme each parameter of a torch module gets: torch's per-layer defaults, user overrides,
and meta-device materialization. No RNG here: a plan is a list of (parameter, TensorSpec)."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._hf_convert import is_transformers_model, kept_names
from ._torch_tensors import DTYPES, fill_tensor
from ._validate import check_seed
from .recipes import recipe_schemes
from .schemes import compute_fans
from .spec import TensorSpec, check_tensor

Scheme = str | tuple
SchemeMap = Mapping[str | type, Scheme | Mapping[str, Scheme]]

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.RMSNorm)
_LINEAR_LIKE = (nn.Linear, nn.modules.conv._ConvNd)


def _uniform(bound: float) -> tuple[str, dict]:
    return ("uniform", {"low": -bound, "high": bound}) if bound > 0 else ("zeros", {})


def _torch_default(module: nn.Module) -> dict[str, tuple[str, dict]]:
    """torch's own initialization of ``module``'s parameters, by name relative to ``module``
    (a container may override its children's defaults, as MultiheadAttention and Transformer do)."""
    own = dict(module.named_parameters(recurse=False))
    if isinstance(module, _LINEAR_LIKE) and "weight" in own:
        rules = {"weight": ("kaiming_uniform", {"a": math.sqrt(5)})}
        if "bias" in own:
            fan_in = compute_fans(tuple(own["weight"].shape), "torch")[0]
            rules["bias"] = _uniform(1 / math.sqrt(fan_in) if fan_in > 0 else 0.0)
        return rules
    if isinstance(module, nn.Bilinear):
        return {name: _uniform(1 / math.sqrt(module.weight.size(1))) for name in own}
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return {"weight": ("normal", {})}
    if isinstance(module, _NORMS):
        return {name: ("ones", {}) if name == "weight" else ("zeros", {}) for name in own}
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        bound = 1 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
        return {name: _uniform(bound) for name in own}
    if isinstance(module, nn.PReLU):
        return {"weight": ("constant", {"val": float(module.init)})}
    if isinstance(module, nn.MultiheadAttention):
        rules = {name: ("xavier_uniform", {}) for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight",
                                                           "v_proj_weight") if name in own}
        rules.update({name: ("xavier_normal", {}) for name in ("bias_k", "bias_v") if name in own})
        if "in_proj_bias" in own:
            rules.update({"in_proj_bias": ("zeros", {}), "out_proj.bias": ("zeros", {})})
        return rules
    if isinstance(module, nn.Transformer):
        return {name: ("xavier_uniform", {}) for name, p in module.named_parameters() if p.dim() > 1}
    return {}


def _scheme(value, where: str) -> tuple[str, dict]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], Mapping):
        return value[0], dict(value[1])
    raise TypeError(f"schemes[{where}] must be a scheme name or (name, params) such as ('normal', "
                    f"{{'std': 0.02}}), got {value!r}")


def _check_schemes(schemes: Any) -> tuple[list[tuple[str, tuple[str, dict]]], list[tuple[type, Any]]]:
    """``schemes`` split into (pattern, scheme) and (type, {param: scheme} or scheme) lists."""
    if schemes is None:
        return [], []
    if not isinstance(schemes, Mapping):
        raise TypeError(f"schemes must be a mapping from name patterns or module types to schemes, "
                        f"got {type(schemes).__name__}")
    patterns: list[tuple[str, tuple[str, dict]]] = []
    types: list[tuple[type, Any]] = []
    for key, value in schemes.items():
        if isinstance(key, str):
            patterns.append((key, _scheme(value, repr(key))))
        elif isinstance(key, type) and issubclass(key, nn.Module):
            where = key.__name__
            if isinstance(value, Mapping):
                types.append((key, {p: _scheme(v, f"{where}][{p!r}") for p, v in value.items()}))
            else:
                types.append((key, _scheme(value, where)))
        else:
            raise TypeError(f"schemes keys must be parameter-name patterns (str) or torch.nn.Module "
                            f"subclasses, got {key!r}")
    return patterns, types


@dataclass(frozen=True)
class Entry:
    """One parameter and how it is filled."""

    name: str
    parameter: torch.Tensor
    init: str
    params: dict
    zero_row: int | None = None  # Embedding's padding_idx, zeroed after the fill

    @property
    def dtype(self) -> torch.dtype:
        return self.parameter.dtype

    def tensor_spec(self, dtype: str) -> TensorSpec:
        if self.zero_row is not None:
            raise ValueError(f"{self.name}: an Embedding with padding_idx={self.zero_row} zeroes one row after "
                             "its N(0, 1) fill, which a spec cannot express; give it a scheme in schemes= "
                             "or drop padding_idx")
        return self._spec(dtype)

    def _spec(self, dtype: str) -> TensorSpec:
        return TensorSpec(self.name, tuple(self.parameter.shape), dtype, self.init, self.params)

    def fill_parameter(self, seed: int) -> None:
        spec = self._spec(DTYPES[self.dtype])
        fill_tensor(self.parameter, lambda array, shape, offset: spec.fill(array, seed, offset),
                    f"init_module ({self.name})", seed)
        if self.zero_row is not None:
            with torch.no_grad():
                self.parameter[self.zero_row].zero_()


def _owners(module: nn.Module) -> dict[int, tuple[str, nn.Module, str]]:
    """Each distinct parameter by id: (its name, owning module, name in the module). A parameter with
    several names (tied) is named by the smallest, or in a transformers model by the one
    transformers saves."""
    kept = kept_names(module)
    owners: dict[int, tuple[str, nn.Module, str]] = {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for local, p in sub.named_parameters(recurse=False):
            full = f"{prefix}.{local}" if prefix else local
            best = owners.get(id(p))
            if best is None or (kept[id(p)] == full if id(p) in kept else full < best[0]):
                owners[id(p)] = (full, sub, local)
    return owners


Recipe = tuple[str, Mapping[str, Any]]  # (recipe name, its options)


def plan(module: nn.Module, schemes: SchemeMap | None, *, seed: int, only_meta: bool = False,
         recipe: Recipe | None = None) -> list[Entry]:
    """Every parameter of ``module`` (or only its meta-device ones) with its checked scheme,
    in ``named_parameters()`` order; errors name the parameter and are raised before any write.
    A parameter takes the first of: a ``schemes`` pattern, a ``schemes`` module type, then the
    ``recipe``'s rule (under a recipe, a parameter with neither is an error) or else torch's
    default for its layer."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    check_seed(seed)
    patterns, types = _check_schemes(schemes)
    defaults: dict[str, tuple[str, dict]] = {}
    for prefix, sub in reversed(list(module.named_modules())):  # children first: containers override
        for local, default in _torch_default(sub).items():
            defaults[f"{prefix}.{local}" if prefix else local] = default
    chosen: list[tuple[str, torch.Tensor, nn.Module, str, tuple[str, dict] | None]] = []
    owners = _owners(module)
    for _, p in module.named_parameters():
        name, owner, local = owners[id(p)]
        if only_meta and p.device.type != "meta":
            continue
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise ValueError(f"{name} is an uninitialized lazy parameter; run a forward pass first")
        if p.dtype not in DTYPES:
            raise TypeError(f"{name}: dtype {p.dtype} is not a float type fastinit fills "
                            f"({', '.join(map(str, DTYPES))})")
        rule: tuple[str, dict] | None = next((s for pattern, s in patterns if fnmatch.fnmatchcase(name, pattern)),
                                             None)
        for cls, by_type in types if rule is None else ():
            if isinstance(owner, cls):
                rule = by_type.get(local) if isinstance(by_type, dict) else by_type
                if rule is not None:
                    break
        chosen.append((name, p, owner, local, rule))
    by_recipe = {} if recipe is None else recipe_schemes(
        recipe[0], {name: tuple(t.shape) for name, t, _, _, rule in chosen if rule is None}, **recipe[1])
    entries = []
    for name, tensor, owner, local, rule in chosen:
        zero_row = None
        if rule is None:
            rule = by_recipe.get(name)
        if rule is None:
            rule = defaults.get(name)
            if isinstance(owner, (nn.Embedding, nn.EmbeddingBag)) and local == "weight":
                zero_row = owner.padding_idx
        if rule is None:
            raise ValueError(_unknown(module, name, owner, local))
        init, params = rule
        check_tensor(name, tuple(tensor.shape), DTYPES[tensor.dtype], init, params)
        entries.append(Entry(name, tensor, init, params, zero_row))
    return entries


def _unknown(module: nn.Module, name: str, owner: nn.Module, local: str) -> str:
    """The error for a parameter of a module type fastinit has no torch default for, with a scheme
    that suits it (ones for a norm's scale, zeros for a bias)."""
    kind = type(owner).__name__
    guess = ("'ones'" if "norm" in kind.lower() and "weight" in local else "'zeros'" if "bias" in local
             else "('normal', {'std': 0.02})")
    text = (f"{name} belongs to a {kind}, whose torch initialization fastinit does not know; give it a "
            f"scheme, e.g. schemes={{{name!r}: {guess}}} or {{{kind}: {{{local!r}: {guess}}}}}")
    if is_transformers_model(module):
        text += ("; for a transformers model, fastinit.transformers.init_model runs the model's own "
                 "initialization with fastinit's values")
    return text


# ----------------------------------------------------------------------- meta materialization
def _buffer_value(module: nn.Module, name: str):
    """The value torch gives a buffer at construction, where it is fixed: BatchNorm statistics."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return {"running_mean": 0, "running_var": 1, "num_batches_tracked": 0}.get(name)
    return None


def replace_meta_tensors(module: nn.Module, dtype: torch.dtype | None,
                         computed_buffers: bool = False) -> dict[int, torch.Tensor]:
    """Swap every meta parameter and buffer for an empty CPU tensor (parameters keep their sharing);
    returns the new tensors by the ``id`` of the meta ones. A buffer gets its module's value where
    that is known; any other is an error, or, with ``computed_buffers`` (the module's own
    initialization will compute it), left empty."""
    unknown = [f"{prefix}.{name}" if prefix else name for prefix, sub in module.named_modules()
               for name, b in sub.named_buffers(recurse=False)
               if b.device.type == "meta" and _buffer_value(sub, name) is None]
    if unknown and not computed_buffers:
        raise ValueError(f"meta buffers {', '.join(unknown)} hold values computed when the module was built, "
                         "which fastinit cannot know; build them outside the meta device (or assign them) "
                         "before materialize")
    new: dict[int, torch.Tensor] = {}

    def empty(t: torch.Tensor) -> torch.Tensor:
        return torch.empty(t.shape, dtype=dtype if dtype is not None and t.is_floating_point() else t.dtype)

    for _, sub in module.named_modules(remove_duplicate=False):
        for name, p in list(sub._parameters.items()):
            if p is not None and p.device.type == "meta":
                if id(p) not in new:
                    new[id(p)] = nn.Parameter(empty(p), requires_grad=p.requires_grad)
                sub._parameters[name] = new[id(p)]
        for name, b in list(sub._buffers.items()):
            if b is not None and b.device.type == "meta":
                if id(b) not in new:
                    value = _buffer_value(sub, name)
                    new[id(b)] = empty(b) if value is None else empty(b).fill_(value)
                sub._buffers[name] = new[id(b)]
    return new
