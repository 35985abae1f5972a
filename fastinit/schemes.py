"""Initialization schemes: one mechanism (variance scaling over the three fills) and thin names.

Every random scheme draws from the fills of ``fastinit.distributions``, so it inherits their
contract: values depend only on ``(seed, name, global index)``, and fans always come from the
*global* shape, so a shard of a Glorot matrix is the slice of the full one.

Layouts (``layout=``): ``"torch"`` (default) weights are ``(out, in, *kernel)``; ``"jax"`` and
``"keras"`` weights are ``(*kernel, in, out)``. Explicit ``in_axis`` / ``out_axis`` / ``batch_axis``
override the layout, with JAX's meaning.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import numpy as np

from ._dtypes import DTYPES, FLOAT_NAMES
from ._streams import concrete_seed
from ._target import Target
from ._validate import check_choice, check_name, check_positive_int, check_real, check_shape
from .distributions import in_gpu_memory, make_target, normal_, random_bits_, trunc_normal_, uniform_

if TYPE_CHECKING:
    from ._cuda import DeviceTarget

__all__ = [
    "calculate_gain", "compute_fans", "variance_scaling_",
    "xavier_uniform_", "xavier_normal_", "xavier_simple_", "glorot_uniform_", "glorot_normal_",
    "kaiming_uniform_", "kaiming_normal_", "he_uniform_", "he_normal_", "lecun_uniform_", "lecun_normal_",
    "orthogonal_", "delta_orthogonal_", "sparse_", "eye_", "dirac_", "constant_", "zeros_", "ones_",
]

Layout = Literal["torch", "jax", "keras"]
Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["truncated_normal", "normal", "untruncated_normal", "uniform"]
Nonlinearity = Literal["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                       "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]

LAYOUTS = ("torch", "jax", "keras")
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")
#: std of a unit normal truncated to [-2, 2]: a truncated draw is divided by it to keep the variance
TRUNCATED_NORMAL_STD = 0.87962566103423978

_UNIT_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
NONLINEARITIES = (*_UNIT_GAIN, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch's table).

    linear, conv*, conv_transpose*, sigmoid: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope**2)) with ``param`` the negative slope (default 0.01); selu: 3/4.

    Examples:
        >>> calculate_gain("relu"), calculate_gain("leaky_relu", 0.2)
        (1.4142135623730951, 1.3867504905630728)
    """
    return _gain(nonlinearity, param, "param")


def _gain(nonlinearity: str, slope: Any, argname: str) -> float:
    """``calculate_gain``, its negative slope named ``argname`` in errors."""
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    slope = 0.01 if slope is None else check_real(argname, slope)
    return math.sqrt(2.0 / (1 + _squared(argname, slope)))


def _squared(argname: str, x: float) -> float:
    """``x**2``, or a ``ValueError`` naming ``argname`` where it overflows."""
    try:
        return x**2
    except OverflowError:
        raise ValueError(f"{argname}={x} is too large: {argname}**2 overflows a float") from None


def _axes(argname: str, axes, ndim: int) -> tuple[int, ...]:
    items = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    out = []
    for a in items:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"{argname} {a} is out of range for a {ndim}-d shape")
        out.append(a % ndim)
    return tuple(out)


def compute_fans(shape: Sequence[int], layout: Layout = "torch", *, in_axis: int | Sequence[int] | None = None,
                 out_axis: int | Sequence[int] | None = None, batch_axis: int | Sequence[int] = ()) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``.

    * ``"torch"``: ``(out, in, *kernel)``: fan_in = in * prod(kernel), fan_out = out * prod(kernel);
    * ``"jax"`` / ``"keras"``: ``(*kernel, in, out)``: fan_in = in * prod(kernel), fan_out = out * prod(kernel);
    * explicit ``in_axis`` / ``out_axis`` (int or tuple) and ``batch_axis`` (excluded from both) as in
      ``jax.nn.initializers.variance_scaling``: the receptive field is every other axis.

    Examples:
        >>> compute_fans((64, 3, 3, 3)), compute_fans((3, 3, 3, 64), layout="jax")
        ((27, 576), (27, 576))
    """
    check_choice("layout", layout, LAYOUTS)
    shape = check_shape(shape)
    if len(shape) < 2:
        raise ValueError(f"fan-based schemes need a weight with at least 2 dims, got shape {shape}")
    ndim = len(shape)
    if in_axis is None:
        in_axis = 1 if layout == "torch" else -2
    if out_axis is None:
        out_axis = 0 if layout == "torch" else -1
    ins, outs, batch = _axes("in_axis", in_axis, ndim), _axes("out_axis", out_axis, ndim), \
        _axes("batch_axis", batch_axis, ndim)
    if len(set(ins + outs + batch)) != len(ins + outs + batch):
        raise ValueError(f"in_axis {in_axis}, out_axis {out_axis} and batch_axis {batch_axis} must be distinct")
    receptive = math.prod(n for d, n in enumerate(shape) if d not in ins + outs + batch)
    return math.prod(shape[d] for d in ins) * receptive, math.prod(shape[d] for d in outs) * receptive


def _check_fans(fans: Any) -> tuple[float, float]:
    if isinstance(fans, (str, bytes)) or not isinstance(fans, Sequence) or len(fans) != 2:
        raise TypeError(f"fans must be (fan_in, fan_out), got {fans!r}")
    fan_in, fan_out = check_real("fan_in", fans[0]), check_real("fan_out", fans[1])
    if not (fan_in > 0 and fan_out > 0):
        raise ValueError(f"fans must be positive, got {fans!r}")
    return fan_in, fan_out


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside the fastinit package (the user's call)."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_empty(target: Target, scheme: str) -> bool:
    """Whether the global tensor has no elements (then with torch's warning, at the user's call)."""
    if math.prod(target.global_shape) == 0:
        warnings.warn(f"{scheme}: initializing a zero-element tensor is a no-op", UserWarning,
                      stacklevel=_caller_stacklevel())
        return True
    return False


def _target(out, global_shape, offset, scheme: str) -> Target | None:
    """The validated target (a NumPy or a GPU array), or None when the global tensor is empty."""
    target = make_target(out, FLOAT_NAMES, global_shape, offset)
    return None if _is_empty(target, scheme) else target


def variance_scaling_(out: np.ndarray, scale: float = 1.0, mode: Mode = "fan_in",
                      distribution: Distribution = "truncated_normal", *, layout: Layout = "torch",
                      in_axis: int | Sequence[int] | None = None, out_axis: int | Sequence[int] | None = None,
                      batch_axis: int | Sequence[int] = (), fans: tuple[float, float] | None = None,
                      seed: int | None = None, name: str = "", global_shape: Sequence[int] | None = None,
                      offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill ``out`` with variance ``scale / n``, ``n`` = fan_in, fan_out, their mean or their geometric
    mean (``mode`` ``"fan_geo_avg"``, as in JAX).

    * ``"truncated_normal"``: N(0, s**2) truncated to [-2s, 2s] with ``s = sqrt(scale / n) / 0.8796...``,
      so the truncated variance is ``scale / n`` (JAX / Keras);
    * ``"normal"`` / ``"untruncated_normal"``: N(0, scale / n), untruncated (JAX's meaning of "normal");
    * ``"uniform"``: U(-limit, limit), ``limit = sqrt(3 * scale / n)``.

    Fans come from the global shape (``global_shape`` or ``out.shape``) in ``layout``, unless ``fans``
    gives ``(fan_in, fan_out)`` (for a weight whose fans are not those of the tensor it is stored in,
    such as the parts of a complex weight or a view of a larger tensor).

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.variance_scaling_(np.empty((256, 512), np.float32), 2.0, "fan_in", "normal", seed=0, name="w")
        >>> round(float(w.std() * np.sqrt(512 / 2)), 2)
        1.0
    """
    scale = check_real("scale", scale)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    check_choice("mode", mode, MODES)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    target = _target(out, global_shape, offset, "variance_scaling_")
    if target is None:
        return out
    fan_in: float
    fan_out: float
    if fans is None:
        fan_in, fan_out = compute_fans(target.global_shape, layout, in_axis=in_axis, out_axis=out_axis,
                                       batch_axis=batch_axis)
    else:
        fan_in, fan_out = _check_fans(fans)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
    variance = scale / n
    kw: dict[str, Any] = dict(seed=seed, name=name, global_shape=global_shape, offset=offset)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        if not math.isfinite(limit):
            raise ValueError(f"scale={scale} is too large: the uniform bound sqrt(3 * scale / {n}) overflows")
        return uniform_(out, -limit, limit, **kw)
    if distribution == "truncated_normal":
        std = math.sqrt(variance) / TRUNCATED_NORMAL_STD
        return trunc_normal_(out, 0.0, std, -2.0 * std, 2.0 * std, **kw)
    return normal_(out, 0.0, math.sqrt(variance), **kw)


def xavier_uniform_(out: np.ndarray, gain: float = 1.0, *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """Glorot & Bengio (2010) normalized initialization: U(-b, b), ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.xavier_uniform_(np.empty((300, 500), np.float32), seed=0, name="w")
        >>> bool(np.abs(w).max() < np.sqrt(6 / 800))
        True
    """
    gain = check_real("gain", gain)
    return variance_scaling_(out, _squared("gain", gain), "fan_avg", "uniform", layout=layout, **kw)


def xavier_normal_(out: np.ndarray, gain: float = 1.0, *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """Glorot normal as in torch: N(0, gain**2 * 2 / (fan_in + fan_out)), untruncated.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.xavier_normal_(np.empty((400, 600), np.float32), seed=0, name="w")
        >>> round(float(w.std() / np.sqrt(2 / 1000)), 2)
        1.0
    """
    gain = check_real("gain", gain)
    return variance_scaling_(out, _squared("gain", gain), "fan_avg", "normal", layout=layout, **kw)


def xavier_simple_(out: np.ndarray, *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """The "commonly used heuristic" of Glorot & Bengio (2010): U(-1/sqrt(n), 1/sqrt(n)), n = fan_in.

    The same distribution as torch's default ``Linear`` / ``Conv`` weights,
    ``kaiming_uniform_(a=sqrt(5))``.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.xavier_simple_(np.empty((64, 100), np.float32), seed=0, name="w")
        >>> bool(np.abs(w).max() < 0.1)
        True
    """
    return variance_scaling_(out, 1.0 / 3.0, "fan_in", "uniform", layout=layout, **kw)


def _kaiming_scale(a, nonlinearity, mode) -> float:
    check_choice("mode", mode, ("fan_in", "fan_out"))
    return _gain(nonlinearity, a, "a") ** 2


def kaiming_uniform_(out: np.ndarray, a: float = 0.0, mode: Mode = "fan_in", nonlinearity: Nonlinearity = "leaky_relu",
                     *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """He et al. (2015) uniform: U(-b, b), ``b = sqrt(3) * gain / sqrt(fan)``, gain from ``nonlinearity``
    (``a`` = the leaky-ReLU negative slope), fan = fan_in (forward pass) or fan_out (backward pass).

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.kaiming_uniform_(np.empty((128, 256), np.float32), nonlinearity="relu", seed=0, name="w")
        >>> bool(np.abs(w).max() < np.sqrt(6 / 256))
        True
    """
    return variance_scaling_(out, _kaiming_scale(a, nonlinearity, mode), mode, "uniform", layout=layout, **kw)


def kaiming_normal_(out: np.ndarray, a: float = 0.0, mode: Mode = "fan_in", nonlinearity: Nonlinearity = "leaky_relu",
                    *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """He et al. (2015) normal as in torch: N(0, (gain / sqrt(fan))**2), untruncated.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.kaiming_normal_(np.empty((512, 1024), np.float32), nonlinearity="relu", seed=0, name="w")
        >>> round(float(w.std() / np.sqrt(2 / 1024)), 2)
        1.0
    """
    return variance_scaling_(out, _kaiming_scale(a, nonlinearity, mode), mode, "normal", layout=layout, **kw)


def lecun_uniform_(out: np.ndarray, *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """LeCun et al. (1998) uniform: U(-sqrt(3 / fan_in), sqrt(3 / fan_in)).

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.lecun_uniform_(np.empty((10, 300), np.float32), seed=0, name="w")
        >>> bool(np.abs(w).max() < 0.1)
        True
    """
    return variance_scaling_(out, 1.0, "fan_in", "uniform", layout=layout, **kw)


def lecun_normal_(out: np.ndarray, *, layout: Layout = "torch", **kw: Any) -> np.ndarray:
    """LeCun normal as in JAX / Keras / Flax: variance 1 / fan_in, truncated at 2 std (corrected).

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.lecun_normal_(np.empty((400, 625), np.float32), seed=0, name="w")
        >>> round(float(w.std() * 25), 2)
        1.0
    """
    return variance_scaling_(out, 1.0, "fan_in", "truncated_normal", layout=layout, **kw)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


# ------------------------------------------------------------------- structured schemes
_Scheme = TypeVar("_Scheme", bound=Callable[..., Any])


def fill_on_host(out: Any, global_shape: Any, offset: Any, fill: Callable[[np.ndarray, tuple, tuple], Any]) -> None:
    """``fill(host, global_shape, offset)`` on a host array of GPU array ``out``'s box (a fill that
    computes on the host), then the host array copied into ``out`` on its stream."""
    target = cast("DeviceTarget", make_target(out, FLOAT_NAMES, global_shape, offset))
    host = np.empty(target.shape, target.dtype)
    fill(host, target.global_shape, target.offset)
    target.copy_from_host(host)


def _computed_on_host(scheme: _Scheme) -> _Scheme:
    """``scheme`` (one computing its values on the host: a QR factorization, index sets) taking GPU
    arrays too, through ``fill_on_host``. NumPy arrays go straight to ``scheme``."""

    @functools.wraps(scheme)
    def on_any_array(out, *args, global_shape=None, offset=None, **kwargs):
        if not in_gpu_memory(out):
            return scheme(out, *args, global_shape=global_shape, offset=offset, **kwargs)
        fill_on_host(out, global_shape, offset,
                     lambda host, shape, at: scheme(host, *args, global_shape=shape, offset=at, **kwargs))
        return out

    return cast(_Scheme, on_any_array)


def _store(target: Target, full_or_box: np.ndarray) -> None:
    """Write float64 values into ``out`` the way the fills do: via float32 for 16-bit dtypes."""
    values = full_or_box.astype(np.float32) if target.dtype.itemsize == 2 else full_or_box
    target.out[...] = values.astype(target.dtype)


def _orthogonal_matrix(rows: int, cols: int, gain: float, seed: int, name: str, complex_: bool) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns, times ``gain``, in float64 (complex128
    with ``complex_``): QR of a Gaussian matrix drawn from the stream ``(seed, name)`` as a (max,
    min)-shaped tensor, each column's phase fixed so that R has a positive real diagonal (Saxe et
    al. 2014; torch and JAX do the same). A complex Gaussian is the real view ``(max, min, 2)`` drawn
    with variance 1/2 per part (a standard complex normal)."""
    tall = (max(rows, cols), min(rows, cols))
    if complex_:
        gaussian = normal_(np.empty((*tall, 2)), 0.0, math.sqrt(0.5), seed=seed, name=name).view(np.complex128)[..., 0]
        q, r = np.linalg.qr(gaussian)
        d = np.diag(r)
        q *= np.where(d == 0, 1.0, d / np.where(d == 0, 1.0, np.abs(d)))
    else:
        q, r = np.linalg.qr(normal_(np.empty(tall, np.float64), seed=seed, name=name))
        q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    return gain * (q if rows >= cols else q.T)


def orthogonal_tensor(shape: tuple[int, ...], gain: float, layout: str, seed: int | None, name: str,
                      complex_: bool = False) -> np.ndarray:
    """The whole tensor of ``orthogonal_`` (float64, or complex128 with ``complex_``)."""
    if len(shape) < 2:
        raise ValueError(f"orthogonal_ needs at least 2 dims, got shape {shape}")
    rows, cols = (shape[0], math.prod(shape[1:])) if layout == "torch" else (math.prod(shape[:-1]), shape[-1])
    return _orthogonal_matrix(rows, cols, gain, concrete_seed(seed), check_name(name), complex_).reshape(shape)


def delta_orthogonal_tensor(shape: tuple[int, ...], gain: float, layout: str, seed: int | None, name: str,
                            complex_: bool = False) -> np.ndarray:
    """The whole tensor of ``delta_orthogonal_`` (float64, or complex128 with ``complex_``)."""
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"delta_orthogonal_ needs a 3-, 4- or 5-d kernel, got shape {shape}")
    if layout == "torch":
        n_out, n_in, kernel = shape[0], shape[1], shape[2:]
    else:
        kernel, n_in, n_out = shape[:-2], shape[-2], shape[-1]
    if n_in > n_out:
        raise ValueError(f"delta_orthogonal_ needs in <= out channels, got in={n_in}, out={n_out}")
    matrix = _orthogonal_matrix(n_in, n_out, gain, concrete_seed(seed), check_name(name), complex_)
    center = tuple((k - 1) // 2 for k in kernel)
    full = np.zeros(shape, matrix.dtype)
    if layout == "torch":
        taps: tuple[Any, ...] = (slice(None), slice(None), *center)
        full[taps] = matrix.T
    else:
        full[center] = matrix
    return full


def _orthogonal_target(out, gain, layout, global_shape, offset, scheme: str):
    """The checked gain and target of an orthogonal scheme (target None: empty tensor)."""
    gain = check_real("gain", gain)
    check_choice("layout", layout, LAYOUTS)
    return gain, _target(out, global_shape, offset, scheme)


@_computed_on_host
def orthogonal_(out: np.ndarray, gain: float = 1.0, *, layout: Layout = "torch", seed: int | None = None,
                name: str = "", global_shape: Sequence[int] | None = None,
                offset: Sequence[int] | None = None) -> np.ndarray:
    """Saxe et al. (2014) (semi-)orthogonal matrix times ``gain``.

    The global tensor is flattened to a matrix (``"torch"``: ``(shape[0], prod(shape[1:]))``;
    ``"jax"`` / ``"keras"``: ``(prod(shape[:-1]), shape[-1])``), whose rows or columns are
    orthonormal. The Gaussian draws follow the stream contract; the QR step is LAPACK's (through
    NumPy), so bits can differ in the last place between BLAS builds. A shard computes the whole
    matrix and keeps its box.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> q = fi.orthogonal_(np.empty((3, 5)), seed=0, name="q")
        >>> bool(np.allclose(q @ q.T, np.eye(3)))
        True
    """
    gain, target = _orthogonal_target(out, gain, layout, global_shape, offset, "orthogonal_")
    if target is None:
        return out
    full = orthogonal_tensor(target.global_shape, gain, layout, seed, name)
    _store(target, full[target.box])
    return out


@_computed_on_host
def delta_orthogonal_(out: np.ndarray, gain: float = 1.0, *, layout: Layout = "torch", seed: int | None = None,
                      name: str = "", global_shape: Sequence[int] | None = None,
                      offset: Sequence[int] | None = None) -> np.ndarray:
    """Xiao et al. (2018) delta-orthogonal convolution kernel, as ``jax.nn.initializers.delta_orthogonal``:
    zero everywhere except the center tap ``(k - 1) // 2`` of every spatial dim, which holds an
    orthogonal ``(in, out)`` matrix times ``gain`` (``in <= out``). 3-, 4- or 5-d kernels: ``"torch"``
    ``(out, in, *kernel)`` (the matrix transposed), ``"jax"`` / ``"keras"`` ``(*kernel, in, out)``.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.delta_orthogonal_(np.empty((3, 3, 4, 8)), layout="jax", seed=0, name="k")
        >>> m = w[1, 1]  # the (in, out) = (4, 8) matrix at the center tap
        >>> bool(np.allclose(m @ m.T, np.eye(4))), float(np.abs(w[0]).max())
        (True, 0.0)
    """
    gain, target = _orthogonal_target(out, gain, layout, global_shape, offset, "delta_orthogonal_")
    if target is None:
        return out
    full = delta_orthogonal_tensor(target.global_shape, gain, layout, seed, name)
    _store(target, full[target.box])
    return out


_SPARSE_BLOCK = 1 << 21  # rank elements per pass of sparse_


@_computed_on_host
def sparse_(out: np.ndarray, sparsity: float, std: float = 0.01, *, seed: int | None = None, name: str = "",
            global_shape: Sequence[int] | None = None, offset: Sequence[int] | None = None) -> np.ndarray:
    """Martens (2010) sparse initialization of a 2-d ``(rows, cols)`` weight: N(0, std**2) with exactly
    ``ceil(sparsity * rows)`` zeros in every column (``sparsity`` in [0, 1]; 1 zeroes everything).

    Unlike torch's ``randperm``, the zero positions come from the counter stream: column ``j``
    zeroes the rows whose Philox words (stream ``name + "/sparse"``) are smallest, so any shard
    equals the slice of the full matrix.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> w = fi.sparse_(np.empty((10, 4), np.float32), 0.3, seed=0, name="s")
        >>> (w == 0).sum(axis=0).tolist()
        [3, 3, 3, 3]
    """
    sparsity = check_real("sparsity", sparsity)
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    target = _target(out, global_shape, offset, "sparse_")
    if target is None:
        return out
    if len(target.global_shape) != 2:
        raise ValueError(f"sparse_ needs a 2-d weight, got shape {target.global_shape}")
    seed, name = concrete_seed(seed), check_name(name)
    normal_(out, 0.0, std, seed=seed, name=name, global_shape=global_shape, offset=offset)
    rows = target.global_shape[0]
    return sparse_zeros_(out, target.global_shape, target.offset, math.ceil(sparsity * rows), seed, name)


def sparse_zeros_(out: np.ndarray, global_shape: Sequence[int], offset: Sequence[int], zeros: int, seed: int,
                  name: str) -> np.ndarray:
    """Zero the ``sparse_`` positions of ``out``, the box at ``offset`` of a ``global_shape`` weight (its
    first two dims; any further dims, such as the real and imaginary parts of a complex weight, are
    zeroed together): in every column, the ``zeros`` rows with the smallest words of stream
    ``name + "/sparse"`` (ties to the smaller row).

    A row is among them when ``(word, row)`` is at most the column's ``zeros``-th smallest pair,
    computed once per block of columns (``_sparse_thresholds``): a box then needs only its own words
    and its columns' thresholds, so writing a weight box by box costs time linear in its size."""
    rows, cols = (int(n) for n in global_shape)
    (r0, c0), (h, w) = offset, out.shape[:2]
    if zeros <= 0 or h == 0 or w == 0:
        return out
    if zeros >= rows:
        out[...] = 0
        return out
    step = max(1, _SPARSE_BLOCK // max(h, 1))  # columns per pass: temporaries stay O(_SPARSE_BLOCK)
    row = np.arange(r0, r0 + h)[:, None]
    for c in range(0, w, step):
        width = min(step, w - c)
        own = random_bits_(np.empty((h, width), np.uint32), seed=seed, name=name + "/sparse",
                           global_shape=(rows, cols), offset=(r0, c0 + c))
        limit, limit_row = _sparse_thresholds(seed, name, rows, cols, zeros, c0 + c, c0 + c + width)
        out[:, c:c + width][(own < limit) | ((own == limit) & (row <= limit_row))] = 0
    return out


def _sparse_thresholds(seed: int, name: str, rows: int, cols: int, zeros: int, first: int,
                       stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column ``first .. stop - 1`` of a ``(rows, cols)`` sparse weight: the word and the row of its
    ``zeros``-th smallest ``(word, row)`` pair (stream ``name + "/sparse"``), from cached blocks of columns."""
    step = max(1, _SPARSE_BLOCK // 4 // max(rows, 1))  # 64-bit keys: a quarter of the elements per pass
    blocks = [_sparse_block_thresholds(seed, name, rows, cols, zeros, b * step, min((b + 1) * step, cols))
              for b in range(first // step, -(-stop // step))]
    skip = first - first // step * step
    words = np.concatenate([b[0] for b in blocks])[skip:skip + stop - first]
    at = np.concatenate([b[1] for b in blocks])[skip:skip + stop - first]
    return words, at


@functools.lru_cache(maxsize=4096)
def _sparse_block_thresholds(seed: int, name: str, rows: int, cols: int, zeros: int, first: int,
                             stop: int) -> tuple[np.ndarray, np.ndarray]:
    """``_sparse_thresholds`` of one block of columns, computed once (a few KiB per block)."""
    ranks = random_bits_(np.empty((rows, stop - first), np.uint32), seed=seed, name=name + "/sparse",
                         global_shape=(rows, cols), offset=(0, first))
    # (word, row) as one 64-bit key (rows < 2**32: the weight would not fit in memory otherwise)
    keys = ranks.astype(np.uint64)
    del ranks
    keys <<= np.uint64(32)
    keys |= np.arange(rows, dtype=np.uint64)[:, None]
    keys.partition(zeros - 1, axis=0)
    kth = keys[zeros - 1]
    words, at = (kth >> np.uint64(32)).astype(np.uint32), (kth & np.uint64(0xFFFFFFFF)).astype(np.int64)
    words.flags.writeable = at.flags.writeable = False
    return words, at


def _set_ones(target: Target, scheme: str, positions) -> np.ndarray:
    """Zero ``out`` and put ones at the global ``positions`` (an (n, ndim) int array) inside its box."""
    out = target.out
    if _is_empty(target, scheme):
        return out
    out[...] = 0
    local = positions - np.asarray(target.offset)
    inside = ((local >= 0) & (local < np.asarray(out.shape))).all(axis=1)
    out[tuple(local[inside].T)] = 1
    return out


@_computed_on_host
def eye_(out: np.ndarray, *, global_shape: Sequence[int] | None = None,
         offset: Sequence[int] | None = None) -> np.ndarray:
    """The identity matrix (ones where row == column) for a 2-d weight; no randomness.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> fi.eye_(np.empty((2, 3), np.float32)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    target = Target(out, FLOAT_NAMES, global_shape, offset)
    shape = target.global_shape
    if len(shape) != 2:
        raise ValueError(f"eye_ needs a 2-d weight, got shape {shape}")
    (r0, c0), (h, w) = target.offset, out.shape
    first = max(r0, c0)
    diag = np.arange(first, max(first, min(r0 + h, c0 + w)))  # the diagonal inside the box
    return _set_ones(target, "eye_", np.stack([diag, diag], axis=1))


@_computed_on_host
def dirac_(out: np.ndarray, groups: int = 1, *, global_shape: Sequence[int] | None = None,
           offset: Sequence[int] | None = None) -> np.ndarray:
    """The Dirac delta of torch's ``dirac_``: a convolution that preserves its input channels.

    For a 3-, 4- or 5-d ``(out, in, *kernel)`` weight: ones at ``[g * out_per_group + d, d, k // 2, ...]``
    for each group ``g`` and ``d < min(out_per_group, in)``; zeros elsewhere.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> fi.dirac_(np.empty((2, 2, 3), np.float32))[:, :, 1].tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    target = Target(out, FLOAT_NAMES, global_shape, offset)
    shape = target.global_shape
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"dirac_ needs a 3-, 4- or 5-d weight, got shape {shape}")
    groups = check_positive_int("groups", groups)
    if shape[0] % groups:
        raise ValueError(f"groups={groups} must divide the out channels ({shape[0]})")
    per_group = shape[0] // groups
    m = min(per_group, shape[1])
    center = [k // 2 for k in shape[2:]]
    (r0, c0), (h, w) = target.offset[:2], out.shape[:2]
    in_box = range(r0 // per_group, min(groups, -(-(r0 + h) // per_group))) if per_group else range(0)
    positions = [[g * per_group + i, i, *center] for g in in_box  # only the ones inside the box
                 for i in range(max(c0, r0 - g * per_group), min(m, c0 + w, r0 + h - g * per_group))]
    return _set_ones(target, "dirac_", np.array(positions, np.int64).reshape(-1, len(shape)))


def constant_(out: np.ndarray, val: float, *, global_shape: Sequence[int] | None = None,
              offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill with ``val``.

    Examples:
        >>> import numpy as np, fastinit as fi
        >>> fi.constant_(np.empty(3, np.float32), 0.5).tolist()
        [0.5, 0.5, 0.5]
    """
    val = check_real("val", val)
    target = make_target(out, FLOAT_NAMES, global_shape, offset)
    with np.errstate(over="ignore"):
        stored = np.array(val).astype(target.dtype)
    if not np.isfinite(stored.astype(np.float64)):
        raise ValueError(f"val={val} overflows {target.dtype.name} (its largest finite value is "
                         f"{DTYPES[target.dtype.name].finite_max:g})")
    target.out[...] = val
    return out


def zeros_(out: np.ndarray, *, global_shape: Sequence[int] | None = None,
           offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill with 0."""
    return constant_(out, 0.0, global_shape=global_shape, offset=offset)


def ones_(out: np.ndarray, *, global_shape: Sequence[int] | None = None,
          offset: Sequence[int] | None = None) -> np.ndarray:
    """Fill with 1."""
    return constant_(out, 1.0, global_shape=global_shape, offset=offset)
