"""Each recipe against the trainer's own code: torchtitan 0.3.0 (Llama 3), megatron-core 0.16.1 and
OLMo-core 3.0.0 build a small model and initialize it with their own code in a venv of their own
(downloaded once: run with ``-m slow``); fastinit's recipe on the same parameter names and shapes
must cover every parameter and draw from the same distribution (two-sample KS per tensor, the same
truncation bounds, exact ones and zeros)."""

import json
import subprocess

import numpy as np
import pytest
from conftest import free_port, make_venv
from scipy import stats

from fastinit.recipes import recipe_schemes
from fastinit.spec import TensorSpec

pytestmark = pytest.mark.slow
PACKAGES = ["torch==2.13.0", "torchtitan==0.3.0", "ai2-olmo-core==3.0.0", "numpy"]

# torchtitan's model package imports GPU kernel modules that need triton; torch's own
# triton-sensitive modules are imported first, then an import-only stand-in (no kernel runs on CPU)
TRITON_STAND_IN = r'''
import sys, types, torch, torch._dynamo, torch._inductor, torch.distributed.pipelining
import torch._functorch.partitioners, torch._inductor.codecache, torch._inductor.runtime.triton_compat
import torch._inductor.compile_fx

class _Anything:
    def __init__(self, *args, **kwargs): pass
    def __call__(self, *args, **kwargs):
        return args[0] if len(args) == 1 and callable(args[0]) and not kwargs else _Anything()
    def __getattr__(self, name): return _Anything()
    def __getitem__(self, key): return _Anything()

def _module(name):
    module = types.ModuleType(name)
    def attribute(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Anything()
    module.__getattr__ = attribute
    module.__file__ = "<triton stand-in>"
    module.jit = lambda *a, **k: a[0] if len(a) == 1 and callable(a[0]) and not k else (lambda f: f)
    module.autotune = module.heuristics = lambda *a, **k: (lambda f: f)
    module.Config = module.constexpr = _Anything
    module.__version__ = "0.0.0"
    return module

sys.modules["triton"] = _module("triton")
sys.modules["triton.language"] = sys.modules["triton"].language = _module("triton.language")
'''

PROBE = r'''
import json, os, sys
import numpy as np, torch
which, options, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
if which == "torchtitan":
    exec(sys.argv[4])
    from torchtitan.models.common import ComplexRoPE, compute_ffn_hidden_dim, Embedding, Linear, RMSNorm
    from torchtitan.models.llama3 import Llama3Model
    from torchtitan.models.llama3 import _build_llama3_layers, _EMBEDDING_INIT, _NORM_INIT, _output_linear_init
    dim, vocab = 256, 512
    config = Llama3Model.Config(
        dim=dim, vocab_size=vocab,
        tok_embeddings=Embedding.Config(num_embeddings=vocab, embedding_dim=dim, param_init=_EMBEDDING_INIT),
        norm=RMSNorm.Config(normalized_shape=dim, param_init=_NORM_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab, param_init=_output_linear_init(dim)),
        layers=_build_llama3_layers(n_layers=4, dim=dim, n_heads=8, n_kv_heads=4,
                                    hidden_dim=compute_ffn_hidden_dim(dim, multiple_of=64),
                                    fuse_qkv=options["fuse_qkv"], attn_backend="flex",
                                    rope=ComplexRoPE.Config(dim=32, max_seq_len=64, theta=500000, scaling="llama")))
    with torch.device("meta"):
        model = config.build()
    model.to_empty(device="cpu")
    model.init_states(buffer_device=torch.device("cpu"))
elif which == "olmo-core":
    from olmo_core.nn.transformer import InitMethod, TransformerConfig
    method = InitMethod(options["init_method"])
    if options.get("moe"):
        config = TransformerConfig.llama_like_moe(d_model=256, vocab_size=512, n_layers=4, n_heads=8, num_experts=4,
                                                  top_k=2, expert_hidden_size=128, shared_expert_hidden_size=192,
                                                  init_method=method)
    else:
        config = TransformerConfig.llama_like(d_model=256, vocab_size=512, n_layers=4, n_heads=8, n_kv_heads=4,
                                              hidden_size_multiple_of=64, init_method=method)
    model = config.build(init_device="meta")
    model.init_weights(device=torch.device("cpu"), max_seq_len=64)
elif which == "megatron":
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=options.pop("port"), RANK="0", WORLD_SIZE="1")
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    from megatron.core import parallel_state
    parallel_state.initialize_model_parallel(1, 1)
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig
    config = TransformerConfig(num_layers=4, hidden_size=256, num_attention_heads=8, num_query_groups=4,
                               ffn_hidden_size=512, use_cpu_initialization=True, **options)
    model = GPTModel(config, get_gpt_layer_local_spec(), vocab_size=512, max_sequence_length=64,
                     share_embeddings_and_output_weights=False)
np.savez(out, **{name: p.detach().float().numpy() for name, p in model.named_parameters()})
'''

CASES = [
    ("torchtitan", {"fuse_qkv": True}, "torchtitan-llama3", {}),
    ("torchtitan", {"fuse_qkv": False}, "torchtitan-llama3", {}),
    *[("olmo-core", {"init_method": m}, "olmo-core", {"init_method": m})
      for m in ("normal", "llama", "llama_depth", "normalized", "fan_in")],
    *[("olmo-core", {"init_method": m, "moe": True}, "olmo-core", {"init_method": m})
      for m in ("normal", "llama", "llama_depth")],
    ("megatron", {}, "megatron", {}),
    ("megatron", {"init_method_std": 0.01, "normalization": "RMSNorm", "gated_linear_unit": True,
                  "add_bias_linear": False}, "megatron", {"init_method_std": 0.01}),
]


@pytest.fixture(scope="module")
def trainer_python(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("trainers"), PACKAGES, ["--no-deps", "megatron-core==0.16.1"])


@pytest.mark.parametrize(("trainer", "trainer_options", "recipe", "options"), CASES,
                         ids=[f"{c[0]}-{json.dumps(c[1], sort_keys=True)}" for c in CASES])
def test_recipe_draws_as_the_trainer(trainer_python, tmp_path, trainer, trainer_options, recipe, options):
    out = tmp_path / "trainer.npz"
    trainer_options = dict(trainer_options, **({"port": str(free_port())} if trainer == "megatron" else {}))
    subprocess.run([trainer_python, "-c", PROBE, trainer, json.dumps(trainer_options), str(out), TRITON_STAND_IN],
                   check=True, timeout=600)
    theirs = dict(np.load(out))
    schemes = recipe_schemes(recipe, {name: value.shape for name, value in theirs.items()}, **options)
    assert set(schemes) == set(theirs)
    for name, value in theirs.items():
        init, params = schemes[name]
        ours = TensorSpec(name, value.shape, "float32", init, params).fill(np.empty(value.shape, np.float32), seed=0)
        if init in ("ones", "zeros"):
            assert np.array_equal(value, ours), name
            continue
        if init == "trunc_normal":
            assert params["a"] <= value.min() and value.max() <= params["b"], name
        assert stats.ks_2samp(value.ravel(), ours.ravel()).pvalue > 1e-4, (name, init, params, value.std())

