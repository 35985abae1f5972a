"""``fastinit.torch.patched``: every ``torch.nn.init`` function is fastinit's for the duration of a
``with`` block, so ``reset_parameters()`` of any module, and any library's init code, draws fastinit
values keyed by parameter name.

What is replaced: the functions of ``torch.nn.init`` (and its deprecated aliases), and every copy of
them that a loaded module holds — a module global (``from torch.nn.init import xavier_uniform_``, as
``torch.nn.modules.activation`` does) or a value of a module-level dict (as
``transformers.initialization.TORCH_INIT_FUNCTIONS`` keeps them). Not reached: copies held
elsewhere (class attributes, lists, nested or other containers, closures, ``functools.partial``)
and tensor methods (``tensor.normal_()``); they draw from torch's own generator, and the outermost
``patched`` block warns when its state changed inside it. A copy bound inside the block (a module
imported there) keeps the replacement, which outside any block is torch's own function.

How a target is keyed: a parameter of the registered ``module`` (its smallest full name, as
``init_module`` keys it) gets stream ``(seed, name)``, and so does a tensor that views all of it
(``p.data``, ``p.detach()``, also of a DTensor, a channels-last or a transposed parameter, or a
``Parameter`` subclass); a view of one that is a box of it (a row such as an embedding's padding
row, a block of columns: each of its dims steps as a dim of the parameter does, in order) gets the
same stream at the box's position, with the fans of the view for fan-based schemes; ``orthogonal_``
and ``sparse_`` on such a view draw the view as a tensor of its own, named ``name[box]``. Anything
else — a tensor of no registered module, a view that is not a box (transposed, strided, reshaped),
a module built inside the block before it is attached to the registered one — is unresolved: with
an explicit ``seed`` the block's k-th call that draws into an unresolved tensor gets stream
``(seed, "<unresolved k>")`` (reproducible, but dependent on the order of the calls, unlike a
resolved parameter), with ``seed=None`` the next seed of the default stream. A DTensor needs an
explicit ``seed`` (every rank draws from it). ``generator=`` is ignored: values come from the seed
and the name. As torch's functions do, ``uniform_``, ``normal_``, ``constant_`` and
``kaiming_uniform_`` first hand the call to a tensor subclass's ``__torch_function__`` or an active
``TorchFunctionMode``.

Threads: the replacement is process-wide, so the calls of every thread inside an open block are
keyed by it; a block opened by one thread while another thread's block is open is refused (nesting
in one thread is fine; the innermost block keys the calls).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from . import _torch_init as I
from ._streams import concrete_seed
from ._torch_modules import _owners
from ._torch_tensors import local_tensor

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


def _storage(tensor: torch.Tensor) -> int | None:
    """The address of the memory ``tensor`` (a DTensor's local shard) views, or None when it has none
    of its own (meta, fake, empty, a wrapper subclass)."""
    local = local_tensor(tensor)
    if local.is_meta:
        return None
    try:
        return local.untyped_storage().data_ptr() or None
    except (RuntimeError, NotImplementedError):  # a wrapper subclass has no storage of its own
        return None


def box_of(parameter: torch.Tensor, view: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """``(box shape, offset)`` of ``view`` in ``parameter`` when it is a box of it, else None.

    A box is a view of the parameter (or of its memory) with the same dtype whose dims each step as
    one dim of the parameter does (the same stride), in the parameter's order, starting at an
    in-bounds index: a dim of size 1 may have any stride, and a parameter dim the view drops (as in a
    row ``w[i]``) has size 1 in the box. The parameter's strides may be in any order (channels-last,
    transposed), each larger than the span of the dims with smaller ones (so that an offset in its
    memory is one index)."""
    if view.dtype != parameter.dtype:
        return None
    if view._base is not parameter and (_storage(view) is None or _storage(view) != _storage(parameter)):
        return None
    shape, strides = tuple(parameter.shape), parameter.stride()
    dims = sorted((d for d, n in enumerate(shape) if n != 1), key=lambda d: strides[d], reverse=True)
    span = 0  # the largest step within the dims of smaller strides: each stride must pass it
    for d in reversed(dims):
        if strides[d] <= span:
            return None
        span += (shape[d] - 1) * strides[d]
    steps = [(n, s) for n, s in zip(view.shape, view.stride()) if n != 1]
    box, j = [1] * len(shape), 0
    for d, (n, s) in enumerate(zip(shape, strides)):
        if n != 1 and j < len(steps) and steps[j][1] == s:
            box[d] = steps[j][0]
            j += 1
    if j != len(steps):
        return None
    rest, offset = int(view.storage_offset()) - int(parameter.storage_offset()), [0] * len(shape)
    for d in dims:  # the largest strides first: the index of the view's first element, dim by dim
        offset[d], rest = divmod(rest, strides[d])
    if rest or any(not 0 <= o <= n - b for o, b, n in zip(offset, box, shape)):
        return None
    return tuple(box), tuple(offset)


def _dtensor(tensor: torch.Tensor) -> bool:
    return local_tensor(tensor) is not tensor


def _whole_dtensor(parameter: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Whether the DTensor ``tensor`` is all of the DTensor ``parameter`` (its ``.data``, a detached
    copy): the same global shape, placements and mesh, and a local tensor that views all of the
    parameter's."""
    if not (_dtensor(parameter) and _dtensor(tensor)) or tensor.shape != parameter.shape:
        return False
    if (tensor.placements, tensor.device_mesh) != (parameter.placements, parameter.device_mesh):  # type: ignore
        return False
    local, own = local_tensor(tensor), local_tensor(parameter)
    box = box_of(own, local)
    return box is not None and box[0] == tuple(own.shape)


class Resolver:
    """The parameters (and buffers) of the registered module, by identity, as views, and by the memory
    they view (indexed under a lock: threads may resolve at once).

    A parameter is named as ``init_module`` names it (a shared one by its smallest full name, or for
    a transformers model by the name transformers saves it under)."""

    def __init__(self, module: torch.nn.Module | None):
        if module is not None and not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module or None, got {type(module).__name__}")
        self.module = module
        self._by_id: dict[int, tuple[str, torch.Tensor]] = {}
        self._by_storage: dict[int, list[tuple[str, torch.Tensor]]] = {}
        self._lock = threading.Lock()

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
            if (address := _storage(t)) is not None:
                self._by_storage.setdefault(address, []).append((name, t))

    def resolve(self, tensor: Any) -> Target | None:
        if self.module is None or not isinstance(tensor, torch.Tensor):
            return None
        with self._lock:
            for attempt in range(2):  # the module may have changed since the index was built
                if attempt or not self._by_id:
                    self._index()
                target = self._lookup(tensor)
                if target is not None:
                    return target
        return None

    def _lookup(self, tensor: torch.Tensor) -> Target | None:
        if id(tensor) in self._by_id:
            name, p = self._by_id[id(tensor)]
            return Target(name, p, tuple(p.shape), (0,) * p.dim())
        candidates = [self._by_id[id(tensor._base)]] if id(tensor._base) in self._by_id else []
        if (address := _storage(tensor)) is not None:
            candidates += self._by_storage.get(address, [])
        for name, p in candidates:
            if _dtensor(p) or _dtensor(tensor):
                if _whole_dtensor(p, tensor):
                    return Target(name, p, tuple(p.shape), (0,) * p.dim())
                continue
            box = box_of(p, tensor)
            if box is not None:
                return Target(name, p, *box)
        return None


#: the stream name of the block's k-th draw into a tensor it cannot resolve (under an explicit seed)
UNRESOLVED = "<unresolved {}>"


@dataclass(frozen=True)
class _State:
    resolver: Resolver
    seed: int
    explicit: bool  # the caller gave the seed: unresolved draws and DTensors are keyed by it
    observe: Callable[[str, Target | None, Any], None] | None = None  # (function, target, tensor) per call
    thread: int = field(default_factory=threading.get_ident)  # the thread that opened the block
    unresolved: Iterator[int] = field(default_factory=itertools.count)  # k of the next unresolved draw


_STACK: list[_State] = []
_LOCK = threading.RLock()
_SAVED: list[tuple[Any, Any, Callable, Callable]] = []  # (container, key, original, replacement)


def _redirect(state: _State, function: str, tensor: Any, params: dict) -> Any:
    """Call fastinit's ``function`` on ``tensor``, keyed by where the tensor lies."""
    drop_in = getattr(I, function)
    target = state.resolver.resolve(tensor)
    if state.observe is not None:
        state.observe(function, target, tensor)
    if function in _DRAWS_NOTHING:
        return drop_in(tensor, **params)
    if not state.explicit and _dtensor(tensor):
        what = f"parameter {target.name!r}" if target is not None else "a DTensor of no registered module"
        raise ValueError(f"fastinit.torch.patched: {what} is a DTensor, and the block has no explicit seed (each rank "
                         "would draw its shard from a seed of its own): pass patched(module, seed=...), the same "
                         "on every rank")
    if target is None:
        if not state.explicit:
            return drop_in(tensor, **params)  # the default stream
        return drop_in(tensor, **params, seed=state.seed, name=UNRESOLVED.format(next(state.unresolved)))
    if tensor.numel() == 0:
        return drop_in(tensor, **params)  # a no-op with torch's warnings
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


def _open_block() -> _State | None:
    """The innermost open block, if any."""
    with _LOCK:
        return _STACK[-1] if _STACK else None


def _replacement(name: str, original: Callable) -> Callable:
    """A function with ``original``'s signature that calls fastinit's drop-in (``generator`` ignored)
    inside a block, and is torch's ``original`` outside any (where a copy bound in a block outlives it)."""
    function = name if name.endswith("_") else name + "_"
    signature = inspect.signature(TORCH_FUNCTIONS[function])  # a deprecated alias takes *args, **kwargs

    def init(*args: Any, **kwargs: Any) -> Any:
        state = _open_block()
        if state is None:
            return original(*args, **kwargs)
        if function != name:  # a deprecated alias: torch's warning, then the function
            warnings.warn(I.deprecation(name), FutureWarning, stacklevel=2)
            return _REPLACEMENTS[function](*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("generator", None)
        tensor = params.pop("tensor")
        return _redirect(state, function, tensor, params)

    init.__name__ = init.__qualname__ = name
    init.__signature__ = signature  # type: ignore[attr-defined]
    init.__doc__ = f"fastinit's ``{function}`` (installed by ``fastinit.torch.patched``): {original.__doc__ or ''}"
    return I.overridable(init) if name in I.OVERRIDABLE else init


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


#: what ``patched`` reaches, for the warning about draws from torch's generator
_ROUTES = ("torch.nn.init's functions, module globals bound to them and values of module-level dicts; not class "
           "attributes, lists, nested containers, closures or functools.partial")


@contextlib.contextmanager
def patched(module: torch.nn.Module | None = None, *, seed: int | None = None) -> Iterator[None]:
    """Make every ``torch.nn.init`` function fastinit's inside the block (see the module docstring).

    Parameters of ``module`` are keyed by name under ``seed`` (None: one seed from the default
    stream for the whole block), so ``reset_parameters()`` or a library's init code gives values
    that depend only on ``(seed, name, index)``. With an explicit ``seed``, tensors the block cannot
    resolve get reproducible streams too (by call order); a DTensor needs one. Blocks nest (the
    innermost one keys the calls); the replacement is process-wide, so other threads' init calls
    are redirected too, and a block of another thread cannot open meanwhile. When the outermost
    block ends and torch's default generator has drawn inside it (an init function held where the
    patch does not reach, or a tensor method such as ``tensor.normal_()``), it warns
    (``RuntimeWarning``).

    Examples:
        >>> import torch, fastinit.torch as fit
        >>> layer = torch.nn.Linear(4, 3)
        >>> with fit.patched(layer, seed=0):
        ...     layer.reset_parameters()
        >>> expected = fit.init_module(torch.nn.Linear(4, 3), seed=0)
        >>> bool(torch.equal(layer.weight, expected.weight) and torch.equal(layer.bias, expected.bias))
        True
    """
    outermost = _open_block() is None
    rng = torch.random.get_rng_state() if outermost else None
    with patching(Resolver(module), concrete_seed(seed), explicit_seed=seed is not None):
        yield
    if rng is not None and not torch.equal(torch.random.get_rng_state(), rng):
        warnings.warn("fastinit.torch.patched: something drew from torch's own generator inside the block, so those "
                      "values are torch's, not fastinit's: an init function held where patched does not replace it "
                      f"(it replaces {_ROUTES}), or a tensor method such as tensor.normal_()", RuntimeWarning,
                      stacklevel=3)


@contextlib.contextmanager
def patching(resolver: Resolver, seed: int, observe: Callable[[str, Target | None, Any], None] | None = None, *,
             explicit_seed: bool = True) -> Iterator[None]:
    """``patched`` with a given resolver, and ``observe(function, target, tensor)`` called on every
    redirected call (how ``fastinit.transformers`` learns what a model's init wrote);
    ``explicit_seed=False``: ``seed`` was drawn from the default stream (unresolved tensors then take
    the default stream, and DTensors are refused)."""
    state = _State(resolver, seed, explicit_seed, observe)
    with _LOCK:
        if _STACK and _STACK[0].thread != state.thread:
            raise RuntimeError("fastinit.torch.patched: a block opened by another thread is still open; the "
                               "replacement is process-wide, so two threads' blocks would key each other's calls: "
                               "open them one after another, or one block around the work of both threads")
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
