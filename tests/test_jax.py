"""fastinit.jax: JAX's initializer protocol with fastinit values, JAX's semantics, keys, jit, errors."""

import math

import numpy as np
import pytest
from conftest import BF16, assert_bits_equal

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import fastinit as fi  # noqa: E402
import fastinit.jax as fij  # noqa: E402

KEY = jax.random.key(42)  # threefry data (0, 42): fastinit seed 42


def test_every_jax_initializer_name_is_here_with_jax_signature():
    import inspect

    names = {n for n in dir(jax.nn.initializers) if not n.startswith("_") and n != "Initializer"}
    assert names <= set(fij.__all__)
    for n in names - {"zeros", "ones"}:
        ours = list(inspect.signature(getattr(fij, n)).parameters)
        assert ours == [*inspect.signature(getattr(jax.nn.initializers, n)).parameters, "name"], n


@pytest.mark.parametrize("key", [KEY, jax.random.PRNGKey(42), 42, np.uint32([0, 42])],
                         ids=["typed", "raw", "int", "numpy"])
def test_key_folds_to_the_documented_seed(key):
    w = fij.he_normal()(key, (64, 32))
    assert isinstance(w, jax.Array)
    assert_bits_equal(np.asarray(w), fi.conventions.jax.he_normal(np.empty((64, 32), np.float32), seed=42))


def test_large_key_words_and_other_key_impls():
    assert fij.seed_of_key(np.uint32([0xFFFFFFFF, 1])) == (0xFFFFFFFF << 32) + 1
    rbg = jax.random.key(3, impl="rbg")
    a, b = fij.normal()(rbg, (8,)), fij.normal()(jax.random.key(3), (8,))
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(np.asarray(a), np.asarray(fij.normal()(rbg, (8,))))


@pytest.mark.parametrize("factory, shape, expected", [
    (lambda: fij.glorot_normal(), (5, 5, 16, 32),
     lambda a: fi.variance_scaling_(a, 1.0, "fan_avg", "truncated_normal", layout="jax", seed=42)),
    (lambda: fij.variance_scaling(2.0, "fan_geo_avg", "uniform", in_axis=0, out_axis=1), (20, 30, 4),
     lambda a: fi.uniform_(a, -math.sqrt(6 / math.sqrt(80 * 120)), math.sqrt(6 / math.sqrt(80 * 120)), seed=42)),
    (lambda: fij.truncated_normal(0.5, lower=-1.0, upper=3.0), (40, 3),
     lambda a: fi.trunc_normal_(a, 0.0, 0.5, -0.5, 1.5, seed=42)),
    (lambda: fij.uniform(2.0), (40, 3), lambda a: fi.uniform_(a, 0.0, 2.0, seed=42)),
    (lambda: fij.normal(), (40, 3), lambda a: fi.normal_(a, 0.0, 0.01, seed=42)),
    (lambda: fij.constant(0.5), (4, 3), lambda a: fi.constant_(a, 0.5)),
    (lambda: fij.lecun_normal(name="layer1"), (12, 3),
     lambda a: fi.variance_scaling_(a, 1.0, "fan_in", "truncated_normal", layout="jax", seed=42, name="layer1")),
])
def test_jax_semantics(factory, shape, expected):
    assert_bits_equal(np.asarray(factory()(KEY, shape)), expected(np.empty(shape, np.float32)))


def test_glorot_normal_is_truncated_like_jax():
    w = np.asarray(fij.glorot_normal()(KEY, (512, 512)))
    std = math.sqrt(2 / 1024) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * std * (1 + 1e-6)
    ref = np.asarray(jax.nn.initializers.glorot_normal()(KEY, (512, 512)))
    assert abs(w.std() / ref.std() - 1) < 0.02


@pytest.mark.parametrize("shape, axis", [((10, 6), 0), ((4, 5, 3), 1), ((6, 10), -1)])
def test_orthogonal_column_axis_as_jax(shape, axis):
    w = np.asarray(fij.orthogonal(2.0, column_axis=axis)(KEY, shape), np.float64)
    m = np.moveaxis(w, axis, -1).reshape(-1, shape[axis])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-4)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_dtypes(dtype):
    w = fij.he_uniform()(KEY, (16, 8), dtype)
    assert w.dtype == dtype
    np_dtype = BF16 if dtype == jnp.bfloat16 else np.dtype(dtype)
    assert_bits_equal(np.asarray(w), fi.variance_scaling_(np.empty((16, 8), np_dtype), 2.0, "fan_in", "uniform",
                                                          layout="jax", seed=42))
    assert fij.he_uniform(dtype=jnp.bfloat16)(KEY, (2, 2)).dtype == jnp.bfloat16


def test_traced_key_under_jit_and_vmap():
    init = fij.glorot_uniform()
    eager = np.asarray(init(KEY, (8, 4)))
    assert_bits_equal(np.asarray(jax.jit(lambda k: init(k, (8, 4)))(KEY)), eager)
    keys = jax.random.split(KEY, 3)
    batched = np.asarray(jax.vmap(lambda k: init(k, (8, 4)))(keys))
    for i in range(3):
        assert_bits_equal(batched[i], np.asarray(init(keys[i], (8, 4))))


def test_a_key_is_one_stream_for_every_initializer():
    """As documented: reusing a key is a user error (as in JAX), and shows as shared values."""
    short, long = (np.asarray(fij.normal()(KEY, shape)) for shape in ((10,), (20,)))
    assert np.array_equal(short, long[:10])
    a, b = np.asarray(fij.normal()(KEY, (4000,))), np.asarray(fij.uniform()(KEY, (4000,)))
    assert abs(np.corrcoef(a, b)[0, 1]) > 0.2
    k1, k2 = jax.random.split(KEY)
    assert abs(np.corrcoef(np.asarray(fij.normal()(k1, (4000,))), np.asarray(fij.uniform()(k2, (4000,))))[0, 1]) < 0.05


def test_tiny_jitted_model():
    k1, k2 = jax.random.split(KEY)
    params = {"w1": fij.he_normal()(k1, (8, 16)), "w2": fij.glorot_uniform()(k2, (16, 1))}

    @jax.jit
    def loss(p, x):
        return jnp.mean(jnp.square(jax.nn.relu(x @ p["w1"]) @ p["w2"]))

    x = jnp.ones((4, 8))
    value, grads = jax.value_and_grad(loss)(params, x)
    assert np.isfinite(float(value)) and grads["w1"].shape == (8, 16)
    assert not np.array_equal(np.asarray(params["w1"][:, :1]), np.asarray(params["w2"][:8]))


@pytest.mark.parametrize("call, error, match", [
    (lambda: fij.normal()("seed", (3,)), TypeError, "key must be"),
    (lambda: fij.normal()(jax.random.split(KEY, 2), (3,)), ValueError, "single PRNG key"),
    (lambda: fij.normal()(np.float32([0, 1]), (3,)), TypeError, "float32"),
    (lambda: fij.normal()(KEY, (3,), jnp.int32), TypeError, "must be a float or complex dtype, got int32"),
    (lambda: fij.normal()(KEY, "3"), TypeError, "shape"),
    (lambda: fij.normal(1e10)(KEY, (3,), jnp.float16), ValueError, "overflow float16"),
    (lambda: fij.glorot_uniform(bogus=1), TypeError, "glorot_uniform"),
    (lambda: fij.variance_scaling(1.0, "fan_sum", "normal")(KEY, (3, 3)), ValueError, "mode"),
    (lambda: fij.orthogonal(column_axis=2)(KEY, (3, 4)), IndexError, "column_axis 2 is out of range"),
    (lambda: fij.delta_orthogonal()(KEY, (0, 4)), ValueError, "3D, 4D or 5D"),
    (lambda: fij.normal()(KEY, (3,), jnp.float8_e4m3fn), TypeError, "draws float32, float64, float16, bfloat16"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
