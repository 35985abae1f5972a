"""Trainer recipes: each rule against the trainer's formula (computed here), the draws' statistics on
a module with the trainer's parameter names, precedence, specs, and every bad input. The
comparison with the trainers' own code is in test_recipes_trainers.py (-m slow)."""

import math

import numpy as np
import pytest
from scipy import stats

from fastinit.recipes import RECIPES, recipe_schemes
from fastinit.spec import load_spec

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from trainer_models import TorchtitanLike  # noqa: E402

import fastinit.torch as fit  # noqa: E402


def _torchtitan_shapes(layers=4, dim=64, hidden=192, vocab=128, fused=False, head="output"):
    shapes = {"tok_embeddings.weight": (vocab, dim), "norm.weight": (dim,), f"{head}.weight": (vocab, dim)}
    for i in range(layers):
        p = f"layers.{i}."
        if fused:
            shapes[p + "attention.qkv_linear.wqkv.weight"] = (2 * dim, dim)
        else:
            shapes.update({p + "attention.wq.weight": (dim, dim), p + "attention.wk.weight": (dim // 2, dim),
                           p + "attention.wv.weight": (dim // 2, dim)})
        shapes.update({p + "attention.wo.weight": (dim, dim), p + "feed_forward.w1.weight": (hidden, dim),
                       p + "feed_forward.w2.weight": (dim, hidden), p + "feed_forward.w3.weight": (hidden, dim),
                       p + "attention_norm.weight": (dim,), p + "ffn_norm.weight": (dim,)})
    return shapes


def _tn(std, a, b):
    return ("trunc_normal", {"std": pytest.approx(std, rel=1e-12), "a": pytest.approx(a), "b": pytest.approx(b)})


@pytest.mark.parametrize("depth_init", [True, False])
@pytest.mark.parametrize("fused", [False, True])
def test_torchtitan_llama3_rules(depth_init, fused):
    shapes = _torchtitan_shapes(fused=fused)
    got = recipe_schemes("torchtitan-llama3", shapes, depth_init=depth_init)
    assert got["tok_embeddings.weight"] == ("normal", {"std": 1.0})
    assert got["norm.weight"] == ("ones", {})
    assert got["output.weight"] == _tn(64 ** -0.5, -3 * 64 ** -0.5, 3 * 64 ** -0.5)
    for i in range(4):
        std = 0.02 / math.sqrt(2 * (i + 1)) if depth_init else 0.02 / math.sqrt(2 * 4)
        for name in ("attention.wo", "feed_forward.w2", "feed_forward.w3"):
            assert got[f"layers.{i}.{name}.weight"] == _tn(std, -2, 2)
        assert got[f"layers.{i}.feed_forward.w1.weight"] == _tn(0.02, -2, 2)
        for name in (["attention.qkv_linear.wqkv"] if fused else ["attention.wq", "attention.wk", "attention.wv"]):
            assert got[f"layers.{i}.{name}.weight"] == _tn(0.02, -2, 2)
        assert got[f"layers.{i}.ffn_norm.weight"] == ("ones", {})


def test_torchtitan_newer_names_and_wrapper_prefixes():
    shapes = {"_orig_mod.module." + k: v for k, v in _torchtitan_shapes(head="lm_head", fused=True).items()}
    got = recipe_schemes("torchtitan-llama3", shapes)
    assert got["_orig_mod.module.lm_head.weight"] == _tn(0.125, -0.375, 0.375)
    assert got["_orig_mod.module.layers.3.attention.wo.weight"] == _tn(0.02 / math.sqrt(8), -2, 2)


def test_megatron_rules():
    shapes = {"embedding.word_embeddings.weight": (128, 64), "embedding.position_embeddings.weight": (32, 64),
              "decoder.final_layernorm.weight": (64,), "decoder.final_layernorm.bias": (64,),
              "output_layer.weight": (128, 64)}
    for i in range(3):
        p = f"decoder.layers.{i}."
        shapes.update({p + "self_attention.linear_qkv.weight": (192, 64), p + "self_attention.linear_qkv.bias": (192,),
                       p + "self_attention.linear_qkv.layer_norm_weight": (64,),
                       p + "self_attention.linear_qkv.layer_norm_bias": (64,),
                       p + "self_attention.linear_proj.weight": (64, 64), p + "mlp.linear_fc1.weight": (256, 64),
                       p + "mlp.linear_fc2.weight": (64, 256), p + "input_layernorm.weight": (64,),
                       p + "mlp.router.weight": (4, 64), p + "mlp.experts.linear_fc1.weight0": (256, 64),
                       p + "mlp.experts.linear_fc2.weight0": (64, 256),
                       p + "mlp.experts.local_experts.1.linear_fc2.weight": (64, 256)})
    got = recipe_schemes("megatron", shapes, init_method_std=0.01, embedding_init_method_std=0.5)
    scaled = ("normal", {"std": pytest.approx(0.01 / math.sqrt(2 * 3))})
    for name, scheme in got.items():
        if name.endswith(("linear_proj.weight", "linear_fc2.weight", "linear_fc2.weight0")):
            assert scheme == scaled, name
        elif "embeddings" in name:
            assert scheme == ("normal", {"std": 0.5}), name
        elif "norm" in name and "weight" in name:
            assert scheme == ("ones", {}), name
        elif "bias" in name:
            assert scheme == ("zeros", {}), name
        else:
            assert scheme == ("normal", {"std": 0.01}), name
    gamma = recipe_schemes("megatron", shapes, zero_centered_gamma=True, multiplier=1.0)
    assert gamma["decoder.layers.0.input_layernorm.weight"] == ("zeros", {})
    proj = gamma["decoder.layers.0.self_attention.linear_proj.weight"]
    assert proj == ("normal", {"std": pytest.approx(0.02 / 3 ** .5)})


def _olmo_shapes(layers=2, d=64, hidden=128):
    shapes = {"embeddings.weight": (256, d), "lm_head.norm.weight": (d,), "lm_head.w_out.weight": (256, d)}
    for b in range(layers):
        p = f"blocks.{b}."
        shapes.update({p + "attention.w_q.weight": (d, d), p + "attention.w_k.weight": (d, d),
                       p + "attention.w_v.weight": (d, d), p + "attention.w_out.weight": (d, d),
                       p + "attention.q_norm.weight": (d,), p + "attention_norm.weight": (d,),
                       p + "feed_forward.w1.weight": (hidden, d), p + "feed_forward.w2.weight": (d, hidden),
                       p + "feed_forward.w3.weight": (hidden, d), p + "feed_forward_norm.weight": (d,)})
    return shapes


def _tn3(std):
    return _tn(std, -3 * std, 3 * std)


@pytest.mark.parametrize("method", ["normal", "llama", "llama_depth", "normalized", "fan_in"])
def test_olmo_core_rules(method):
    d, hidden, layers, s = 64, 128, 2, 0.02
    got = recipe_schemes("olmo-core", _olmo_shapes(), init_method=method, embed_scale=4.0)
    for b in range(layers):
        depth = {"llama": math.sqrt(2 * layers), "llama_depth": math.sqrt(2 * (b + 1))}.get(method)
        inner = {"normalized": d ** -0.5, "fan_in": d ** -0.5}.get(method, s)
        out = {"normal": s, "normalized": d ** -0.5 / math.sqrt(2 * layers), "fan_in": d ** -0.5}.get(method)
        out = s / depth if depth else out
        w2 = hidden ** -0.5 if method == "fan_in" else out
        w3 = inner if method in ("normalized", "fan_in") else out
        p = f"blocks.{b}."
        assert got[p + "attention.w_q.weight"] == _tn3(inner)
        assert got[p + "attention.w_out.weight"] == _tn3(out)
        assert got[p + "feed_forward.w1.weight"] == _tn3(inner)
        assert got[p + "feed_forward.w2.weight"] == _tn3(w2)
        assert got[p + "feed_forward.w3.weight"] == _tn3(w3)
        assert got[p + "attention.q_norm.weight"] == ("ones", {})
    embedding = {"normal": _tn3(s), "normalized": ("normal", {"std": d ** -0.5}), "fan_in": ("normal", {"std": 0.25})}
    assert got["embeddings.weight"] == embedding.get(method, ("normal", {"std": 1.0}))
    assert got["lm_head.w_out.weight"] == _tn3(s if method == "normal" else d ** -0.5)


@pytest.mark.parametrize(("init", "output", "std_in", "std_out"), [
    ("small_init", "wang_init", math.sqrt(2 / (5 * 64)), 2 / (3 * 8)),
    ("normal", "scaled_normal", 0.02, 0.02 / math.sqrt(6)),
    ("normal", "single_residual_scaled_normal", 0.02, 0.02 / math.sqrt(3)),
])
def test_gpt_neox_rules_on_the_transformers_model(init, output, std_in, std_out):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPTNeoXConfig(vocab_size=128, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                        intermediate_size=256)
    with torch.device("meta"):
        model = transformers.GPTNeoXForCausalLM(config)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    got = recipe_schemes("gpt-neox", shapes, init_method=init, output_layer_init_method=output)
    for name, scheme in got.items():
        if name.endswith(("attention.dense.weight", "dense_4h_to_h.weight")):
            assert scheme == ("normal", {"std": pytest.approx(std_out)}), name
        elif name.endswith("bias"):
            assert scheme == ("zeros", {}), name
        elif "norm" in name:
            assert scheme == ("ones", {}), name
        else:
            assert scheme == ("normal", {"std": pytest.approx(std_in)}), name
    assert recipe_schemes("gpt-neox", shapes, init_method="xavier_uniform")["lm_head.weight"] == ("xavier_uniform", {})


def test_torchtitan_draws_follow_the_formula():
    model = fit.init_module(TorchtitanLike(), seed=0, recipe="torchtitan-llama3")
    head = model.output.weight.detach().numpy().ravel()
    s = 256 ** -0.5
    assert head.min() >= -3 * s and head.max() <= 3 * s
    assert stats.kstest(head, stats.truncnorm(-3, 3, scale=s).cdf).pvalue > 1e-3
    for i in range(3):
        wo = model.layers[str(i)].feed_forward.w3.weight.detach().numpy().ravel()
        assert stats.kstest(wo, stats.norm(scale=0.02 / math.sqrt(2 * (i + 1))).cdf).pvalue > 1e-3
    embedding = model.tok_embeddings.weight.detach().numpy().ravel()
    assert stats.kstest(embedding, stats.norm().cdf).pvalue > 1e-3
    assert torch.equal(model.layers["1"].ffn_norm.weight, torch.ones(256))


def test_recipe_values_are_the_spec_values_and_keyed_by_name(tmp_path):
    from safetensors.numpy import load_file

    import fastinit.checkpoint as ckpt

    model = fit.init_module(TorchtitanLike(dim=32, hidden=64, vocab=64), seed=5, recipe="torchtitan-llama3")
    spec = fit.spec_from_module(TorchtitanLike(dim=32, hidden=64, vocab=64).to("meta"), recipe="torchtitan-llama3")
    as_file = load_spec({"recipe": {"name": "torchtitan-llama3"},
                         "tensors": {t.name: {"shape": list(t.shape), "dtype": t.dtype} for t in spec.tensors}})
    assert as_file == spec
    ckpt.generate(spec, tmp_path / "x.safetensors", seed=5)
    stored = load_file(tmp_path / "x.safetensors")
    for name, p in model.named_parameters():
        assert np.array_equal(stored[name], p.detach().numpy()), name


def test_tied_output_is_keyed_and_drawn_by_its_kept_name():
    model = fit.init_module(TorchtitanLike(dim=32, hidden=64, vocab=64, tied=True), recipe="torchtitan-llama3")
    spec = fit.spec_from_module(model, recipe="torchtitan-llama3")
    head = next(t for t in spec.tensors if "output" in t.name or "embeddings" in t.name)
    assert head.name == "output.weight" and head.init == "trunc_normal"
    assert model.output.weight is model.tok_embeddings.weight


def test_schemes_take_precedence_over_the_recipe():
    model = fit.init_module(TorchtitanLike(dim=32, hidden=64, vocab=64), recipe="torchtitan-llama3",
                            schemes={"tok_embeddings.weight": "zeros",
                                     nn.RMSNorm: {"weight": ("constant", {"val": 2.0})}})
    assert not model.tok_embeddings.weight.any()
    assert torch.equal(model.norm.weight, torch.full((32,), 2.0))


def test_materialize_with_a_recipe_equals_init_module():
    with torch.device("meta"):
        meta = TorchtitanLike(dim=32, hidden=64, vocab=64)
    fit.materialize(meta, seed=3, recipe="torchtitan-llama3", depth_init=False)
    eager = fit.init_module(TorchtitanLike(dim=32, hidden=64, vocab=64), seed=3, recipe="torchtitan-llama3",
                            depth_init=False)
    for (name, a), (_, b) in zip(meta.named_parameters(), eager.named_parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(("call", "error", "text"), [
    (lambda: recipe_schemes("titan", {}), ValueError, "recipe must be one of 'torchtitan-llama3'"),
    (lambda: recipe_schemes("megatron", {}, bogus=1), TypeError, "takes the options init_method_std"),
    (lambda: recipe_schemes("megatron", {"decoder.layers.0.mlp.linear_fc2.weight": (2, 2)}, init_method_std=-1),
     ValueError, "init_method_std must be > 0"),
    (lambda: recipe_schemes("megatron", {"decoder.layers.0.mlp.linear_fc2.weight": (2, 2)}, init_method_std="x"),
     TypeError, "init_method_std must be a real number"),
    (lambda: recipe_schemes("olmo-core", {}, init_method="xavier"), ValueError, "init_method must be one of"),
    (lambda: recipe_schemes("gpt-neox", {}, output_layer_init_method="orthogonal"), ValueError,
     "output_layer_init_method must be one of"),
    (lambda: recipe_schemes("torchtitan-llama3", {"layers.0.attention.wo.weight": (2, 2)}, depth_init=1),
     TypeError, "depth_init must be True or False"),
    (lambda: recipe_schemes("torchtitan-llama3", {"layers.0.attention.wo.weight": (2, 2)}, depth_init=False,
                            n_layers=0), ValueError, "n_layers must be a positive int"),
    (lambda: recipe_schemes("torchtitan-llama3", {"output.weight": (4,)}), ValueError,
     "no tok_embeddings"),
    (lambda: recipe_schemes("megatron", {"decoder.final_layernorm.weight": (4,), "x.mlp.linear_fc2.weight": (2, 2)}),
     ValueError, "has no rule for 1 parameter(s): x.mlp.linear_fc2.weight"),
    (lambda: recipe_schemes("gpt-neox", {"attention.dense.weight": (2, 2)}), ValueError,
     "no parameter name has a layer index (layers.{i}.*)"),
    (lambda: recipe_schemes("olmo-core", {"blocks.0.feed_forward_moe.router.weight": (4,)}, init_method="fan_in"),
     ValueError, "fan_in"),
    (lambda: fit.init_module(nn.Linear(2, 2), recipe="megatron"), ValueError,
     "has no rule for 2 parameter(s): weight, bias"),
    (lambda: fit.init_module(nn.Linear(2, 2), depth_init=True), TypeError, "recipe options need recipe="),
    (lambda: load_spec({"recipe": "megatron", "tensors": {}}), ValueError, 'recipe must be {"name"'),
    (lambda: load_spec({"recipe": {"name": "megatron"}, "tensors": {"w": {"shape": [2], "dtype": "float32"}}}),
     ValueError, "spec recipe: recipe 'megatron' has no rule for 1 parameter(s): w"),
    (lambda: load_spec({"tensors": {"w": {"shape": [2], "dtype": "float32"}}}), ValueError, "missing field(s) 'init'"),
])
def test_bad_input(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_every_recipe_is_documented():
    import fastinit.recipes

    for name in RECIPES:
        assert f'``"{name}"``' in fastinit.recipes.__doc__
