"""One run on a many-core machine: how do fills and a checkpoint write scale with threads?

    python benchmarks/cores_check.py                       # 1, 2, 4, ... up to every core
    python benchmarks/cores_check.py --json cores.json     # also write the figures
    python benchmarks/cores_check.py --log2 22 --no-checkpoint   # a quick dry run

Sections:

1. ``fills``: ``uniform_``, ``normal_`` and ``trunc_normal_(0, 1, -2, 2)`` into 2**28 touched float32
   elements, beside a parallel constant fill of the same array (the memory-bandwidth ceiling), with
   1, 2, 4, ... threads; best of 5 calls, the thread counts interleaved round by round;
2. ``checkpoint``: ``fastinit generate`` of the bundled default (2.3 GiB of bfloat16) to a local
   disk with ``--threads N``, each run just after a ``dd conv=fsync`` of the same size on the same
   disk; a run's time is the whole process's, with its 0.3-0.5 s of start-up (interpreter, import,
   kernels loaded from the cache).

The targets: ``normal_`` at least 12x its one-thread speed at 16 threads, and ``uniform_`` at
least half the constant fill's speed at every thread count. Values never depend on the thread
count; the script checks that too (the fills' bytes hash the same at every count).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from conftest import rounds_against_dd, timed_run  # benchmarks/, the script's own directory
from test_fills import _constant_fill

import fastinit as fi

FILLS = {
    "uniform": lambda out: fi.uniform_(out, -1.0, 1.0, seed=0, name="cores"),
    "normal": lambda out: fi.normal_(out, 0.0, 1.0, seed=0, name="cores"),
    "trunc_normal": lambda out: fi.trunc_normal_(out, 0.0, 1.0, -2.0, 2.0, seed=0, name="cores"),
}


def _seconds(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def thread_counts(most: int) -> list[int]:
    """1, 2, 4, ... up to ``most``, with ``most`` itself last if it is not a power of two."""
    counts = [1 << k for k in range(most.bit_length()) if 1 << k <= most]
    return counts if counts[-1] == most else [*counts, most]


def fills(counts: list[int], log2: int, rounds: int = 5) -> dict:
    out = np.empty(1 << log2, np.float32)
    kinds = {**{name: (lambda f=f: f(out)) for name, f in FILLS.items()},
             "constant": lambda: _constant_fill(out, np.float32(1))}
    for call in kinds.values():
        call()  # compile or load, touch the pages
    best = {(kind, t): float("inf") for kind in kinds for t in counts}
    digests: dict[str, set] = {name: set() for name in FILLS}  # hashed in the first round
    for r in range(rounds):
        for t in counts:
            fi.set_num_threads(t)
            for kind, call in kinds.items():
                best[kind, t] = min(best[kind, t], _seconds(call))
                if kind in digests and r == 0:
                    digests[kind].add(hashlib.sha256(out).hexdigest())
    rows = []
    for kind in kinds:
        for t in counts:
            rows.append({"fill": kind, "threads": t, "ns_per_element": best[kind, t] / out.size * 1e9,
                         "speedup": best[kind, 1] / best[kind, t],
                         "of_constant": best["constant", t] / best[kind, t]})
    return {"elements": out.size, "rows": rows, "same_bits_at_every_count": all(len(d) == 1 for d in digests.values())}


def checkpoint(counts: list[int], where: str) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        path = Path(tmp) / "llama-1b.safetensors"
        generate = [sys.executable, "-m", "fastinit", "generate", "--out", str(path), "--quiet"]
        timed_run([*generate, "--threads", str(counts[-1])])  # compile or load the kernels; the size
        nbytes = path.stat().st_size
        path.unlink()
        for t in counts:
            (pair,) = rounds_against_dd(Path(tmp), [*generate, "--threads", str(t)], path, nbytes, count=1)
            rows.append({"threads": t, "seconds": pair["generate_s"], "GB_per_s": nbytes / pair["generate_s"] / 1e9,
                         "dd_GB_per_s": nbytes / pair["dd_s"] / 1e9, "peak_rss_mib": pair["peak_rss_mib"]})
    return {"bytes": nbytes, "rows": rows}


def _report(results: dict) -> list[str]:
    lines = [f"{os.cpu_count()} cores, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}"]
    if "fills" in results:
        f = results["fills"]
        lines.append(f"fills, {f['elements']} float32 elements (same bits at every count: "
                     f"{f['same_bits_at_every_count']})")
        lines.append("  fill          threads  ns/element  speedup  of constant fill")
        for r in f["rows"]:
            lines.append(f"  {r['fill']:13s} {r['threads']:7d} {r['ns_per_element']:11.3f} "
                         f"{r['speedup']:7.2f}x {r['of_constant']:9.2f}")
        normal = {r["threads"]: r["speedup"] for r in f["rows"] if r["fill"] == "normal"}
        uniform = [r["of_constant"] for r in f["rows"] if r["fill"] == "uniform"]
        if 16 in normal:
            lines.append(f"  target normal_ >= 12x at 16 threads: {normal[16]:.2f}x")
        lines.append(f"  target uniform_ >= 0.5 of the constant fill: {min(uniform):.2f}-{max(uniform):.2f}")
    if "checkpoint" in results:
        c = results["checkpoint"]
        lines.append(f"checkpoint, {c['bytes']} bytes")
        for r in c["rows"]:
            lines.append(f"  {r['threads']:3d} threads: {r['seconds']:.2f} s, {r['GB_per_s']:.2f} GB/s "
                         f"(dd beside it {r['dd_GB_per_s']:.2f} GB/s)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2", type=int, default=28, help="elements per fill as a power of two (default 28)")
    parser.add_argument("--no-checkpoint", action="store_true", help="skip the checkpoint section")
    parser.add_argument("--checkpoint-dir", default=os.getcwd(),
                        help="a directory on the disk to write to (default: the current one)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    counts = thread_counts(numba.config.NUMBA_NUM_THREADS)
    results = {"fills": fills(counts, args.log2)}
    if not args.no_checkpoint:
        results["checkpoint"] = checkpoint(counts, args.checkpoint_dir)
    print("\n".join(_report(results)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
