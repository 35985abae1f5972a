"""DLPack (``fastinit._dlpack``): GPU arrays from any DLPack producer, and fastinit's GPU arrays to JAX.

* In this process: the capsule reader against NumPy's own producer (unversioned and versioned
  capsules, strides, the read-only flag); the exporter against NumPy's and JAX's consumers, and the
  release of every exported tensor (by the consumer's deleter, or by the capsule of a tensor nobody
  consumed).
* In Numba's CUDA simulator (a child process, where device memory is host memory): the fills take
  DLPack producers on a CUDA device (fastinit's exporter, and NumPy capsules relabelled as CUDA) and
  equal the CPU fills bit for bit; bad DLPack input is refused; ``fastinit.jax`` initializers filled
  "on the GPU" and handed to JAX through DLPack equal the host path, sharded too.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import textwrap
import warnings

import ml_dtypes
import numpy as np
import pytest

import fastinit as fi
from fastinit import _dlpack

jax = pytest.importorskip("jax")
pytest.importorskip("numba_cuda")
from test_cuda import _child, assert_recorded, record_errors  # noqa: E402


class HostMemory:
    """A host array as the exporter takes device memory (pointer, shape, dtype, ordinal)."""

    def __init__(self, host: np.ndarray):
        self.host, self.pointer, self.shape, self.dtype = host, host.ctypes.data, host.shape, host.dtype
        self.ordinal = 0


class RelabelledNumPy:
    """A NumPy array's own DLPack capsule with its device relabelled CUDA (and a bfloat16 array's
    uint16 bits relabelled bfloat16): in the simulator a device pointer is a host pointer, so this is
    a CUDA producer there, with NumPy's layout of the structures."""

    def __init__(self, host: np.ndarray, versioned: bool, capsule_device: int = _dlpack.CUDA):
        self.host, self.versioned, self.capsule_device = host, versioned, capsule_device

    def __dlpack_device__(self):
        return _dlpack.CUDA, 0

    def __dlpack__(self, *, stream=None, max_version=None):
        assert stream == _dlpack.LEGACY_DEFAULT_STREAM, stream
        bfloat16 = self.host.dtype == ml_dtypes.bfloat16  # NumPy exports its bits as uint16
        exported = self.host.view(np.uint16) if bfloat16 else self.host
        capsule = exported.__dlpack__(max_version=(1, 0) if self.versioned else None)
        tensor, _ = _dlpack._tensor_of(capsule)
        tensor.device.device_type = self.capsule_device
        if bfloat16:
            tensor.dtype.code = 4  # kDLBfloat
        return capsule


def test_read_capsule_of_numpy_capsules():
    a = np.arange(24, dtype=np.float16).reshape(4, 6)
    for versioned in (None, (1, 0)):
        info = _dlpack.read_capsule(a.__dlpack__(max_version=versioned))
        assert info == {"data": a.ctypes.data, "shape": (4, 6), "strides": (6, 1), "device": (_dlpack.CPU, 0),
                        "dtype": "float16", "read_only": False, "copied": False}
    view = a[1:, ::2]
    info = _dlpack.read_capsule(view.__dlpack__())
    assert (info["data"], info["shape"], info["strides"]) == (view.ctypes.data, (3, 3), (6, 2))
    a.flags.writeable = False
    assert _dlpack.read_capsule(a.__dlpack__(max_version=(1, 0)))["read_only"]
    for dtype in (np.float32, np.float64, np.uint32, np.int64):
        assert _dlpack.read_capsule(np.zeros(2, dtype).__dlpack__())["dtype"] == np.dtype(dtype).name


def test_read_capsule_refuses_a_used_capsule_and_complex():
    capsule = np.zeros(3, np.float32).__dlpack__()
    np.from_dlpack(type("P", (), {"__dlpack__": lambda self, **k: capsule,
                                  "__dlpack_device__": lambda self: (_dlpack.CPU, 0)})())
    with pytest.raises(ValueError, match="already consumed"):
        _dlpack.read_capsule(capsule)
    with pytest.raises(TypeError, match="DLPack dtype .code 5, 64 bits"):
        _dlpack.read_capsule(np.zeros(3, np.complex64).__dlpack__())


def aligned(shape, dtype) -> np.ndarray:
    """A new array at a 64-byte boundary (JAX's CPU client imports such memory without a copy)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.uint32])
def test_exported_memory_is_numpys_and_jaxs_without_a_copy_and_released(dtype):
    host = aligned((5, 6), dtype)
    host[...] = np.arange(30).reshape(5, 6)
    exported = _dlpack.Exported(HostMemory(host), host, _dlpack.CPU)
    viewed = np.from_dlpack(exported)
    assert viewed.ctypes.data == host.ctypes.data and viewed.shape == (5, 6) and viewed.dtype == host.dtype
    assert len(_dlpack._EXPORTED) == 1
    del viewed
    gc.collect()
    assert len(_dlpack._EXPORTED) == 0  # NumPy called the deleter
    in_jax = jax.dlpack.from_dlpack(exported)
    assert np.array_equal(np.asarray(in_jax), host)
    assert in_jax.dtype == jax.dtypes.canonicalize_dtype(dtype)  # float64 is float32 without jax_enable_x64
    if in_jax.dtype == host.dtype:
        assert in_jax.unsafe_buffer_pointer() == host.ctypes.data  # JAX holds the exported tensor
        assert len(_dlpack._EXPORTED) == 1
    del in_jax
    gc.collect()
    assert len(_dlpack._EXPORTED) == 0  # JAX called the deleter


def test_exported_bfloat16_reaches_jax_as_bfloat16():
    host = np.linspace(-1, 1, 12).astype(ml_dtypes.bfloat16)
    in_jax = jax.dlpack.from_dlpack(_dlpack.Exported(HostMemory(host), host, _dlpack.CPU))
    assert str(in_jax.dtype) == "bfloat16" and np.array_equal(np.asarray(in_jax).view(np.uint16), host.view(np.uint16))


def test_an_unconsumed_capsule_releases_its_tensor():
    host = np.zeros(8, np.float32)
    capsule = _dlpack.Exported(HostMemory(host), host, _dlpack.CPU).__dlpack__()
    assert len(_dlpack._EXPORTED) == 1
    del capsule
    gc.collect()
    assert len(_dlpack._EXPORTED) == 0


def test_exported_refuses_a_copy_or_another_device():
    host = np.zeros(8, np.float32)
    exported = _dlpack.Exported(HostMemory(host), host, _dlpack.CUDA)
    assert exported.__dlpack_device__() == (_dlpack.CUDA, 0)
    with pytest.raises(BufferError, match="without a copy"):
        exported.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="not \\(1, 0\\)"):
        exported.__dlpack__(dl_device=(_dlpack.CPU, 0))
    assert len(_dlpack._EXPORTED) == 0


def test_a_cpu_dlpack_array_is_not_taken_for_gpu_memory():
    with pytest.raises(TypeError, match="out must be a NumPy array"):
        fi.normal_(jax.numpy.zeros(4), seed=0)


class JunkDevice:
    """A DLPack producer whose ``__dlpack_device__`` fails or answers nonsense."""

    def __init__(self, device):
        self.device = device

    def __dlpack_device__(self):
        if isinstance(self.device, Exception):
            raise self.device
        return self.device

    def __dlpack__(self, **kwargs):
        raise AssertionError("never asked for its data")


@pytest.mark.parametrize("device", [RuntimeError("no device"), None, "cuda", (2, "x"), (2.0, 0), (2, 0, 0)],
                         ids=["raises", "None", "str", "str id", "float type", "triple"])
def test_a_producer_without_a_usable_device_is_not_gpu_memory(device):
    with pytest.raises(TypeError, match="out must be a NumPy array"):
        fi.normal_(JunkDevice(device), seed=0)


def test_a_torch_meta_tensor_gets_the_numpy_api_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="for torch tensors use fastinit.torch"):
        fi.normal_(torch.empty(3, device="meta"), seed=0)


def test_a_process_exits_cleanly_holding_exported_tensors():
    # JAX and NumPy arrays over exported tensors, and a capsule nobody consumed, alive until exit
    run = _child(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import jax, numpy as np
        from fastinit import _dlpack
        from test_dlpack import HostMemory, aligned
        host = aligned((32, 32), np.float32)
        KEPT = [jax.dlpack.from_dlpack(_dlpack.Exported(HostMemory(host), host, _dlpack.CPU)),
                np.from_dlpack(_dlpack.Exported(HostMemory(host), host, _dlpack.CPU)),
                _dlpack.Exported(HostMemory(host), host, _dlpack.CPU).__dlpack__()]
        assert len(_dlpack._EXPORTED) == 3
    """))
    assert run.returncode == 0 and "Exception ignored" not in run.stderr, (run.returncode, run.stderr[-2000:])


SIMULATED_FILLS = [  # (label, fill, dtype, kwargs)
    ("normal-f32", "normal_", np.float32, {"std": 0.02}),
    ("uniform-bf16", "uniform_", ml_dtypes.bfloat16, {"low": -1.0, "high": 2.0}),
    ("trunc-f64", "trunc_normal_", np.float64, {"std": 0.5, "a": -0.2, "b": 1.6}),
    ("kaiming-f16", "kaiming_uniform_", np.float16, {}),
]
JAX_CASES = [("he_normal", (), (64, 48), "float32"), ("glorot_uniform", (), (33, 7), "bfloat16"),
             ("normal", (0.5,), (100,), "float16"), ("truncated_normal", (0.2,), (17, 9), "float64")]


class CopyingNumPy(RelabelledNumPy):
    """A CUDA producer (as ``RelabelledNumPy``) whose capsule says it holds a copy, or no data."""

    def __init__(self, host: np.ndarray, *, null: bool = False):
        super().__init__(host, versioned=True)
        self.null = null

    def __dlpack__(self, *, stream=None, max_version=None):
        capsule = super().__dlpack__(stream=stream, max_version=max_version)
        managed = _dlpack._ManagedVersioned.from_address(_dlpack._capsule_pointer(capsule, b"dltensor_versioned"))
        if self.null:
            managed.dl_tensor.data = None
        else:
            managed.flags |= 2  # DLPACK_FLAG_BITMASK_IS_COPIED
        return capsule


def _spy_on_the_gpu_path(fij) -> list:
    """fastinit.jax taking the simulator's device memory (host memory) for its GPU's: JAX's CPU
    devices import it (unless fastinit.jax has turned its GPU path off); returns the list of devices
    ``_filled_on`` is called for."""
    fij._fills_on = lambda device: fij._FILL_ON_GPUS
    filled_on, calls = fij._filled_on, []
    fij._filled_on = lambda *args: calls.append(args[0]) or filled_on(*args)
    return calls


def simulate(path: str) -> None:
    """The child's side (``NUMBA_ENABLE_CUDASIM=1``, one JAX device): fills through DLPack producers,
    the errors, and fastinit.jax with the simulator's device memory as its "GPU"."""
    import fastinit._cuda as gpu
    import fastinit.jax as fij

    filled = {}
    for label, fill, dtype, kwargs in SIMULATED_FILLS:
        host = np.full((12, 10), 7, dtype)
        getattr(fi, fill)(_dlpack.Exported(HostMemory(host), host), seed=5, name=label, **kwargs)
        filled["exported-" + label] = host.view(np.uint8).copy()
        for versioned in (False, True):
            host = np.full((12, 10), 7, dtype)
            getattr(fi, fill)(RelabelledNumPy(host, versioned), seed=5, name=label, **kwargs)
            filled[f"numpy-{versioned}-" + label] = host.view(np.uint8).copy()
    host = np.zeros((3, 4), np.float32)
    fi.constant_(RelabelledNumPy(host, True), 0.25)
    filled["constant"] = host
    read_only = np.zeros(4, np.float32)
    read_only.flags.writeable = False
    errors = record_errors([
        ("read-only", lambda: fi.normal_(RelabelledNumPy(read_only, True), seed=0)),
        ("strided", lambda: fi.normal_(RelabelledNumPy(np.zeros((4, 6), np.float32)[:, ::2], False), seed=0)),
        ("capsule on the CPU", lambda: fi.normal_(RelabelledNumPy(np.zeros(4, np.float32), False, _dlpack.CPU),
                                                  seed=0)),
        ("a copy", lambda: fi.normal_(CopyingNumPy(np.zeros(4, np.float32)), seed=0)),
        ("no data", lambda: fi.normal_(CopyingNumPy(np.zeros(4, np.float32), null=True), seed=0)),
    ])
    calls = _spy_on_the_gpu_path(fij)
    for factory, args, shape, dtype in JAX_CASES:
        array = getattr(fij, factory)(*args)(jax.random.key(3), shape, dtype)
        filled["jax-" + factory] = np.asarray(array).view(np.uint8).copy()
        errors["jax dtype " + factory] = str(array.dtype)
    errors["filled on a device"] = len(calls)
    gpu.empty = lambda *args: (_ for _ in ()).throw(MemoryError("out of GPU memory"))  # numba-cuda's pool full
    filled["jax-out-of-memory"] = np.asarray(fij.he_normal()(jax.random.key(3), (64, 48)))
    errors["filled on a device, out of memory"] = len(calls)
    gpu.empty = lambda *args: (_ for _ in ()).throw(ImportError("libNVVM is not available"))  # no compiler
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filled["jax-no-nvvm"] = np.asarray(fij.he_normal()(jax.random.key(3), (64, 48)))
        fij.he_normal()(jax.random.key(3), (64, 48))
    errors["no nvvm warnings"] = [str(w.message) for w in caught]
    errors["filled on a device, no nvvm"] = len(calls)
    del array
    gc.collect()
    errors["exported left"] = len(_dlpack._EXPORTED)
    np.savez(path + ".npz", **filled)
    with open(path + ".json", "w") as f:
        json.dump(errors, f)


def simulate_sharded(path: str) -> None:
    """The child's side with four JAX devices: a sharded initializer fills each shard "on its GPU";
    an unsharded one takes the host path (from_dlpack would commit its array to one device)."""
    import fastinit.jax as fij

    calls = _spy_on_the_gpu_path(fij)
    rows = jax.NamedSharding(jax.make_mesh((4,), ("x",)), jax.P("x"))
    sharded = fij.he_normal()(jax.random.key(3), (64, 48), out_sharding=rows)
    result = {"shard devices": sorted(str(s.device) for s in sharded.addressable_shards),
              "filled on a device": len(calls)}
    unsharded = fij.he_normal()(jax.random.key(3), (64, 48))
    result["unsharded committed"] = unsharded.committed
    result["filled on a device, unsharded too"] = len(calls)
    np.savez(path + ".npz", sharded=np.asarray(sharded), unsharded=np.asarray(unsharded))
    del sharded, unsharded
    gc.collect()
    result["exported left"] = len(_dlpack._EXPORTED)
    with open(path + ".json", "w") as f:
        json.dump(result, f)


def _simulated(tmp_path_factory, mode: str, devices: int):
    path = str(tmp_path_factory.mktemp("dlpack") / "out")
    run = _child([__file__, path, mode], env={"NUMBA_ENABLE_CUDASIM": "1", "NUMBA_DISABLE_JIT": "1",
                                              "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"})
    assert run.returncode == 0, run.stderr[-3000:]
    with open(path + ".json") as f:
        return np.load(path + ".npz"), json.load(f)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    return _simulated(tmp_path_factory, "one-device", 1)


@pytest.fixture(scope="module")
def simulated_sharded(tmp_path_factory):
    return _simulated(tmp_path_factory, "sharded", 4)


@pytest.mark.parametrize("label, fill, dtype, kwargs", SIMULATED_FILLS, ids=[c[0] for c in SIMULATED_FILLS])
def test_simulated_fills_through_dlpack_equal_cpu_bits(simulated, label, fill, dtype, kwargs):
    expected = getattr(fi, fill)(np.full((12, 10), 7, dtype), seed=5, name=label, **kwargs).view(np.uint8)
    for producer in ("exported", "numpy-False", "numpy-True"):
        assert np.array_equal(simulated[0][f"{producer}-{label}"], expected), producer


def test_simulated_constant_through_dlpack(simulated):
    assert np.array_equal(simulated[0]["constant"], np.full((3, 4), 0.25, np.float32))


@pytest.mark.parametrize("label, error, match", [
    ("read-only", ValueError, "marked read-only"),
    ("strided", ValueError, "C-contiguous"),
    ("capsule on the CPU", ValueError, "device type 1, not CUDA"),
    ("a copy", ValueError, "filled in place (its DLPack producer exported a copy)"),
    ("no data", ValueError, "no data pointer"),
])
def test_simulated_bad_dlpack_input(simulated, label, error, match):
    assert_recorded(simulated[1][label], label, error, match)


@pytest.mark.parametrize("factory, args, shape, dtype", JAX_CASES, ids=[c[0] for c in JAX_CASES])
def test_simulated_jax_gpu_path_equals_the_host_path(simulated, factory, args, shape, dtype):
    import fastinit.jax as fij

    expected = np.asarray(getattr(fij, factory)(*args)(jax.random.key(3), shape, dtype))
    assert simulated[1]["jax dtype " + factory] == str(expected.dtype)
    assert np.array_equal(simulated[0]["jax-" + factory], expected.view(np.uint8))


def test_simulated_jax_gpu_path_took_every_case_and_released_every_tensor(simulated):
    assert simulated[1]["filled on a device"] == len(JAX_CASES)
    assert simulated[1]["exported left"] == 0  # JAX released every tensor it was handed


def test_simulated_jax_gpu_path_out_of_memory_fills_on_the_host(simulated):
    import fastinit.jax as fij

    assert np.array_equal(simulated[0]["jax-out-of-memory"], np.asarray(fij.he_normal()(jax.random.key(3), (64, 48))))
    assert simulated[1]["filled on a device, out of memory"] == len(JAX_CASES) + 1  # tried, then the host


def test_simulated_jax_gpu_path_without_nvvm_warns_once_and_fills_on_the_host(simulated):
    import fastinit.jax as fij

    assert np.array_equal(simulated[0]["jax-no-nvvm"], np.asarray(fij.he_normal()(jax.random.key(3), (64, 48))))
    warned = simulated[1]["no nvvm warnings"]
    assert len(warned) == 1 and "libNVVM is not available" in warned[0] and "FASTINIT_JAX_GPU=0" in warned[0]
    assert simulated[1]["filled on a device, no nvvm"] == len(JAX_CASES) + 2  # tried once, then never again


def test_simulated_jax_gpu_shards_equal_the_unsharded_array(simulated_sharded):
    import fastinit.jax as fij

    arrays, result = simulated_sharded
    expected = np.asarray(fij.he_normal()(jax.random.key(3), (64, 48)))
    assert np.array_equal(arrays["sharded"], expected) and np.array_equal(arrays["unsharded"], expected)
    assert len(result["shard devices"]) == 4 and result["filled on a device"] == 4  # each shard on its device
    # with four devices an unsharded array stays uncommitted, as jnp.asarray's: the host path
    assert result["unsharded committed"] is False and result["filled on a device, unsharded too"] == 4
    assert result["exported left"] == 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    (simulate_sharded if sys.argv[2] == "sharded" else simulate)(sys.argv[1])
