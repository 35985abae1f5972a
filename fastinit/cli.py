"""Command line: ``fastinit`` / ``python -m fastinit``.

* ``fastinit generate [SPEC] --out PATH``: write an initialized checkpoint (safetensors, a
  directory of .npy files or a zarr v3 group) from a spec, the bundled Llama-style default when SPEC
  is omitted; ``--max-shard-size 5GB`` shards it as transformers does; ``--hf config.json`` writes
  a transformers model's own initialization as a directory ``from_pretrained`` loads;
* ``fastinit verify PATH [SPEC]``: recompute it (or ``--sample`` boxes) and report mismatches;
* ``fastinit inspect PATH``: tensors, shapes, dtypes and statistics;
* ``fastinit diagnose --hf config.json [--plot out.png]``: per-module output and gradient std of a
  transformers model at initialization;
* ``fastinit diagnose --widths 100,100,100 --activation relu --init kaiming_normal [--plot out.png]``:
  signal propagation through an MLP at initialization, measured and predicted, per layer;
* ``fastinit demo`` (the default without arguments): fill a billion-parameter float32 layer
  (32768 x 32768) with He normal weights in memory and report time, throughput and statistics.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from ._dtypes import numpy_dtype
from ._formats import read_checkpoint
from ._hf_config import read_config
from ._jit import get_num_threads, set_num_threads
from ._validate import check_seed
from ._version import __version__
from .checkpoint import FORMATS, Interrupted, parse_size, statistics, summarize
from .checkpoint import generate as write_checkpoint
from .checkpoint import verify as verify_checkpoint
from .distributions import normal_
from .spec import DTYPES, default_spec, load_spec


def demo(args: argparse.Namespace) -> int:
    rows, cols = args.shape
    fan_in = cols
    std = math.sqrt(2.0 / fan_in)  # He / Kaiming normal, ReLU gain sqrt(2), fan_in mode
    dtype = numpy_dtype(args.dtype)
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
    stats = statistics(out, out.dtype)
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


class _Progress:
    """Bytes, tensors, rate and ETA on stderr: a tqdm bar when tqdm is installed, else a line a second."""

    def __init__(self, total_bytes: int, total_tensors: int, verb: str, quiet: bool):
        self.total, self.tensors, self.verb, self.quiet = total_bytes, total_tensors, verb, quiet
        self.done, self.t0, self.last = 0, time.perf_counter(), 0.0
        self.names: set[str] = set()
        self.bar = None
        if not quiet:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=verb,
                            file=sys.stderr, dynamic_ncols=True)

    def __call__(self, nbytes: int, name: str) -> None:
        self.done += nbytes
        self.names.add(name)
        if self.bar is not None:
            self.bar.update(nbytes)
            self.bar.set_postfix_str(f"{len(self.names)}/{self.tensors} tensors", refresh=False)
            return
        now = time.perf_counter()
        if self.quiet or now - self.last < 1.0:
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate else math.inf
        print(f"\r{self.verb}: {self.done / 2**30:.2f}/{self.total / 2**30:.2f} GiB, "
              f"{len(self.names)}/{self.tensors} tensors, {rate / 1e9:.2f} GB/s, ETA {eta:.0f} s",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet and self.last:
            print(file=sys.stderr)


def _load(path: str | None, dtype: str | None = None):
    spec = default_spec() if path is None else load_spec(path)
    return spec.with_dtype(dtype) if dtype else spec


def _hf_spec(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The spec and the generate() arguments of ``generate --hf CONFIG``. The model is built and its
    init recorded in a child process, so the writer never holds torch and transformers (their
    imports alone are ~400 MiB)."""
    if args.spec is not None:
        raise ValueError("give either a SPEC or --hf CONFIG, not both")
    if args.format != "safetensors":
        raise ValueError(f"--hf writes a transformers checkpoint (safetensors), not {args.format}")
    read_config(args.hf)  # a bad file or size is refused before the child starts
    parse_size(args.max_shard_size or "5GB")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        spec, storage, files = child.submit(_pretrained_job, args.hf, args.dtype).result()
    return load_spec(spec), {"max_shard_size": args.max_shard_size or "5GB", "shard_storage": storage,
                             "extra_files": files}


def _pretrained_job(config: str, dtype: str | None) -> tuple[dict, dict[str, tuple[str, int]], dict[str, bytes]]:
    """In the child: the spec (as a dict), the tensors' storages and the side files of the
    transformers model of ``config``."""
    from . import transformers as hf

    model = hf.build_model(hf.load_config(config), dtype)
    spec, storage = hf._pretrained_spec(model)
    return spec.to_dict(), storage, hf.pretrained_files(model)


def generate(args: argparse.Namespace) -> int:
    check_seed(args.seed)  # before anything runs (a --hf model is built in a child first)
    if args.threads:
        set_num_threads(args.threads)
    if args.hf is not None:
        spec, extra = _hf_spec(args)
    else:
        spec, extra = _load(args.spec, args.dtype), {"max_shard_size": args.max_shard_size}
    if not args.quiet:
        print(f"fastinit {__version__}: {len(spec.tensors)} tensors, {spec.parameters / 1e9:.3f} G parameters, "
              f"{spec.nbytes / 2**30:.2f} GiB -> {args.out} ({args.format}), seed {args.seed}", file=sys.stderr)
    bar = _Progress(spec.nbytes, len(spec.tensors), "generate", args.quiet)
    try:
        result = write_checkpoint(spec, args.out, seed=args.seed, format=args.format, overwrite=args.overwrite,
                                  resume=args.resume, progress=bar, **extra)
    finally:
        bar.close()
    print(f"wrote {result.path}: {result.tensors} tensors, {result.parameters:,} parameters, "
          f"{result.nbytes:,} bytes in {result.seconds:.2f} s ({result.gb_per_s:.2f} GB/s)")
    return 0


def verify(args: argparse.Namespace) -> int:
    spec = None if args.spec is None else _load(args.spec)
    checked = {"bytes": 0}

    def count(nbytes: int, name: str) -> None:
        checked["bytes"] += nbytes

    problems = verify_checkpoint(args.path, spec, seed=args.seed, sample=args.sample, progress=count)
    for p in problems:
        print(f"MISMATCH {p.tensor}: {p.problem}")
    total = sum(math.prod(t.shape) * numpy_dtype(t.dtype).itemsize for t in read_checkpoint(args.path)[2])
    if args.sample is None or checked["bytes"] == total:
        scope = "every value checked"
    else:
        scope = f"{args.sample} box(es) per tensor checked: {checked['bytes']:,} of {total:,} bytes"
    print(f"{args.path}: " + (f"{len(problems)} tensor(s) do not match" if problems else f"matches ({scope})"))
    return 1 if problems else 0


def inspect(args: argparse.Namespace) -> int:
    fmt, metadata, rows = summarize(args.path)
    print(f"{args.path}: {fmt}, {len(rows)} tensors, "
          f"{sum(math.prod(r['shape']) for r in rows):,} parameters; seed {metadata.get('fastinit.seed', '?')}, "
          f"fastinit {metadata.get('fastinit.version', '?')}")
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  {'shape':<18} {'dtype':<9} {'mean':>11} {'std':>11} {'min':>11} {'max':>11}")
    for r in rows:
        shape = "x".join(map(str, r["shape"])) or "()"
        print(f"{r['name']:<{width}}  {shape:<18} {r['dtype']:<9} {r['mean']:>11.4g} {r['std']:>11.4g} "
              f"{r['min']:>11.4g} {r['max']:>11.4g}")
    return 0


def _widths(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split(",")]
    except ValueError:
        raise ValueError(f"--widths must be comma-separated ints, got {text!r}") from None


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--param takes KEY=VALUE (e.g. std=0.02), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a string such as nonlinearity=relu


def diagnose(args: argparse.Namespace) -> int:
    from . import diagnostics

    if args.hf is not None:
        if args.widths or args.activation or args.init or args.param or args.instances != 1:
            raise ValueError("give either --hf CONFIG (a transformers model) or --widths, --activation and --init "
                             "(an MLP), not both")
        print(diagnostics.diagnose_config(args.hf, seed=args.seed, batch=2 if args.batch is None else args.batch,
                                          seq_len=args.seq_len, plot_path=args.plot, overwrite=args.overwrite))
        if args.plot:
            print(f"plot: {args.plot}")
        return 0
    missing = [f"--{name}" for name in ("widths", "activation", "init") if getattr(args, name) is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} required (or --hf CONFIG to diagnose a transformers model)")
    widths = _widths(args.widths)
    params = dict(_param(p) for p in args.param)
    batch = 1000 if args.batch is None else args.batch
    run: dict[str, Any] = dict(batch=batch, seed=args.seed, instances=args.instances)
    result = diagnostics.propagate(widths, args.activation, args.init, **run, **params)
    print(f"{args.activation} MLP, widths {','.join(map(str, widths))}, init {args.init}"
          + "".join(f" {k}={v}" for k, v in params.items())
          + f", batch {batch}, {args.instances} instance(s); theory: infinite-width recursion")
    print(result.table())
    rec = diagnostics.recommend(args.activation)
    print(f"recommended for {args.activation}: {rec.init}"
          + "".join(f" {k}={v}" for k, v in rec.params.items()) + f": {rec.reason}")
    if args.plot:
        others = [diagnostics.propagate(widths, args.activation, init, **run, **p)
                  for init, p in diagnostics.alternatives(args.activation) if (init, p) != (args.init, params)]
        diagnostics.plot([result, *others], args.plot, overwrite=args.overwrite)
        print(f"plot: {args.plot}")
    return 0


_COMMANDS = ("demo", "generate", "verify", "inspect", "diagnose")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastinit", description="Fast, shard-invariant weight initialization.")
    parser.add_argument("--version", action="version", version=f"fastinit {__version__}")
    commands = parser.add_subparsers(dest="command")
    p = commands.add_parser("demo", help="fill a billion-parameter He-normal layer in memory and report")
    p.add_argument("--shape", type=_shape, default=(32768, 32768), help="ROWSxCOLS (default 32768x32768)")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="demo.weight")
    p.add_argument("--threads", type=int, default=0, help="threads to use (default: all)")
    p.set_defaults(run=demo)

    g = commands.add_parser("generate", help="write an initialized checkpoint from a spec or a transformers config")
    g.add_argument("spec", nargs="?", help="JSON or TOML spec (default: the bundled Llama-style 1.2B model)")
    g.add_argument("--out", required=True, help="output path (a file for safetensors, a directory for npy and zarr)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--format", choices=FORMATS, default="safetensors")
    g.add_argument("--dtype", choices=DTYPES, help="store every tensor in this dtype (with --hf: build the model "
                   "in it, as transformers does, keeping the modules it keeps in float32)")
    g.add_argument("--hf", metavar="CONFIG", help="a transformers config.json (or a directory holding one): write "
                   "the model's own initialization as a directory from_pretrained loads (offline)")
    g.add_argument("--max-shard-size", metavar="SIZE", help="shard safetensors as transformers does, e.g. 5GB, "
                   "500MB, 2GiB (default with --hf: 5GB)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run")
    g.add_argument("--threads", type=int, default=0, help="threads to use (default: all)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(run=generate)

    v = commands.add_parser("verify", help="recompute a checkpoint and report mismatches")
    v.add_argument("path")
    v.add_argument("spec", nargs="?", help="spec to check against (default: the one recorded in the checkpoint)")
    v.add_argument("--seed", type=int, default=None, help="default: the recorded seed")
    v.add_argument("--sample", type=int, default=None, help="check only this many boxes per tensor (>= 1): the "
                   "first, the last and others at random")
    v.set_defaults(run=verify)

    i = commands.add_parser("inspect", help="list a checkpoint's tensors with statistics")
    i.add_argument("path")
    i.set_defaults(run=inspect)

    d = commands.add_parser("diagnose", help="signal propagation at initialization: an MLP vs theory, or any "
                            "transformers model per module")
    d.add_argument("--widths", help="input width, then each layer's: 100,100,100")
    d.add_argument("--activation", help="linear, relu, leaky_relu, tanh, sigmoid, gelu, gelu_erf, silu, selu, "
                   "softsign, softplus, mish or elu")
    d.add_argument("--init", help="a fastinit scheme: kaiming_normal, xavier_normal, normal, ...")
    d.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the scheme (repeatable): --param nonlinearity=relu --param std=0.1")
    d.add_argument("--hf", metavar="CONFIG", help="a transformers config.json (or a directory holding one): the "
                   "output and gradient std of every module of the model fastinit initializes, on random tokens")
    d.add_argument("--batch", type=int, default=None, help="inputs (default 1000; with --hf: 2 sequences)")
    d.add_argument("--seq-len", type=int, default=16, help="with --hf: tokens per sequence (default 16)")
    d.add_argument("--instances", type=int, default=1, help="networks to draw (the spread across them)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--plot", help="write a figure of std per layer (needs matplotlib)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing plot")
    d.set_defaults(run=diagnose)
    return parser


class _Stdout:
    """The commands' stdout: once its reader has gone (``fastinit inspect ... | head``), the rest of
    the output is dropped and the command finishes with its own exit status."""

    def __init__(self, stream: Any):
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        """Point the file descriptor at /dev/null, so that the interpreter's last flush succeeds."""
        self.gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    finally:
        sys.stdout = stdout


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["demo", *argv]  # the demo is the default command
    args = parser.parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit becomes an OSError, not a silent kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return args.run(args)
    except Interrupted as err:
        print(f"fastinit: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("fastinit: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, ImportError) as err:
        print(f"fastinit: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"fastinit: error: {err}", file=sys.stderr)
        return 1
