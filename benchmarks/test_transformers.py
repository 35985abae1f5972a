"""fastinit.transformers beside transformers' own initialization, from a config as users start.

    pytest benchmarks/test_transformers.py --benchmark-enable -s -k tiny          # a 4-layer Llama (seconds)
    pytest benchmarks/test_transformers.py --benchmark-enable -s -m huge -k 1b    # Llama-3.2-1B in bfloat16
    pytest benchmarks/test_transformers.py --benchmark-enable -s -m huge -k 8b    # generate --hf, 16 GB, vs dd

The in-memory runs alternate the two libraries round by round (the machine is shared: a burst of
load hits both) and report each one's range; every round starts from the config, so allocation and
first-touch page faults are in the time, as they are for a user.
"""

import shutil
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from conftest import rounds_against_dd, summary_against_dd, timed_run  # noqa: E402

import fastinit.transformers as fit  # noqa: E402

CONFIGS = Path(__file__).parent / "configs"
TINY = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1536,
        "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
        "architectures": ["LlamaForCausalLM"]}
MODELS = [pytest.param(TINY, id="tiny"),
          pytest.param(str(CONFIGS / "llama-3.2-1b.json"), id="llama-3.2-1b", marks=pytest.mark.huge)]


def _seconds(call) -> float:
    t0 = time.perf_counter()
    model = call()
    seconds = time.perf_counter() - t0
    del model
    return seconds


@pytest.mark.parametrize("source", MODELS)
def test_config_to_initialized_model(benchmark, source):
    config = fit.load_config(source)
    model_class = getattr(transformers, config.architectures[0])
    transformers.logging.set_verbosity_error()

    def hf():
        torch.manual_seed(0)
        return model_class._from_config(config, dtype=torch.bfloat16)  # its own init, on CPU

    def ours():
        return fit.init_model(fit.build_model(config, "bfloat16"), seed=0)

    ours()  # the kernels loaded once, as after the first call in a session
    times: dict[str, list[float]] = {"transformers": [], "fastinit": []}
    for _ in range(3):
        times["transformers"].append(_seconds(hf))
        times["fastinit"].append(_seconds(ours))
    ratios = sorted(h / f for h, f in zip(times["transformers"], times["fastinit"]))
    parameters = sum(p.numel() for p in ours().parameters())
    benchmark.group = f"config to initialized model ({config.architectures[0]}, bfloat16)"
    benchmark.extra_info.update(parameters=parameters, **{f"{k}_s": v for k, v in times.items()}, ratios=ratios)
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\n{parameters / 1e9:.3f} G parameters: transformers from_config "
          f"{min(times['transformers']):.2f}-{max(times['transformers']):.2f} s, fastinit init_model "
          f"{min(times['fastinit']):.2f}-{max(times['fastinit']):.2f} s; {ratios[0]:.1f}-{ratios[-1]:.1f}x")


@pytest.mark.huge
def test_generate_hf_8b_against_dd(benchmark, tmp_path):
    """Rounds of ``dd`` then ``generate --hf`` of the same size on the same disk (a virtual disk's
    speed varies from minute to minute: each ratio is of a pair run back to back)."""
    config = CONFIGS / "llama-3.1-8b.json"
    out = tmp_path / "llama-3.1-8b"
    generate = [sys.executable, "-m", "fastinit", "generate", "--hf", str(config), "--out", str(out), "--quiet"]
    timed_run(generate)  # the size, from a first write
    nbytes = sum(f.stat().st_size for f in out.iterdir() if f.suffix == ".safetensors")
    shutil.rmtree(out)
    rounds = rounds_against_dd(tmp_path, generate, out, nbytes)
    benchmark.group = "generate --hf Llama-3.1-8B vs dd"
    benchmark.extra_info.update(rounds=rounds)
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\ngenerate --hf {summary_against_dd(rounds)}")
