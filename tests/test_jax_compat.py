"""fastinit.jax behaves as jax.nn.initializers, side by side with JAX itself: complex dtypes (with
JAX's distributions: complex normal, uniform disk, modulus-truncated normal, complex orthogonal),
fans of 0-D and 1-D shapes with explicit axes, array hyperparameters, every dtype for the
constant initializers, and the same exception classes."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

jax = pytest.importorskip("jax")
stats = pytest.importorskip("scipy.stats")
import jax.numpy as jnp  # noqa: E402

import fastinit.jax as fij  # noqa: E402

KEY = jax.random.key(7)
theirs_module = jax.nn.initializers


def outcome(call):
    try:
        return ("returns", np.asarray(call()))
    except Exception as err:  # comparing classes is the point
        return ("raises", err)


def same_kind(theirs, ours):
    if theirs[0] == "raises":
        assert ours[0] == "raises", f"JAX raises {theirs[1]!r}, fastinit returns"
        assert isinstance(ours[1], type(theirs[1])), f"JAX raises {type(theirs[1])}, fastinit {ours[1]!r}"
        return None
    assert ours[0] == "returns", f"JAX returns, fastinit raises {ours[1]!r}"
    assert (ours[1].dtype, ours[1].shape) == (theirs[1].dtype, theirs[1].shape)
    return ours[1], theirs[1]


def both(factory, args=(), kwargs=None, shape=(200, 150), dtype=jnp.float32):
    kwargs = kwargs or {}
    theirs = outcome(lambda: getattr(theirs_module, factory)(*args, **kwargs)(KEY, shape, dtype))
    ours = outcome(lambda: getattr(fij, factory)(*args, **kwargs)(KEY, shape, dtype))
    return same_kind(theirs, ours)


def assert_same_distribution(ours, theirs):
    """Two-sample KS on the real and imaginary parts and the modulus (real arrays: the values)."""
    samples = ((ours.real, theirs.real), (ours.imag, theirs.imag), (np.abs(ours), np.abs(theirs))) \
        if np.iscomplexobj(ours) else ((ours, theirs),)
    for mine, reference in samples:
        mine, reference = mine.ravel().astype(np.float64), reference.ravel().astype(np.float64)
        assert stats.ks_2samp(mine, reference).pvalue > 1e-3
        assert np.std(mine) == pytest.approx(np.std(reference), rel=0.03)


COMPLEX = [
    ("normal", (), {}), ("normal", (2.0,), {}),
    ("glorot_normal", (), {}), ("glorot_uniform", (), {}), ("he_normal", (), {}), ("he_uniform", (), {}),
    ("lecun_normal", (), {}), ("lecun_uniform", (), {}), ("xavier_uniform", (), {}), ("kaiming_normal", (), {}),
    ("variance_scaling", (2.0, "fan_out", "truncated_normal"), {}),
    ("variance_scaling", (0.5, "fan_avg", "normal"), {}),
    ("variance_scaling", (3.0, "fan_geo_avg", "uniform"), {}),
]


@pytest.mark.parametrize("factory, args, kwargs", COMPLEX, ids=[f"{c[0]}-{i}" for i, c in enumerate(COMPLEX)])
def test_complex_draws_have_jax_distributions(factory, args, kwargs):
    ours, theirs = both(factory, args, kwargs, dtype=jnp.complex64)
    assert_same_distribution(ours, theirs)
    assert abs(np.corrcoef(ours.real.ravel(), ours.imag.ravel())[0, 1]) < 0.02
    if "uniform" in factory or (args and args[-1] == "uniform"):
        assert np.abs(ours).max() <= np.abs(theirs).max() * 1.01  # a disk, not a square


@pytest.mark.parametrize("factory, shape", [("orthogonal", (20, 30)), ("orthogonal", (30, 20)),
                                            ("orthogonal", (4, 5, 6)), ("delta_orthogonal", (3, 3, 4, 8))])
def test_complex_orthogonal_is_unitary_like_jax(factory, shape):
    ours, theirs = both(factory, (1.5,), shape=shape, dtype=jnp.complex64)
    for q in (ours, theirs):
        m = q[1, 1] if factory == "delta_orthogonal" else q.reshape(-1, shape[-1])
        small = m if m.shape[0] <= m.shape[1] else m.conj().T
        assert np.allclose(small @ small.conj().T, 1.5**2 * np.eye(small.shape[0]), atol=1e-4)
    assert not np.allclose(ours.imag, 0)


@pytest.mark.parametrize("factory, args, dtype", [
    ("truncated_normal", (), jnp.complex64), ("uniform", (), jnp.complex64), ("normal", (), jnp.int32),
    ("glorot_normal", (), jnp.int32), ("orthogonal", (), jnp.int32),
])
def test_dtypes_jax_does_not_draw_raise_as_in_jax(factory, args, dtype):
    assert both(factory, args, shape=(4, 6), dtype=dtype) is None


@pytest.mark.parametrize("args, kwargs, shape", [
    ((1.0, "fan_in", "normal"), {"in_axis": [0], "out_axis": []}, (5000,)),
    ((1.0, "fan_in", "normal"), {"in_axis": [], "out_axis": []}, ()),
    ((2.0, "fan_out", "uniform"), {"in_axis": 0, "out_axis": []}, (4000,)),
    ((1.0, "fan_avg", "truncated_normal"), {"in_axis": [0, 1], "out_axis": [2]}, (30, 20, 10)),
    ((1.0, "fan_in", "normal"), {"in_axis": 0, "out_axis": 0}, (300, 40)),  # JAX does not ask for distinct axes
    ((1.0, "fan_in", "normal"), {}, (5,)),  # default axes on 1-D: JAX's error
    ((1.0, "fan_in", "normal"), {}, (0, 5)),  # zero-size: JAX divides by zero
    ((1.0, "fan_sum", "normal"), {}, (4, 5)),
    ((1.0, "fan_in", "gauss"), {}, (4, 5)),
])
def test_variance_scaling_fans_as_jax_computes_them(args, kwargs, shape):
    result = both("variance_scaling", args, kwargs, shape=shape)
    if result is not None and result[0].size >= 1000:
        assert_same_distribution(*result)


def test_default_axes_on_1d_read_like_jax():
    with pytest.raises(ValueError) as theirs:
        theirs_module.glorot_normal()(KEY, (5,))
    with pytest.raises(ValueError) as ours:
        fij.glorot_normal()(KEY, (5,))
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("factory, args, kwargs, dtype", [
    ("uniform", (jnp.array(1.0), jnp.bfloat16), {}, None),
    ("normal", (jnp.array(0.1),), {}, None),
    ("normal", (jnp.array(0.1, jnp.float32),), {}, jnp.bfloat16),
    ("truncated_normal", (jnp.array(0.1),), {"lower": jnp.array(-1.0)}, None),
    ("variance_scaling", (jnp.array(2.0), "fan_in", "normal"), {}, jnp.float16),
    ("orthogonal", (jnp.array(2.0),), {}, None),
    ("constant", (jnp.array(0.5),), {}, jnp.bfloat16),
])
def test_array_hyperparameters_keep_the_requested_dtype(factory, args, kwargs, dtype):
    ours, theirs = both(factory, args, kwargs, shape=(300, 200), dtype=dtype)
    if factory != "constant":
        assert_same_distribution(ours.astype(np.float32), theirs.astype(np.float32))
    else:
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_, jnp.complex64, jnp.uint8, jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("factory, args", [("zeros", None), ("ones", None), ("constant", (3,)),
                                           ("constant", (1 + 2j,))])
def test_constants_in_every_dtype(factory, args, dtype):
    if args is not None and isinstance(args[0], complex) and dtype != jnp.complex64:
        pytest.skip("a complex value for a real dtype")
    theirs = outcome(lambda: (getattr(theirs_module, factory)(*args) if args else getattr(theirs_module, factory))(
        KEY, (3, 4), dtype))
    ours = outcome(lambda: (getattr(fij, factory)(*args) if args else getattr(fij, factory))(KEY, (3, 4), dtype))
    result = same_kind(theirs, ours)
    if result is not None:
        assert np.array_equal(*result)


def test_x64_complex128_and_float64():
    code = """
import jax, jax.numpy as jnp, numpy as np
import fastinit.jax as fij
k = jax.random.key(0)
for name, args in [("normal", ()), ("he_normal", ()), ("glorot_uniform", ()), ("orthogonal", ()),
                   ("variance_scaling", (1.0, "fan_in", "truncated_normal"))]:
    for dtype in (None, jnp.complex128, jnp.float64):
        a = getattr(fij, name)(*args)(k, (40, 30), dtype)
        b = getattr(jax.nn.initializers, name)(*args)(k, (40, 30), dtype)
        assert a.dtype == b.dtype, (name, dtype, a.dtype, b.dtype)
        assert abs(float(np.std(np.asarray(a))) / float(np.std(np.asarray(b))) - 1) < 0.15, (name, dtype)
print("ok")
"""
    env = {"JAX_ENABLE_X64": "1", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    import os

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
