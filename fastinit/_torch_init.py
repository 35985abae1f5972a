"""``torch.nn.init``'s behaviour around the fills: what each function accepts (tensor, NumPy and
bool hyperparameters, complex tensors, degenerate parameters), what it does on meta, fake, empty,
sparse, nested and inference tensors, what it warns and which exception classes it raises. The values
come from the fastinit functions of the same name; no RNG here.

torch's functions are thin Python over two tensor methods, ``uniform_(from, to)`` and
``normal_(mean, std)``, and the drop-ins follow what those methods accept and check, in their
order: a hyperparameter that torch hands to one of them must be a number or a 0-d tensor (a
one-element 1-D tensor is a ``TypeError``), a bool counts as 0 or 1; ``normal_`` checks its std
and (on a meta tensor) the dtype before anything else, and leaves an empty integer tensor as it
is, while ``uniform_`` checks nothing on a meta tensor. Where torch raises a ``RuntimeError``,
``ZeroDivisionError``, ``NotImplementedError``, ``AttributeError`` or ``OverflowError`` for a bad
argument, the drop-ins raise an exception that is both that class and fastinit's ``ValueError`` /
``TypeError``, so code written for either keeps working. ``uniform_``, ``normal_``, ``constant_``
and ``kaiming_uniform_`` first hand the call to a tensor subclass with ``__torch_function__`` or an
active ``TorchFunctionMode``, as torch's functions of those names do.

Complex tensors are filled through their real view (``torch.view_as_real``: shape ``(*shape, 2)``,
the real and imaginary part of each element side by side), as torch fills them: each part of a
``uniform_`` draw is U[a, b); each part of a ``normal_`` draw is N(mean, std**2 / 2), so the complex
variance is ``std**2``; fans are those of the complex tensor.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import operator
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch._subclasses.fake_tensor import is_fake

from . import distributions as D
from . import schemes as S
from ._streams import concrete_seed
from ._torch_tensors import DTYPES, fill_tensor, local_tensor
from ._validate import check_real

__all__ = ["TorchRuntimeError", "TorchZeroDivisionError", "TorchNotImplementedError", "TorchAttributeError",
           "TorchOverflowError", "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
           "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "orthogonal_", "sparse_"]

#: torch's functions, as imported (before anything patches them), for the dtypes fastinit does not fill
_TORCH_DIRAC = torch.nn.init.dirac_


class TorchRuntimeError(ValueError, RuntimeError):
    """A bad argument where ``torch.nn.init`` raises ``RuntimeError`` (from the tensor method it calls)."""


class TorchZeroDivisionError(ValueError, ZeroDivisionError):
    """A bad argument where ``torch.nn.init`` divides by zero."""


class TorchNotImplementedError(TypeError, NotImplementedError):
    """A dtype ``torch.nn.init`` has no kernel for (integer and bool draws, complex truncation)."""


class TorchAttributeError(ValueError, AttributeError):
    """A Kaiming ``mode`` that is no string, where ``torch.nn.init`` calls its ``.lower()``."""


class TorchOverflowError(ValueError, OverflowError):
    """A number ``torch.nn.init`` cannot convert (an infinite ``sparse_`` sparsity, an int beyond 64 bits)."""


Box = Sequence[int] | None

#: the names of the drop-ins that, as torch's functions of the same name, first hand the call to
#: ``__torch_function__`` overrides (filled by ``overridable``)
OVERRIDABLE: set[str] = set()


def overridable(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, beginning as torch's function of the same name does: when its tensor has a
    ``__torch_function__`` override (a tensor subclass, or an active ``TorchFunctionMode``), the
    override is handed the call (this public function, every argument by keyword) and its result
    is returned."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def dispatching(*args: Any, **kwargs: Any) -> Any:
        tensor = args[0] if args else kwargs.get("tensor")
        if torch.overrides.has_torch_function_variadic(tensor):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return torch.overrides.handle_torch_function(dispatching, (tensor,), **bound.arguments)
        return function(*args, **kwargs)

    OVERRIDABLE.add(function.__name__)
    return dispatching


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
    """A hyperparameter torch computes with (``orthogonal_``'s gain, ``sparse_``'s sparsity): a
    one-element tensor as its Python number, a bool as 0 or 1; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return int(value) if isinstance(value, (bool, np.bool_)) else value


def _scalar(value: Any, argname: str, function: str, error: type[Exception], taker: str) -> Any:
    """``value`` as torch reads a scalar argument: a 0-d tensor as its number, a bool as 0 or 1; a
    tensor with dims is ``error`` (as ``taker`` raises it)."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise error(f"fastinit.torch.{function}: {argname} must be a number or a 0-d tensor (as {taker} takes "
                        f"it), got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    return int(value) if isinstance(value, (bool, np.bool_)) else value


def _float_arg(value: Any, argname: str, function: str) -> float:
    """``value`` as torch's tensor methods take a float argument (``uniform_(from, to)``,
    ``normal_(mean, std)``): a Python or NumPy number (a bool as 0 or 1) or a 0-d tensor, as a float
    (infinities and NaN included); a tensor with dims, or anything else, is a ``TypeError``, as in torch."""
    value = _scalar(value, argname, function, TypeError, "torch's tensor methods")
    return check_real(argname, value, allow_inf=True, allow_nan=True)


def _no_generator(generator: Any, function: str) -> None:
    if generator is not None:
        raise ValueError(f"fastinit.torch.{function}: fastinit does not draw from torch generators; pass seed= "
                         "(and name=) for a reproducible stream")


def _check_dim(tensor: torch.Tensor, dims: Sequence[int], message: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() not in dims:
        raise ValueError(message)


#: while set, the drop-ins offer each fill they would make to this function, on meta tensors too:
#: ``record(tensor, fill, params, seed, name, global_shape, offset)`` returns True when it takes the
#: fill (which is then not made), False to let it be made (how ``fastinit.transformers`` records a
#: model's own initialization as a checkpoint spec)
RECORDER: contextvars.ContextVar[Callable[..., bool] | None] = contextvars.ContextVar("fastinit_recorder",
                                                                                      default=None)


def _is_meta(tensor: torch.Tensor) -> bool:
    """Whether the tensor (or a DTensor's local shard) has no data (a meta tensor, or a
    ``FakeTensor`` of ``torch.compile`` and ``FakeTensorMode``): torch's fills are no-ops there
    (unless a recorder wants the fill)."""
    if not isinstance(tensor, torch.Tensor) or RECORDER.get() is not None:
        return False
    local = local_tensor(tensor)
    return local.is_meta or is_fake(local)


def _foreign(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` has a layout fastinit does not write (sparse, nested)."""
    return tensor.layout != torch.strided or tensor.is_nested


def _filled_by_torch(tensor: torch.Tensor) -> bool:
    """Whether a fill that draws nothing (constant, eye, dirac) is torch's own on ``tensor``: a dtype
    fastinit does not fill (integer, bool, complex, float8) or a layout it does not write."""
    return tensor.dtype not in DTYPES or _foreign(tensor)


def _tensor(tensor: Any, function: str) -> torch.Tensor:
    """``tensor``, if it is a torch tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"fastinit.torch.{function}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    return tensor


def _drawable(tensor: torch.Tensor, function: str, kernel: str = "uniform_", complex_ok: bool = True) -> bool | None:
    """Whether ``tensor`` is complex (filled through its real view), or None where torch's ``kernel``
    (the tensor method the function draws with, ``"uniform_"`` or ``"normal_"``) leaves it as it is:
    a tensor without data, or for ``normal_`` an empty tensor of a dtype it has no draw for.

    Refuses what the kernel refuses: a dtype it has no draw for (``normal_`` refuses one on a tensor
    without data too, with ``RuntimeError``; on other tensors both raise ``NotImplementedError``,
    ``uniform_`` also on empty ones), and a layout fastinit does not write (sparse, nested)."""
    if _is_meta(_tensor(tensor, function)):
        if kernel == "normal_" and not (tensor.is_floating_point() or tensor.is_complex()):
            raise TorchRuntimeError(f"fastinit.torch.{function}: expected a floating-point or complex dtype, "
                                    f"got {tensor.dtype} (as torch's normal_)")
        return None
    if _foreign(tensor):
        raise TorchNotImplementedError(f"fastinit.torch.{function}: fastinit draws into strided tensors, got a "
                                       f"{'nested' if tensor.is_nested else str(tensor.layout)} tensor")
    if tensor.is_complex() and complex_ok:
        return True
    if tensor.dtype not in DTYPES:
        if kernel == "normal_" and tensor.numel() == 0:
            return None  # torch's normal_ does not look at an empty tensor's dtype
        kinds = ", ".join(map(str, DTYPES)) + (" or a complex dtype" if complex_ok else "")
        raise TorchNotImplementedError(f"fastinit.torch.{function}: tensor dtype must be one of {kinds}, "
                                       f"got {tensor.dtype}")
    return False


def _fill(tensor: torch.Tensor, run: Callable[[np.ndarray, Box, Box], None], function: str, seed: Any,
          global_shape: Box, offset: Box) -> torch.Tensor:
    """``fill_tensor``, refusing as torch does to write in place into an inference tensor outside
    ``torch.inference_mode()``."""
    if local_tensor(_tensor(tensor, function)).is_inference() and not torch.is_inference_mode_enabled():
        raise TorchRuntimeError(f"fastinit.torch.{function}: an inference tensor cannot be written in place outside "
                                "torch.inference_mode() (as in torch); fill a clone, or fill it inside the mode")
    return fill_tensor(tensor, run, f"fastinit.torch.{function}", seed, global_shape, offset)


def _draw(tensor: torch.Tensor, fill: Callable[..., np.ndarray], params: dict, function: str, seed: Any, name: str,
          global_shape: Box, offset: Box) -> torch.Tensor:
    """``fill(array, **params)`` on the box of ``tensor`` (its real view when complex) for stream
    ``(seed, name)``; a DTensor fills its local shard."""

    record = RECORDER.get()
    if record is not None and record(tensor, fill, params, seed, name, global_shape, offset):
        return tensor

    def run(array: np.ndarray, box_shape: Box, box_offset: Box) -> None:
        fill(array, **params, seed=seed, name=name, global_shape=box_shape, offset=box_offset)

    return _fill(tensor, run, function, seed, global_shape, offset)


def _fixed(tensor: torch.Tensor, fill: Callable[..., np.ndarray], params: dict, function: str, global_shape: Box,
           offset: Box) -> torch.Tensor:
    """A fill that draws nothing (constant, eye, dirac) on the box of a float or complex tensor."""
    record = RECORDER.get()
    if record is not None and record(tensor, fill, params, None, "", global_shape, offset):
        return tensor

    def run(array: np.ndarray, box_shape: Box, box_offset: Box) -> None:
        fill(array, **params, global_shape=box_shape, offset=box_offset)

    return _fill(tensor, run, function, 0, global_shape, offset)


def _shape(tensor: torch.Tensor, global_shape: Box) -> tuple[int, ...]:
    """The shape of the tensor a fill sees (a DTensor's global shape, or the given ``global_shape``)."""
    return tuple(global_shape) if global_shape is not None else tuple(tensor.shape)


# ------------------------------------------------------------------------------------ gains
_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid")


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    """``torch.nn.init.calculate_gain``: 1 for linear, conv*, conv_transpose* and sigmoid; 5/3 for tanh;
    sqrt(2) for relu; sqrt(2 / (1 + slope**2)) for leaky_relu (``param`` the slope, an int or float,
    default 0.01: an infinite slope gives 0, a NaN one NaN); 3/4 for selu. Anything else is a
    ``ValueError``, as in torch."""
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "leaky_relu" and param is not None and (isinstance(param, bool)
                                                               or not isinstance(param, (int, float))):
        raise ValueError(f"negative_slope {param} not a valid number")
    if nonlinearity == "leaky_relu" and isinstance(param, float):
        # torch's formula as torch evaluates it: an infinite slope gives 0 (fastinit's own gains
        # refuse it) and a slope whose square overflows raises OverflowError (fastinit's: ValueError)
        return math.sqrt(2.0 / (1 + param**2))
    return S.calculate_gain(nonlinearity, param)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- fills
@overridable
def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None, *,
             seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """U[a, b) in place, as ``torch.nn.init.uniform_``; ``a == b`` fills ``a``."""
    _no_generator(generator, "uniform_")
    a, b = _float_arg(a, "a", "uniform_"), _float_arg(b, "b", "uniform_")
    if _drawable(tensor, "uniform_") is None:
        return tensor
    with _raised_as(TorchRuntimeError):
        low, high = check_real("a", a), check_real("b", b)
        if low > high:
            raise TorchRuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
        if low == high:
            return _fixed(tensor, S.constant_, dict(val=low), "uniform_", global_shape, offset)
        return _draw(tensor, D.uniform_, dict(low=low, high=high), "uniform_", seed, name, global_shape, offset)


def _check_std(std: float) -> None:
    """``Tensor.normal_``'s first check."""
    if not std >= 0:
        raise TorchRuntimeError(f"normal expects std >= 0.0, but found std {std}")


@overridable
def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None, *,
            seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(mean, std**2) in place, as ``torch.nn.init.normal_``; ``std == 0`` fills ``mean``, and so does
    an infinite or NaN ``mean``."""
    _no_generator(generator, "normal_")
    mean, std = _float_arg(mean, "mean", "normal_"), _float_arg(std, "std", "normal_")
    with _raised_as(TorchRuntimeError):
        _check_std(std)
        parts = _drawable(tensor, "normal_", "normal_")
        if parts is None:
            return tensor
        if not math.isfinite(mean):  # every value is mean, as in torch
            return _fixed(tensor, _full, dict(value=mean), "normal_", global_shape, offset)
        return _draw(tensor, D.normal_, dict(mean=mean, std=std / math.sqrt(2) if parts else std), "normal_", seed,
                     name, global_shape, offset)


def _full(out: np.ndarray, value: float, global_shape: Box = None, offset: Box = None) -> np.ndarray:
    """Every element ``value``, NaN and infinities included (a box of a fill that draws nothing)."""
    out[...] = value
    return out


def _norm_cdf(x: Any) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _trunc_normal_kernel(mean: Any, std: Any, a: Any, b: Any) -> str:
    """The tensor method torch's ``trunc_normal_`` draws with: ``"normal_"`` (rejection from the
    normal) when [a, b] holds more than 0.3 of its mass, else ``"uniform_"`` (rejection from the
    uniform on [a, b]). Computed as torch computes it, on the arguments as given, so that what torch
    raises there (a Python zero std, a bool tensor in a subtraction, a tensor of several values) is
    raised here, and what NumPy warns (a NumPy zero std) is warned."""
    bool((mean < a - 2 * std) or (mean > b + 2 * std))  # torch's test for a far mean (fastinit's draws stay exact)
    try:
        mass = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
    except ZeroDivisionError:
        raise TorchZeroDivisionError("trunc_normal_ with std=0 divides by zero (as in torch)") from None
    return "normal_" if mass > 0.3 else "uniform_"


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: torch.Generator | None = None, *, seed: int | None = None, name: str = "",
                  global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(mean, std**2) truncated to the absolute interval [a, b], as ``torch.nn.init.trunc_normal_``
    (``std < 0`` acts as ``|std|``, ``a == b`` fills ``a``; a zero ``std`` divides by zero as a Python
    number, and fills ``mean`` as a NumPy number or a tensor, as in torch). The hyperparameters torch
    hands to the tensor method it draws with (see ``_trunc_normal_kernel``) must be numbers or 0-d
    tensors, as there."""
    _no_generator(generator, "trunc_normal_")
    if _is_meta(_tensor(tensor, "trunc_normal_")):
        return tensor
    kernel = _trunc_normal_kernel(mean, std, a, b)
    if kernel == "normal_":  # torch hands mean and std to normal_, and the bounds to new_tensor
        mean, std = _float_arg(mean, "mean", "trunc_normal_"), _float_arg(std, "std", "trunc_normal_")
        for bound in (a, b):
            local_tensor(tensor).new_tensor(bound, device="cpu")  # what torch raises or warns there (overflow)
        a, b = _number(a), _number(b)
    else:  # the bounds to uniform_, mean and std to arithmetic on the candidates
        a, b = _float_arg(a, "a", "trunc_normal_"), _float_arg(b, "b", "trunc_normal_")
        mean, std = _number(mean), _number(std)
    if tensor.is_floating_point() and tensor.dtype not in DTYPES:  # float8: also empty, as torch's comparisons
        raise TorchNotImplementedError(f"fastinit.torch.trunc_normal_: tensor dtype must be one of "
                                       f"{', '.join(map(str, DTYPES))}, got {tensor.dtype}")
    parts = _drawable(tensor, "trunc_normal_", kernel)
    if parts is None:
        return tensor
    if parts:
        raise TorchNotImplementedError("fastinit.torch.trunc_normal_: complex tensors cannot be truncated "
                                       "(torch has no comparison for them either)")
    with _raised_as(TorchRuntimeError):
        std = abs(check_real("std", std))
        low, high = check_real("a", a, allow_inf=True), check_real("b", b, allow_inf=True)
        if low > high:
            raise TorchRuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    if low == high:
        return _fixed(tensor, S.constant_, dict(val=low), "trunc_normal_", global_shape, offset)
    if std == 0:  # a NumPy or tensor zero: torch's normal_ gives the mean
        mean = check_real("mean", mean)
        if not low <= mean <= high:
            raise ValueError(f"trunc_normal_ with std=0 and mean={mean} outside [a, b] = [{low}, {high}] has no "
                             "distribution")
        return _fixed(tensor, S.constant_, dict(val=mean), "trunc_normal_", global_shape, offset)
    with np.errstate(over="ignore"):  # a bound beyond the dtype's range becomes an infinity, silently as in torch
        return _draw(tensor, D.trunc_normal_, dict(mean=mean, std=std, a=low, b=high), "trunc_normal_", seed, name,
                     global_shape, offset)


def _fill_value(val: Any) -> Any:
    """``constant_``'s value as torch's ``fill_`` takes it: a number (an int within 64 bits, a bool as
    0 or 1, infinities and NaN included) or a 0-d tensor, as a Python float (or complex number)."""
    val = _scalar(val, "val", "constant_", TorchRuntimeError, "torch's fill_")
    if isinstance(val, int) and not -(1 << 63) <= val < 1 << 64:
        raise TorchOverflowError(f"fastinit.torch.constant_: val={val} does not fit in 64 bits (as in torch)")
    if isinstance(val, (complex, np.complexfloating)):
        return complex(val)
    return check_real("val", val, allow_inf=True, allow_nan=True)


def _constant(tensor: torch.Tensor, val: Any, function: str, global_shape: Box, offset: Box) -> torch.Tensor:
    """``constant_``, ``ones_`` and ``zeros_`` (which torch does not hand to overrides). A finite number
    beyond the range of the tensor's dtype is torch's ``RuntimeError``; a 0-d tensor's value is cast
    as torch casts it (possibly to an infinity)."""
    value = _fill_value(val)
    if _is_meta(tensor):
        return tensor
    if isinstance(tensor, torch.Tensor) and (_filled_by_torch(tensor) or isinstance(value, complex)):
        with torch.no_grad():
            return tensor.fill_(val)  # integer, bool and complex tensors, complex values, sparse or nested
    if isinstance(tensor, torch.Tensor) and abs(value) > torch.finfo(tensor.dtype).max:
        if math.isfinite(value) and not isinstance(val, torch.Tensor):
            raise TorchRuntimeError(f"fastinit.torch.{function}: value cannot be converted to type {tensor.dtype} "
                                    "without overflow")
        value = torch.tensor(value, dtype=torch.float64).to(tensor.dtype).item()  # rounded as torch casts it
    if math.isfinite(value):
        return _fixed(tensor, S.constant_, dict(val=value), function, global_shape, offset)
    return _fixed(tensor, _full, dict(value=value), function, global_shape, offset)


@overridable
def constant_(tensor: torch.Tensor, val: float, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """Every element ``val``, as ``torch.nn.init.constant_``: any dtype and layout; ``val`` a number
    (infinities and NaN included) or a 0-d tensor; a number beyond the dtype's range is a
    ``RuntimeError``, as in torch."""
    return _constant(tensor, val, "constant_", global_shape, offset)


def ones_(tensor: torch.Tensor, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """Every element 1, as ``torch.nn.init.ones_``."""
    return _constant(tensor, 1.0, "ones_", global_shape, offset)


def zeros_(tensor: torch.Tensor, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """Every element 0, as ``torch.nn.init.zeros_`` (a sparse tensor too: torch's own ``zero_``)."""
    if isinstance(tensor, torch.Tensor) and _foreign(tensor):
        with torch.no_grad():
            return tensor.zero_()
    return _constant(tensor, 0.0, "zeros_", global_shape, offset)


def eye_(tensor: torch.Tensor, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """The identity matrix of a 2-D tensor, as ``torch.nn.init.eye_``."""
    _check_dim(tensor, (2,), "Only tensors with 2 dimensions are supported")
    if _is_meta(tensor) or math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
    if _filled_by_torch(tensor):  # integer, bool and complex tensors, sparse or nested: torch's own identity
        with torch.no_grad():
            return torch.eye(*tensor.shape, out=tensor, requires_grad=tensor.requires_grad)
    return _fixed(tensor, S.eye_, {}, "eye_", global_shape, offset)


def dirac_(tensor: torch.Tensor, groups: int = 1, *, global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """The identity convolution of a 3-, 4- or 5-D tensor (tap ``k // 2``, per group), as
    ``torch.nn.init.dirac_``: ``groups`` must divide dim 0 (Python's ``%``) and be an integer (a bool
    counts as 0 or 1; a float is a ``TypeError``, also one that divides, as in torch); a negative
    ``groups`` that divides gives zeros."""
    _check_dim(tensor, (3, 4, 5), "Only tensors with 3, 4, or 5 dimensions are supported")
    channels = _shape(tensor, global_shape)[0]
    try:
        divides = channels % groups == 0
    except ZeroDivisionError:
        raise TorchZeroDivisionError("dirac_ with groups=0 divides by zero (as in torch)") from None
    if not divides:
        raise ValueError(f"dim 0 ({channels}) must be divisible by groups ({groups})")
    if _is_meta(tensor) or math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
    groups = int(operator.index(groups))  # torch loops over range(groups)
    if _filled_by_torch(tensor):  # integer, bool and complex tensors: torch's own delta
        return _TORCH_DIRAC(tensor, groups)
    if groups < 1:
        return _fixed(tensor, S.constant_, dict(val=0.0), "dirac_", global_shape, offset)
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


def _check_gain(gain: float, function: str) -> None:
    """A Xavier gain torch's draw takes: finite and not negative (else reversed bounds or a negative std)."""
    gain = check_real("gain", gain)
    if gain < 0:
        raise TorchRuntimeError(f"{function} with gain={gain} < 0: the draw's bounds are reversed (as in torch)")


def _xavier(tensor: torch.Tensor, gain: Any, distribution: str, function: str, seed: Any, name: str,
            global_shape: Box, offset: Box, fans: tuple[int, int] | None = None) -> torch.Tensor:
    """The two Xavier drop-ins; ``fans`` overrides those of the tensor (a view of a larger one)."""
    fan_in, fan_out = _fans(tensor, global_shape) if fans is None else fans
    if fan_in + fan_out == 0:
        raise TorchZeroDivisionError(f"{function} of a {_shape(tensor, global_shape)} tensor: fan_in + fan_out = 0")
    gain = _float_arg(gain, "gain", function)
    kernel = distribution + "_"
    with _raised_as(TorchRuntimeError):
        if kernel == "normal_":  # normal_ checks its std first, also without data
            _check_gain(gain, function)
        parts = _drawable(tensor, function, kernel)
        if parts is None:
            return tensor
        _check_gain(gain, function)
    if math.prod(_shape(tensor, global_shape)) == 0:
        return tensor
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
    """The two Kaiming drop-ins; ``fans`` overrides those of the tensor (a view of a larger one). An
    infinite slope ``a`` gives zeros, a NaN one torch's error."""
    shape = _shape(tensor, global_shape)
    if 0 in shape:
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=S._caller_stacklevel())
        return tensor
    if not isinstance(mode, str):
        raise TorchAttributeError(f"'{type(mode).__name__}' object has no attribute 'lower' (mode must be "
                                  "'fan_in' or 'fan_out')")
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fans = _fans(tensor, global_shape) if fans is None else fans
    gain = calculate_gain(nonlinearity, a)
    kernel = distribution + "_"
    if math.isnan(gain) and (kernel == "normal_" or not _is_meta(tensor)):
        raise TorchRuntimeError(f"{function} with a={a}: the gain is NaN (as in torch)")
    parts = _drawable(tensor, function, kernel)
    if parts is None:
        return tensor
    if gain == 0:
        return _fixed(tensor, S.constant_, dict(val=0.0), function, global_shape, offset)
    if parts:
        return _variance_scaling(tensor, gain**2, mode, distribution, fans, function, seed, name, global_shape, offset)
    scheme = S.kaiming_uniform_ if distribution == "uniform" else S.kaiming_normal_
    params = dict(a=a, mode=mode, nonlinearity=nonlinearity)
    if fans is not None:
        params["fans"] = fans
    return _draw(tensor, scheme, params, function, seed, name, global_shape, offset)


@overridable
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
    if _drawable(tensor, "orthogonal_", "normal_"):
        raise TorchNotImplementedError("fastinit.torch.orthogonal_: complex tensors are not supported (torch's QR "
                                       "sign step does not support them either)")
    return _draw(tensor, S.orthogonal_, dict(gain=gain), "orthogonal_", seed, name, global_shape, offset)


def sparse_(tensor: torch.Tensor, sparsity: float, std: float = 0.01, generator: torch.Generator | None = None, *,
            seed: int | None = None, name: str = "", global_shape: Box = None, offset: Box = None) -> torch.Tensor:
    """N(0, std**2) with ``ceil(sparsity * rows)`` zeros per column of a 2-D tensor, as
    ``torch.nn.init.sparse_`` (a sparsity of 1 or more zeroes everything; an infinite one is torch's
    ``OverflowError``)."""
    _no_generator(generator, "sparse_")
    _check_dim(tensor, (2,), "Only tensors with 2 dimensions are supported")
    if _is_meta(tensor):
        return tensor
    shape = _shape(tensor, global_shape)
    sparsity = _number(sparsity)
    try:
        math.ceil(sparsity * shape[0])  # torch's count of zeros: what it raises, raises here
    except OverflowError as err:
        raise TorchOverflowError(f"fastinit.torch.sparse_: sparsity={sparsity}: {err}") from None
    std = _float_arg(std, "std", "sparse_")
    with _raised_as(TorchRuntimeError):
        _check_std(std)
        std = check_real("std", std)
    parts = _drawable(tensor, "sparse_", "normal_")
    if parts is None or math.prod(shape) == 0:
        return tensor
    sparsity = check_real("sparsity", sparsity)
    if sparsity < 0:
        raise ValueError(f"sparsity must be >= 0, got {sparsity}")
    sparsity = min(sparsity, 1.0)  # torch zeroes every row from 1 on
    if not parts:
        return _draw(tensor, S.sparse_, dict(sparsity=sparsity, std=std), "sparse_", seed, name, global_shape, offset)
    seed = concrete_seed(seed)
    zeros = math.ceil(sparsity * shape[0])

    def run(array: np.ndarray, box_shape: Box, box_offset: Box) -> None:  # the real view: (rows, cols, 2)
        assert box_shape is not None and box_offset is not None
        if D.in_gpu_memory(array):  # the zeros are chosen on the host
            S.fill_on_host(array, box_shape, box_offset, run)
            return
        D.normal_(array, 0.0, std / math.sqrt(2), seed=seed, name=name, global_shape=box_shape, offset=box_offset)
        S.sparse_zeros_(array, box_shape[:2], box_offset[:2], zeros, seed, name)

    return _fill(tensor, run, "sparse_", seed, global_shape, offset)


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
