"""fastinit.torch.init_module beside torch's own reset_parameters on a stack of Linear layers.

    pytest benchmarks/test_modules.py --benchmark-enable -k small        # 2 x 1024^2 (seconds)
    pytest benchmarks/test_modules.py --benchmark-enable -m huge         # 16 x 8192^2: 1.07e9 parameters, 4 GiB
    python benchmarks/report.py <json>                                   # G parameters/s and ratios
"""

import pytest

torch = pytest.importorskip("torch")
import fastinit.torch as fit  # noqa: E402

STACKS = [pytest.param((2, 1024), id="small"), pytest.param((16, 8192), id="billion", marks=pytest.mark.huge)]


@pytest.fixture(scope="module", params=STACKS)
def stack(request, threads):
    torch.set_num_threads(threads)
    layers, width = request.param
    with torch.device("meta"):
        model = torch.nn.Sequential(*(torch.nn.Linear(width, width) for _ in range(layers)))
    return fit.materialize(model, seed=0)  # storage, filled once (warms the kernels up)


@pytest.mark.parametrize("library", ["fastinit", "torch"])
def test_init_module_vs_reset_parameters(benchmark, stack, library):
    parameters = sum(p.numel() for p in stack.parameters())
    if library == "fastinit":
        call = lambda: fit.init_module(stack, seed=0)  # noqa: E731
    else:
        call = lambda: [layer.reset_parameters() for layer in stack]  # noqa: E731
    benchmark.group = f"init_module {len(stack)} Linear"
    benchmark.extra_info.update(library=library, fill=f"Linear stack init ({len(stack)} layers)", dtype="float32",
                                elements=parameters)
    benchmark.pedantic(call, rounds=3, warmup_rounds=1)


@pytest.mark.huge
def test_materialize_llama_1b_against_normal_on_touched_memory(benchmark):
    """``materialize`` of a Llama-3.2-1B-shaped module (1.24 G parameters, bfloat16: tied
    embeddings, 16 layers, GQA) from meta, allocation included, against ``normal_`` over as many
    elements on touched memory; alternating, 3 rounds (``-m huge -k llama``)."""
    import sys
    import time
    from pathlib import Path

    import ml_dtypes
    import numpy as np

    import fastinit as fi

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from trainer_models import TorchtitanLike

    schemes = {torch.nn.Linear: ("normal", {"std": 0.02}), torch.nn.Embedding: ("normal", {"std": 0.02})}

    def build():
        with torch.device("meta"):
            return TorchtitanLike(dim=2048, layers=16, hidden=8192, vocab=128256, tied=True, kv_dim=512)

    n = sum(p.numel() for p in build().parameters())
    touched = fi.normal_(np.empty(n, ml_dtypes.bfloat16), seed=0)
    fit.materialize(build(), dtype=torch.bfloat16, schemes=schemes)  # the kernels loaded
    rounds = []
    for _ in range(3):
        t0 = time.perf_counter()
        fi.normal_(touched, std=0.02, seed=1)
        normal_s = time.perf_counter() - t0
        model = build()
        t0 = time.perf_counter()
        fit.materialize(model, dtype=torch.bfloat16, schemes=schemes)
        rounds.append((time.perf_counter() - t0, normal_s))
        del model
    ratios = sorted(m / t for m, t in rounds)
    benchmark.group = "materialize Llama-3.2-1B shape vs normal_ (touched)"
    benchmark.extra_info.update(parameters=n, rounds=rounds, ratios=ratios)
    benchmark.pedantic(lambda: None, rounds=1)
    mat, normal = sorted(r[0] for r in rounds), sorted(r[1] for r in rounds)
    print(f"\n{n / 1e9:.2f} G parameters: materialize {mat[0]:.2f}-{mat[-1]:.2f} s, normal_ on touched memory "
          f"{normal[0]:.2f}-{normal[-1]:.2f} s; {ratios[0]:.2f}-{ratios[-1]:.2f}x")


_FRESH_PROCESS_MATERIALIZE = r'''
import json, sys, time
from pathlib import Path
import ml_dtypes, numpy as np, torch
import fastinit as fi, fastinit.torch as fit
sys.path.insert(0, sys.argv[1])
from trainer_models import TorchtitanLike
schemes = {torch.nn.Linear: ("normal", {"std": 0.02}), torch.nn.Embedding: ("normal", {"std": 0.02})}
def build(**size):
    with torch.device("meta"):
        return TorchtitanLike(**size, tied=True)
fit.materialize(build(dim=64, layers=1, hidden=128, vocab=256, kv_dim=16), dtype=torch.bfloat16, schemes=schemes)
model = build(dim=2048, layers=16, hidden=8192, vocab=128256, kv_dim=512)
n = sum(p.numel() for p in model.parameters())
t0 = time.perf_counter()
fit.materialize(model, dtype=torch.bfloat16, schemes=schemes)
materialize = time.perf_counter() - t0
touched = fi.normal_(np.empty(n, ml_dtypes.bfloat16), seed=0)
t0 = time.perf_counter()
fi.normal_(touched, std=0.02, seed=1)
print(json.dumps({"materialize": materialize, "normal_touched": time.perf_counter() - t0}))
'''


@pytest.mark.huge
def test_materialize_llama_1b_in_a_fresh_process_with_and_without_huge_pages(benchmark):
    """The first ``materialize`` of a Llama-3.2-1B-shaped module in a new process (every page fresh),
    with ``FASTINIT_HUGE_PAGES`` 0 and 1 alternating, 6 rounds each, against ``normal_`` over as many
    elements on touched memory in the same process (``-m huge -k fresh_process``)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = str(Path(__file__).parents[1] / "tests")
    runs: dict[str, list] = {"0": [], "1": []}
    for _ in range(6):
        for choice in runs:
            out = subprocess.run([sys.executable, "-c", _FRESH_PROCESS_MATERIALIZE, tests], check=True,
                                 capture_output=True, text=True, env={**os.environ, "FASTINIT_HUGE_PAGES": choice})
            runs[choice].append(json.loads(out.stdout))
    benchmark.group = "materialize Llama-3.2-1B shape, fresh process"
    benchmark.extra_info.update(runs=runs)
    benchmark.pedantic(lambda: None, rounds=1)
    for choice, results in runs.items():
        seconds = sorted(r["materialize"] for r in results)
        ratios = sorted(r["materialize"] / r["normal_touched"] for r in results)
        print(f"\nFASTINIT_HUGE_PAGES={choice}: materialize {seconds[0]:.2f}-{seconds[-1]:.2f} s "
              f"(median {seconds[len(seconds) // 2]:.2f}), {ratios[0]:.2f}-{ratios[-1]:.2f}x normal_ on touched memory")
