"""fastinit.dask: any chunking equals the NumPy fill; a distributed zarr write on a LocalCluster."""

import numpy as np
import pytest
from conftest import BF16, FLOAT_DTYPES, assert_bits_equal

da = pytest.importorskip("dask.array")
import fastinit as fi  # noqa: E402
import fastinit.dask as fid  # noqa: E402

CHUNKINGS = [(100, 37), ((1, 99, 137), (40, 3, 20)), "auto", (7, 1)]


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_any_chunking_equals_numpy(chunks, dtype):
    x = fid.normal((237, 63), 0.5, 2.0, dtype, chunks=chunks, seed=3, name="w")
    assert x.dtype == dtype and x.shape == (237, 63)
    assert_bits_equal(x.compute(), fi.normal_(np.empty((237, 63), dtype), 0.5, 2.0, seed=3, name="w"))


@pytest.mark.parametrize("scheme, params", [
    ("kaiming_normal", {"nonlinearity": "relu"}), ("xavier_uniform", {"gain": 2.0}),
    ("trunc_normal", {"std": 0.02, "a": -0.04, "b": 0.04}), ("uniform", {"low": -1.0, "high": 1.0}),
    ("sparse", {"sparsity": 0.25}), ("orthogonal", {}), ("dirac", {}), ("eye", {}),
    ("variance_scaling", {"layout": "jax", "distribution": "truncated_normal"}),
])
def test_every_scheme_by_name(scheme, params):
    shape = (12, 8, 3) if scheme == "dirac" else (48, 30)
    x = getattr(fid, scheme)(shape, chunks=(5, 7, 2)[:len(shape)], seed=1, name="t", **params)
    assert_bits_equal(x.compute(), fi.init(shape, scheme, seed=1, name="t", **params))


def test_default_seed_fixed_at_construction():
    x = fid.uniform((64,), chunks=16)
    assert_bits_equal(x.compute(), x.compute())
    assert not np.array_equal(x.compute(), fid.uniform((64,), chunks=16).compute())


def test_bfloat16_and_empty():
    x = fid.trunc_normal((10, 0), dtype="bfloat16", seed=0)
    assert x.compute().shape == (10, 0) and x.dtype == BF16


@pytest.mark.parametrize("call, error, match", [
    (lambda: fid.init((4, 4), "nrmal"), ValueError, "unknown scheme 'nrmal'"),
    (lambda: fid.init((4, 4), 3), TypeError, "scheme must be"),
    (lambda: fid.normal((4, -1)), ValueError, "negative"),
    (lambda: fid.normal("44"), TypeError, "shape must be a sequence of non-negative ints"),
    (lambda: fid.normal((4, 4), std=-1.0), ValueError, "std"),
    (lambda: fid.kaiming_uniform((4, 4), mode="fan_sum"), ValueError, "mode"),
    (lambda: fid.normal((4, 4), dtype="int32"), TypeError, "dtype"),
    (lambda: fid.normal((4, 4), seed=-1), ValueError, "seed"),
])
def test_bad_input_raises_at_construction(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_distributed_zarr_write(tmp_path):
    distributed = pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    shape = (1000, 300)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        x = fid.kaiming_normal(shape, chunks=(128, 100), seed=5, name="layer.weight")
        x.to_zarr(str(tmp_path / "w.zarr"), compute=True)
        pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2
    stored = zarr.open_array(str(tmp_path / "w.zarr"), mode="r")[...]
    assert_bits_equal(stored, fi.kaiming_normal_(np.empty(shape, np.float32), seed=5, name="layer.weight"))


def test_arrays_of_different_conventions_never_share_a_graph_key():
    he, lecun = fi.conventions.jax.he_normal, fi.conventions.jax.lecun_normal
    a, b = fid.init((4, 4), he, seed=0, name="w"), fid.init((4, 4), lecun, seed=0, name="w")
    assert a.name != b.name and a.name.startswith("fastinit-jax.he_normal-")
    both = da.stack([a, b]).compute()
    assert_bits_equal(both[0], he(np.empty((4, 4), np.float32), seed=0, name="w"))
    assert_bits_equal(both[1], lecun(np.empty((4, 4), np.float32), seed=0, name="w"))
