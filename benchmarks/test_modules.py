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
