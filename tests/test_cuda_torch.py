"""``fastinit.torch`` on CUDA tensors, on a machine without a GPU: in Numba's CUDA simulator (a child
process) CPU tensors are presented as ``cuda:0`` tensors (their ``device`` patched, torch's current
stream faked), so ``fastinit.torch`` hands them to the GPU kernels as ``DeviceArray`` views; a device
pointer is a host pointer there. Every fill, scheme and ``init_module`` of a small model must equal
the CPU path bit for bit, through the GPU kernels (the launches are counted).

Run as a script (``python tests/test_cuda_torch.py OUT.json``) it is the simulator side.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None or importlib.util.find_spec("torch")
                                is None, reason="needs numba-cuda (the cuda extra) and torch")

#: label -> (fastinit.torch function, shape, torch dtype name, keyword arguments)
CASES = {
    "normal_ bf16": ("normal_", (64, 48), "bfloat16", {"std": 0.02}),
    "uniform_ f32": ("uniform_", (33, 7), "float32", {"a": -0.5, "b": 2.0}),
    "trunc_normal_ f16": ("trunc_normal_", (40, 40), "float16", {"std": 0.5, "a": -0.2, "b": 1.6}),
    "kaiming_normal_ f32 conv": ("kaiming_normal_", (16, 4, 3, 3), "float32", {"nonlinearity": "relu"}),
    "xavier_uniform_ bf16": ("xavier_uniform_", (128, 64), "bfloat16", {}),
    "orthogonal_ f32": ("orthogonal_", (16, 8), "float32", {"gain": 2.0}),
    "sparse_ f32": ("sparse_", (20, 6), "float32", {"sparsity": 0.3}),
    "eye_ bf16": ("eye_", (5, 7), "bfloat16", {}),
    "zeros_ f16": ("zeros_", (9,), "float16", {}),
    "normal_ complex64": ("normal_", (12, 6), "complex64", {}),
    "sparse_ complex64": ("sparse_", (12, 6), "complex64", {"sparsity": 0.3}),
}


def _model():
    import torch

    return torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 32), torch.nn.LayerNorm(32),
                               torch.nn.Conv1d(32, 8, 3))


def simulate(path: str) -> None:
    import torch

    import fastinit._cuda as gpu
    import fastinit.torch as fit

    seeded = lambda name: {} if name in ("eye_", "zeros_") else {"seed": 7}  # noqa: E731
    cpu = {label: getattr(fit, f)(torch.empty(shape, dtype=getattr(torch, dt)), **kw, **seeded(f))
           for label, (f, shape, dt, kw) in CASES.items()}
    cpu_model = fit.init_module(_model(), seed=3).state_dict()

    class CurrentStream:
        cuda_stream = 0  # the legacy default stream

    torch.cuda.current_stream = lambda device=None: CurrentStream()
    cuda0 = torch.device("cuda", 0)
    torch.Tensor.device = property(lambda self: cuda0)  # every tensor is "on the GPU": the simulator's memory
    launches = []
    launch = gpu.launch
    gpu.launch = lambda *args: launches.append(args[1]) or launch(*args)
    equal = {}
    for label, (f, shape, dt, kw) in CASES.items():
        on_gpu = getattr(fit, f)(torch.empty(shape, dtype=getattr(torch, dt)), **kw, **seeded(f))
        equal[label] = bool(torch.equal(on_gpu, cpu[label]))
    gpu_model = fit.init_module(_model(), seed=3).state_dict()
    equal["init_module"] = all(torch.equal(gpu_model[k], v) for k, v in cpu_model.items())
    with open(path, "w") as f:
        json.dump({"equal": equal, "launches": len(launches)}, f)


def test_fastinit_torch_on_simulated_cuda_tensors_equals_the_cpu(tmp_path):
    from test_cuda import _child

    path = str(tmp_path / "out.json")
    run = _child([__file__, path], env={"NUMBA_ENABLE_CUDASIM": "1", "NUMBA_DISABLE_JIT": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    with open(path) as f:
        result = json.load(f)
    assert result["equal"] == {**dict.fromkeys(CASES, True), "init_module": True}
    # GPU kernels: the six drawing cases and the model's five drawn tensors (embedding, two weights,
    # two biases); orthogonal_, sparse_ and eye_ are computed on the host and copied in, zeros_ is set
    assert result["launches"] == 6 + 5, result["launches"]


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    simulate(sys.argv[1])
