"""``fastinit.torch.patched``: every ``torch.nn.init`` function is fastinit's for the duration of a
``with`` block, so ``reset_parameters()`` of any module, and any library's init code, draws fastinit
values keyed by parameter name.

What is replaced: the functions of ``torch.nn.init`` (and its deprecated aliases), and every copy of
them that a loaded module holds — a module global (``from torch.nn.init import xavier_uniform_``, as
``torch.nn.modules.activation`` does) or a value of a module-level dict (as
``transformers.initialization.TORCH_INIT_FUNCTIONS`` keeps them). Modules imported inside the block
are not scanned.

How a target is keyed: a parameter of the registered ``module`` (its smallest full name, as
``init_module`` keys it) gets stream ``(seed, name)``; a view of one that is a box of it (a row such as
an embedding's padding row, a block of columns) gets the same stream at the box's position, with the
fans of the view for fan-based schemes; ``orthogonal_`` and ``sparse_`` on such a view draw the view as
a tensor of its own, named ``name[box]``. Anything else — a tensor of no registered module, a view
that is not a box (transposed, strided, reshaped), a module built inside the block before it is
attached to the registered one — takes the next seed of the default stream. Calls to tensor methods
(``tensor.normal_()``) are not redirected. ``generator=`` is ignored: values come from the seed and
the name.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from . import _torch_init as I
from ._streams import concrete_seed
from ._torch_modules import _owners

__all__ = ["patched"]

#: torch's functions as they are when fastinit.torch is imported
TORCH_FUNCTIONS: dict[str, Callable] = {
    name: getattr(torch.nn.init, name)
    for name in ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                 "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_",
                 "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                 "kaiming_normal", "orthogonal", "sparse")
    if hasattr(torch.nn.init, name)
}
_DRAWS_NOTHING = ("constant_", "ones_", "zeros_", "eye_", "dirac_")
_WHOLE_VIEW = ("orthogonal_", "sparse_")  # a view that is a box is drawn as a tensor of its own
_FANS = ("xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_")


@dataclass(frozen=True)
class Target:
    """Where a tensor handed to an init function lies: parameter ``name``, and the box of it."""

    name: str
    parameter: torch.Tensor
    box_shape: tuple[int, ...]
    offset: tuple[int, ...]

    @property
    def whole(self) -> bool:
        return self.box_shape == tuple(self.parameter.shape)

    @property
    def label(self) -> str:
        return self.name + "[" + ", ".join(f"{o}:{o + n}" for o, n in zip(self.offset, self.box_shape)) + "]"


def box_of(parameter: torch.Tensor, view: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``(box shape, offset)`` of ``view`` in ``parameter`` when it is a box of it (a view of it, or
    of its storage, with the same dtype, each of its dims stepping along one dim of the parameter),
    else None."""
    if view.dtype != parameter.dtype or not parameter.is_contiguous():
        return None
    if view._base is not parameter and (view.is_meta or parameter.is_meta or
                                        view.untyped_storage().data_ptr() != parameter.untyped_storage().data_ptr()):
        return None
    delta = view.storage_offset() - parameter.storage_offset()
    shape = tuple(parameter.shape)
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    steps = [(n, s) for n, s in zip(view.shape, view.stride()) if n != 1]
    box, j = [1] * len(shape), 0
    for d, (n, s) in enumerate(zip(shape, strides)):
        if n != 1 and j < len(steps) and steps[j][1] == s:
            box[d] = steps[j][0]
            j += 1
    if j != len(steps) or delta < 0:
        return None
    offset = [(delta // s) % n if n else 0 for n, s in zip(shape, strides)]
    if sum(o * s for o, s in zip(offset, strides)) != delta or any(o + b > n for o, b, n in zip(offset, box, shape)):
        return None
    return tuple(box), tuple(offset)


class Resolver:
    """The parameters (and buffers) of the registered module, by identity, as views, and by storage.

    A parameter is named as ``init_module`` names it (a shared one by its smallest full name, or for
    a transformers model by the name transformers saves it under)."""

    def __init__(self, module: torch.nn.Module | None):
        if module is not None and not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module or None, got {type(module).__name__}")
        self.module = module
        self._by_id: dict[int, tuple[str, torch.Tensor]] = {}
        self._by_storage: dict[int, list[tuple[str, torch.Tensor]]] = {}

    def _index(self) -> None:
        self._by_id.clear()
        self._by_storage.clear()
        if self.module is None:
            return
        tensors: list[tuple[str, torch.Tensor]] = [
            (name, p) for name, owner, local in _owners(self.module).values()
            if (p := owner._parameters[local]) is not None]
        tensors += [(name, b) for name, b in self.module.named_buffers() if b is not None]
        for name, t in tensors:
            self._by_id.setdefault(id(t), (name, t))
            if not t.is_meta and type(t) in (torch.Tensor, torch.nn.Parameter):
                self._by_storage.setdefault(t.untyped_storage().data_ptr(), []).append((name, t))

    def resolve(self, tensor: Any) -> Target | None:
        if self.module is None or not isinstance(tensor, torch.Tensor):
            return None
        for attempt in range(2):  # the module may have changed since the index was built
            if attempt or not self._by_id:
                self._index()
            if id(tensor) in self._by_id:
                name, p = self._by_id[id(tensor)]
                return Target(name, p, tuple(p.shape), (0,) * p.dim())
            candidates = [self._by_id[id(tensor._base)]] if id(tensor._base) in self._by_id else []
            if type(tensor) in (torch.Tensor, torch.nn.Parameter) and not tensor.is_meta:
                candidates += self._by_storage.get(tensor.untyped_storage().data_ptr(), [])
            for name, p in candidates:
                box = box_of(p, tensor)
                if box is not None:
                    return Target(name, p, *box)
        return None


@dataclass(frozen=True)
class _State:
    resolver: Resolver
    seed: int
    observe: Callable[[str, Target | None, Any], None] | None = None  # (function, target, tensor) per call


_STACK: list[_State] = []
_LOCK = threading.RLock()
_SAVED: list[tuple[Any, Any, Callable, Callable]] = []  # (container, key, original, replacement)


def _redirect(function: str, tensor: Any, params: dict) -> Any:
    """Call fastinit's ``function`` on ``tensor``, keyed by where the tensor lies."""
    drop_in = getattr(I, function)
    state = _STACK[-1]
    target = state.resolver.resolve(tensor)
    if state.observe is not None:
        state.observe(function, target, tensor)
    if target is None or tensor.numel() == 0:
        return drop_in(tensor, **params)  # the default stream (no seed), or a no-op with torch's warnings
    if function in _DRAWS_NOTHING:
        return drop_in(tensor, **params)
    if target.whole:
        return drop_in(tensor, **params, seed=state.seed, name=target.name)
    if function in _WHOLE_VIEW:
        return drop_in(tensor, **params, seed=state.seed, name=target.label)
    box = tensor.squeeze()  # the view with the box's shape: its size-1 dims where the box has them
    for d, n in enumerate(target.box_shape):
        if n == 1:
            box = box.unsqueeze(d)
    stream: dict[str, Any] = dict(seed=state.seed, name=target.name, global_shape=tuple(target.parameter.shape),
                  offset=target.offset)
    fans = I._fans(tensor, None) if function in _FANS else None  # torch's fans are those of the view
    distribution = "uniform" if function.endswith("uniform_") else "normal"
    if function.startswith("xavier"):
        I._xavier(box, params["gain"], distribution, function, **stream, fans=fans)
    elif function.startswith("kaiming"):
        I._kaiming(box, params["a"], params["mode"], params["nonlinearity"], distribution, function, **stream,
                   fans=fans)
    else:
        drop_in(box, **params, **stream)
    return tensor


def _replacement(name: str, original: Callable) -> Callable:
    """A function with ``original``'s signature that calls fastinit's drop-in (``generator`` ignored)."""
    function = name if name.endswith("_") else name + "_"
    signature = inspect.signature(TORCH_FUNCTIONS[function])  # a deprecated alias takes *args, **kwargs

    def init(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("generator", None)
        tensor = params.pop("tensor")
        if not name.endswith("_"):
            warnings.warn(I.deprecation(name), FutureWarning, stacklevel=2)
        return _redirect(function, tensor, params)

    init.__name__ = init.__qualname__ = name
    init.__signature__ = signature  # type: ignore[attr-defined]
    init.__doc__ = f"fastinit's ``{function}`` (installed by ``fastinit.torch.patched``): {original.__doc__ or ''}"
    return init


_REPLACEMENTS = {name: _replacement(name, original) for name, original in TORCH_FUNCTIONS.items()}


def _install() -> None:
    by_id = {id(original): _REPLACEMENTS[name] for name, original in TORCH_FUNCTIONS.items()}
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] == "fastinit":
            continue
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is not dict:
            continue
        for key, value in list(namespace.items()):
            if id(value) in by_id:
                _SAVED.append((namespace, key, value, by_id[id(value)]))
                namespace[key] = by_id[id(value)]
            # type(), not isinstance(): some module globals warn when their __class__ is looked at
            elif type(value) is dict and value is not TORCH_FUNCTIONS and not key.startswith("__"):
                for inner_key, inner in list(value.items()):
                    if id(inner) in by_id:
                        _SAVED.append((value, inner_key, inner, by_id[id(inner)]))
                        value[inner_key] = by_id[id(inner)]


def _uninstall() -> None:
    while _SAVED:
        container, key, original, replacement = _SAVED.pop()
        if container.get(key) is replacement:  # leave whatever someone else put there since
            container[key] = original


@contextlib.contextmanager
def patched(module: torch.nn.Module | None = None, *, seed: int | None = None) -> Iterator[None]:
    """Make every ``torch.nn.init`` function fastinit's inside the block (see the module docstring).

    Parameters of ``module`` are keyed by name under ``seed`` (None: one seed from the default
    stream for the whole block), so ``reset_parameters()`` or a library's init code gives values
    that depend only on ``(seed, name, index)``. Blocks nest (the innermost one keys the calls); the
    replacement is process-wide, so other threads' init calls are redirected too.

    Examples:
        >>> import torch, fastinit.torch as fit
        >>> layer = torch.nn.Linear(4, 3)
        >>> with fit.patched(layer, seed=0):
        ...     layer.reset_parameters()
        >>> expected = fit.init_module(torch.nn.Linear(4, 3), seed=0)
        >>> bool(torch.equal(layer.weight, expected.weight) and torch.equal(layer.bias, expected.bias))
        True
    """
    with patching(Resolver(module), concrete_seed(seed)):
        yield


@contextlib.contextmanager
def patching(resolver: Resolver, seed: int, observe: Callable[[str, Target | None, Any], None] | None = None
             ) -> Iterator[None]:
    """``patched`` with a given resolver, and ``observe(function, target, tensor)`` called on every
    redirected call (how ``fastinit.transformers`` learns what a model's init wrote)."""
    state = _State(resolver, seed, observe)
    with _LOCK:
        if not _STACK:
            _install()
        _STACK.append(state)
    try:
        yield
    finally:
        with _LOCK:
            _STACK.remove(state)
            if not _STACK:
                _uninstall()
