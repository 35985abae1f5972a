"""What transformers' ``save_pretrained`` writes, in terms of the model's memory: the name a tied
parameter is saved under, and where each saved tensor comes from.

transformers converts some weights on save (a model's fused MoE experts are written one expert per
tensor, for example) through its own conversion mapping. To follow it without a table of our own,
that conversion is run on ``BoxProbe`` tensors: meta tensors that remember which box of which
in-memory tensor they are. The operations the conversions use to take tensors apart (``chunk``,
``split``, ``unbind``, indexing, ``squeeze``, ``contiguous``) keep track of the box; any other
operation yields a plain tensor, which is reported as a conversion fastinit cannot write box by box.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Origin", "is_transformers_model", "kept_names", "saved_tensors"]


@dataclass(frozen=True)
class Origin:
    """A saved tensor's values: the box ``(offset, box)`` of in-memory tensor ``source``; ``held_in``
    is ``(key, bytes)`` of the storage transformers holds it in when it saves (a tensor and the views
    of it share one; a conversion's copy has its own), which decides its shard."""

    source: str
    offset: tuple[int, ...]
    box: tuple[int, ...]
    held_in: tuple[str, int]


_COPIES = itertools.count()  # names the storages of copies


class BoxProbe(torch.Tensor):
    """A meta tensor that is the box ``start`` / ``extent`` of the in-memory tensor ``source``; its
    dim ``i`` steps along that tensor's dim ``dims[i]``. ``held_in``: see ``Origin``."""

    source: str
    start: tuple[int, ...]
    extent: tuple[int, ...]
    dims: tuple[int, ...]
    held_in: tuple[str, int]

    @staticmethod
    def __new__(cls, meta: torch.Tensor, source: str, start: Any, extent: Any, dims: Any,
                held_in: tuple[str, int]) -> BoxProbe:
        probe = torch.Tensor._make_subclass(cls, meta)
        probe.source, probe.start, probe.extent, probe.dims = source, tuple(start), tuple(extent), tuple(dims)
        probe.held_in = held_in
        return probe

    @classmethod
    def of(cls, name: str, tensor: torch.Tensor) -> BoxProbe:
        """The whole of the model's tensor ``name``, in the storage transformers would save it from."""
        return cls(tensor.to("meta"), name, (0,) * tensor.dim(), tuple(tensor.shape), range(tensor.dim()),
                   (name, tensor.untyped_storage().nbytes()))

    def _piece(self, meta: torch.Tensor, dim: int, at: int, size: int, keep: bool = True) -> BoxProbe:
        """The part of this probe from ``at`` to ``at + size`` along its dim ``dim`` (dropped unless ``keep``)."""
        start, extent = list(self.start), list(self.extent)
        start[self.dims[dim]] += at
        extent[self.dims[dim]] = size
        dims = list(self.dims) if keep else [d for i, d in enumerate(self.dims) if i != dim]
        return BoxProbe(meta, self.source, start, extent, dims, self.held_in)

    def _moved(self, meta: torch.Tensor, dims: Any = None, copied: bool = False) -> BoxProbe:
        """The same box as ``meta`` (with its dims ``dims``), in a storage of its own if ``copied``."""
        held_in = (f"{self.held_in[0]}@{next(_COPIES)}", meta.numel() * meta.element_size()) if copied else self.held_in
        return BoxProbe(meta, self.source, self.start, self.extent, self.dims if dims is None else dims, held_in)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **kwargs)
        probe = args[0] if args and isinstance(args[0], BoxProbe) else None
        if probe is None:
            return result
        return _track(probe, getattr(func, "__name__", ""), args, kwargs, result)


def _dim(probe: BoxProbe, value: Any) -> int:
    return int(value) % probe.dim()


def _track(probe: BoxProbe, name: str, args: tuple, kwargs: dict, result: Any) -> Any:
    """The probes of ``result`` when ``name`` takes a box apart; ``result`` unchanged otherwise."""
    if name in ("contiguous", "clone", "detach") and isinstance(result, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            copied = name == "clone" or (name == "contiguous" and not probe.is_contiguous())
        return probe._moved(result, copied=copied)
    if name in ("chunk", "split") and isinstance(result, (tuple, list)):
        dim = _dim(probe, kwargs.get("dim", args[2] if len(args) > 2 else 0))
        pieces, at = [], 0
        for piece in result:
            pieces.append(probe._piece(piece, dim, at, piece.shape[dim]))
            at += piece.shape[dim]
        return type(result)(pieces)
    if name == "unbind" and isinstance(result, (tuple, list)):
        dim = _dim(probe, kwargs.get("dim", args[1] if len(args) > 1 else 0))
        return type(result)(probe._piece(piece, dim, i, 1, keep=False) for i, piece in enumerate(result))
    if name == "squeeze" and isinstance(result, torch.Tensor):
        which = kwargs.get("dim", args[1] if len(args) > 1 else None)
        squeezed = (set(range(probe.dim())) if which is None
                    else {_dim(probe, d) for d in (which if isinstance(which, (tuple, list)) else (which,))})
        dims = [d for i, d in enumerate(probe.dims) if not (i in squeezed and probe.shape[i] == 1)]
        return probe._moved(result, dims)
    if name == "__getitem__" and isinstance(result, torch.Tensor):
        return _index(probe, args[1], result)
    return result


def _index(probe: BoxProbe, index: Any, result: torch.Tensor) -> Any:
    """Basic indexing (ints and step-1 slices) of a probe."""
    items = index if isinstance(index, tuple) else (index,)
    current, dim = probe, 0
    for item in items:
        if isinstance(item, int):
            at = item % current.shape[dim]
            current = current._piece(result, dim, at, 1, keep=False)
        elif isinstance(item, slice) and item.step in (None, 1):
            start, stop, _ = item.indices(current.shape[dim])
            current = current._piece(result, dim, start, max(stop - start, 0))
            dim += 1
        else:
            return result  # advanced indexing: not a box
    return current._moved(result)


def is_transformers_model(module: Any) -> bool:
    """Whether ``module`` is a transformers model (without importing transformers)."""
    hf = sys.modules.get("transformers")
    return hf is not None and isinstance(module, hf.PreTrainedModel)


def kept_names(module: Any) -> dict[int, str]:
    """``{id(parameter): name}`` for the parameters of a transformers model that have several names
    (tied weights): the name its ``save_pretrained`` keeps (not a key of ``all_tied_weights_keys``),
    else the smallest. ``{}`` for any other module."""
    if not is_transformers_model(module):
        return {}
    tied = set(getattr(module, "all_tied_weights_keys", None) or module.get_expanded_tied_weights_keys(True))
    names: dict[int, list[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return {key: min((n for n in all_names if n not in tied), default=min(all_names))
            for key, all_names in names.items() if len(all_names) > 1}


def saved_tensors(model: Any) -> dict[str, tuple[torch.Tensor, Origin | None]]:
    """Each tensor ``model.save_pretrained`` writes, by the name it writes it under: its meta tensor
    and where its values come from in the model (None: a conversion that is not a box of one tensor).

    Tied aliases are dropped and transformers' reverse conversion mapping is applied, both with
    transformers' own functions."""
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    state = remove_tied_weights_from_state_dict(model.state_dict(), model)
    state = {k: v for k, v in state.items() if k not in (model._keys_to_ignore_on_save or ())}
    probes: dict[str, torch.Tensor] = {key: BoxProbe.of(key, t) for key, t in state.items()}
    saved = revert_weight_conversion(model, probes)
    out: dict[str, tuple[torch.Tensor, Origin | None]] = {}
    for name, tensor in saved.items():
        tensor = tensor[0] if isinstance(tensor, list) else tensor
        origin = None
        if isinstance(tensor, BoxProbe) and list(tensor.dims) == sorted(tensor.dims):
            origin = Origin(tensor.source, tensor.start, tensor.extent, tensor.held_in)
        with torch._C.DisableTorchFunctionSubclass():
            out[name] = (torch.empty(tensor.shape, dtype=tensor.dtype, device="meta"), origin)
    return out
