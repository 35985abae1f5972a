"""fastinit.torch behaves as torch.nn.init, side by side with torch itself: the same result kind
(value, no-op, exception class, warning text) for degenerate parameters, tensor, NumPy and bool
hyperparameters, complex, integer, meta and zero-element tensors (hand-picked cases, then grids of
every argument value and of dtypes and shapes); fake, sparse, nested and inference tensors;
``__torch_function__`` overrides; the same distributions (two-sample KS against torch's own
draws); torch's deprecated names; calculate_gain."""

import math
import warnings
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
from torch_modes import SeenCalls  # noqa: E402

import fastinit.torch as fit  # noqa: E402

init = torch.nn.init
SEED = 11


def outcome(call):
    """What a call does, as a comparable record: the exception class torch would see, or the
    warnings, the result's dtype / shape / device, and its values when they are deterministic."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as err:  # comparing classes is the point
            return ("raises", err)
    messages = tuple((w.category, str(w.message)) for w in caught)
    return ("returns", result, messages)


def _comparable(t):
    """The values of ``t`` as a strided tensor (None for a tensor without data)."""
    from torch._subclasses.fake_tensor import is_fake

    if t.is_meta or is_fake(t):
        return None
    if t.is_nested:
        return torch.nested.to_padded_tensor(t, 0.0)
    return t.to_dense() if t.layout != torch.strided else t


def _kind(t):
    """A result's dtype, shape (a nested tensor's components' shapes), layout and device."""
    shape = tuple(c.shape for c in t.unbind()) if t.is_nested else t.shape
    return t.dtype, shape, t.layout, t.device


def _same_values(ours, theirs):
    """Equal values, NaN equal to NaN (tensors without data have none to differ)."""
    ours, theirs = _comparable(ours), _comparable(theirs)
    if ours is None or theirs is None:
        return True
    try:
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0, equal_nan=True)
    except AssertionError:
        return False
    return True


#: a warning fastinit leaves out on purpose: its inverse-CDF draws are exact however far the mean is
FAR_MEAN = "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values may be incorrect."


def _differences(theirs, ours, values):
    """How fastinit's outcome differs from torch's (``values``: compare the values too)."""
    if theirs[0] == "raises":
        if ours[0] != "raises":
            return [f"torch raises {theirs[1]!r}, fastinit returns"]
        if not isinstance(ours[1], type(theirs[1])):
            return [f"torch raises {type(theirs[1]).__name__}({theirs[1]}), "
                    f"fastinit {type(ours[1]).__name__}({ours[1]})"]
        return []
    if ours[0] != "returns":
        return [f"torch returns, fastinit raises {ours[1]!r}"]
    (_, t, t_warnings), (_, o, o_warnings) = theirs, ours
    found = []
    if o_warnings != tuple(w for w in t_warnings if w[1] != FAR_MEAN):
        found.append(f"warnings: torch {t_warnings}, fastinit {o_warnings}")
    if _kind(o) != _kind(t):
        found.append(f"torch gives {_kind(t)}, fastinit {_kind(o)}")
    elif values and not _same_values(o, t):
        found.append(f"values: torch {t.flatten()[:4].tolist()}, fastinit {o.flatten()[:4].tolist()}")
    return found


def _same_outcome(theirs, ours, values):
    differences = _differences(theirs, ours, values)
    assert not differences, differences


def f32(*shape):
    return lambda: torch.zeros(*shape)


def f16(*shape):
    return lambda: torch.zeros(*shape, dtype=torch.float16)


def c64(*shape):
    return lambda: torch.zeros(*shape, dtype=torch.complex64)


def meta(*shape, dtype=torch.float32):
    return lambda: torch.empty(*shape, device="meta", dtype=dtype)


def i32(*shape):
    return lambda: torch.zeros(*shape, dtype=torch.int32)


# (function, tensor, args, kwargs, values deterministic)
CASES = [
    # degenerate parameters
    ("uniform_", f32(5), (0.0, 0.0), {}, True),
    ("uniform_", f32(5), (1.5, 1.5), {}, True),
    ("uniform_", f32(5), (1.0, 0.0), {}, False),
    ("uniform_", f32(5), (0.0, math.inf), {}, False),
    ("uniform_", f32(5), (math.nan, 1.0), {}, False),
    ("normal_", f32(5), (2.0, 0.0), {}, True),
    ("normal_", f32(5), (0.0, -1.0), {}, False),
    ("normal_", f32(5), (0.0, math.nan), {}, False),
    ("normal_", f32(5), (math.inf, 1.0), {}, True),
    ("trunc_normal_", f32(5), (0.0, 0.0), {}, False),
    ("trunc_normal_", f32(5), (0.0, 1.0, 1.0, 1.0), {}, True),
    ("trunc_normal_", f32(5), (0.0, 1.0, 2.0, 1.0), {}, False),
    ("xavier_uniform_", f32(3, 4), (), {"gain": 0.0}, True),
    ("xavier_uniform_", f32(3, 4), (), {"gain": -1.0}, False),
    ("xavier_normal_", f32(3, 4), (), {"gain": 0.0}, True),
    ("xavier_uniform_", f32(0, 0), (), {}, False),
    ("xavier_uniform_", f32(3), (), {}, False),
    ("kaiming_uniform_", f32(3), (), {}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"mode": "FAN_OUT"}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"mode": "fan_avg"}, False),
    ("kaiming_normal_", f32(3, 4), (), {"nonlinearity": "bogus"}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"a": True}, False),
    ("orthogonal_", f32(3, 4), (), {"gain": 0.0}, True),
    ("orthogonal_", f32(3), (), {}, False),
    ("sparse_", f32(6, 4), (1.0,), {}, True),
    ("sparse_", f32(6, 4), (1.5,), {}, True),
    ("sparse_", f32(6, 4), (0.5, 0.0), {}, True),
    ("sparse_", f32(3, 3, 3), (0.5,), {}, False),
    ("eye_", f32(3, 3, 3), (), {}, False),
    ("dirac_", f32(4, 4), (), {}, False),
    ("dirac_", f32(4, 2, 3), (3,), {}, False),
    ("dirac_", f32(4, 2, 3), (0,), {}, False),
    # tensors and NumPy numbers as hyperparameters
    ("constant_", f32(5), (torch.tensor(2.0),), {}, True),
    ("constant_", f32(5), (np.float32(0.5),), {}, True),
    ("normal_", f32(5), (), {"mean": torch.tensor(3.0), "std": torch.tensor(0.0)}, True),
    ("normal_", f32(5), (), {"std": torch.tensor(1.0)}, False),
    ("uniform_", f32(5), (torch.tensor(-1.0), torch.tensor(-1.0)), {}, True),
    ("xavier_uniform_", f32(3, 4), (), {"gain": torch.tensor(2.0)}, False),
    ("orthogonal_", f32(3, 4), (), {"gain": torch.tensor(2.0)}, False),
    ("trunc_normal_", f32(5), (), {"std": torch.tensor(1.0)}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"a": torch.tensor(0.2)}, False),  # torch: not a valid slope
    ("kaiming_uniform_", f32(3, 4), (), {"a": np.float32(0.2)}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"a": torch.tensor(0.2), "nonlinearity": "relu"}, False),
    # complex tensors
    ("uniform_", c64(4, 6), (-1.0, 1.0), {}, False),
    ("uniform_", c64(4, 6), (2.0, 2.0), {}, True),
    ("normal_", c64(4, 6), (1.0, 2.0), {}, False),
    ("normal_", c64(4, 6), (1.0, 0.0), {}, True),
    ("xavier_uniform_", c64(4, 6), (), {}, False),
    ("xavier_normal_", c64(4, 6), (), {}, False),
    ("kaiming_uniform_", c64(4, 6), (), {}, False),
    ("kaiming_normal_", c64(4, 6), (), {}, False),
    ("sparse_", c64(6, 4), (0.5,), {}, False),
    ("trunc_normal_", c64(4, 6), (), {}, False),
    ("orthogonal_", c64(4, 6), (), {}, False),
    ("constant_", c64(4, 6), (1 + 2j,), {}, True),
    ("constant_", c64(4, 6), (2.0,), {}, True),
    ("ones_", c64(4, 6), (), {}, True),
    ("eye_", c64(4, 6), (), {}, True),
    ("dirac_", lambda: torch.zeros(2, 2, 3, dtype=torch.complex64), (), {}, True),
    # integer and bool tensors
    ("uniform_", i32(5), (), {}, False),
    ("normal_", i32(5), (), {}, False),
    ("constant_", i32(5), (3,), {}, True),
    ("zeros_", lambda: torch.ones(5, dtype=torch.bool), (), {}, True),
    ("eye_", i32(3, 4), (), {}, True),
    ("dirac_", lambda: torch.ones(4, 2, 3, dtype=torch.int64), (2,), {}, True),
    # meta tensors: torch's checks, then a no-op
    ("uniform_", meta(3, 4), (1.0, 0.0), {}, False),
    ("normal_", meta(3, 4), (0.0, -1.0), {}, False),
    ("normal_", meta(3, 4), (), {}, False),
    ("trunc_normal_", meta(3, 4), (0.0, 0.0), {}, False),
    ("xavier_uniform_", meta(3), (), {}, False),
    ("xavier_uniform_", meta(0, 0), (), {}, False),
    ("xavier_normal_", meta(3, 4), (), {}, False),
    ("kaiming_uniform_", meta(3, 4), (), {"mode": "bad"}, False),
    ("kaiming_uniform_", meta(0, 4), (), {}, False),
    ("kaiming_normal_", meta(3, 4), (), {}, False),
    ("orthogonal_", meta(3), (), {}, False),
    ("orthogonal_", meta(3, 4), (), {}, False),
    ("sparse_", meta(3, 3, 3), (0.1,), {}, False),
    ("sparse_", meta(3, 3), (0.1,), {}, False),
    ("eye_", meta(3, 3), (), {}, False),
    ("dirac_", meta(2, 2, 3), (3,), {}, False),
    ("dirac_", meta(2, 2, 3), (), {}, False),
    ("constant_", meta(2, 2), (3.0,), {}, False),
    ("uniform_", meta(3, dtype=torch.int32), (), {}, False),
    ("trunc_normal_", meta(3, dtype=torch.complex64), (), {}, False),
    # zero-element tensors: torch's warnings where it warns, silence where it does not
    ("kaiming_uniform_", f32(0, 3), (), {}, False),
    ("kaiming_normal_", f32(0, 3), (), {"mode": "fan_out"}, False),
    ("kaiming_uniform_", f32(0), (), {}, False),
    ("xavier_uniform_", f32(0, 3), (), {}, False),
    ("xavier_normal_", f32(0, 3), (), {}, False),
    ("orthogonal_", f32(0, 3), (), {}, False),
    ("sparse_", f32(0, 3), (0.5,), {}, False),
    ("normal_", f32(0, 3), (), {}, False),
    ("uniform_", f32(0, 3), (), {}, False),
    ("trunc_normal_", f32(0, 3), (), {}, False),
    ("eye_", f32(0, 3), (), {}, True),
    # infinite and NaN values torch fills or computes with, bools as 0 and 1
    ("constant_", f32(5), (-math.inf,), {}, True),
    ("constant_", f32(5), (math.nan,), {}, True),
    ("constant_", f16(5), (1e10,), {}, False),
    ("constant_", f16(5), (torch.tensor(1e10),), {}, True),
    ("constant_", f32(5), (torch.tensor([0.5]),), {}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"a": math.inf}, True),
    ("kaiming_normal_", f32(3, 4), (), {"a": -math.inf}, True),
    ("kaiming_uniform_", f32(3, 4), (), {"a": math.nan}, False),
    ("kaiming_normal_", meta(3, 4), (), {"a": math.nan}, False),
    ("kaiming_uniform_", f32(3, 4), (), {"mode": None}, False),
    ("uniform_", f32(5), (True, True), {}, True),
    ("normal_", f32(5), (np.bool_(True), torch.tensor(False)), {}, True),
    ("dirac_", f32(4, 2, 3), (True,), {}, True),
    ("dirac_", f32(4, 2, 3), (-1,), {}, True),
    ("dirac_", f32(4, 2, 3), (np.float32(2),), {}, False),
    ("trunc_normal_", f32(5), (0.0, np.float32(0)), {}, True),
    ("trunc_normal_", f32(5), (0.0, torch.tensor(0.0)), {}, True),
    ("sparse_", f32(6, 4), (math.inf,), {}, False),
    ("normal_", f32(5), (torch.tensor([0.5]),), {}, False),
    ("xavier_normal_", f32(3, 4), (torch.tensor([0.5]),), {}, False),
    ("normal_", meta(3, dtype=torch.int32), (), {}, False),
    ("xavier_normal_", meta(3, 4, dtype=torch.bool), (), {}, False),
    ("normal_", i32(0, 3), (), {}, False),
    ("sparse_", i32(0, 3), (0.5,), {}, False),
]


@pytest.mark.parametrize("function, make, args, kwargs, values", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_same_outcome_as_torch(function, make, args, kwargs, values):
    theirs = outcome(lambda: getattr(init, function)(make(), *args, **kwargs))
    draws = function not in ("constant_", "ones_", "zeros_", "eye_", "dirac_")
    ours = outcome(lambda: getattr(fit, function)(make(), *args, **kwargs, **({"seed": SEED} if draws else {})))
    _same_outcome(theirs, ours, values)


# ------------------------------------------------------------------------------------- grids
FILLS_NOTHING = ("constant_", "ones_", "zeros_", "eye_", "dirac_")


def compare(function, make, args=(), kwargs=None):
    """``(differences, torch's outcome, fastinit's)`` of the call on a fresh ``make()`` each: the values
    are compared where torch's do not depend on its generator (two torch seeds give the same)."""
    kwargs = kwargs or {}
    runs = []
    for torch_seed in (0, 1):
        torch.manual_seed(torch_seed)
        runs.append(outcome(lambda: getattr(init, function)(make(), *args, **kwargs)))
    theirs, again = runs
    fixed = theirs[0] == again[0] == "returns" and _same_values(theirs[1], again[1])
    seed = {} if function in FILLS_NOTHING else {"seed": SEED}
    ours = outcome(lambda: getattr(fit, function)(make(), *args, **kwargs, **seed))
    return _differences(theirs, ours, fixed), theirs, ours


def left_different(function, args, kwargs, theirs, ours):
    """Why fastinit differs from torch here on purpose (docs/backends.md lists these), or None."""
    values = [*args, *kwargs.values()]
    refused = ours[0] == "raises" and isinstance(ours[1], ValueError)
    if refused and function == "sparse_" and isinstance(args[0], (int, float)) and args[0] < 0:
        return "a negative sparsity is an error (torch zeroes rows counted from the end)"
    written = theirs[1] if theirs[0] == "returns" and not theirs[1].is_meta else torch.zeros(())
    non_finite = any(isinstance(v, float) and not math.isfinite(v) for v in values)
    if refused and theirs[0] == "returns" and not function.startswith("kaiming") and (
            non_finite or not bool(torch.isfinite(written).all())):
        return "a draw that overflows the dtype, or has non-finite parameters, is an error (torch writes them)"
    if refused and function == "trunc_normal_" and any(isinstance(v, (int, float)) and not -1e9 < v < 1e9
                                                       for v in values[:2]):
        return ("a trunc_normal_ with a non-finite mean or std, or an interval too far from the mean for its "
                "probability, is an error (torch draws from a meaningless interval)")
    if function == "orthogonal_" and any(isinstance(v, complex) or (isinstance(v, torch.Tensor) and v.numel() > 1)
                                         for v in values):
        return "a gain of several values or a complex gain is fastinit's TypeError (torch's RuntimeError)"
    return None


#: every kind of hyperparameter value: numbers, NumPy scalars, bools, 0-d and 1-d tensors, non-numbers
VALUES = [0, 1, -1, 0.5, math.inf, -math.inf, math.nan, True, False, np.float32(0.5), np.float64(0.5), np.int64(2),
          np.bool_(True), np.float32(0), torch.tensor(0.5), torch.tensor(0.0), torch.tensor([0.5]),
          torch.tensor([0.5, 1.0]), torch.tensor(2), torch.tensor(True), "1", None, 1 + 0j, 1e10, -1e10]
# each hyperparameter of each function: (function, tensor, args and kwargs with the value in its place)
SLOTS = {
    "uniform_ a": ("uniform_", f32(6, 5), lambda v: ((v,), {})),
    "uniform_ b": ("uniform_", f32(6, 5), lambda v: ((-2, v), {})),
    "uniform_ b float16": ("uniform_", f16(6, 5), lambda v: ((-2, v), {})),
    "uniform_ b meta": ("uniform_", meta(6, 5), lambda v: ((-2, v), {})),
    "normal_ mean": ("normal_", f32(6, 5), lambda v: ((v,), {})),
    "normal_ std": ("normal_", f32(6, 5), lambda v: ((0, v), {})),
    "normal_ std float16": ("normal_", f16(6, 5), lambda v: ((0, v), {})),
    "normal_ std meta": ("normal_", meta(6, 5), lambda v: ((0, v), {})),
    "normal_ std empty": ("normal_", f32(0, 5), lambda v: ((0, v), {})),
    "trunc_normal_ mean": ("trunc_normal_", f32(6, 5), lambda v: ((v,), {})),
    "trunc_normal_ std": ("trunc_normal_", f32(6, 5), lambda v: ((0, v), {})),
    "trunc_normal_ a": ("trunc_normal_", f32(6, 5), lambda v: ((0, 1, v), {})),
    "trunc_normal_ b": ("trunc_normal_", f32(6, 5), lambda v: ((0, 1, -2, v), {})),
    "trunc_normal_ b float16": ("trunc_normal_", f16(6, 5), lambda v: ((0, 1, -2, v), {})),
    "constant_ val": ("constant_", f32(6, 5), lambda v: ((v,), {})),
    "constant_ val float16": ("constant_", f16(6, 5), lambda v: ((v,), {})),
    "constant_ val int32": ("constant_", i32(3), lambda v: ((v,), {})),
    "constant_ val meta": ("constant_", meta(3), lambda v: ((v,), {})),
    "xavier_uniform_ gain": ("xavier_uniform_", f32(6, 5), lambda v: ((v,), {})),
    "xavier_uniform_ gain empty": ("xavier_uniform_", f32(0, 5), lambda v: ((v,), {})),
    "xavier_normal_ gain": ("xavier_normal_", f32(6, 5), lambda v: ((v,), {})),
    "xavier_normal_ gain meta": ("xavier_normal_", meta(6, 5), lambda v: ((v,), {})),
    "kaiming_uniform_ a": ("kaiming_uniform_", f32(6, 5), lambda v: ((v,), {})),
    "kaiming_uniform_ a meta": ("kaiming_uniform_", meta(6, 5), lambda v: ((v,), {})),
    "kaiming_normal_ a": ("kaiming_normal_", f32(6, 5), lambda v: ((v,), {})),
    "kaiming_normal_ a meta": ("kaiming_normal_", meta(6, 5), lambda v: ((v,), {})),
    "kaiming_normal_ a complex": ("kaiming_normal_", c64(6, 5), lambda v: ((v,), {})),
    "kaiming_uniform_ a relu": ("kaiming_uniform_", f32(6, 5), lambda v: ((v,), {"nonlinearity": "relu"})),
    "kaiming_uniform_ mode": ("kaiming_uniform_", f32(6, 5), lambda v: ((0,), {"mode": v})),
    "kaiming_uniform_ nonlinearity": ("kaiming_uniform_", f32(6, 5), lambda v: ((0,), {"nonlinearity": v})),
    "orthogonal_ gain": ("orthogonal_", f32(6, 5), lambda v: ((v,), {})),
    "sparse_ sparsity": ("sparse_", f32(6, 5), lambda v: ((v,), {})),
    "sparse_ sparsity empty": ("sparse_", f32(0, 5), lambda v: ((v,), {})),
    "sparse_ std": ("sparse_", f32(6, 5), lambda v: ((0.5, v), {})),
    "dirac_ groups": ("dirac_", f32(6, 2, 3), lambda v: ((v,), {})),
    "dirac_ groups meta": ("dirac_", meta(6, 2, 3), lambda v: ((v,), {})),
    "dirac_ groups int64": ("dirac_", lambda: torch.zeros(6, 2, 3, dtype=torch.int64), lambda v: ((v,), {})),
}


@pytest.mark.parametrize("slot", sorted(SLOTS))
def test_every_hyperparameter_value_as_torch(slot):
    function, make, place = SLOTS[slot]
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's tensor arithmetic on odd values warns; compare() records its own
        for value in VALUES:
            args, kwargs = place(value)
            differences, theirs, ours = compare(function, make, args, kwargs)
            if differences and not left_different(function, args, kwargs, theirs, ours):
                found.append(f"{value!r}: {differences}")
    assert not found, "\n".join(found)


GRID_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.complex64, torch.complex128,
               torch.int32, torch.int64, torch.uint8, torch.int8, torch.bool, torch.float8_e4m3fn]
GRID_SHAPES = [(), (5,), (0,), (3, 4), (0, 4), (4, 0), (1, 1), (2, 3, 5), (2, 2, 3, 3), (4, 2, 3, 3, 3)]
GRID_ARGS = {"constant_": (0.5,), "sparse_": (0.3,)}


def _dtype_left_different(function, dtype, shape, device):
    if function == "orthogonal_" and dtype in (torch.float16, torch.bfloat16) and device == "cpu":
        return "orthogonal_ fills float16 and bfloat16 (torch's CPU QR has no kernel for them)"
    if function == "dirac_" and len(shape) > 2 and 0 in shape[2:] and device == "cpu":
        return "dirac_ leaves a tensor with an empty kernel dim as it is (torch indexes its tap: IndexError)"
    return None


@pytest.mark.parametrize("function", ["uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
                                      "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                      "kaiming_normal_", "orthogonal_", "sparse_"])
def test_every_dtype_shape_and_device_as_torch(function):
    found = []
    for dtype in GRID_DTYPES:
        for shape in GRID_SHAPES:
            for device in ("cpu", "meta"):
                for requires_grad in (False, True) if dtype.is_floating_point else (False,):
                    if _dtype_left_different(function, dtype, shape, device):
                        continue

                    def make(dtype=dtype, shape=shape, device=device, requires_grad=requires_grad):
                        return torch.zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)

                    differences = compare(function, make, GRID_ARGS.get(function, ()))[0]
                    if differences:
                        found.append(f"{dtype} {shape} {device} requires_grad={requires_grad}: {differences}")
    assert not found, "\n".join(found)


def _parts(t):
    return (t.real.flatten().numpy(), t.imag.flatten().numpy()) if t.is_complex() else (t.flatten().numpy(),)


# (function, shape, dtype, args, kwargs): fastinit's draws and torch's pass a two-sample KS test
DISTRIBUTIONS = [
    ("uniform_", (200, 150), torch.float32, (-1.0, 3.0), {}),
    ("normal_", (200, 150), torch.float32, (1.0, 2.0), {}),
    ("trunc_normal_", (200, 150), torch.float32, (0.0, 1.0, -0.5, 2.0), {}),
    ("xavier_uniform_", (200, 150), torch.float32, (), {"gain": 1.5}),
    ("xavier_normal_", (200, 150), torch.float32, (), {}),
    ("kaiming_uniform_", (200, 150), torch.float32, (), {"a": math.sqrt(5)}),
    ("kaiming_normal_", (200, 150), torch.float32, (), {"mode": "fan_out", "nonlinearity": "relu"}),
    ("sparse_", (200, 150), torch.float32, (0.3,), {"std": 0.5}),
    ("uniform_", (200, 150), torch.complex64, (-1.0, 3.0), {}),
    ("normal_", (200, 150), torch.complex64, (1.0, 2.0), {}),
    ("normal_", (200, 150), torch.complex128, (0.0, 1.0), {}),
    ("xavier_uniform_", (200, 150), torch.complex64, (), {}),
    ("xavier_normal_", (200, 150), torch.complex64, (), {"gain": 2.0}),
    ("kaiming_uniform_", (200, 150), torch.complex64, (), {}),
    ("kaiming_normal_", (200, 150), torch.complex64, (), {"nonlinearity": "relu"}),
    ("sparse_", (200, 150), torch.complex64, (0.3,), {"std": 0.5}),
]


@pytest.mark.parametrize("function, shape, dtype, args, kwargs", DISTRIBUTIONS,
                         ids=[f"{d[0]}-{d[2]}" for d in DISTRIBUTIONS])
def test_distributions_match_torch(function, shape, dtype, args, kwargs):
    torch.manual_seed(0)
    theirs = getattr(init, function)(torch.zeros(shape, dtype=dtype), *args, **kwargs)
    ours = getattr(fit, function)(torch.zeros(shape, dtype=dtype), *args, **kwargs, seed=SEED, name="w")
    assert ours.dtype == theirs.dtype
    for mine, reference in zip(_parts(ours), _parts(theirs)):
        assert stats.ks_2samp(mine, reference).pvalue > 1e-3
        assert np.std(mine) == pytest.approx(np.std(reference), rel=0.02)
    if dtype.is_complex:
        assert abs(np.corrcoef(*_parts(ours))[0, 1]) < 0.02  # the parts are independent


def test_complex_fill_is_the_real_view_of_the_name_stream_and_shards():
    full = fit.normal_(torch.zeros(6, 8, dtype=torch.complex64), 0.0, 2.0, seed=3, name="c")
    real = fit.normal_(torch.zeros(6, 8, 2), 0.0, 2.0 / math.sqrt(2), seed=3, name="c")
    assert torch.equal(torch.view_as_real(full), real)
    shard = fit.normal_(torch.zeros(3, 8, dtype=torch.complex64), 0.0, 2.0, seed=3, name="c",
                        global_shape=(6, 8), offset=(3, 0))
    assert torch.equal(shard, full[3:])


@pytest.mark.parametrize("old", ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
                                 "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse"])
def test_deprecated_names_warn_as_torch_does(old):
    args = {"constant": (0.5,), "sparse": (0.5,)}.get(old, ())
    make = (lambda: torch.zeros(4, 4, 3)) if old == "dirac" else (lambda: torch.zeros(4, 4))
    theirs = outcome(lambda: getattr(init, old)(make(), *args))
    ours = outcome(lambda: getattr(fit, old)(make(), *args))
    assert ours[0] == theirs[0] == "returns"
    assert ours[2] == theirs[2] and theirs[2][0][0] is FutureWarning


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv1d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("selu", None), ("leaky_relu", None), ("leaky_relu", 0), ("leaky_relu", 0.2), ("leaky_relu", 10),
    ("leaky_relu", True), ("leaky_relu", [1]), ("leaky_relu", {"a": "b"}), ("leaky_relu", np.float32(0.2)),
    ("leaky_relu", math.inf), ("leaky_relu", -math.inf), ("leaky_relu", math.nan), ("leaky_relu", np.float64(math.inf)),
    ("leaky_relu", 1e200), ("bogus", None), ("ab", None),
])
def test_calculate_gain_as_torch(nonlinearity, param):
    theirs = outcome(lambda: init.calculate_gain(nonlinearity, param))
    ours = outcome(lambda: fit.calculate_gain(nonlinearity, param))
    if theirs[0] == "raises":
        assert ours[0] == "raises" and isinstance(ours[1], type(theirs[1]))
    else:
        assert type(ours[1]) is type(theirs[1])
        assert ours[1] == theirs[1] or (math.isnan(ours[1]) and math.isnan(theirs[1]))


# --------------------------------------------------- tensors without data, other layouts, overrides
def fake(*shape):
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode()
    with mode:
        return torch.empty(*shape)


def nested(tensors):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warning that nested tensors are a prototype
        return torch.nested.nested_tensor(tensors)


def inference(*shape):
    with torch.inference_mode():
        return torch.zeros(*shape)


KINDS = {
    # (torch's trunc_normal_ and sparse_ need the data of a fake tensor, fastinit's leave it as a meta one)
    "fake": (lambda: fake(4, 3), ["uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_", "xavier_uniform_",
                                  "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]),
    "sparse": (lambda: torch.ones(4, 3).to_sparse(), ["zeros_", "ones_", "constant_", "eye_"]),
    "nested": (lambda: nested([torch.ones(2), torch.ones(3)]), ["zeros_", "ones_", "constant_"]),
    "inference": (lambda: inference(4, 3), ["uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_",
                                            "eye_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                            "kaiming_normal_", "orthogonal_", "sparse_"]),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tensors_without_data_of_other_layouts_and_inference_tensors_as_torch(kind):
    make, functions = KINDS[kind]
    found = []
    for function in functions:
        differences = compare(function, make, GRID_ARGS.get(function, ()))[0]
        if differences:
            found.append(f"{function}: {differences}")
    assert not found, found


def test_inference_tensors_are_filled_inside_inference_mode():
    with torch.inference_mode():
        theirs = outcome(lambda: init.normal_(inference(4, 3)))
        ours = outcome(lambda: fit.normal_(inference(4, 3), seed=SEED, name="w"))
    _same_outcome(theirs, ours, values=False)
    assert torch.equal(ours[1], fit.normal_(torch.zeros(4, 3), seed=SEED, name="w"))


class _Tracked(torch.Tensor):
    seen: ClassVar[list] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.seen.append(getattr(func, "__name__", "?"))
        return super().__torch_function__(func, types, args, kwargs or {})


OVERRIDDEN = [("uniform_", ()), ("normal_", ()), ("constant_", (0.5,)), ("kaiming_uniform_", ())]


@pytest.mark.parametrize("function, args", OVERRIDDEN, ids=[f for f, _ in OVERRIDDEN])
def test_torch_function_modes_and_subclasses_see_the_call_as_in_torch(function, args):
    draws = {} if function == "constant_" else {"seed": SEED, "name": "w"}
    expected = getattr(fit, function)(torch.zeros(4, 3), *args, **draws)
    seen = {}
    for who, call in (("torch", lambda t: getattr(init, function)(t, *args)),
                      ("fastinit", lambda t: getattr(fit, function)(t, *args, **draws))):
        tensor, subclass_tensor = torch.zeros(4, 3), torch.zeros(4, 3).as_subclass(_Tracked)
        with SeenCalls() as mode:
            result = call(tensor)
        _Tracked.seen = []
        subclass_result = call(subclass_tensor)
        seen[who] = (mode.seen[0], _Tracked.seen[0], type(subclass_result))
    assert seen["fastinit"] == seen["torch"] == (function, function, _Tracked)
    assert torch.equal(result, expected) and torch.equal(subclass_result.as_subclass(torch.Tensor), expected)
