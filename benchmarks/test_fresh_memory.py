"""Fills into untouched memory, as every real path allocates it (``np.empty``, ``torch.empty``,
``fi.init``), against the same fill on touched memory, with fastinit's default (4 KiB faults) and with
its opt-in huge-page advice (``FASTINIT_HUGE_PAGES=1``), and torch's own ``normal_`` into fresh memory.
The floor comes first: a write to every 4 KiB page of a fresh ``np.empty`` from every thread, then
the fill (what no fill into fresh memory can beat):

    pytest benchmarks/test_fresh_memory.py --benchmark-enable -s -m huge

Each measurement runs in a process of its own (memory a process freed and took back is not fresh),
the variants alternating round by round, each round starting at another variant; the summary
gives each one's range over the rounds.
"""

import json
import os
import subprocess
import sys

import pytest

PROBE = r'''
import json, sys, time
import numpy as np
import fastinit as fi
from fastinit._dtypes import numpy_dtype
how, dtype, n = sys.argv[1], sys.argv[2], 1 << 29
fi.normal_(np.empty(4096, np.float32), seed=0)  # the kernels loaded, as after a first call


def _touched(fill):
    t0 = time.perf_counter()
    fill()
    return time.perf_counter() - t0


if how in ("torch.empty", "torch"):
    import torch
    import fastinit.torch as fit
    a = torch.empty(n, dtype=getattr(torch, dtype))
    fill = (lambda: a.normal_()) if how == "torch" else (lambda: fit.normal_(a, seed=0))
elif how in ("np.empty", "touch"):
    a = np.empty(n, numpy_dtype(dtype))
    fill = lambda: fi.normal_(a, seed=0)
if how == "touch":  # the floor: one write per 4 KiB page from every thread, then the fill
    from numba import njit, prange

    @njit(parallel=True)
    def touch(b):
        for i in prange(b.size // 4096):
            b[i * 4096] = 0

    touch(np.empty(1 << 16, np.uint8))
    t0 = time.perf_counter()
    touch(a.view(np.uint8))
    fresh = time.perf_counter() - t0 + _touched(fill)
elif how == "fi.init":
    t0 = time.perf_counter()
    a = fi.init((n,), "normal", dtype, seed=0)
    fresh = time.perf_counter() - t0
    fill = lambda: fi.normal_(a, seed=0)
else:
    fresh = _touched(fill)
print(json.dumps({"fresh": fresh, "touched": _touched(fill)}))
'''
CASES = [(how, dtype, huge) for dtype in ("float32", "bfloat16")
         for how, huge in (("touch", "0"), ("np.empty", "0"), ("np.empty", "1"), ("torch.empty", "0"), ("fi.init", "0"),
                           ("torch", "0"))]


def _run(how: str, dtype: str, huge: str) -> dict:
    env = {**os.environ, "FASTINIT_HUGE_PAGES": huge}
    out = subprocess.run([sys.executable, "-c", PROBE, how, dtype], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


@pytest.mark.huge
def test_fresh_against_touched_memory(benchmark):
    pytest.importorskip("torch")
    pytest.importorskip("ml_dtypes")
    results: dict[tuple, list[dict]] = {case: [] for case in CASES}
    for r in range(3):
        # a VM backs guest memory lazily: whichever process first touches memory that no process
        # used lately pays for the host's faults too, so each round starts at another case
        for case in CASES[r:] + CASES[:r]:
            results[case].append(_run(*case))
    benchmark.group = "fresh vs touched memory, 2**29 elements"
    benchmark.extra_info.update({f"{how} {dtype} huge={huge}": rounds
                                 for (how, dtype, huge), rounds in results.items()})
    benchmark.pedantic(lambda: None, rounds=1)
    print()
    for (how, dtype, huge), rounds in results.items():
        ratios = sorted(r["fresh"] / r["touched"] for r in rounds)
        fresh = sorted(r["fresh"] for r in rounds)
        advice = " FASTINIT_HUGE_PAGES=1" if huge == "1" else ""
        what = "first touch + fill" if how == "touch" else how + advice
        print(f"{dtype:9s} {what:26s} fresh {fresh[0]:.2f}-{fresh[-1]:.2f} s, "
              f"fresh / touched {ratios[0]:.2f}-{ratios[-1]:.2f}")
