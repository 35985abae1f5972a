"""fastinit.jax with out_sharding: each device's shard filled alone as a box of the global tensor,
equal bit for bit to the unsharded array on any mesh (P('x', None), P(None, 'x'), P('x', 'y'),
replicated), one host fill per distinct shard, JAX's errors for a mesh that does not divide the
shape, jit, and Flax models initialized on any mesh.

The mesh tests need 8 devices, which JAX only makes (``--xla_force_host_platform_device_count=8``)
before its backend starts: the default suite has started it with one CPU device, so
``test_mesh_checks_in_a_subprocess`` runs this file again in a fresh interpreter with 8."""

import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import BF16, assert_bits_equal

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.sharding import AxisType, NamedSharding, SingleDeviceSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import fastinit as fi  # noqa: E402
import fastinit.jax as fij  # noqa: E402
from fastinit import _target  # noqa: E402

KEY = jax.random.key(3)
DEVICES = 8
# needs 8 devices: without them (the default suite), conftest deselects these tests and they run in
# the subprocess of test_mesh_checks_in_a_subprocess
mesh_only = pytest.mark.mesh_devices(DEVICES)


def test_mesh_checks_in_a_subprocess():
    if len(jax.devices()) >= DEVICES:
        pytest.skip("this process has 8 devices: the mesh tests run here")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES}", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", __file__],
                          capture_output=True, text=True, env=env, cwd=root, timeout=600)
    passed = re.search(r"(\d+) passed", done.stdout)
    assert done.returncode == 0 and passed and int(passed[1]) >= 90 and "deselected" not in done.stdout, \
        done.stdout[-6000:] + done.stderr[-3000:]


def mesh(shape=(4, 2), kind=AxisType.Auto):
    return jax.make_mesh(shape, ("x", "y")[:len(shape)], axis_types=(kind,) * len(shape),
                         devices=jax.devices()[:DEVICES])


def assert_shards_equal(array, expected, sharding):
    """``array`` has ``sharding`` and each device holds exactly its slice of ``expected``."""
    assert array.sharding.is_equivalent_to(sharding, array.ndim), (array.sharding, sharding)
    assert len(array.addressable_shards) == len(sharding.addressable_devices)
    for shard in array.addressable_shards:
        assert_bits_equal(np.asarray(shard.data), expected[shard.index])
    assert_bits_equal(np.asarray(array), expected)


# initializers, with a shape each mesh (4 x 2 and 2 x 4) and spec divides: sharded dims of 16 and 12, an odd
# unsharded dim, a 0-size dim, a conv kernel
FACTORIES = {
    "he_normal": lambda: fij.he_normal(name="w"),
    "glorot_uniform": lambda: fij.glorot_uniform(),
    "lecun_normal": lambda: fij.lecun_normal(name="conv"),
    "normal": lambda: fij.normal(0.5),
    "uniform": lambda: fij.uniform(2.0),
    "truncated_normal": lambda: fij.truncated_normal(0.3, lower=-1.0, upper=1.5),
    "variance_scaling": lambda: fij.variance_scaling(2.0, "fan_geo_avg", "normal", in_axis=0, out_axis=1),
}
SPECS = {"rows": P("x", None), "columns": P(None, "x"), "both": P("x", "y"), "replicated": P(),
         "rows-over-all": P(("x", "y"), None)}


@mesh_only
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
@pytest.mark.parametrize("mesh_shape", [(4, 2), (2, 4)], ids=["4x2", "2x4"])
@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_sharded_equals_unsharded(factory, mesh_shape, spec):
    sharding = NamedSharding(mesh(mesh_shape), spec)
    init = factory()
    for shape, dtype in [((16, 12), jnp.float32), ((16, 12), jnp.bfloat16), ((16, 12), jnp.float16),
                         ((16, 24, 3), jnp.float32)]:
        expected = np.asarray(init(KEY, shape, dtype))
        assert_shards_equal(init(KEY, shape, dtype, out_sharding=sharding), expected, sharding)


@mesh_only
def test_equal_to_the_numpy_api_and_odd_and_empty_shapes():
    sharding = NamedSharding(mesh(), P("x", None))
    w = fij.he_normal(name="w")(KEY, (8, 7), jnp.bfloat16, out_sharding=sharding)
    assert_shards_equal(w, fi.conventions.jax.he_normal(np.empty((8, 7), BF16), seed=3, name="w"), sharding)
    columns = NamedSharding(mesh(), P(None, "x"))
    assert_shards_equal(fij.normal()(KEY, (5, 8), out_sharding=columns),
                        fi.normal_(np.empty((5, 8), np.float32), 0.0, 0.01, seed=3), columns)
    empty = fij.normal()(KEY, (0, 12), out_sharding=sharding)
    assert empty.shape == (0, 12) and empty.sharding.is_equivalent_to(sharding, 2)
    scalar = NamedSharding(mesh(), P())
    assert_shards_equal(fij.normal()(KEY, (), out_sharding=scalar), np.asarray(fij.normal()(KEY, ())), scalar)


@mesh_only
@pytest.mark.parametrize("factory, dtype", [(fij.normal, jnp.complex64), (fij.glorot_uniform, jnp.complex64),
                                            (fij.he_normal, jnp.complex64)])
def test_complex_shards(factory, dtype):
    sharding = NamedSharding(mesh(), P("x", "y"))
    init = factory()
    assert_shards_equal(init(KEY, (16, 12), dtype, out_sharding=sharding), np.asarray(init(KEY, (16, 12), dtype)),
                        sharding)


@mesh_only
@pytest.mark.parametrize("make, shape", [
    (lambda: fij.orthogonal(2.0), (16, 12)),
    (lambda: fij.orthogonal(column_axis=0), (16, 12)),
    (lambda: fij.delta_orthogonal(), (3, 3, 8, 16)),
    (lambda: fij.normal(jnp.array([1.0, 2.0, 3.0, 4.0])), (16, 4)),  # an array hyperparameter: JAX arithmetic
    (lambda: fij.uniform(-1.0), (16, 12)),  # outside the fill's range: JAX arithmetic
    (lambda: fij.truncated_normal(1.0, lower=1.0, upper=1.0), (16, 12)),  # JAX's constant
    (lambda: fij.zeros, (16, 12)),
    (lambda: fij.constant(0.5), (16, 12)),
], ids=["orthogonal", "orthogonal-axis0", "delta_orthogonal", "array-stddev", "negative-scale", "empty-bounds",
        "zeros", "constant"])
def test_whole_tensor_paths_are_placed_on_the_sharding(make, shape):
    # zeros and constant are JAX's own, which take an Explicit mesh set by jax.set_mesh
    explicit = mesh(kind=AxisType.Explicit)
    sharding = NamedSharding(explicit, P(None, None, None, "x") if len(shape) == 4 else P("x", None))
    init = make()
    expected = np.asarray(init(KEY, shape, jnp.float32))
    with jax.set_mesh(explicit):
        assert_shards_equal(init(KEY, shape, jnp.float32, out_sharding=sharding), expected, sharding)


def record_fills(monkeypatch):
    """The shape of every output a fastinit fill checks through ``Target`` (a scheme may check its
    output more than once: count against an unsharded call)."""
    shapes = []
    real_init = _target.Target.__init__

    def recording(self, out, *args, **kwargs):
        shapes.append(out.shape)
        real_init(self, out, *args, **kwargs)

    monkeypatch.setattr(_target.Target, "__init__", recording)
    return shapes


@mesh_only
@pytest.mark.parametrize("spec, fills, shard", [(P("x", "y"), 8, (512, 256)), (P("x", None), 4, (512, 512)),
                                                (P(None, ("x", "y")), 8, (2048, 64)), (P(), 1, (2048, 512))],
                         ids=["both", "rows-replicated-over-y", "columns-over-all", "replicated"])
def test_each_distinct_shard_is_filled_once_and_alone(monkeypatch, spec, fills, shard):
    sharding = NamedSharding(mesh(), spec)
    shape, init = (2048, 512), fij.he_normal(name="big")
    expected = np.asarray(init(KEY, shape))
    shapes = record_fills(monkeypatch)
    init(KEY, shard)
    checks_per_fill = len(shapes)
    shapes.clear()
    tracemalloc.start()
    try:
        array = init(KEY, shape, out_sharding=sharding)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert shapes == [shard] * (fills * checks_per_fill)
    # host memory beyond what the result keeps (on the CPU backend a device buffer may alias its host
    # array): one shard at a time (JAX may release the last one copied a moment late), never the 4 MiB
    # tensor, which is 4 shards or more
    shard_bytes = np.prod(shard) * 4
    assert peak - after < min(2 * shard_bytes, np.prod(shape) * 4) + (256 << 10), (peak - after, shard_bytes)
    assert_shards_equal(array, expected, sharding)


@mesh_only
def test_a_whole_host_build_would_fail_the_memory_check():
    """The check above can fail: building the whole tensor on the host and sharding it costs its size."""
    shape = (2048, 512)
    tracemalloc.start()
    try:
        jax.device_put(np.asarray(fij.he_normal(name="big")(KEY, shape)), NamedSharding(mesh(), P("x", "y")))
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - after >= np.prod(shape) * 4


@mesh_only
@pytest.mark.parametrize("kind", [AxisType.Auto, AxisType.Explicit])
def test_a_mesh_that_does_not_divide_the_shape_raises_as_jax(kind):
    sharding = NamedSharding(mesh(kind=kind), P("x", None))
    explicit = mesh(kind=AxisType.Explicit)
    with jax.set_mesh(explicit), pytest.raises(ValueError, match="partitioned 4 times") as theirs:
        jax.nn.initializers.he_normal()(KEY, (6, 4), out_sharding=NamedSharding(explicit, P("x", None)))
    assert "evenly divide" in str(theirs.value)
    for call in (lambda: fij.he_normal()(KEY, (6, 4), out_sharding=sharding),  # shard by shard
                 lambda: fij.orthogonal()(KEY, (6, 4), out_sharding=sharding),  # the whole tensor, placed
                 lambda: jax.jit(lambda k: fij.he_normal()(k, (6, 4), out_sharding=sharding))(KEY)):  # traced key
        with pytest.raises(ValueError, match="partitioned 4 times") as ours:
            call()
        assert "evenly divide" in str(ours.value)


@mesh_only
def test_partition_spec_under_set_mesh_as_jax():
    explicit = mesh(kind=AxisType.Explicit)
    with jax.set_mesh(explicit):
        theirs = jax.nn.initializers.he_normal()(KEY, (16, 12), out_sharding=P("x", "y"))
        ours = fij.he_normal()(KEY, (16, 12), out_sharding=P("x", "y"))
    assert ours.sharding == theirs.sharding
    assert_shards_equal(ours, np.asarray(fij.he_normal()(KEY, (16, 12))), theirs.sharding)


@mesh_only
@pytest.mark.parametrize("kind", [AxisType.Auto, AxisType.Explicit])
def test_under_jit(kind):
    m = mesh(kind=kind)
    sharding = NamedSharding(m, P("x", "y"))
    init = fij.glorot_normal(name="j")
    expected = np.asarray(init(KEY, (16, 12), jnp.bfloat16))
    traced_key = jax.jit(lambda k: init(k, (16, 12), jnp.bfloat16, out_sharding=sharding))
    constant_key = jax.jit(lambda: init(3, (16, 12), jnp.bfloat16, out_sharding=sharding))
    with jax.set_mesh(m):
        for array in (traced_key(KEY), constant_key()):
            assert_shards_equal(array, expected, sharding)
        if kind == AxisType.Explicit:  # JAX's own takes out_sharding under jit on an Explicit mesh
            theirs = jax.jit(lambda k: jax.nn.initializers.glorot_normal()(k, (16, 12), jnp.bfloat16,
                                                                           out_sharding=sharding))(KEY)
            assert theirs.sharding.is_equivalent_to(traced_key(KEY).sharding, 2)


@mesh_only
def test_other_shardings_and_devices():
    expected = np.asarray(fij.lecun_uniform()(KEY, (16, 12)))
    device = jax.devices()[5]
    for out_sharding in (SingleDeviceSharding(device), device):
        array = fij.lecun_uniform()(KEY, (16, 12), out_sharding=out_sharding)
        assert array.devices() == {device}
        assert_bits_equal(np.asarray(array), expected)


def test_single_device_and_bad_out_sharding():
    expected = np.asarray(fij.he_uniform()(KEY, (6, 5)))
    device = jax.devices()[-1]
    one = jax.make_mesh((1,), ("x",), devices=[device])
    for out_sharding in (SingleDeviceSharding(device), device, NamedSharding(one, P("x"))):
        array = fij.he_uniform()(KEY, (6, 5), out_sharding=out_sharding)
        assert array.devices() == {device}
        assert_bits_equal(np.asarray(array), expected)
    with pytest.raises(TypeError, match="out_sharding must be a jax.sharding.Sharding"):
        fij.he_uniform()(KEY, (6, 5), out_sharding="x")
    with pytest.raises(ValueError, match="not under a mesh context") as theirs:
        jax.nn.initializers.he_uniform()(KEY, (6, 5), out_sharding=P("x"))
    with pytest.raises(type(theirs.value), match="not under a mesh context"):
        fij.he_uniform()(KEY, (6, 5), out_sharding=P("x"))


# Flax: a model initialized with fastinit initializers is the same on every mesh


def flax_linen_params(mesh_shape):
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(16, (3, 3), kernel_init=nn.with_partitioning(fij.he_normal(name="conv"),
                                                                     (None, None, None, "model")))(x)
            x = nn.Dense(32, kernel_init=nn.with_partitioning(fij.lecun_normal(name="dense"), ("data", "model")),
                         bias_init=fij.normal(0.1, name="bias"))(x.reshape(x.shape[0], -1))
            return nn.Dense(8, kernel_init=nn.with_partitioning(fij.orthogonal(name="head"), ("model", None)))(x)

    model, x = MLP(), jnp.ones((2, 4, 4, 3))
    if mesh_shape is None:
        return model.init(KEY, x)
    m = jax.make_mesh(mesh_shape, ("data", "model"), axis_types=(AxisType.Auto,) * 2, devices=jax.devices()[:DEVICES])
    abstract = jax.eval_shape(model.init, KEY, x)
    shardings = nn.get_sharding(abstract, m)
    params = jax.jit(model.init, out_shardings=shardings)(KEY, x)
    kernel = params["params"]["Dense_0"]["kernel"]
    assert kernel.value.sharding.is_equivalent_to(NamedSharding(m, P("data", "model")), 2)
    return params


@mesh_only
def test_flax_linen_model_is_equal_on_any_mesh():
    pytest.importorskip("flax")
    reference = jax.tree.leaves(flax_linen_params(None))
    for mesh_shape in [(8, 1), (1, 8), (4, 2), (2, 4)]:
        leaves = jax.tree.leaves(flax_linen_params(mesh_shape))
        assert len(leaves) == len(reference) == 6
        for ours, expected in zip(leaves, reference):
            assert_bits_equal(np.asarray(ours), np.asarray(expected))


@mesh_only
def test_flax_nnx_model_is_equal_on_any_mesh():
    nnx = pytest.importorskip("flax.nnx")

    def build(partitioned):
        def init(factory, spec):
            return nnx.with_partitioning(factory, spec) if partitioned else factory

        rngs = nnx.Rngs(params=5)
        return nnx.Sequential(
            nnx.Linear(16, 32, kernel_init=init(fij.glorot_uniform(name="a"), (None, "model")), rngs=rngs),
            nnx.Linear(32, 8, kernel_init=init(fij.he_normal(name="b"), ("model", None)), rngs=rngs))

    reference = jax.tree.leaves(nnx.state(build(False)))
    for mesh_shape in [(8,), (4,), (2,)]:
        m = jax.make_mesh(mesh_shape, ("model",), axis_types=(AxisType.Explicit,),
                          devices=jax.devices()[:mesh_shape[0]])
        with jax.set_mesh(m):
            model = build(True)
        kernel = model.layers[0].kernel[...]
        assert kernel.sharding.is_equivalent_to(NamedSharding(m, P(None, "model")), 2)
        leaves = jax.tree.leaves(nnx.state(model))
        assert len(leaves) == len(reference) == 4
        for ours, expected in zip(leaves, reference):
            assert_bits_equal(np.asarray(ours), np.asarray(expected))
