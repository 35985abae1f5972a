"""Bit-for-bit invariance: shards, chunk sizes, thread counts, instruction sets, memmaps."""

import math
import os

import numba
import numpy as np
import pytest
from cases import FLOAT_CASES
from conftest import BF16, FLOAT_DTYPES, assert_bits_equal, run_python
from hypothesis import given, settings
from hypothesis import strategies as st

import fastinit as fi
from fastinit import _kernels, _launch
from fastinit._jit import JIT_OPTIONS, claim_next

CASES = sorted(FLOAT_CASES)


@st.composite
def partitions(draw):
    """A global shape (1-4 dims) and a partition of it into boxes along random cut points."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    cuts = []
    for n in shape:
        inner = draw(st.lists(st.integers(1, n - 1), max_size=3, unique=True)) if n > 1 else []
        cuts.append([0, *sorted(inner), n])
    return shape, cuts


@settings(max_examples=60, deadline=None)
@given(partitions(), st.sampled_from(CASES), st.sampled_from(FLOAT_DTYPES), st.integers(0, 2**64 - 1))
def test_any_partition_into_boxes_equals_the_full_tensor(partition, case, dtype, seed):
    shape, cuts = partition
    _, call, _ = FLOAT_CASES[case]
    full = call(np.empty(shape, dtype), seed=seed, name="t")
    assembled = np.empty(shape, dtype)
    for box in np.ndindex(*[len(c) - 1 for c in cuts]):
        lo = [cuts[d][i] for d, i in enumerate(box)]
        hi = [cuts[d][i + 1] for d, i in enumerate(box)]
        part = call(np.empty([h - l for l, h in zip(lo, hi)], dtype), seed=seed, name="t",
                    global_shape=shape, offset=lo)
        assembled[tuple(slice(l, h) for l, h in zip(lo, hi))] = part
    assert_bits_equal(assembled, full)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_row_and_column_shards(dtype):
    full = fi.normal_(np.empty((64, 96), dtype), seed=3, name="w")
    for r0 in range(0, 64, 16):
        rows = fi.normal_(np.empty((16, 96), dtype), seed=3, name="w", global_shape=(64, 96), offset=(r0, 0))
        assert_bits_equal(rows, full[r0:r0 + 16])
    for c0 in range(0, 96, 24):
        cols = fi.normal_(np.empty((64, 24), dtype), seed=3, name="w", global_shape=(64, 96), offset=(0, c0))
        assert_bits_equal(cols, full[:, c0:c0 + 24])


@pytest.mark.parametrize("chunk", [4, 8, 12, 4096, 1 << 20])
@pytest.mark.parametrize("case", ["uniform", "normal", "trunc_normal"])
def test_chunk_size_does_not_change_values(case, chunk, monkeypatch):
    _, call, _ = FLOAT_CASES[case]
    for dtype in (np.float32, np.float64):
        full = call(np.empty((5, 3001), dtype), seed=1, name="c")
        monkeypatch.setattr(_launch, "_chunk", lambda row_len: chunk)
        assert_bits_equal(call(np.empty((5, 3001), dtype), seed=1, name="c"), full)
        monkeypatch.undo()


def test_every_element_written_exactly_as_a_serial_loop():
    # the parallel driver versus its serial building block, on every alignment of a run
    k = tuple(np.uint32(w) for w in fi.key(11, "serial"))
    serial = np.empty(1000, np.float32)
    _kernels.fill_run(serial, 12345, *k, _kernels.NORMAL, _kernels.F32, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    box = fi.normal_(np.empty(1000, np.float32), seed=11, name="serial", global_shape=(20000,), offset=(12345,))
    assert_bits_equal(box, serial)


@pytest.mark.parametrize("workers", [1, 2, 7])
def test_workers_fill_every_task_as_the_serial_loop(workers):
    # one worker, one per thread, and more workers than threads: 16 tasks handed out by the
    # atomic counter, every element written as the serial building block writes it
    k = tuple(np.uint32(w) for w in fi.key(11, "tasks"))
    serial = np.empty(1000, np.float32)
    _kernels.fill_run(serial, 12345, *k, _kernels.NORMAL, _kernels.F32, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    out = np.full(1000, np.nan, np.float32)
    one_row = np.array([1], np.int64), np.array([0], np.int64)
    _kernels.box_filler(_kernels.NORMAL, _kernels.F32)(out, *one_row, 12345, 1000, 64, workers, *k,
                                                       0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    assert_bits_equal(out, serial)


def test_the_parallel_driver_compiles_its_worker_loop_to_a_parallel_loop():
    # Numba turns a ``prange`` it cannot convert into a plain serial loop without a warning (it
    # did, for a conditional expression in the call): the driver's own source, compiled fresh with
    # the parallel options (a cached kernel keeps no diagnostics), must report its ``prange`` loop
    # as its one parallel loop
    source = _kernels.box_filler(_kernels.BITS, _kernels.U32, True).py_func
    driver = numba.njit(parallel=True, **{**JIT_OPTIONS, "cache": False})(source)
    k = tuple(np.uint32(w) for w in fi.key(3, "parfor"))
    one_row = np.array([1], np.int64), np.array([0], np.int64)
    out = np.empty(64, np.uint32)
    driver(out, *one_row, 0, 64, 16, 2, *k, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    diagnostics = driver.overloads[driver.signatures[0]].metadata["parfor_diagnostics"]
    patterns = [pattern for parfor in diagnostics.initial_parfors for pattern in parfor.patterns]
    # exactly one parallel loop, the workers': another (np.zeros is one) wakes the workers again
    assert [pattern[0] for pattern in patterns] == ["prange"], patterns
    assert_bits_equal(out, fi.random_bits_(np.empty(64, np.uint32), seed=3, name="parfor"))


_BUSY_THREADS_SCRIPT = """
import os, numpy as np, fastinit as fi

def cpu_ticks_by_thread():  # user + system time of each thread of this process, in clock ticks
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks

out = np.empty(2**24, np.float32)
fi.trunc_normal_(out, seed=1)
before = cpu_ticks_by_thread()
for _ in range(8):
    fi.trunc_normal_(out, seed=1)
after = cpu_ticks_by_thread()
used = sorted((after[t] - before.get(t, 0) for t in after), reverse=True)
print(used[1] / sum(used))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads each thread's CPU time from Linux's /proc")
def test_a_large_fill_keeps_two_threads_busy():
    # eight 2**24-element fills (about 30 ms each on a thread of each): the second-busiest thread's
    # share of their CPU time is 0 when the fills run on one thread and about 0.5 on two. Each
    # worker claims tasks as it comes, so on a loaded machine the share falls but stays well above
    # 0.1, where a ratio of CPU time to wall time fell to 1
    share = float(run_python(_BUSY_THREADS_SCRIPT, NUMBA_NUM_THREADS=2))
    assert share > 0.1, f"the second-busiest thread did {share:.0%} of the work: the fills ran on one thread"


def test_claim_next_hands_out_each_number_once():
    # two workers racing for 200000 numbers: a plain load-add-store would repeat or skip some
    @numba.njit(parallel=True)
    def claim_all(n, workers):
        counter = np.zeros(1, np.int64)
        claimed_by = np.zeros((workers, n), np.uint8)
        for w in numba.prange(workers):
            t = claim_next(counter)
            while t < n:
                claimed_by[w, t] = 1
                t = claim_next(counter)
        return claimed_by

    claimed_by = claim_all(200_000, 2)
    assert (claimed_by.sum(axis=0) == 1).all()


def test_offset_past_2_33_matches_the_leading_slice_shape():
    # a box deep in a 2**36-element tensor equals the same elements computed as a 1-D run
    g = (1 << 18, 1 << 18)
    box = fi.trunc_normal_(np.empty((3, 50), np.float32), seed=8, name="big", global_shape=g, offset=(1 << 17, 77))
    first = (1 << 17) * (1 << 18) + 77
    for r in range(3):
        row = fi.trunc_normal_(np.empty(50, np.float32), seed=8, name="big", global_shape=(1 << 36,),
                               offset=(first + r * (1 << 18),))
        assert_bits_equal(box[r], row)


_HASH_SCRIPT = """
import hashlib, sys, numpy as np, fastinit as fi, ml_dtypes
fills = {{
    "uniform": lambda o: fi.uniform_(o, -2, 3, seed=5, name="x"),
    "normal": lambda o: fi.normal_(o, 1, 2, seed=5, name="x"),
    "trunc": lambda o: fi.trunc_normal_(o, 0, 1, -1, 3, seed=5, name="x"),
    "tail": lambda o: fi.trunc_normal_(o, 0, 1, 3, 6, seed=5, name="x"),
}}
h = hashlib.sha256()
for fill, dtype in {selection}:
    h.update(fills[fill](np.empty((3, 100003), getattr(ml_dtypes, dtype, None) or dtype)).tobytes())
h.update(fi.random_bits_(np.empty(1001, np.uint32), seed=5, name="x").tobytes())
print(h.hexdigest())
"""
_ALL = [(f, d) for d in ("float32", "float64", "float16", "bfloat16") for f in ("uniform", "normal", "trunc", "tail")]
# compiling for the generic target is slow (up to ~80 s per truncated-normal kernel): the default
# run checks the float32 normal and float64 truncated normal, the slow run every combination
_QUICK = [("normal", "float32"), ("trunc", "float64")]


def _hash(selection, **env):
    return run_python(_HASH_SCRIPT.format(selection=selection), **env)


def test_one_thread_equals_two():
    assert _hash(_ALL, NUMBA_NUM_THREADS=1) == _hash(_ALL, NUMBA_NUM_THREADS=2)


@pytest.mark.parametrize("selection", [pytest.param(_QUICK, id="quick"),
                                       pytest.param(_ALL, id="all", marks=pytest.mark.slow)])
def test_generic_x86_64_equals_native(selection, tmp_path):
    # no AVX / FMA: LLVM's baseline x86-64, with its own cache so native code is not reused
    native = _hash(selection)
    assert _hash(selection, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=tmp_path) == native


def test_memmap_equals_memory(tmp_path):
    for dtype in FLOAT_DTYPES:
        mm = np.lib.format.open_memmap(tmp_path / f"w_{dtype.name}.npy", mode="w+", dtype=dtype, shape=(37, 129))
        fi.trunc_normal_(mm, 0.0, 0.02, -0.04, 0.04, seed=4, name="mm")
        mm.flush()
        # .npy has no bfloat16 type code: it reads back as raw 2-byte records ("V2")
        again = np.load(tmp_path / f"w_{dtype.name}.npy", mmap_mode="r").view(dtype)
        assert_bits_equal(np.asarray(again), fi.trunc_normal_(np.empty((37, 129), dtype), 0.0, 0.02, -0.04, 0.04,
                                                              seed=4, name="mm"))


def test_memmap_box_of_a_file(tmp_path):
    path = tmp_path / "raw.bin"
    full = fi.normal_(np.empty((40, 50), np.float32), seed=2, name="f")
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(40, 50))
    for r0 in range(0, 40, 10):
        fi.normal_(mm[r0:r0 + 10], seed=2, name="f", global_shape=(40, 50), offset=(r0, 0))
    mm.flush()
    assert_bits_equal(np.fromfile(path, np.float32).reshape(40, 50), full)


def test_pure_python_mode_equals_jit():
    # NUMBA_DISABLE_JIT=1 runs the same functions as plain Python over NumPy scalars
    code = """
import numpy as np, fastinit as fi, hashlib
print(hashlib.sha256(b"".join(f(np.empty(11, dt)).tobytes() for dt in (np.float32, np.float64) for f in (
    lambda o: fi.uniform_(o, -1, 1, seed=3, name="p", global_shape=(40,), offset=(5,)),
    lambda o: fi.normal_(o, seed=3, name="p", global_shape=(40,), offset=(5,)),
    lambda o: fi.trunc_normal_(o, 0, 1, 3, 6, seed=3, name="p", global_shape=(40,), offset=(5,))))).hexdigest())
"""
    assert run_python(code, NUMBA_DISABLE_JIT=1) == run_python(code)


def test_zero_dimensional_out_is_element_zero():
    for dtype in FLOAT_DTYPES:
        assert_bits_equal(fi.normal_(np.empty((), dtype), seed=4, name="s"),
                          fi.normal_(np.empty(3, dtype), seed=4, name="s")[0])


def test_zero_size_is_a_no_op():
    for dtype in FLOAT_DTYPES:
        out = np.empty((0, 5), dtype)
        assert fi.normal_(out, seed=1) is out
        assert fi.uniform_(np.empty((3, 0), dtype), seed=1, global_shape=(3, 7), offset=(0, 7)).size == 0


def test_returns_out_and_accepts_bfloat16_memmap(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype=BF16, shape=(8,))
    assert fi.uniform_(mm, seed=0) is mm


def test_elements_beyond_2_32_in_a_single_run():
    # a 1-D tensor's tail past element 2**32 (block index past 2**30): box vs reference words
    n = 64
    first = (1 << 32) + 5
    out = fi.random_bits_(np.empty(n, np.uint32), seed=1, name="r", global_shape=(1 << 33,), offset=(first,))
    k = fi.key(1, "r")
    expected = [fi.philox4x32(((i // 4) & 0xFFFFFFFF, (i // 4) >> 32, 0, 0), k)[i % 4] for i in range(first, first + n)]
    assert out.tolist() == expected
    assert math.prod((1 << 33,)) > 2**32
