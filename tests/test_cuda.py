"""GPU fills (``fastinit._cuda``) on a machine without a GPU.

* The kernels run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, in a child process, with
  ``NUMBA_DISABLE_JIT=1`` so that the functions they call run as Python with NumPy scalar types)
  on arrays behind ``__cuda_array_interface__``, and equal the CPU fills of this process bit for
  bit: every fill x dtype, whole tensors, N-d boxes and a box whose flat indices pass 2**32.
* They compile to PTX (where libNVVM and libdevice are installed) with no fused multiply-add,
  flush-to-zero, approximate or unrounded float instruction; without ``-fma=0`` NVVM would fuse.
* ``import fastinit`` and CPU fills never import numba.cuda; a GPU array without numba-cuda is a
  clear error naming the ``cuda`` extra.

Skipped where numba-cuda is not installed. Run as a script (``python tests/test_cuda.py OUT``) it
is the simulator side: it fills every case into ``OUT.npz`` and records bad-input errors in
``OUT.json``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest

import fastinit as fi

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                                reason="needs numba-cuda (the cuda extra)")

FLOAT_DTYPES = (np.float32, np.float64, np.float16, ml_dtypes.bfloat16)
#: fill -> (its dtypes, its parameters); trunc_normal_'s interval is off-centre (the mirrored branch, tails)
FILLS = {
    "random_bits_": ((np.uint32,), {}),
    "uniform_": (FLOAT_DTYPES, {"low": -0.75, "high": 2.5}),
    "normal_": (FLOAT_DTYPES, {"mean": 0.25, "std": 3.0}),
    "trunc_normal_": (FLOAT_DTYPES, {"mean": 0.1, "std": 0.5, "a": -0.2, "b": 1.6}),
}
#: (global_shape, box shape, offset): a whole tensor ending in a partial block, rows of a 2-D box,
#: a 3-D box, and boxes of a 2**22 x 8191 tensor with a row across flat index 2**33 (where a float64
#: block's counter gets its high word 1) and one across 2**34 (the same for 4 elements per block)
BOXES = (
    ((7, 13), (7, 13), (0, 0)),
    ((9, 30), (4, 11), (3, 5)),
    ((5, 6, 7), (2, 3, 5), (1, 2, 1)),
    ((2**22, 8191), (2, 30), (1048704, 112)),
    ((2**22, 8191), (3, 30), (2097407, 240)),
)


def cases():
    """(label, fill name, dtype, params, global_shape, shape, offset) of every simulated fill."""
    for fill, (dtypes, params) in FILLS.items():
        for dtype in dtypes:
            for b, (global_shape, shape, offset) in enumerate(BOXES):
                yield f"{fill}-{np.dtype(dtype).name}-{b}", fill, dtype, params, global_shape, shape, offset


def fill_case(out, fill, params, global_shape, offset, seed=11):
    return getattr(fi, fill)(out, **params, seed=seed, name=f"w.{fill}", global_shape=global_shape, offset=offset)


class HostCudaArray:
    """A host array exposed through ``__cuda_array_interface__``: what device memory is in the
    simulator (its pointers are host pointers). ``interface`` overrides entries, for bad input."""

    def __init__(self, host: np.ndarray, **interface):
        self.host, self.dtype, self.shape, self.overrides = host, host.dtype, host.shape, interface

    @property
    def __cuda_array_interface__(self):
        ai = self.host.__array_interface__
        return {"shape": ai["shape"], "typestr": ai["typestr"], "data": ai["data"], "strides": ai["strides"],
                "version": 3, "stream": None, **self.overrides}


def _bad_inputs():
    """(label, call) pairs that must raise."""
    f32 = np.zeros((4, 6), np.float32)
    return [
        ("strided", lambda: fi.normal_(HostCudaArray(f32.T), seed=0)),
        ("read-only", lambda: fi.normal_(HostCudaArray(f32, data=(f32.ctypes.data, True)), seed=0)),
        ("int32", lambda: fi.normal_(HostCudaArray(np.zeros(4, np.int32)), seed=0)),
        ("byte order", lambda: fi.uniform_(HostCudaArray(np.zeros(4, ">f4")), seed=0)),
        ("bits into float", lambda: fi.random_bits_(HostCudaArray(f32), seed=0)),
        ("size mismatch", lambda: fi.normal_(HostCudaArray(np.zeros(4, np.float16), typestr="<f4"), seed=0)),
        ("masked", lambda: fi.normal_(HostCudaArray(f32, mask=object()), seed=0)),
        ("box", lambda: fi.normal_(HostCudaArray(f32), seed=0, global_shape=(4, 5), offset=(0, 0))),
    ]


#: schemes computed on the host and copied into GPU arrays: label -> (scheme, args, global_shape, shape, offset)
STRUCTURED = {
    "orthogonal": ("orthogonal_", (0.5,), (12, 20), (5, 8), (3, 4)),
    "delta_orthogonal": ("delta_orthogonal_", (), (8, 4, 3, 3), (8, 4, 3, 3), (0, 0, 0, 0)),
    "sparse": ("sparse_", (0.3,), (40, 12), (16, 12), (10, 0)),
    "eye": ("eye_", (), (6, 9), (4, 5), (1, 2)),
    "dirac": ("dirac_", (2,), (8, 4, 3, 3), (8, 4, 3, 3), (0, 0, 0, 0)),
}


def structured_case(out, label):
    scheme, args, global_shape, _, offset = STRUCTURED[label]
    seeded = {} if scheme in ("eye_", "dirac_") else {"seed": 4, "name": "w." + label}
    return getattr(fi, scheme)(out, *args, **seeded, global_shape=global_shape, offset=offset)


def _device_arrays():
    """``DeviceArray`` (what ``fastinit.torch`` hands CUDA tensors over as) filled, reshaped and
    assigned to in the simulator: label -> bits."""
    from fastinit._cuda import DeviceArray

    out = {}
    host = np.zeros((6, 10), ml_dtypes.bfloat16)
    array = DeviceArray(host.ctypes.data, host.shape, host.dtype, owner=host)
    fi.normal_(array.reshape(3, 20), std=0.02, seed=1, name="d", global_shape=(9, 20), offset=(2, 0))
    out["device-array-normal"] = host.view(np.uint8).copy()
    array[...] = 1.0 / 3.0
    out["device-array-constant"] = host.view(np.uint8).copy()
    array[1:3] = np.arange(20).reshape(2, 10)
    out["device-array-rows"] = host.view(np.uint8).copy()
    return out


def record_errors(calls) -> dict:
    """label -> ``[exception class name, message]`` of each ``(label, call)`` (None: it raised nothing),
    for the parent process to check with ``assert_recorded``."""
    errors = {}
    for label, call in calls:
        try:
            call()
            errors[label] = None
        except Exception as e:  # recorded for the parent to check
            errors[label] = [type(e).__name__, str(e)]
    return errors


def assert_recorded(recorded, label, error, match):
    """A ``record_errors`` entry is ``error`` with ``match`` in its message."""
    assert recorded is not None, f"{label}: no error"
    assert recorded[0] == error.__name__ and match in recorded[1], recorded


def simulate(path: str) -> None:
    """The child's side: every case filled through the CUDA kernels, and the bad-input errors."""
    from numba.cuda.core import config

    assert config.ENABLE_CUDASIM, "run with NUMBA_ENABLE_CUDASIM=1"
    filled = {}
    for label, fill, dtype, params, global_shape, shape, offset in cases():
        host = np.full(shape, 7, dtype)
        returned = fill_case(HostCudaArray(host), fill, params, global_shape, offset)
        assert returned.host is host
        filled[label] = host.view(np.uint8)
    empty = np.zeros((0, 3), np.float32)
    fi.normal_(HostCudaArray(empty), seed=0)
    filled.update(_device_arrays())
    for label, (_, _, _, shape, _) in STRUCTURED.items():
        for dtype in (np.float32, ml_dtypes.bfloat16):
            host = np.full(shape, 7, dtype)
            structured_case(HostCudaArray(host), label)
            filled[f"structured-{label}-{np.dtype(dtype).name}"] = host.view(np.uint8)
    errors = record_errors(_bad_inputs())
    np.savez(path + ".npz", **filled)
    with open(path + ".json", "w") as f:
        json.dump(errors, f)


def _child(code_or_args, env=None, timeout=600):
    args = [sys.executable, *code_or_args] if isinstance(code_or_args, list) else [sys.executable, "-c", code_or_args]
    return subprocess.run(args, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cudasim") / "out")
    run = _child([__file__, path], env={"NUMBA_ENABLE_CUDASIM": "1", "NUMBA_DISABLE_JIT": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    with open(path + ".json") as f:
        errors = json.load(f)
    return np.load(path + ".npz"), errors


@pytest.mark.parametrize("label, fill, dtype, params, global_shape, shape, offset", list(cases()),
                         ids=[c[0] for c in cases()])
def test_simulated_kernels_equal_cpu_bits(simulated, label, fill, dtype, params, global_shape, shape, offset):
    expected = fill_case(np.full(shape, 7, dtype), fill, params, global_shape, offset)
    assert np.array_equal(simulated[0][label], expected.view(np.uint8)), label


def test_simulated_device_array(simulated):
    filled = simulated[0]
    expected = fi.normal_(np.zeros((3, 20), ml_dtypes.bfloat16), std=0.02, seed=1, name="d", global_shape=(9, 20),
                          offset=(2, 0))
    assert np.array_equal(filled["device-array-normal"], expected.view(np.uint8).reshape(6, 20))
    third = np.full((6, 10), 1.0 / 3.0).astype(ml_dtypes.bfloat16)  # ml_dtypes' rounding, as a NumPy array's
    assert np.array_equal(filled["device-array-constant"], third.view(np.uint8))
    third[1:3] = np.arange(20).reshape(2, 10)
    assert np.array_equal(filled["device-array-rows"], third.view(np.uint8))


@pytest.mark.parametrize("label", sorted(STRUCTURED))
@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16], ids=["float32", "bfloat16"])
def test_simulated_structured_schemes_equal_cpu_bits(simulated, label, dtype):
    expected = structured_case(np.full(STRUCTURED[label][3], 7, dtype), label)
    assert np.array_equal(simulated[0][f"structured-{label}-{np.dtype(dtype).name}"], expected.view(np.uint8))


@pytest.mark.parametrize("box, crossed", [(BOXES[3], 2**33), (BOXES[4], 2**34)])
def test_large_boxes_cross_a_counter_word(box, crossed):
    # a row of each large box runs across the flat index where the block counter's high word steps
    (_, cols), (rows, width), (r0, c0) = box
    starts = [(r0 + r) * cols + c0 for r in range(rows)]
    assert any(start < crossed <= start + width - 1 for start in starts), starts


@pytest.mark.parametrize("label, error, match", [
    ("strided", ValueError, "C-contiguous"),
    ("read-only", ValueError, "writable"),
    ("int32", TypeError, "out.dtype must be one of float32, float64, float16, bfloat16, got int32"),
    ("byte order", ValueError, "byte order"),
    ("bits into float", TypeError, "out.dtype must be one of uint32, got float32"),
    ("size mismatch", TypeError, "differ in size"),
    ("masked", ValueError, "masked"),
    ("box", ValueError, "lies outside global_shape (4, 5)"),
])
def test_simulated_bad_input(simulated, label, error, match):
    assert_recorded(simulated[1][label], label, error, match)


def test_import_stays_cpu_only():
    run = _child(textwrap.dedent("""
        import sys, numpy as np, fastinit as fi
        fi.normal_(np.empty(64, np.float32), seed=0)
        loaded = [m for m in ("numba.cuda", "numba_cuda", "fastinit._cuda") if m in sys.modules]
        assert not loaded, loaded
    """))
    assert run.returncode == 0, run.stderr[-2000:]


def test_device_array_without_numba_cuda_names_the_extra():
    run = _child(textwrap.dedent(f"""
        import sys
        sys.modules["numba_cuda"] = None  # as if numba-cuda were not installed
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np, fastinit as fi
        from test_cuda import HostCudaArray
        try:
            fi.normal_(HostCudaArray(np.zeros(4, np.float32)), seed=0)
        except ModuleNotFoundError as e:
            print(e)
    """))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "numba-cuda" in run.stdout and "fastinit-philox[cuda]" in run.stdout, run.stdout


# ------------------------------------------------------------------------------------- PTX
_PTX_CHILD = """
import json, sys
from numba.cuda import cuda_paths
from numba.cuda.core import config

# compile without a GPU or NVRTC: libNVVM and libdevice are all PTX needs (these hooks are test-only)
try:
    found = {"nvvm": cuda_paths._get_nvvm_path(), "libdevice": cuda_paths._get_libdevice_path()}
    missing = [k for k, v in found.items() if v is None or v.info is None]
except Exception as e:
    missing = [repr(e)]
if missing:
    print(json.dumps({"skip": f"no libNVVM / libdevice: {missing}"}))
    sys.exit()
none = cuda_paths._env_path_tuple("none", None)
cuda_paths.get_cuda_paths._cached_result = {"nvrtc": none, "cudalib_dir": none, "static_cudalib_dir": none,
                                            "include_dir": none, **found}
config.FORCE_CUDA_CC = (9, 0)

from numba import cuda
from fastinit import _cuda, _kernels as K

VIEWS = {K.U32: "uint32", K.F32: "float32", K.F64: "float64", K.BF16: "uint16", K.F16: "uint16"}
SIG = ("void({}[::1], UniTuple(int64, 2), UniTuple(int64, 2), int64, int64, int64, uint32, uint32"
       + ", float64" * 6 + ")")
result = {}
for fill, store in json.loads(sys.argv[1]):
    kernel = _cuda.box_kernel(fill, store).py_func
    with _cuda._nvvm_without_fma():
        ptx, _ = cuda.compile_ptx(kernel, SIG.format(VIEWS[store]), cc=(9, 0))
    default_ptx, _ = cuda.compile_ptx(kernel, SIG.format(VIEWS[store]), cc=(9, 0)) if fill == K.NORMAL else ("", 0)
    result[f"{fill},{store}"] = {"inexact": _cuda.inexact_ptx(ptx), "rounded": ptx.count(".rn.f"),
                                 "fused_by_default": default_ptx.count("fma.rn")}
print(json.dumps(result))
"""


def _ptx(kinds):
    env = {"CUDA_HOME": os.environ.get("CUDA_HOME", "/usr/local/cuda")}
    run = _child(["-c", _PTX_CHILD, json.dumps(kinds)], env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    return result


def _check_ptx(result):
    from fastinit import _kernels as K

    for kind, found in result.items():
        assert found["inexact"] == [], (kind, found["inexact"][:5])
        assert (found["rounded"] > 0) == (not kind.startswith(f"{K.BITS},")), kind  # float ops, each with .rn
        if kind.startswith(f"{K.NORMAL},"):
            assert found["fused_by_default"] > 0, kind  # what -fma=0 prevents


def test_ptx_has_no_fused_or_approximate_instructions():
    from fastinit import _kernels as K

    _check_ptx(_ptx([[K.NORMAL, K.F32], [K.TRUNC_NORMAL, K.BF16]]))


@pytest.mark.slow
def test_ptx_of_every_kind():
    from fastinit import _kernels as K

    kinds = [[fill, store] for fill, stores in K.BLOCK_FUNCTIONS.items() for store in stores]
    result = _ptx(kinds)
    assert len(result) == 13
    _check_ptx(result)


def test_inexact_ptx_finds_each_kind_of_instruction():
    from fastinit._cuda import inexact_ptx

    bad = ["fma.rn.f32 %f1, %f2, %f3, %f4;", "mad.rn.f64 %fd1, %fd2, %fd3, %fd4;", "add.ftz.f32 %f1, %f2, %f3;",
           "div.approx.f32 %f1, %f2, %f3;", "div.full.f32 %f1, %f2, %f3;", "mul.f64 %fd1, %fd2, %fd3;",
           "sqrt.approx.ftz.f32 %f1, %f2;", "sub.f32 %f1, %f2, %f3;"]
    good = ["mul.rn.f32 %f1, %f2, %f3;", "div.rn.f64 %fd1, %fd2, %fd3;", "sqrt.rn.f32 %f1, %f2;",
            "mad.lo.s32 %r1, %r2, %r3, %r4;", "mul.wide.u32 %rd1, %r1, %r2;", "max.f32 %f1, %f2, %f3;",
            "cvt.rn.f32.f64 %f1, %fd1;"]
    assert inexact_ptx("\n".join(bad + good)) == bad


def test_device_array_reshape_follows_numpy():
    from fastinit._cuda import DeviceArray

    a = DeviceArray(4096, (6, 4), ml_dtypes.bfloat16)
    b = a.reshape(-1, 3)
    assert (b.shape, b.pointer, b.dtype) == ((8, 3), 4096, np.dtype(ml_dtypes.bfloat16))
    assert a.__cuda_array_interface__["typestr"] == "<u2" and math.prod(b.shape) == b.size == 24
    with pytest.raises(ValueError):
        a.reshape(5, 5)


if __name__ == "__main__":
    simulate(sys.argv[1])
