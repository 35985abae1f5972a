"""One run on a machine with an NVIDIA GPU: do fastinit's CUDA fills give the CPU's bits, and how fast are they?

    python benchmarks/gpu_check.py                      # GPU: torch with CUDA, numba-cuda (the cuda extra)
    python benchmarks/gpu_check.py --json results.json  # also write the figures
    NUMBA_ENABLE_CUDASIM=1 NUMBA_DISABLE_JIT=1 python benchmarks/gpu_check.py --small   # dry run, no GPU

Sections (each reports its own error and the run goes on):

1. ``compile``: the first fill of each of the 13 (fill, dtype) kinds, which compiles its kernel;
2. ``equal``: every fill x dtype at 2**24 elements, and boxes of a 2**22 x 8191 tensor whose rows
   cross flat indices 2**32, 2**33 and 2**34 (a row block and a column block), against the CPU
   fill of the same box, bit for bit; also through ``fastinit.torch`` on CUDA tensors;
3. ``throughput``: 2**30 float32 and bfloat16 elements: ``uniform_`` / ``normal_`` /
   ``trunc_normal_`` beside ``torch.rand`` / ``torch.randn`` / ``torch.nn.init.trunc_normal_`` into
   the same tensor and a device-to-device copy of it (the bandwidth ceiling), in G elements/s,
   best of 5 by CUDA events;
4. ``llama``: a Llama-3.2-1B-shaped module (1.24 G parameters, float32, tied embeddings) made on
   the GPU by ``to_empty``: ``fastinit.torch.init_module`` against torch's ``reset_parameters``
   of every module, and its parameters against ``init_module`` of the same module on the CPU;
5. ``jax``: ``fastinit.jax`` initializers on a JAX GPU device (filled in its memory, handed to JAX
   by DLPack) against the host path's bits, and their time beside ``jax.nn.initializers``.

The targets: equal bits everywhere; ``normal_`` at least as fast as ``torch.randn`` and at least
half the copy's rate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import ml_dtypes
import numpy as np

import fastinit as fi

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
FLOATS = ("float32", "float64", "float16", "bfloat16")
FILLS = {  # fill -> (dtypes, parameters)
    "random_bits_": (("uint32",), {}),
    "uniform_": (FLOATS, {"low": -0.75, "high": 2.5}),
    "normal_": (FLOATS, {"mean": 0.25, "std": 3.0}),
    "trunc_normal_": (FLOATS, {"mean": 0.1, "std": 0.5, "a": -0.2, "b": 1.6}),
}
#: label -> (box shape, offset, the same with --small) in a 2**22 x 8191 tensor (rows 524352, 1048704
#: and 2097408 run across flat indices 2**32, 2**33 and 2**34)
BIG = (2**22, 8191)
BOXES = {
    "rows across 2**32": ((128, 8191), (524_300, 0), (2, 41), (524_351, 8150)),
    "rows across 2**33": ((128, 8191), (1_048_650, 0), (2, 30), (1_048_704, 100)),
    "columns across 2**34": ((256, 300), (2_097_300, 100), (3, 30), (2_097_407, 240)),
}


def numpy_dtype(name: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


class HostCudaArray:
    """Simulator dry run only: a host array behind ``__cuda_array_interface__`` (the simulator's
    device memory is host memory)."""

    def __init__(self, host):
        self.host, self.dtype, self.shape = host, host.dtype, host.shape

    @property
    def __cuda_array_interface__(self):
        ai = self.host.__array_interface__
        return {"shape": ai["shape"], "typestr": ai["typestr"], "data": ai["data"], "strides": None,
                "version": 3, "stream": None}


def device_buffer(shape, dtype: str):
    """``(array the fills take, function returning its bits on the host)``."""
    if SIMULATED:
        host = np.zeros(shape, numpy_dtype(dtype))
        return HostCudaArray(host), lambda: host.view(np.uint8).reshape(-1).copy()
    import torch

    from fastinit._cuda import DeviceArray

    tensor = torch.empty(shape, dtype=getattr(torch, dtype), device="cuda")
    array = DeviceArray(tensor.data_ptr(), shape, numpy_dtype(dtype), ordinal=tensor.device.index,
                        stream=torch.cuda.current_stream().cuda_stream or 1, owner=tensor)
    return array, lambda: tensor.cpu().view(torch.uint8).numpy().reshape(-1)


def host_bits(shape, dtype, fill, params, global_shape=None, offset=None, seed=5):
    out = np.empty(shape, numpy_dtype(dtype))
    getattr(fi, fill)(out, **params, seed=seed, name=f"check.{fill}", global_shape=global_shape, offset=offset)
    return out.view(np.uint8).reshape(-1)


def device_bits(shape, dtype, fill, params, global_shape=None, offset=None, seed=5):
    array, to_host = device_buffer(shape, dtype)
    getattr(fi, fill)(array, **params, seed=seed, name=f"check.{fill}", global_shape=global_shape, offset=offset)
    return to_host()


def kinds():
    for fill, (dtypes, params) in FILLS.items():
        for dtype in dtypes:
            yield fill, dtype, params


def section_compile(small: bool) -> dict:
    seconds = {}
    for fill, dtype, params in kinds():
        t0 = time.perf_counter()
        device_bits((64,), dtype, fill, params)
        seconds[f"{fill} {dtype}"] = round(time.perf_counter() - t0, 2)
    return seconds


def section_equal(small: bool) -> dict:
    n = 2**10 if small else 2**24
    results = {}
    for fill, dtype, params in kinds():
        results[f"{fill} {dtype} 2**{int(math.log2(n))}"] = bool(np.array_equal(
            device_bits((n,), dtype, fill, params), host_bits((n,), dtype, fill, params)))
        for label, (shape, offset, small_shape, small_offset) in BOXES.items():
            shape, offset = (small_shape, small_offset) if small else (shape, offset)
            gpu = device_bits(shape, dtype, fill, params, BIG, offset)
            results[f"{fill} {dtype} {label}"] = bool(np.array_equal(gpu, host_bits(shape, dtype, fill, params, BIG,
                                                                                    offset)))
    if not SIMULATED:
        results.update(_equal_through_fastinit_torch(n))
    return results


def _equal_through_fastinit_torch(n: int) -> dict:
    """``fastinit.torch`` on CUDA tensors (contiguous, and a transposed view) against CPU tensors."""
    import torch

    import fastinit.torch as fit

    results = {}
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        for fill, kw in (("uniform_", {"a": -1.0, "b": 1.0}), ("normal_", {"std": 0.02}),
                         ("trunc_normal_", {"std": 0.02}), ("kaiming_uniform_", {"a": math.sqrt(5)})):
            cpu = getattr(fit, fill)(torch.empty(n // 1024, 1024, dtype=dtype), **kw, seed=3, name="t")
            for layout, gpu in (("contiguous", torch.empty(n // 1024, 1024, dtype=dtype, device="cuda")),
                                ("transposed", torch.empty(1024, n // 1024, dtype=dtype, device="cuda").T)):
                try:
                    getattr(fit, fill)(gpu, **kw, seed=3, name="t")
                    results[f"fastinit.torch.{fill} {dtype} {layout}"] = bool(torch.equal(gpu.cpu(), cpu))
                except Exception as e:  # kaiming_uniform_ needs the schemes on device targets
                    results[f"fastinit.torch.{fill} {dtype} {layout}"] = f"{type(e).__name__}: {e}"
    return results


def _best_seconds(call, repeat=5) -> float:
    import torch

    call()
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        stop.record()
        stop.synchronize()
        best = min(best, start.elapsed_time(stop) / 1e3)
    return best


def section_throughput(small: bool) -> dict:
    """G elements/s at 2**30 (2**20 with --small)."""
    n = 2**20 if small else 2**30
    return {k: v for dtype in ("float32", "bfloat16") for k, v in _throughput(n, dtype).items()}


def _throughput(n: int, dtype: str) -> dict:
    import torch

    from fastinit._cuda import DeviceArray

    t = torch.empty(n, dtype=getattr(torch, dtype), device="cuda")
    source = torch.ones_like(t)
    array = DeviceArray(t.data_ptr(), (n,), numpy_dtype(dtype), ordinal=t.device.index,
                        stream=torch.cuda.current_stream().cuda_stream or 1, owner=t)
    calls = {
        "fastinit uniform_": lambda: fi.uniform_(array, seed=0, name="u"),
        "fastinit normal_": lambda: fi.normal_(array, seed=0, name="n"),
        "fastinit trunc_normal_": lambda: fi.trunc_normal_(array, std=0.02, a=-0.04, b=0.04, seed=0, name="t"),
        "torch.rand": lambda: torch.rand(n, dtype=t.dtype, device="cuda", out=t),
        "torch.randn": lambda: torch.randn(n, dtype=t.dtype, device="cuda", out=t),
        "torch.nn.init.trunc_normal_": lambda: torch.nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04),
        "copy (device to device)": lambda: t.copy_(source),
    }
    rates = {label: n / _best_seconds(call) / 1e9 for label, call in calls.items()}
    results = {f"{label} {dtype}": round(rate, 2) for label, rate in rates.items()}
    results[f"normal_ / torch.randn {dtype}"] = round(rates["fastinit normal_"] / rates["torch.randn"], 2)
    results[f"normal_ / copy {dtype}"] = round(rates["fastinit normal_"] / rates["copy (device to device)"], 2)
    return results


def section_llama(small: bool) -> dict:
    """init_module of a Llama-3.2-1B-shaped module on the GPU, against torch's and the CPU's."""
    import torch

    import fastinit.torch as fit

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from trainer_models import TorchtitanLike

    size = dict(dim=256, layers=2, hidden=512, vocab=1024) if small else dict(dim=2048, layers=16, hidden=8192,
                                                                              vocab=128256)

    def build():
        with torch.device("meta"):
            return TorchtitanLike(**size, tied=True, kv_dim=size["dim"] // 4)

    # through the core fills only (norms as N(1, 0)); the default schemes also need the structured
    # schemes (zeros / ones / kaiming) on GPU arrays, tried below
    schemes = {torch.nn.Linear: ("normal", {"std": 0.02}), torch.nn.Embedding: ("normal", {"std": 0.02}),
               torch.nn.RMSNorm: ("normal", {"mean": 1.0, "std": 0.0})}
    results = {}
    model = build().to_empty(device="cuda")
    results["parameters"] = sum(p.numel() for p in model.parameters())

    def timed(call):
        call()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        call()
        torch.cuda.synchronize()
        return round(time.perf_counter() - t0, 3)

    results["fastinit init_module s"] = timed(lambda: fit.init_module(model, seed=0, schemes=schemes))
    results["torch reset_parameters s"] = timed(
        lambda: [m.reset_parameters() for m in model.modules() if hasattr(m, "reset_parameters")])
    fit.init_module(model, seed=0, schemes=schemes)
    cpu = fit.init_module(build().to_empty(device="cpu"), seed=0, schemes=schemes)
    gpu_state = model.state_dict()
    results["equal to the CPU"] = all(torch.equal(gpu_state[k].cpu(), v) for k, v in cpu.state_dict().items())
    for label, kw in (("default schemes", {}), ("torchtitan-llama3 recipe", {"recipe": "torchtitan-llama3"})):
        try:
            results[f"init_module {label} s"] = timed(lambda kw=kw: fit.init_module(model, seed=0, **kw))
        except Exception as e:
            results[f"init_module {label} s"] = f"{type(e).__name__}: {e}"
    return results


def section_jax(small: bool) -> dict:
    """fastinit.jax initializers on a JAX GPU device (filled there, handed over by DLPack) against the
    host path's bits, and their time beside ``jax.nn.initializers``."""
    import jax

    import fastinit.jax as fij

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if not gpus:
        return {"skipped": "no JAX GPU device (install jax[cuda12])"}
    shape = (512, 256) if small else (8192, 8192)
    results: dict = {"filled on the GPU": fij._fills_on(gpus[0])}
    for factory, dtype in (("he_normal", "float32"), ("glorot_uniform", "bfloat16"), ("normal", "float16")):
        on_gpu = getattr(fij, factory)()(jax.random.key(1), shape, dtype)
        with jax.default_device(jax.devices("cpu")[0]):
            on_host = getattr(fij, factory)()(jax.random.key(1), shape, dtype)
        results[f"{factory} {dtype} on {next(iter(on_gpu.devices()))}"] = bool(
            np.array_equal(np.asarray(on_gpu).view(np.uint8), np.asarray(on_host).view(np.uint8)))
        ours = getattr(fij, factory)()
        theirs = getattr(jax.nn.initializers, factory)()

        def timed(init, dtype=dtype):
            jax.block_until_ready(init(jax.random.key(2), shape, dtype))
            t0 = time.perf_counter()
            jax.block_until_ready(init(jax.random.key(3), shape, dtype))
            return round(time.perf_counter() - t0, 4)

        results[f"{factory} {dtype} s (fastinit, jax)"] = (timed(ours), timed(theirs))
    return results


SECTIONS = {"compile": section_compile, "equal": section_equal, "throughput": section_throughput,
            "llama": section_llama, "jax": section_jax}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes (the simulator dry run)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    args = parser.parse_args()
    report: dict = {"simulated": SIMULATED}
    if not SIMULATED:
        import numba_cuda
        import torch

        report["device"] = torch.cuda.get_device_name()
        report["versions"] = {"torch": torch.__version__, "numba-cuda": numba_cuda.__version__,
                              "fastinit": fi.__version__}
    failed = False
    for name in args.sections.split(","):
        if SIMULATED and name in ("throughput", "llama", "jax"):
            report[name] = "skipped: needs a GPU"
            continue
        t0 = time.perf_counter()
        try:
            report[name] = SECTIONS[name](args.small)
        except Exception:
            report[name] = {"error": traceback.format_exc()}
            failed = True
        print(f"== {name} ({time.perf_counter() - t0:.1f} s)", json.dumps(report[name], indent=1), flush=True)
    equal = report.get("equal", {})
    unequal = [k for k, v in equal.items() if v is not True] if isinstance(equal, dict) else []
    print("unequal:", unequal or "none")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 1 if failed or unequal else 0


if __name__ == "__main__":
    sys.exit(main())
