"""fastinit.torch behaves as torch.nn.init, side by side with torch itself: the same result kind
(value, no-op, exception class, warning text) for degenerate parameters, tensor hyperparameters,
complex, integer, meta and zero-element tensors; the same distributions (two-sample KS against
torch's own draws); torch's deprecated names; calculate_gain."""

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
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


def _same_outcome(theirs, ours, values):
    if theirs[0] == "raises":
        assert ours[0] == "raises", f"torch raises {theirs[1]!r}, fastinit returns"
        assert isinstance(ours[1], type(theirs[1])), f"torch raises {type(theirs[1])}, fastinit {type(ours[1])}"
        return
    assert ours[0] == "returns", f"torch returns, fastinit raises {ours[1]!r}"
    _, t, t_warnings = theirs
    _, o, o_warnings = ours
    assert o_warnings == t_warnings
    assert (o.dtype, o.shape, o.device) == (t.dtype, t.shape, t.device)
    if values and not t.is_meta:
        assert torch.equal(o, t)


def f32(*shape):
    return lambda: torch.zeros(*shape)


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
]


@pytest.mark.parametrize("function, make, args, kwargs, values", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_same_outcome_as_torch(function, make, args, kwargs, values):
    theirs = outcome(lambda: getattr(init, function)(make(), *args, **kwargs))
    draws = function not in ("constant_", "ones_", "zeros_", "eye_", "dirac_")
    ours = outcome(lambda: getattr(fit, function)(make(), *args, **kwargs, **({"seed": SEED} if draws else {})))
    _same_outcome(theirs, ours, values)


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
    ("bogus", None), ("ab", None),
])
def test_calculate_gain_as_torch(nonlinearity, param):
    theirs = outcome(lambda: init.calculate_gain(nonlinearity, param))
    ours = outcome(lambda: fit.calculate_gain(nonlinearity, param))
    if theirs[0] == "raises":
        assert ours[0] == "raises" and isinstance(ours[1], type(theirs[1]))
    else:
        assert ours[1] == theirs[1] and type(ours[1]) is type(theirs[1])
