"""Command line: ``fastinit`` / ``python -m fastinit``.

``fastinit demo`` (the default) fills a billion-parameter float32 layer (32768 x 32768) with He
normal weights in memory and reports time, throughput and statistics against the expected std.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from . import __version__
from ._jit import get_num_threads, set_num_threads
from .distributions import normal_

_DTYPES = ("float32", "float64", "float16", "bfloat16")


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise SystemExit("--dtype bfloat16 needs ml_dtypes: pip install 'fastinit-philox[bfloat16]'") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _summary(x: np.ndarray, rows_per_step: int = 1024) -> dict:
    """Mean, std, extremes and tail counts in float64, a few rows at a time (bounded memory)."""
    total = total_sq = 0.0
    lo, hi = math.inf, -math.inf
    flat_rows = x.reshape(x.shape[0], -1)
    for start in range(0, flat_rows.shape[0], rows_per_step):
        block = flat_rows[start:start + rows_per_step].astype(np.float64)
        total += float(block.sum())
        total_sq += float(np.square(block).sum())
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    n = x.size
    mean = total / n
    return {"mean": mean, "std": math.sqrt(max(total_sq / n - mean * mean, 0.0)), "min": lo, "max": hi}


def demo(args: argparse.Namespace) -> int:
    rows, cols = args.shape
    fan_in = cols
    std = math.sqrt(2.0 / fan_in)  # He / Kaiming normal, ReLU gain sqrt(2), fan_in mode
    dtype = _dtype(args.dtype)
    if args.threads:
        set_num_threads(args.threads)
    out = np.empty((rows, cols), dtype=dtype)
    print(f"fastinit {__version__}: He-normal {rows} x {cols} {dtype.name} "
          f"({out.size / 1e9:.3f} G parameters, {out.nbytes / 2**30:.2f} GiB), "
          f"seed {args.seed}, {get_num_threads()} threads", flush=True)
    warm = np.empty((4, 4), dtype=dtype)
    t0 = time.perf_counter()
    normal_(warm, 0.0, std, seed=args.seed, name=args.name)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    normal_(out, 0.0, std, seed=args.seed, name=args.name)
    fill_s = time.perf_counter() - t0
    print(f"  kernel load/compile {compile_s:.2f} s; fill {fill_s:.3f} s = "
          f"{out.size / fill_s / 1e9:.2f} G values/s, {out.nbytes / fill_s / 1e9:.2f} GB/s")
    stats = _summary(out)
    rel = stats["std"] / std - 1.0
    print(f"  mean {stats['mean']:+.3e}   std {stats['std']:.6e} (expected {std:.6e}, {rel:+.2e} relative)")
    print(f"  min {stats['min']:+.4f} ({stats['min'] / std:+.2f} std)   "
          f"max {stats['max']:+.4f} ({stats['max'] / std:+.2f} std)")
    # five standard errors of the sample mean and std (plus 16-bit rounding of each value)
    rounding = 2.0**-8 if dtype.itemsize == 2 else 0.0
    ok = (abs(rel) < 5 / math.sqrt(2 * out.size) + rounding
          and abs(stats["mean"]) < 5 * std / math.sqrt(out.size))
    print("  statistics " + ("match" if ok else "DO NOT match") + " the He-normal distribution")
    return 0 if ok else 1


def _shape(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS, e.g. 32768x32768, got {text!r}") from None
    if rows <= 0 or cols <= 0:
        raise argparse.ArgumentTypeError(f"both dimensions must be positive, got {text!r}")
    return rows, cols


_COMMANDS = ("demo",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastinit", description="Fast, shard-invariant weight initialization.")
    parser.add_argument("--version", action="version", version=f"fastinit {__version__}")
    commands = parser.add_subparsers(dest="command")
    p = commands.add_parser("demo", help="fill a billion-parameter He-normal layer in memory and report")
    p.add_argument("--shape", type=_shape, default=(32768, 32768), help="ROWSxCOLS (default 32768x32768)")
    p.add_argument("--dtype", choices=_DTYPES, default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="demo.weight")
    p.add_argument("--threads", type=int, default=0, help="threads to use (default: all)")
    p.set_defaults(run=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["demo", *argv]  # the demo is the default command
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as err:
        print(f"fastinit: error: {err}", file=sys.stderr)
        return 2
