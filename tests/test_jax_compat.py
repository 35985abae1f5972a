"""fastinit.jax behaves as jax.nn.initializers, side by side with JAX itself: complex dtypes (with
JAX's distributions: complex normal, uniform disk, modulus-truncated normal, complex orthogonal),
fans of 0-D and 1-D shapes with explicit axes, array and traced hyperparameters, degenerate
hyperparameters, bare int shapes, the constant initializers (every dtype, the key ignored), the
orthogonal initializers' axes and ranks, and the same exception classes."""

import numpy as np
import pytest
from conftest import run_python

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


def side_by_side(call):
    """``call(module)`` on jax.nn.initializers and on fastinit.jax: the same outcome kind (see same_kind)."""
    return same_kind(outcome(lambda: call(theirs_module)), outcome(lambda: call(fij)))


def assert_same_values(ours, theirs):
    assert np.array_equal(ours, theirs, equal_nan=True), (ours.ravel()[:4], theirs.ravel()[:4])


# ------------------------------------------------- degenerate hyperparameters: JAX's arithmetic
@pytest.mark.parametrize("factory, args, kwargs, dtype", [
    ("uniform", (0.0,), {}, jnp.float32),
    ("truncated_normal", (0.0,), {}, jnp.float32),
    ("variance_scaling", (0.0, "fan_in", "normal"), {}, jnp.float32),
    ("variance_scaling", (0.0, "fan_avg", "uniform"), {}, jnp.complex64),
    ("variance_scaling", (-1.0, "fan_in", "truncated_normal"), {}, jnp.float32),  # JAX: sqrt(-1) is NaN
    ("normal", (jnp.nan,), {}, jnp.float32),
    ("orthogonal", (0.0,), {}, jnp.float32),
], ids=["uniform-0", "truncated-0", "vs-0", "vs-0-complex", "vs-negative", "normal-nan", "orthogonal-0"])
def test_degenerate_scales_give_jax_values(factory, args, kwargs, dtype):
    ours, theirs = both(factory, args, kwargs, shape=(30, 20), dtype=dtype)
    assert_same_values(ours, theirs)


@pytest.mark.parametrize("factory, args, dtype", [
    ("uniform", (-1.0,), jnp.float32), ("uniform", (-2.0,), jnp.bfloat16), ("normal", (-1.0,), jnp.float32),
    ("normal", (-0.5,), jnp.complex64), ("truncated_normal", (-1.0,), jnp.float32),
    ("truncated_normal", (-0.3,), jnp.float16), ("variance_scaling", (-1.0, "fan_in", "normal"), jnp.complex64),
])
def test_negative_scales_draw_jax_distributions(factory, args, dtype):
    ours, theirs = both(factory, args, dtype=dtype)
    assert_same_distribution(ours.astype(theirs.dtype if np.iscomplexobj(theirs) else np.float32),
                             theirs.astype(theirs.dtype if np.iscomplexobj(theirs) else np.float32))


def test_negative_scales_are_the_positive_draw_times_the_value():
    a, b = np.asarray(fij.uniform(-1.0)(KEY, (4000,))), np.asarray(fij.uniform(1.0)(KEY, (4000,)))
    assert np.array_equal(a, -b) and a.min() > -1 and a.max() <= 0  # JAX's scale * U[0, 1): in (-1, 0]
    assert np.array_equal(np.asarray(fij.normal(-1.0)(KEY, (4000,))), -np.asarray(fij.normal(1.0)(KEY, (4000,))))
    assert np.array_equal(np.asarray(fij.truncated_normal(-1.0)(KEY, (4000,))),
                          -np.asarray(fij.truncated_normal(1.0)(KEY, (4000,))))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("stddev, lower, upper", [
    (1.0, 1.0, 1.0), (0.37, 1.0, 1.0), (1.0, 3.0, -1.0), (2.0, 0.1, 0.1), (1.0, -jnp.inf, -jnp.inf),
    (1.0, jnp.inf, jnp.inf), (-1.5, 2.0, 0.0), (0.0, 1.0, 0.5),
])
def test_truncated_normal_with_empty_bounds_is_jax_constant(stddev, lower, upper, dtype):
    ours, theirs = both("truncated_normal", (stddev,), {"lower": lower, "upper": upper}, shape=(5, 3), dtype=dtype)
    assert_same_values(ours, theirs)
    assert len(np.unique(ours)) == 1


def test_truncated_normal_with_empty_bounds_still_checks_the_key():
    assert side_by_side(lambda m: m.truncated_normal(1.0, lower=1.0, upper=1.0)(None, (3,))) is None


# ------------------------------------------------- array and traced hyperparameters
@pytest.mark.parametrize("call", [
    lambda m: m.constant(jnp.arange(3.0))(KEY, (2, 3)),
    lambda m: m.constant(np.array([1.0, 2.0]))(KEY, (3, 2), jnp.bfloat16),
    lambda m: m.constant(jnp.arange(3.0))(KEY, (2, 4)),  # does not broadcast: JAX's error
    lambda m: m.constant(jnp.inf)(KEY, (3,)),
    lambda m: m.constant(float("nan"))(KEY, (3,), jnp.float16),
    lambda m: m.constant(True)(KEY, (3,)),
    lambda m: jax.jit(lambda s: m.constant(s)(KEY, (3,)))(2.0),
    lambda m: jax.jit(lambda s, k: m.constant(s)(k, (2, 2), jnp.int32))(3, KEY),
], ids=["arange", "numpy-bf16", "mismatch", "inf", "nan", "bool", "traced", "traced-int"])
def test_constant_values_as_jax(call):
    result = side_by_side(call)
    if result is not None:
        assert_same_values(*result)


@pytest.mark.parametrize("call", [
    lambda m: m.normal(jnp.array([1.0, 2.0]))(KEY, (3000, 2)),
    lambda m: m.uniform(np.array([1.0, 3.0]))(KEY, (3000, 2)),
    lambda m: m.truncated_normal(jnp.array([0.5, 2.0]), lower=-1.0)(KEY, (3000, 2)),
    lambda m: m.orthogonal(jnp.array([1.0, 2.0]))(KEY, (3000, 2)),
], ids=["normal", "uniform", "truncated_normal", "orthogonal"])
def test_array_scales_broadcast_as_in_jax(call):
    ours, theirs = side_by_side(call)
    for column in range(2):
        assert_same_distribution(ours[:, column], theirs[:, column])


@pytest.mark.parametrize("call", [
    lambda m: jax.jit(lambda s: m.normal(s)(KEY, (3000,)))(2.0),
    lambda m: jax.jit(lambda s: m.uniform(s)(KEY, (3000,)))(2.0),
    lambda m: jax.jit(lambda s: m.truncated_normal(s)(KEY, (3000,)))(2.0),
    lambda m: jax.jit(lambda s: m.variance_scaling(s, "fan_in", "normal")(KEY, (60, 50)))(2.0),
    lambda m: jax.jit(lambda s: m.variance_scaling(s, "fan_avg", "uniform")(KEY, (60, 50), jnp.complex64))(2.0),
    lambda m: jax.jit(lambda s, k: m.he_normal()(k, (60, 50)) * s)(2.0, KEY),
    lambda m: jax.jit(lambda s: m.orthogonal(s)(KEY, (60, 50)))(2.0),
    lambda m: jax.vmap(lambda s: m.normal(s)(KEY, (3000,)))(jnp.array([1.0, 3.0])),
], ids=["normal", "uniform", "truncated_normal", "vs", "vs-complex", "traced-key", "orthogonal", "vmap"])
def test_traced_hyperparameters_draw_like_jax(call):
    assert_same_distribution(*side_by_side(call))


@pytest.mark.parametrize("factory, args, dtype, rtol", [
    ("normal", (2.0,), jnp.float32, 0), ("uniform", (0.3,), jnp.float32, 1e-6),
    ("truncated_normal", (0.5,), jnp.float32, 1e-6),
    ("variance_scaling", (2.0, "fan_in", "uniform"), jnp.float32, 1e-6),
    ("orthogonal", (1.5,), jnp.float32, 1e-6), ("normal", (0.3,), jnp.bfloat16, 2**-6),
    ("variance_scaling", (3.0, "fan_out", "truncated_normal"), jnp.complex64, 1e-6),
])
def test_traced_scale_equals_the_scalar_path_up_to_rounding(factory, args, dtype, rtol):
    def ours(scale):
        return getattr(fij, factory)(scale, *args[1:])(KEY, (40, 30), dtype)

    traced = np.asarray(jax.jit(ours)(args[0]), np.complex128 if dtype == jnp.complex64 else np.float64)
    scalar = np.asarray(ours(args[0]), traced.dtype)
    np.testing.assert_allclose(traced, scalar, rtol=rtol, atol=1e-7 if rtol else 0)


def test_truncated_normal_bounds_must_be_concrete():
    with pytest.raises(TypeError, match="lower must be a concrete real number"):
        fij.truncated_normal(1.0, lower=jnp.array([-1.0, -2.0]))(KEY, (3, 2))
    with pytest.raises(TypeError, match="upper must be a concrete real number"):
        jax.jit(lambda u: fij.truncated_normal(1.0, upper=u)(KEY, (3,)))(1.0)


# ------------------------------------------------- the key of the constant initializers; int shapes
@pytest.mark.parametrize("key", [None, 1.5, -1, jax.random.split(KEY, 2), jax.random.split(jax.random.PRNGKey(0), 2),
                                 jnp.array([0, 1], jnp.int32)],
                         ids=["none", "float", "negative", "batch", "raw-batch", "int32"])
@pytest.mark.parametrize("make", [lambda m: m.zeros, lambda m: m.ones, lambda m: m.constant(2.5)],
                         ids=["zeros", "ones", "constant"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.int32])
def test_constant_initializers_ignore_the_key(make, key, dtype):
    assert_same_values(*side_by_side(lambda m: make(m)(key, (3,), dtype)))


@pytest.mark.parametrize("call", [
    lambda m: m.zeros(KEY, 5), lambda m: m.ones(KEY, 5, jnp.bfloat16), lambda m: m.constant(3.0)(KEY, 5),
    lambda m: m.normal()(KEY, 5), lambda m: m.uniform()(KEY, 5), lambda m: m.truncated_normal()(KEY, 5),
    lambda m: m.glorot_uniform()(KEY, 30),  # a 1-D shape with default axes: JAX's ValueError
    lambda m: m.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=[])(KEY, 5),
    lambda m: m.orthogonal()(KEY, 5),  # JAX takes len(shape): TypeError
    lambda m: m.delta_orthogonal()(KEY, 5),
], ids=["zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "glorot", "vs", "orthogonal", "delta"])
def test_bare_int_shapes_as_jax(call):
    result = side_by_side(call)
    if result is not None:
        assert result[0].shape == (5,)


# ------------------------------------------------- orthogonal and delta orthogonal: axes and ranks
@pytest.mark.parametrize("call", [
    lambda m: m.orthogonal(column_axis=2)(KEY, (40, 30)), lambda m: m.orthogonal(column_axis=-3)(KEY, (40, 30)),
    lambda m: m.orthogonal(column_axis=5)(KEY, (3, 20, 10)), lambda m: m.orthogonal()(KEY, (0,)),
    lambda m: m.orthogonal()(KEY, (7,)), lambda m: m.delta_orthogonal()(KEY, (0,)),
    lambda m: m.delta_orthogonal()(KEY, (0, 4)), lambda m: m.delta_orthogonal()(KEY, (4, 4)),
    lambda m: m.delta_orthogonal()(KEY, (3, 3, 8, 4)), lambda m: m.delta_orthogonal(column_axis=2)(KEY, (3, 4, 8)),
    lambda m: m.delta_orthogonal()(KEY, (0, 4, 4)),  # JAX's tap index on an empty dim
], ids=["orth-axis-2", "orth-axis--3", "orth-axis-5", "orth-0", "orth-1d", "delta-0", "delta-0-4", "delta-2d",
        "delta-in>out", "delta-axis-2", "delta-empty-kernel"])
def test_orthogonal_errors_as_jax(call):
    assert side_by_side(call) is None


@pytest.mark.parametrize("call", [
    lambda m: m.orthogonal()(KEY, (0, 4)), lambda m: m.orthogonal(column_axis=5)(KEY, (4, 0)),
    lambda m: m.orthogonal()(KEY, (0, 4), jnp.int32), lambda m: m.delta_orthogonal()(KEY, (3, 0, 4)),
], ids=["orth-empty", "orth-empty-any-axis", "orth-empty-int", "delta-empty"])
def test_empty_orthogonal_is_jax_zeros(call):
    assert_same_values(*side_by_side(call))


@pytest.mark.parametrize("column_axis, shape", [(0, (3, 3, 8, 8)), (-2, (3, 4, 8)), (0, (3, 3, 3, 4, 8)),
                                                (1, (3, 4, 8)), (-1, (5, 5, 16, 32))])
def test_delta_orthogonal_column_axis_as_jax(column_axis, shape):
    ours, theirs = side_by_side(lambda m: m.delta_orthogonal(2.0, column_axis=column_axis)(KEY, shape))
    center = tuple((k - 1) // 2 for k in shape[:-2])
    for w in (ours, theirs):
        assert np.count_nonzero(w) == np.count_nonzero(w[center])  # only the center tap
        m = np.moveaxis(w[center].astype(np.float64), column_axis % 2, -1)
        gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-4)
    assert not np.allclose(ours, theirs)


def test_delta_orthogonal_is_the_orthogonal_matrix_at_the_center():
    w = np.asarray(fij.delta_orthogonal(1.5, name="k")(KEY, (3, 3, 8, 16), jnp.bfloat16))
    assert np.array_equal(w[1, 1], np.asarray(fij.orthogonal(1.5, name="k")(KEY, (8, 16), jnp.bfloat16)))


@pytest.mark.parametrize("dtype", [jnp.float8_e4m3fn, jnp.float8_e5m2])
def test_float8_draws_are_refused_naming_the_dtypes(dtype):
    for call in (fij.normal(), fij.he_uniform(), fij.orthogonal(), fij.truncated_normal()):
        with pytest.raises(TypeError, match="draws float32, float64, float16, bfloat16.*; got float8"):
            call(KEY, (4, 6), dtype)
    assert_same_values(*side_by_side(lambda m: m.constant(0.5)(KEY, (2, 2), dtype)))


def test_x64_complex128_and_float64():
    code = """
import jax, jax.numpy as jnp, numpy as np
import fastinit.jax as fij
k = jax.random.key(0)
for name, args in [("normal", ()), ("he_normal", ()), ("glorot_uniform", ()), ("orthogonal", ()),
                   ("variance_scaling", (1.0, "fan_in", "truncated_normal")), ("normal", (-2.0,))]:
    for dtype in (None, jnp.complex128, jnp.float64):
        a = getattr(fij, name)(*args)(k, (40, 30), dtype)
        b = getattr(jax.nn.initializers, name)(*args)(k, (40, 30), dtype)
        assert a.dtype == b.dtype, (name, dtype, a.dtype, b.dtype)
        assert abs(float(np.std(np.asarray(a))) / float(np.std(np.asarray(b))) - 1) < 0.15, (name, dtype)
for lower, upper in [(1.0, 1.0), (0.7, 0.1)]:  # JAX's constant, from upper converted to float64
    a = fij.truncated_normal(0.3, lower=lower, upper=upper)(k, (3,), jnp.float64)
    b = jax.nn.initializers.truncated_normal(0.3, lower=lower, upper=upper)(k, (3,), jnp.float64)
    assert a.dtype == b.dtype == jnp.float64 and np.array_equal(np.asarray(a), np.asarray(b)), (lower, upper)
print("ok")
"""
    assert run_python(code, JAX_ENABLE_X64=1, JAX_PLATFORMS="cpu").strip() == "ok"
