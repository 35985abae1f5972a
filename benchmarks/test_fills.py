"""fastinit fills beside torch.nn.init, NumPy's Generator(out=), jax.random and a parallel
constant fill (the memory-bandwidth ceiling), in one run, grouped per fill x dtype x size.

    pytest benchmarks --benchmark-enable --benchmark-json=bench.json -k "not scaling"  # 2**24
    pytest benchmarks --benchmark-enable --benchmark-json=scaling.json -k scaling     # sizes, threads
    pytest benchmarks --benchmark-enable -m huge -k "2_28 and not scaling" --benchmark-json=big.json
    pytest benchmarks --benchmark-enable -m huge -k "2_30 or billion"  # 4 GiB arrays
    python benchmarks/report.py bench.json scaling.json big.json       # markdown tables

Run the scaling series in their own process: torch's and JAX's worker threads keep spinning for a
while after each call and slow whatever runs next on a small machine.
"""

import importlib
import os
import statistics
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

import fastinit as fi

# ids "2_24" etc. (2**24 elements): ``-k`` expressions cannot contain "^"
SIZES = [pytest.param(24, id="2_24"), pytest.param(28, id="2_28", marks=pytest.mark.huge),
         pytest.param(30, id="2_30", marks=pytest.mark.huge)]
FILLS = {  # fill -> (fastinit call, torch call, NumPy call or None, jax call or None)
    "uniform": (lambda o: fi.uniform_(o, -1.0, 1.0, seed=0, name="b"),
                lambda t, torch: t.uniform_(-1.0, 1.0),
                lambda o, rng: rng.random(out=o, dtype=o.dtype),
                lambda key, n, dt, jr: jr.uniform(key, (n,), dt, -1.0, 1.0)),
    "normal": (lambda o: fi.normal_(o, 0.0, 1.0, seed=0, name="b"),
               lambda t, torch: t.normal_(0.0, 1.0),
               lambda o, rng: rng.standard_normal(out=o, dtype=o.dtype),
               lambda key, n, dt, jr: jr.normal(key, (n,), dt)),
    "trunc_normal": (lambda o: fi.trunc_normal_(o, 0.0, 1.0, -2.0, 2.0, seed=0, name="b"),
                     lambda t, torch: torch.nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0),
                     None,
                     lambda key, n, dt, jr: jr.truncated_normal(key, -2.0, 2.0, (n,), dt)),
}
DTYPES = ["float32", "bfloat16", "float16", "float64"]


def _np_dtype(name):
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


@numba.njit(parallel=True, cache=True)
def _constant_fill(out, value):
    for i in numba.prange(out.size):
        out[i] = value


def _measure(benchmark, library, fill, dtype, log2, call, *args):
    call(*args)  # compile or load kernels, touch the pages
    benchmark.group = f"{fill} {dtype} 2^{log2}"
    benchmark.extra_info.update(library=library, fill=fill, dtype=dtype, elements=1 << log2,
                                threads=numba.get_num_threads())
    if log2 >= 28:  # seconds per call (half a minute for torch's trunc_normal_): three rounds
        benchmark.pedantic(call, args, rounds=3)
    else:
        benchmark(call, *args)


@pytest.mark.parametrize("log2", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", sorted(FILLS))
def test_fastinit(benchmark, fill, dtype, log2):
    out = np.empty(1 << log2, _np_dtype(dtype))
    _measure(benchmark, "fastinit", fill, dtype, log2, FILLS[fill][0], out)


@pytest.mark.parametrize("log2", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", sorted(FILLS))
def test_torch(benchmark, fill, dtype, log2, threads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    t = torch.empty(1 << log2, dtype=getattr(torch, dtype))
    _measure(benchmark, "torch", fill, dtype, log2, FILLS[fill][1], t, torch)


@pytest.mark.parametrize("log2", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fill", ["uniform", "normal"])
def test_numpy(benchmark, fill, dtype, log2):
    out, rng = np.empty(1 << log2, dtype), np.random.Generator(np.random.PCG64(0))
    _measure(benchmark, "numpy", fill, dtype, log2, FILLS[fill][2], out, rng)


@pytest.mark.parametrize("log2", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", sorted(FILLS))
def test_jax(benchmark, fill, dtype, log2):
    jax = pytest.importorskip("jax")
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    jr, jnp = jax.random, importlib.import_module("jax.numpy")
    key, n, dt, draw = jr.key(0), 1 << log2, getattr(jnp, dtype), FILLS[fill][3]
    _measure(benchmark, "jax", fill, dtype, log2, lambda: draw(key, n, dt, jr).block_until_ready())


@pytest.mark.parametrize("log2", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", sorted(FILLS))
def test_constant_fill(benchmark, fill, dtype, log2):
    out = np.empty(1 << log2, _np_dtype(dtype))
    view = out.view(np.uint16) if out.dtype.itemsize == 2 else out
    _measure(benchmark, "constant fill", fill, dtype, log2, _constant_fill, view, view.dtype.type(1))


@pytest.mark.parametrize("n_threads", [1, 2, 4, 8, 16])
def test_thread_scaling(benchmark, n_threads):
    """normal_ float32 at 2**26 with 1, 2, ... threads (up to NUMBA_NUM_THREADS)."""
    if n_threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"only {numba.config.NUMBA_NUM_THREADS} threads")
    out = np.empty(1 << 26, np.float32)
    previous = fi.get_num_threads()
    fi.set_num_threads(n_threads)
    try:
        _measure(benchmark, "fastinit", "normal", "float32", 26, FILLS["normal"][0], out)
        benchmark.group = "thread scaling, normal float32 2^26"
        benchmark.extra_info["scaling"] = "threads"
    finally:
        fi.set_num_threads(previous)


@pytest.mark.parametrize("log2", [pytest.param(n, id=f"2_{n}") for n in (20, 22, 24, 26, 28)]
                         + [pytest.param(30, id="2_30", marks=pytest.mark.huge)])
@pytest.mark.parametrize("fill", ["uniform", "normal"])
def test_size_scaling(benchmark, fill, log2):
    """Time per element from 2**20 to 2**30 float32 elements, all threads."""
    out = np.empty(1 << log2, np.float32)
    _measure(benchmark, "fastinit", fill, "float32", log2, FILLS[fill][0], out)
    benchmark.group = f"size scaling, {fill} float32"
    benchmark.extra_info["scaling"] = "size"


@pytest.mark.huge
@pytest.mark.parametrize("library", ["fastinit", "torch"])
def test_billion_parameter_kaiming_normal(benchmark, library, threads):
    """kaiming_normal_ on a 32768 x 32768 float32 weight (2**30 values, 4 GiB)."""
    if library == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(threads)
        weight = torch.empty(32768, 32768)
        call = lambda: torch.nn.init.kaiming_normal_(weight, nonlinearity="relu")  # noqa: E731
    else:
        weight = np.empty((32768, 32768), np.float32)
        call = lambda: fi.kaiming_normal_(weight, nonlinearity="relu", seed=0, name="w")  # noqa: E731
    call()
    benchmark.group = "kaiming_normal_ 32768 x 32768 float32"
    benchmark.extra_info.update(library=library, fill="kaiming_normal 32768x32768", dtype="float32", elements=1 << 30)
    benchmark.pedantic(call, rounds=3)


_COLD_SCRIPT = ("import time; t0 = time.perf_counter(); import numpy as np, {module}; t1 = time.perf_counter(); "
                "{call}; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)")
_COLD_PROGRAMS = {  # fastinit's cold start, and the floor of any Numba program: one cached parallel loop
    "fastinit": dict(module="fastinit", call="fastinit.normal_(np.empty(1000, np.float32), seed=0)"),
    "numba floor": dict(module="numba_floor", call="numba_floor.fill(np.empty(1000, np.float32))"),
}
_NUMBA_FLOOR = """import numba


@numba.njit(parallel=True, cache=True)
def fill(out):
    for i in numba.prange(out.size):
        out[i] = i
"""


def test_compile_and_cold_start_times(benchmark, tmp_path):
    """First-ever compile (empty cache), then the cold start with a warm cache: medians of seven
    fresh processes each for fastinit and for the Numba floor, interleaved."""
    (tmp_path / "numba_floor.py").write_text(_NUMBA_FLOOR)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": path}

    def run(program):
        t0 = time.perf_counter()
        out = subprocess.check_output([sys.executable, "-c", _COLD_SCRIPT.format(**_COLD_PROGRAMS[program])], env=env)
        import_s, fill_s = map(float, out.split())
        return import_s, fill_s, time.perf_counter() - t0

    first_compile_s = run("fastinit")[1]
    run("numba floor")
    runs = {program: [] for program in _COLD_PROGRAMS}
    for _ in range(7):
        for program in _COLD_PROGRAMS:
            runs[program].append(run(program))
    benchmark.group = "compile"
    benchmark.extra_info["first_compile_s"] = first_compile_s
    print(f"\nnormal_ float32 first-ever compile: {first_compile_s:.2f} s. Warm cache, medians of 7 fresh processes:")
    for program, times in runs.items():
        import_s, fill_s, process_s = (statistics.median(column) for column in zip(*times))
        in_process_s = statistics.median(i + f for i, f, _ in times)
        benchmark.extra_info[program] = dict(import_s=import_s, first_call_s=fill_s,
                                             import_and_first_call_s=in_process_s, whole_process_s=process_s)
        print(f"  {program:12s} import {import_s:.2f} s + first call {fill_s:.2f} s = {in_process_s:.2f} s; "
              f"whole process (interpreter start and exit included) {process_s:.2f} s "
              f"[{min(t[2] for t in times):.2f}-{max(t[2] for t in times):.2f}]")
    benchmark.pedantic(lambda: None, rounds=1)


SMALL_CALLS = {  # the cost of a call, where the fill itself is negligible
    "normal_ 64 float32": lambda: fi.normal_(np.empty(64, np.float32), seed=0, name="w"),
    "trunc_normal_ 64 float32": lambda: fi.trunc_normal_(np.empty(64, np.float32), seed=0, name="w"),
    "kaiming_uniform_ 8x8": lambda: fi.kaiming_uniform_(np.empty((8, 8), np.float32), seed=0, name="w"),
}


@pytest.mark.parametrize("call", list(SMALL_CALLS))
def test_small_call(benchmark, call):
    """Microseconds per call for tiny tensors (run on the calling thread; the target is <= 50 us)."""
    benchmark.group = "small calls"
    benchmark.extra_info.update(fill=call)
    benchmark.pedantic(SMALL_CALLS[call], rounds=2000, warmup_rounds=100)
