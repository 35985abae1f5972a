"""``torch.nn.init``'s behaviour around the fills: what each function accepts (tensor and NumPy
hyperparameters, complex tensors, degenerate parameters), what it does on meta and zero-element
tensors, what it warns and which exception classes it raises. The values come from the fastinit
functions of the same name; no RNG here.

Where torch raises a ``RuntimeError``, ``ZeroDivisionError`` or ``NotImplementedError`` for a bad
argument, the drop-ins raise an exception that is both that class and fastinit's ``ValueError`` /
``TypeError``, so code written for either keeps working.

Complex tensors are filled through their real view (``torch.view_as_real``: shape ``(*shape, 2)``,
the real and imaginary part of each element side by side), as torch fills them: each part of a
``uniform_`` draw is U[a, b); each part of a ``normal_`` draw is N(mean, std**2 / 2), so the complex
variance is ``std**2``; fans are those of the complex tensor.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from . import distributions as D
from . import schemes as S
from ._streams import concrete_seed
from ._torch_tensors import DTYPES, fill_tensor, local_tensor
from ._validate import check_real

__all__ = ["TorchRuntimeError", "TorchZeroDivisionError", "TorchNotImplementedError", "calculate_gain", "uniform_",
           "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_"]

#: torch's functions, as imported (before anything patches them), for the dtypes fastinit does not fill
_TORCH_DIRAC = torch.nn.init.dirac_


class TorchRuntimeError(ValueError, RuntimeError):
    """A bad argument where ``torch.nn.init`` raises ``RuntimeError`` (from the tensor method it calls)."""


class TorchZeroDivisionError(ValueError, ZeroDivisionError):
    """A bad argument where ``torch.nn.init`` divides by zero."""


class TorchNotImplementedError(TypeError, NotImplementedError):
    """A dtype ``torch.nn.init`` has no kernel for (integer and bool draws, complex truncation)."""


Box = Sequence[int] | None


@contextlib.contextmanager
def _raised_as(error: type[Exception]) -> Iterator[None]:
    """Re-raise fastinit's ``ValueError`` for a parameter as ``error`` (a subclass of ValueError)."""
    try:
        yield
    except ValueError as err:
        if isinstance(err, error):
            raise
        raise error(str(err)) from None


def _number(value: Any) -> Any:
    """A one-element tensor as its Python number (torch's fills accept them); anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def _no_generator(generator: Any, function: str) -> None:
    if generator is not None:
        raise ValueError(f"fastinit.torch.{function}: fastinit does not draw from torch generators; pass seed= "
                         "(and name=) for a reproducible stream")


def _check_dim(tensor: torch.Tensor, dims: Sequence[int], message: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() not in dims:
        raise ValueError(message)


#: while set, the drop-ins hand each fill they would make to this function instead of making it, on
#: meta tensors too: ``record(tensor, fill, params, seed, name, global_shape, offset)`` (how
#: ``fastinit.transformers`` records a model's own initialization as a checkpoint spec)
RECORDER: contextvars.ContextVar[Callable[..., None] | None] = contextvars.ContextVar("fastinit_recorder",
                                                                                      default=None)


def _is_meta(tensor: torch.Tensor) -> bool:
    """Whether the tensor (or a DTensor's local shard) has no storage: torch's fills are no-ops there
    (unless a recorder wants the fill)."""
    return isinstance(tensor, torch.Tensor) and local_tensor(tensor).is_meta and RECORDER.get() is None


def _drawable(tensor: torch.Tensor, function: str, complex_ok: bool = True) -> bool:
    """Whether ``tensor`` is complex (filled through its real view); refuse dtypes torch has no draw for."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"fastinit.torch.{function}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_complex() and complex_ok:
        return True
    if tensor.dtype not in DTYPES:
        kinds = ", ".join(map(str, DTYPES)) + (" or a complex dtype" if complex_ok else "")
        raise TorchNotImplementedError(f"fastinit.torch.{function}: tensor dtype must be one of {kinds}, "
                                       f"got {tensor.dtype}")
    return False


def _draw(tensor: torch.Tensor, fill: Callable[..., np.ndarray], params: dict, function: str, seed: Any, name: str,
          global_shape: Box, offset: Box) -> torch.Tensor:
    """``fill(array, **params)`` on the box of ``tensor`` (its real view when complex) for stream
    ``(seed, name)``; a DTensor fills its local shard."""

    record = RECORDER.get()
    if record is not None:
        record(tensor, fill, params, seed, name, global_shape, offset)
        return tensor

    def run(array: np.ndarray, box_shape: Box, box_offset: Box) -> None:
        fill(array, **params, seed=seed, name=name, global_shape=box_shape, offset=box_offset)

    return fill_tensor(tensor, run, f"fastinit.torch.{function}", seed, global_shape, offset)


def _fixed(tensor: torch.Tensor, fill: Callable[..., np.ndarray], params: dict, function: str, global_shape: Box,
           offset: Box) -> torch.Tensor:
    """A fill that draws nothing (constant, eye, dirac) on the box of a float or complex tensor."""
    record = RECORDER.get()
    if record is not None:
        record(tensor, fill, params, None, "", global_shape, offset)
        return tensor

    def run(array: np.ndarray, box_shape: Box, box_offset: Box) -> None:
        fill(array, **params, global_shape=box_shape, offset=box_offset)

    return fill_tensor(tensor, run, f"fastinit.torch.{function}", 0, global_shape, offset)


def _shape(tensor: torch.Tensor, global_shape: Box) -> tuple[int, ...]:
    """The shape of the tensor a fill sees (a DTensor's global shape, or the given ``global_shape``)."""
    return tuple(global_shape) if global_shape is not None else tuple(tensor.shape)


# ------------------------------------------------------------------------------------ gains
_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid")


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    """``torch.nn.init.calculate_gain``: 1 for linear, conv*, conv_transpose* and sigmoid; 5/3 for tanh;
    sqrt(2) for relu; sqrt(2 / (1 + slope**2)) for leaky_relu (``param`` the slope, an int or float,
    default 0.01); 3/4 for selu. Anything else is a ``ValueError``, as in torch."""
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "leaky_relu" and param is not None and (isinstance(param, bool)
                                                               or not isinstance(param, (int, float))):
        raise ValueError(f"negative_slope {param} not a valid number")
    return S.calculate_gain(nonlinearity, param)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- fills
def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None, *,
             seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """U[a, b) in place, as ``torch.nn.init.uniform_``; ``a == b`` fills ``a``."""
    _no_generator(generator, "uniform_")
    a, b = _number(a), _number(b)
    if _is_meta(tensor):
        return tensor
    _drawable(tensor, "uniform_")
    with _raised_as(TorchRuntimeError):
        low, high = check_real("a", a), check_real("b", b)
        if low > high:
            raise TorchRuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
        if low == high:
            return _fixed(tensor, S.constant_, dict(val=low), "uniform_", global_shape, offset)
        return _draw(tensor, D.uniform_, dict(low=low, high=high), "uniform_", seed, name, global_shape, offset)


def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None, *,
            seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(mean, std**2) in place, as ``torch.nn.init.normal_``; ``std == 0`` fills ``mean``, and so does
    an infinite or NaN ``mean``."""
    _no_generator(generator, "normal_")
    mean, std = _number(mean), _number(std)
    with _raised_as(TorchRuntimeError):
        std = check_real("std", std, allow_inf=True, allow_nan=True)
        if not std >= 0:
            raise TorchRuntimeError(f"normal expects std >= 0.0, but found std {std}")
        if _is_meta(tensor):
            return tensor
        parts = _drawable(tensor, "normal_")
        mean = check_real("mean", mean, allow_inf=True, allow_nan=True)
        if not math.isfinite(mean):  # every value is mean, as in torch
            return _fixed(tensor, _full, dict(value=mean), "normal_", global_shape, offset)
        return _draw(tensor, D.normal_, dict(mean=mean, std=std / math.sqrt(2) if parts else std), "normal_", seed,
                     name, global_shape, offset)


def _full(out: np.ndarray, value: float, global_shape: Box = None, offset: Box = None) -> np.ndarray:
    """Every element ``value``, NaN and infinities included (a box of a fill that draws nothing)."""
    out[...] = value
    return out


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: torch.Generator | None = None, *, seed: int | None = None, name: str = "",
                  global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(mean, std**2) truncated to the absolute interval [a, b], as ``torch.nn.init.trunc_normal_``
    (``std < 0`` acts as ``|std|``, ``a == b`` fills ``a``)."""
    _no_generator(generator, "trunc_normal_")
    mean, std, a, b = (_number(v) for v in (mean, std, a, b))
    if _is_meta(tensor):
        return tensor
    if isinstance(std, (int, float)) and std == 0:
        raise TorchZeroDivisionError("trunc_normal_ with std=0 divides by zero (as in torch)")
    if _drawable(tensor, "trunc_normal_"):
        raise TorchNotImplementedError("fastinit.torch.trunc_normal_: complex tensors cannot be truncated "
                                       "(torch has no comparison for them either)")
    with _raised_as(TorchRuntimeError):
        std = abs(check_real("std", std))
        low, high = check_real("a", a, allow_inf=True), check_real("b", b, allow_inf=True)
        if low > high:
            raise TorchRuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    if low == high:
        return _fixed(tensor, S.constant_, dict(val=low), "trunc_normal_", global_shape, offset)
    return _draw(tensor, D.trunc_normal_, dict(mean=mean, std=std, a=low, b=high), "trunc_normal_", seed, name,
                 global_shape, offset)


def constant_(tensor: torch.Tensor, val: float, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """Every element ``val``, as ``torch.nn.init.constant_`` (any dtype; tensors as ``val`` too)."""
    val = _number(val)
    if _is_meta(tensor):
        return tensor
    if isinstance(tensor, torch.Tensor) and (tensor.dtype not in DTYPES or isinstance(val, complex)):
        with torch.no_grad():
            return tensor.fill_(val)  # integer, bool and complex tensors: torch's own fill
    return _fixed(tensor, S.constant_, dict(val=val), "constant_", global_shape, offset)


def ones_(tensor: torch.Tensor, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """Every element 1, as ``torch.nn.init.ones_``."""
    return constant_(tensor, 1.0, global_shape=global_shape, offset=offset)


def zeros_(tensor: torch.Tensor, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """Every element 0, as ``torch.nn.init.zeros_``."""
    return constant_(tensor, 0.0, global_shape=global_shape, offset=offset)


def eye_(tensor: torch.Tensor, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """The identity matrix of a 2-D tensor, as ``torch.nn.init.eye_``."""
    _check_dim(tensor, (2,), "Only tensors with 2 dimensions are supported")
    if _is_meta(tensor) or math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
    if tensor.dtype not in DTYPES:  # integer, bool and complex tensors: torch's own identity
        with torch.no_grad():
            return torch.eye(*tensor.shape, out=tensor, requires_grad=tensor.requires_grad)
    return _fixed(tensor, S.eye_, {}, "eye_", global_shape, offset)


def dirac_(tensor: torch.Tensor, groups: int = 1, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """The identity convolution of a 3-, 4- or 5-D tensor (tap ``k // 2``, per group), as
    ``torch.nn.init.dirac_``."""
    _check_dim(tensor, (3, 4, 5), "Only tensors with 3, 4, or 5 dimensions are supported")
    if groups == 0:
        raise TorchZeroDivisionError("dirac_ with groups=0 divides by zero (as in torch)")
    if _shape(tensor, global_shape)[0] % groups:
        raise ValueError(f"dim 0 ({_shape(tensor, global_shape)[0]}) must be divisible by groups ({groups})")
    if _is_meta(tensor) or math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
    if tensor.dtype not in DTYPES:  # integer, bool and complex tensors: torch's own delta
        return _TORCH_DIRAC(tensor, groups)
    return _fixed(tensor, S.dirac_, dict(groups=groups), "dirac_", global_shape, offset)


# --------------------------------------------------------------------------------- schemes
def _fans(tensor: torch.Tensor, global_shape: Box) -> tuple[int, int]:
    shape = _shape(tensor, global_shape)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    return S.compute_fans(shape, "torch")


def _variance_scaling(tensor: torch.Tensor, scale: float, mode: str, distribution: str, fans: tuple[int, int],
                      function: str, seed: Any, name: str, global_shape: Box, offset: Box) -> torch.Tensor:
    """A complex tensor's scheme: each part as torch draws it (normal parts carry half the variance)."""
    if distribution == "normal":
        scale = scale / 2
    params = dict(scale=scale, mode=mode, distribution=distribution, fans=fans)
    return _draw(tensor, S.variance_scaling_, params, function, seed, name, global_shape, offset)


def _xavier(tensor: torch.Tensor, gain: Any, distribution: str, function: str, seed: Any, name: str,
            global_shape: Box, offset: Box, fans: tuple[int, int] | None = None) -> torch.Tensor:
    """The two Xavier drop-ins; ``fans`` overrides those of the tensor (a view of a larger one)."""
    gain = _number(gain)
    fan_in, fan_out = _fans(tensor, global_shape) if fans is None else fans
    if fan_in + fan_out == 0:
        raise TorchZeroDivisionError(f"{function} of a {_shape(tensor, global_shape)} tensor: fan_in + fan_out = 0")
    if _is_meta(tensor):
        return tensor
    parts = _drawable(tensor, function)
    if math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
    with _raised_as(TorchRuntimeError):
        gain = check_real("gain", gain)
        if gain < 0:
            raise TorchRuntimeError(f"{function} with gain={gain} < 0: the draw's bounds are reversed (as in torch)")
        if gain == 0:
            return _fixed(tensor, S.constant_, dict(val=0.0), function, global_shape, offset)
    if parts:
        return _variance_scaling(tensor, gain**2, "fan_avg", distribution, (fan_in, fan_out), function, seed, name,
                                 global_shape, offset)
    scheme = S.xavier_uniform_ if distribution == "uniform" else S.xavier_normal_
    params: dict[str, Any] = dict(gain=gain) if fans is None else dict(gain=gain, fans=fans)
    return _draw(tensor, scheme, params, function, seed, name, global_shape, offset)


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *,
                    seed: int | None = None, name: str = "", global_shape: Box = None,
                    offset: Box = None) -> torch.Tensor:
    """U(+-gain * sqrt(6 / (fan_in + fan_out))), fans of ``(out, in, *kernel)``, as ``torch.nn.init``."""
    _no_generator(generator, "xavier_uniform_")
    return _xavier(tensor, gain, "uniform", "xavier_uniform_", seed, name, global_shape, offset)


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *,
                   seed: int | None = None, name: str = "", global_shape: Box = None,
                   offset: Box = None) -> torch.Tensor:
    """N(0, gain**2 * 2 / (fan_in + fan_out)), untruncated, as ``torch.nn.init.xavier_normal_``."""
    _no_generator(generator, "xavier_normal_")
    return _xavier(tensor, gain, "normal", "xavier_normal_", seed, name, global_shape, offset)


def _kaiming(tensor: torch.Tensor, a: Any, mode: Any, nonlinearity: str, distribution: str, function: str,
             seed: Any, name: str, global_shape: Box, offset: Box, fans: tuple[int, int] | None = None) -> torch.Tensor:
    """The two Kaiming drop-ins; ``fans`` overrides those of the tensor (a view of a larger one)."""
    shape = _shape(tensor, global_shape)
    if 0 in shape:
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=S._caller_stacklevel())
        return tensor
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fans = _fans(tensor, global_shape) if fans is None else fans
    gain = calculate_gain(nonlinearity, a)
    if _is_meta(tensor):
        return tensor
    if _drawable(tensor, function):
        return _variance_scaling(tensor, gain**2, mode, distribution, fans, function, seed, name, global_shape, offset)
    scheme = S.kaiming_uniform_ if distribution == "uniform" else S.kaiming_normal_
    params = dict(a=a, mode=mode, nonlinearity=nonlinearity)
    if fans is not None:
        params["fans"] = fans
    return _draw(tensor, scheme, params, function, seed, name, global_shape, offset)


def kaiming_uniform_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: torch.Generator | None = None, *, seed: int | None = None, name: str = "",
                     global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """U(+-gain * sqrt(3 / fan)), as ``torch.nn.init.kaiming_uniform_`` (``a=math.sqrt(5)`` is torch's
    Linear / Conv default); a zero-element tensor warns and is left as it is."""
    _no_generator(generator, "kaiming_uniform_")
    return _kaiming(tensor, a, mode, nonlinearity, "uniform", "kaiming_uniform_", seed, name, global_shape, offset)


def kaiming_normal_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: torch.Generator | None = None, *, seed: int | None = None, name: str = "",
                    global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(0, gain**2 / fan), untruncated, as ``torch.nn.init.kaiming_normal_``."""
    _no_generator(generator, "kaiming_normal_")
    return _kaiming(tensor, a, mode, nonlinearity, "normal", "kaiming_normal_", seed, name, global_shape, offset)


def orthogonal_(tensor: torch.Tensor, gain: float = 1, generator: torch.Generator | None = None, *,
                seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """A (semi-)orthogonal matrix of ``(out, prod(rest))`` times ``gain``, as ``torch.nn.init.orthogonal_``
    (the whole tensor is computed, also for a shard)."""
    _no_generator(generator, "orthogonal_")
    gain = _number(gain)
    _check_dim(tensor, range(2, tensor.dim() + 2), "Only tensors with 2 or more dimensions are supported")
    if _is_meta(tensor) or math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
    if _drawable(tensor, "orthogonal_"):
        raise TorchNotImplementedError("fastinit.torch.orthogonal_: complex tensors are not supported (torch's QR "
                                       "sign step does not support them either)")
    return _draw(tensor, S.orthogonal_, dict(gain=gain), "orthogonal_", seed, name, global_shape, offset)


def sparse_(tensor: torch.Tensor, sparsity: float, std: float = 0.01, generator: torch.Generator | None = None, *,
            seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(0, std**2) with ``ceil(sparsity * rows)`` zeros per column of a 2-D tensor, as
    ``torch.nn.init.sparse_`` (a sparsity of 1 or more zeroes everything)."""
    _no_generator(generator, "sparse_")
    sparsity, std = _number(sparsity), _number(std)
    _check_dim(tensor, (2,), "Only tensors with 2 dimensions are supported")
    if _is_meta(tensor):
        return tensor
    parts = _drawable(tensor, "sparse_")
    shape = _shape(tensor, global_shape)
    if math.prod(shape) == 0:
        return tensor
    sparsity = check_real("sparsity", sparsity)
    if sparsity < 0:
        raise ValueError(f"sparsity must be >= 0, got {sparsity}")
    sparsity = min(sparsity, 1.0)  # torch zeroes every row from 1 on
    with _raised_as(TorchRuntimeError):
        std = check_real("std", std)
        if std < 0:
            raise TorchRuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if not parts:
        return _draw(tensor, S.sparse_, dict(sparsity=sparsity, std=std), "sparse_", seed, name, global_shape, offset)
    seed = concrete_seed(seed)
    zeros = math.ceil(sparsity * shape[0])

    def run(array: np.ndarray, box_shape: Box, box_offset: Box) -> None:  # the real view: (rows, cols, 2)
        assert box_shape is not None and box_offset is not None
        D.normal_(array, 0.0, std / math.sqrt(2), seed=seed, name=name, global_shape=box_shape, offset=box_offset)
        S.sparse_zeros_(array, box_shape[:2], box_offset[:2], zeros, seed, name)

    return fill_tensor(tensor, run, "fastinit.torch.sparse_", seed, global_shape, offset)


# ------------------------------------------------------------------------ deprecated names
def deprecation(old_name: str) -> str:
    """torch's warning for a deprecated name without the trailing underscore."""
    return f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{old_name}_`."


def deprecated(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """torch's deprecated alias of ``function`` (``normal`` for ``normal_``): a ``FutureWarning``, then the call."""
    old_name = function.__name__[:-1]

    def alias(*args: Any, **kwargs: Any) -> torch.Tensor:
        warnings.warn(deprecation(old_name), FutureWarning, stacklevel=2)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated (as in torch): use ``{function.__name__}``."
    return alias
