"""Hugging Face transformers: each model's own initialization recipe, with fastinit's numbers.

transformers 5 models initialize every weight through ``transformers.initialization`` (guarded
copies of ``torch.nn.init``) from ``_init_weights``. Here that code runs as it is — so every
architecture, remote-code models included, gets exactly its own recipe — while the functions it
calls are fastinit's (``fastinit.torch.patched``): each target is resolved to the parameter it is
(or the box of it, for a view such as a zeroed padding row), so its values depend only on
``(seed, parameter name, index)``, whatever the sharding or the construction order.

* [`init_model`][fastinit.transformers.init_model] fills a model in place (a meta-built one gets
  CPU storage first, ties kept); buffers such as rotary ``inv_freq`` are computed by the model's
  own code.
* [`spec_from_model`][fastinit.transformers.spec_from_model] records the same initialization as a
  checkpoint spec (nothing drawn, nothing allocated), under the names ``save_pretrained`` writes:
  tied weights under the name transformers keeps, converted weights (a model's fused MoE experts)
  through transformers' own reverse conversion mapping.
* [`save_pretrained`][fastinit.transformers.save_pretrained] writes a directory that
  ``from_pretrained`` loads: ``config.json``, ``generation_config.json`` where the model generates,
  and the weights sharded as transformers shards them, out of core and atomically.

A parameter is keyed by the name transformers saves it under (for tied weights, the one it keeps),
so ``init_model`` and the files of ``save_pretrained`` hold the same values bit for bit.

Examples:
    >>> import fastinit.transformers as fit
    >>> config = fit.load_config({"model_type": "llama", "vocab_size": 64, "hidden_size": 32,
    ...                           "intermediate_size": 64, "num_hidden_layers": 1,
    ...                           "num_attention_heads": 4, "num_key_value_heads": 2,
    ...                           "architectures": ["LlamaForCausalLM"]})
    >>> model = fit.init_model(fit.build_model(config), seed=0)
    >>> float(model.model.norm.weight.detach().mean())
    1.0
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers
from transformers import PretrainedConfig, PreTrainedModel

from . import _torch_init
from ._hf_config import read_config
from ._hf_convert import kept_names, saved_tensors
from ._registry import lookup
from ._torch_modules import replace_meta_tensors
from ._torch_patch import Resolver, Target, patching
from ._torch_tensors import DTYPES, fill_tensor, local_tensor
from .checkpoint import CHUNK_BYTES, Result
from .checkpoint import generate as _generate
from .spec import BoxFill, Spec, TensorSpec, check_tensor

__all__ = ["load_config", "build_model", "init_model", "spec_from_model", "save_pretrained", "pretrained_files"]

_DRAWS_NOTHING = ("constant_", "ones_", "zeros_", "eye_", "dirac_")


# ---------------------------------------------------------------------------------- configs
def load_config(source: Any) -> PretrainedConfig:
    """A transformers config from a ``PretrainedConfig``, a dict, a ``config.json`` file or a directory
    holding one; never from the Hub. The dict or file needs ``model_type``."""
    if isinstance(source, PretrainedConfig):
        return source
    data, where = read_config(source)
    model_type = data.pop("model_type")
    try:
        return transformers.AutoConfig.for_model(model_type, **data)
    except ValueError:
        raise ValueError(f"{where}: unknown model_type {model_type!r} (transformers {transformers.__version__} "
                         "has no such model; fastinit runs no remote code from a config)") from None


def build_model(config: Any, dtype: torch.dtype | str | None = None) -> PreTrainedModel:
    """The model of ``config`` on the meta device (nothing allocated, nothing drawn): the class its
    ``architectures`` names, else the base model of its type; ``dtype`` as transformers applies it
    (modules it keeps in float32 stay float32)."""
    config = load_config(config)
    names = getattr(config, "architectures", None) or []
    model_class: Any = getattr(transformers, names[0], None) if names else None
    if model_class is None:
        try:
            model_class = transformers.AutoModel._model_mapping[type(config)]
        except KeyError:
            raise ValueError(f"no transformers model class for a {type(config).__name__} "
                             f"(architectures: {names})") from None
    with torch.device("meta"):
        return model_class._from_config(config, **({} if dtype is None else {"dtype": dtype}))


def _check_model(model: Any) -> PreTrainedModel:
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__} (for other "
                        "torch modules use fastinit.torch.init_module, or fastinit.torch.patched around "
                        "their own init)")
    return model


# ------------------------------------------------------------------------------ names, runs
@dataclass
class _Run:
    """What a model's own initialization did under the patch."""

    recorded: set[int] | None = None  # ids of the tensors whose fills are recorded, not drawn (None: all)
    written: set[int] = field(default_factory=set)  # ids of tensors written whole
    drawn: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    ops: dict[str, list[tuple[Target, str, dict]]] = field(default_factory=dict)
    current: Target | None = None

    def observe(self, function: str, target: Target | None, tensor: Any) -> None:
        self.current = target
        if target is None:
            if function not in _DRAWS_NOTHING:
                self.unresolved.append(f"{function} of a {tuple(getattr(tensor, 'shape', ()))} tensor")
            return
        if target.whole:
            self.written.add(id(target.parameter))
        if function not in _DRAWS_NOTHING:
            self.drawn.append(target.name)

    def record(self, tensor: Any, fill: Callable, params: dict, seed: Any, name: str, global_shape: Any,
               offset: Any) -> bool:
        """Record a fill of the current target instead of drawing it (True), or let it be drawn."""
        target = self.current
        if self.recorded is not None and (target is None or id(target.parameter) not in self.recorded):
            return False
        if target is None:
            return True  # reported by observe
        scheme = lookup(fill).name
        if not target.whole and name not in ("", target.name):
            self.unresolved.append(f"{scheme} of a view of {target.name}, drawn as a tensor of its own")
            return True
        params = dict(params)
        value = params.get("val")
        if scheme == "constant" and isinstance(value, (int, float)) and value in (0, 1) and math.copysign(1, value) > 0:
            scheme, params = ("zeros" if params["val"] == 0 else "ones"), {}  # the same bytes, read at a glance
        self.ops.setdefault(target.name, []).append((target, scheme, params))
        return True

    def fills(self, name: str) -> tuple[str, dict, list[dict]]:
        """``(init, params, then)`` of the recorded fills of ``name``: its last fill whole, and the
        fills of boxes of it after that one."""
        ops = self.ops.get(name, [])
        last = max((i for i, (target, _, _) in enumerate(ops) if target.whole), default=None)
        if last is None:  # written whole, but by the model's code (copy_ of a computed buffer)
            raise ValueError(f"{name} is computed by the model's code, not drawn or filled with a constant: a "
                             "checkpoint spec cannot hold it")
        _, init, params = ops[last]
        then = [BoxFill(target.offset, target.box_shape, scheme, p).to_dict() for target, scheme, p in ops[last + 1:]]
        return init, _plain(params), [_plain(t) for t in then]


def _flags(model: PreTrainedModel, restore: list[tuple[Any, Any]] | None = None) -> list[tuple[Any, Any]]:
    """Remove transformers' ``_is_hf_initialized`` marks (so its init runs on everything) and return
    them; then put back ``restore``'s."""
    marks = []
    for obj in [*model.modules(), *model.parameters(), *model.buffers()]:
        if "_is_hf_initialized" in getattr(obj, "__dict__", {}):
            marks.append((obj, obj.__dict__.pop("_is_hf_initialized")))
    for obj, mark in restore or ():
        obj._is_hf_initialized = mark
    return marks


@contextlib.contextmanager
def _tracking_copies(run: _Run) -> Iterator[None]:
    """Count ``transformers.initialization.copy_`` targets (computed buffers) as written."""
    from transformers import initialization

    copy = initialization.copy_

    def tracked(tensor: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        run.written.add(id(tensor))
        return copy(tensor, other)

    initialization.copy_ = tracked
    try:
        yield
    finally:
        initialization.copy_ = copy


@contextlib.contextmanager
def _stand_ins(slots: list[tuple[torch.nn.Module, str]]) -> Iterator[dict[int, torch.Tensor]]:
    """The parameters at ``slots`` (module, name in it) as meta stand-ins while the block runs (one
    per parameter, however many slots hold it); yields ``{id(stand-in): parameter}``."""
    swapped, made = [], {}
    for owner, local in slots:
        tensor = owner._parameters[local]
        if tensor is not None:
            if id(tensor) not in made:
                made[id(tensor)] = torch.nn.Parameter(torch.empty(tensor.shape, dtype=tensor.dtype, device="meta"),
                                                      tensor.requires_grad)
            owner._parameters[local] = made[id(tensor)]
            swapped.append((owner, local, tensor))
    try:
        yield {id(made[id(tensor)]): tensor for _, _, tensor in swapped}
    finally:
        for owner, local, tensor in reversed(swapped):
            owner._parameters[local] = tensor


def _alias_slots(model: PreTrainedModel) -> list[tuple[torch.nn.Module, str]]:
    """The slots of the tied aliases (keys of ``all_tied_weights_keys``, such as ``lm_head.weight``):
    transformers initializes a model before it ties it, so what its init does to an alias (a normal
    draw over an embedding's zeroed padding row) never reaches the tensor it is tied to."""
    slots = []
    for alias in getattr(model, "all_tied_weights_keys", None) or {}:
        path, _, local = alias.rpartition(".")
        slots.append((model.get_submodule(path), local))
    return slots


def _run_init(model: PreTrainedModel, seed: int, recorded: set[int] | None) -> _Run:
    """The model's own ``initialize_weights`` under fastinit's functions, the fills of ``recorded``
    (None: all) recorded instead of drawn; drawing from torch's own generator (tensor methods the
    patch cannot redirect) is an error."""
    run = _Run(recorded)
    state = torch.random.get_rng_state()
    token = _torch_init.RECORDER.set(run.record)
    try:
        with _stand_ins(_alias_slots(model)) as aliases, patching(Resolver(model), seed, run.observe), \
                _tracking_copies(run):
            if run.recorded is not None:
                run.recorded.update(aliases)  # what the init does to an alias is dropped
            model.initialize_weights()
    finally:
        _torch_init.RECORDER.reset(token)
    if not torch.equal(torch.random.get_rng_state(), state):
        raise ValueError(f"{type(model).__name__}'s init drew from torch's own generator (a tensor method such as "
                         "tensor.normal_(), which fastinit does not redirect); its values would not be fastinit's")
    if run.unresolved:
        raise ValueError(f"{type(model).__name__}'s init drew into tensors fastinit cannot key by parameter name: "
                         f"{'; '.join(run.unresolved[:5])}; drawn by name: {_listed(run.drawn)}")
    return run


def _listed(names: list[str]) -> str:
    unique = list(dict.fromkeys(names))
    return ", ".join(unique[:8]) + (f" and {len(unique) - 8} more" if len(unique) > 8 else "") if unique else "none"


def _check_complete(model: PreTrainedModel, run: _Run, tensors: Mapping[str, torch.Tensor]) -> None:
    """Every tensor of ``tensors`` (parameters, meta buffers) was written whole by the init."""
    missing = [name for name, t in tensors.items() if id(t) not in run.written]
    if missing:
        raise ValueError(f"{type(model).__name__}'s own init does not initialize {_listed(missing)} through "
                         "transformers.initialization or torch.nn.init (fastinit does not see tensor methods such "
                         f"as tensor.normal_(), nor a buffer it leaves as built); drawn: {_listed(run.drawn)}")


# ------------------------------------------------------------------------------- init_model
def init_model(model: PreTrainedModel, seed: int = 0) -> PreTrainedModel:
    """Initialize ``model`` in place exactly as its own ``_init_weights`` would, with fastinit's values.

    A model with meta tensors (built under ``torch.device("meta")`` or by
    [`build_model`][fastinit.transformers.build_model]) first gets CPU storage, tied parameters
    kept tied. Every parameter is keyed by the name transformers saves it under; buffers (rotary
    ``inv_freq``, ``position_ids``, ...) are computed by the model's code. DTensor parameters are
    filled shard by shard. Raises ``ValueError`` (before leaving a half-keyed model) when the init
    leaves a parameter untouched, draws into a tensor that is no parameter, or draws from torch's
    own generator.
    """
    _check_model(model)
    meta_buffers = {name: b for name, b in model.named_buffers() if b is not None and b.is_meta}
    if any(t.is_meta for t in [*model.parameters(), *meta_buffers.values()]):
        replace_meta_tensors(model, None, computed_buffers=True)
        meta_buffers = {name: model.get_buffer(name) for name in meta_buffers}
    _flags(model)
    # a DTensor's view (a padding row) is a copy: its fills are recorded and applied to each shard
    sharded = [(owner, local) for owner in model.modules() for local, p in owner._parameters.items()
               if p is not None and local_tensor(p) is not p]
    with _stand_ins(sharded) as stand_ins:
        run = _run_init(model, seed, recorded=set(stand_ins))
        names = {id(p): name for name, p in model.named_parameters()}
    run.written.update(id(stand_ins[i]) for i in list(run.written) if i in stand_ins)
    _check_complete(model, run, {**dict(model.named_parameters()), **meta_buffers})
    for key, parameter in stand_ins.items():
        name = names[key]
        init, params, then = run.fills(name)
        spec = check_tensor(name, tuple(parameter.shape), _dtype_name(parameter, name), init, params, None, then)
        fill_tensor(parameter, lambda array, shape, offset, spec=spec: spec.fill(array, seed, offset), "init_model",
                    seed)
    return model


# -------------------------------------------------------------------------- spec_from_model
def _dtype_name(tensor: torch.Tensor, name: str) -> str:
    if tensor.dtype not in DTYPES:
        raise TypeError(f"{name}: dtype {tensor.dtype} is not one a checkpoint spec holds "
                        f"({', '.join(map(str, DTYPES))})")
    return DTYPES[tensor.dtype]


def spec_from_model(model: PreTrainedModel, dtype: str | torch.dtype | None = None) -> Spec:
    """The checkpoint spec of ``init_model(model, seed=s)`` under the names ``save_pretrained`` writes:
    ``fastinit generate`` with seed ``s`` writes exactly ``init_model``'s values. Nothing is drawn or
    allocated (the model may be on the meta device); ``dtype`` replaces every tensor's dtype.

    Each tensor's ``init`` is the last fill of the whole parameter, and its ``then`` the fills of
    boxes after it (a zeroed padding row); a weight transformers converts on save (fused experts
    written one per tensor) is a ``stream`` box of the in-memory parameter."""
    return _pretrained_spec(model, dtype)[0]


def _pretrained_spec(model: PreTrainedModel, dtype: Any = None) -> tuple[Spec, dict[str, tuple[str, int]]]:
    """``spec_from_model``, and the storage each saved tensor is in when transformers saves the model
    (which decides its shard)."""
    _check_model(model)
    marks = _flags(model)
    try:
        run = _run_init(model, 0, recorded=None)
    finally:
        _flags(model, restore=marks)  # recording leaves the model as it was
    names = kept_names(model)
    key_names = {key: names.get(id(t), key) for key, t in model.state_dict(keep_vars=True).items()}
    saved = saved_tensors(model)
    for name, (_, origin) in saved.items():
        if origin is None:
            raise ValueError(f"{name}: transformers' conversion on save does not take it as one box of one "
                             "in-memory tensor, which fastinit cannot write box by box")
    sources = {key_names.get(origin.source, origin.source): model.get_parameter_or_buffer(origin.source)
               for _, origin in saved.values() if origin is not None}
    _check_complete(model, run, sources)
    spec = Spec(tuple(_tensor_spec(name, meta, origin, key_names.get(origin.source, origin.source), sources, run,
                                   dtype) for name, (meta, origin) in saved.items() if origin is not None))
    return spec, {name: origin.held_in for name, (_, origin) in saved.items() if origin is not None}


def _tensor_spec(saved: str, meta: torch.Tensor, origin: Any, stream_name: str, sources: Mapping[str, torch.Tensor],
                 run: _Run, dtype: Any) -> TensorSpec:
    init, params, then = run.fills(stream_name)
    shape, full = tuple(meta.shape), tuple(sources[stream_name].shape)
    stream = None
    if stream_name != saved or origin.offset != (0,) * len(full) or origin.box != full:
        stream = {"name": stream_name, "shape": list(full), "offset": list(origin.offset), "box": list(origin.box)}
    name = dtype if isinstance(dtype, str) else DTYPES.get(dtype) if dtype is not None else _dtype_name(meta, saved)
    return check_tensor(saved, shape, name, init, params, stream, then)


def _plain(params: dict) -> dict:
    """Parameters as JSON writes them (tuples as lists, floats as floats)."""
    return json.loads(json.dumps(params))


# -------------------------------------------------------------------------- save_pretrained
def save_pretrained(config_or_model: Any, directory: str | os.PathLike, *, seed: int = 0,
                    dtype: str | torch.dtype | None = None, max_shard_size: int | str = "5GB", overwrite: bool = False,
                    chunk_bytes: int = CHUNK_BYTES, progress: Callable[[int, str], None] | None = None) -> Result:
    """Write the initialized model of ``config_or_model`` (a config, a ``config.json``, its directory,
    or a model) to ``directory`` as transformers' ``save_pretrained`` lays it out, so that
    ``AutoModel*.from_pretrained(directory)`` loads it: ``config.json``, ``generation_config.json``
    where the model generates, and the weights (``model.safetensors``, or shards of at most
    ``max_shard_size`` with ``model.safetensors.index.json``).

    The values are ``init_model``'s for ``seed``, written box by box (bounded memory, whatever the
    model's size), into ``directory.partial`` renamed when complete; an existing ``directory`` is
    refused unless ``overwrite``. The model is built on the meta device: nothing is allocated.
    """
    model = config_or_model if isinstance(config_or_model, PreTrainedModel) else build_model(config_or_model, dtype)
    spec, storage = _pretrained_spec(model, dtype if isinstance(config_or_model, PreTrainedModel) else None)
    return _generate(spec, directory, seed=seed, overwrite=overwrite, chunk_bytes=chunk_bytes,
                     max_shard_size=max_shard_size, shard_storage=storage, extra_files=pretrained_files(model),
                     progress=progress)


def pretrained_files(model: PreTrainedModel) -> dict[str, bytes]:
    """The files transformers' ``save_pretrained`` writes beside the weights: ``config.json`` (its
    ``architectures`` naming the model's class) and, where the model generates,
    ``generation_config.json``."""
    _check_model(model)
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.architectures = [type(model).__name__]
    files = {"config.json": config.to_json_string(use_diff=True).encode()}
    if model.can_generate() and getattr(model, "generation_config", None) is not None:
        files["generation_config.json"] = model.generation_config.to_json_string(use_diff=True).encode()
    return files

