"""diagnose(module, inputs) on torch modules, and diagnose_config on transformers models built by
fastinit.transformers: statistics by forward hooks against the same quantities computed by hand."""

import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastinit as fi  # noqa: E402
import fastinit.diagnostics as fd  # noqa: E402
import fastinit.torch as fit  # noqa: E402


def mlp(width=128, depth=3):
    layers = []
    for _ in range(depth):
        layers += [torch.nn.Linear(width, width), torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers)
    return fit.init_module(net, schemes={"*.weight": "xavier_normal", "*.bias": ("normal", {"std": 0.1})}, seed=3)


def inputs(width=128, batch=32):
    return torch.from_numpy(fi.normal_(np.empty((batch, width), np.float32), seed=0, name="x"))


def test_sequential_forward_and_gradient_stats_match_a_hand_computation():
    net, x = mlp(), inputs()
    net.train()
    d = fd.diagnose(net, x)
    assert [m.name for m in d.modules] == [str(i) for i in range(6)]
    assert [m.kind for m in d.modules] == ["Linear", "Tanh"] * 3
    # by hand: the same forward, then the gradient of sum(y * r) by autograd
    x = x.clone().requires_grad_(False)
    outs, h = [], x
    for layer in net:
        h = layer(h)
        h.retain_grad()
        outs.append(h)
    r = torch.from_numpy(fi.normal_(np.empty(tuple(h.shape), np.float32), seed=0, name="output_grad"))
    (h * r).sum().backward()
    for m, out in zip(d.modules, outs):
        assert m.shape == tuple(out.shape)
        assert m.std == pytest.approx(float(out.detach().double().std(correction=0)), rel=1e-6)
        assert m.mean == pytest.approx(float(out.detach().double().mean()), abs=1e-7)
        assert m.grad_std == pytest.approx(float(out.grad.double().std(correction=0)), rel=1e-5)
    assert net.training  # the mode it had


def test_no_side_effects_and_no_gradients_on_request():
    net, x = mlp(), inputs()
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    d = fd.diagnose(net, x, gradients=False)
    assert all(math.isnan(m.grad_std) for m in d.modules)
    assert net.training and all(m.training for m in net.modules())  # modes restored
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    fd.diagnose(net, x)
    assert all(p.grad is None for p in net.parameters())  # autograd.grad, not backward()
    assert not net[0]._forward_hooks  # hooks removed


def test_shared_modules_leaves_and_inputs_forms():
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())

        def forward(self, a, scale=1.0):
            return self.block(self.block(a) * scale)

    net = fit.init_module(Twice(), seed=0)
    a = inputs(8, 4)
    names = [m.name for m in fd.diagnose(net, (a,)).modules]
    assert names == ["block.0", "block.1", "block", "block.0#2", "block.1#2", "block#2"]
    leaves = [m.name for m in fd.diagnose(net, {"a": a, "scale": 2.0}, leaves_only=True).modules]
    assert leaves == ["block.0", "block.1", "block.0#2", "block.1#2"]


def test_tanh_mlp_matches_the_infinite_width_theory():
    width = 1024
    net = fit.init_module(torch.nn.Sequential(*[m for _ in range(4) for m in (torch.nn.Linear(width, width, bias=False),
                                                                            torch.nn.Tanh())]),
                          schemes={"*.weight": "xavier_normal"}, seed=0)
    d = fd.diagnose(net, inputs(width, 64), gradients=False)
    theory = fd.propagate([width] * 5, "tanh", "xavier_normal", batch=64)
    np.testing.assert_allclose([m.std for m in d.modules[::2]], theory.theory_forward_std, rtol=0.1)


def test_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    d = fd.diagnose(mlp(), inputs())
    lines = d.table().splitlines()
    assert lines[0].split() == ["#", "module", "type", "shape", "mean", "std", "grad", "std"] and len(lines) == 7
    path = tmp_path / "net.png"
    d.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        d.plot(path)
    assert os.listdir(tmp_path) == ["net.png"]


@pytest.mark.parametrize("call, error, match", [
    (lambda: fd.diagnose("net", None), TypeError, "torch.nn.Module"),
    (lambda: fd.diagnose(torch.nn.Linear(2, 2), torch.zeros(1, 2), gradients=1), TypeError, "gradients"),
    (lambda: fd.diagnose(torch.nn.Linear(2, 2), torch.zeros(1, 2), seed=-1), ValueError, "seed"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------- transformers
@pytest.fixture(scope="module")
def configs():
    pytest.importorskip("transformers")
    from hf_models import CONFIGS

    return CONFIGS


def test_diagnose_a_transformers_model_built_by_fastinit(configs):
    import fastinit.transformers as hf

    model = hf.init_model(hf.build_model(hf.load_config(configs["llama"])), seed=0)
    ids = torch.arange(4, 20).reshape(2, 8)
    d = fd.diagnose(model, {"input_ids": ids})
    by_name = {m.name: m for m in d.modules}
    # the embedding's std is the model's own initializer_range (0.02), read back from the weights
    assert by_name["model.embed_tokens"].std == pytest.approx(
        float(model.model.embed_tokens.weight.detach()[ids].double().std(correction=0)), rel=1e-6)
    assert by_name["model.norm"].std == pytest.approx(1.0, rel=0.05)  # RMSNorm with unit weights
    assert by_name["lm_head"].shape == (2, 8, 128) and not math.isnan(by_name["lm_head"].grad_std)
    assert [m.name for m in d.modules].index("model.layers.0") < [m.name for m in d.modules].index("model.layers.1")


def test_diagnose_config_table_and_plot(configs, tmp_path):
    plot = tmp_path / "llama.png"
    text = fd.diagnose_config(configs["llama"], seed=0, batch=2, seq_len=8, plot_path=plot)
    assert text.splitlines()[0].startswith("llama (LlamaForCausalLM,") and "model.layers.1.mlp.down_proj" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fd.diagnose_config(configs["llama"], seed=0, batch=2, seq_len=8) == text  # reproducible
    t5 = fd.diagnose_config(configs["t5"], batch=1, seq_len=4, gradients=False)
    assert "decoder" in t5


def test_diagnose_config_path_and_bad_input(configs, tmp_path):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps(configs["gpt2"]))
    assert "transformer.h.0.attn" in fd.diagnose_config(path, batch=1, seq_len=4)
    with pytest.raises(ValueError, match="vocab_size"):
        fd.diagnose_config(configs["vit"])
    with pytest.raises(ValueError, match="batch"):
        fd.diagnose_config(configs["llama"], batch=0)
    with pytest.raises(ValueError, match="cannot read the config"):
        fd.diagnose_config(tmp_path / "missing.json")


def test_cli_diagnose_hf(tmp_path, capsys):
    pytest.importorskip("transformers")
    import json

    from hf_models import CONFIGS

    from fastinit.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIGS["llama"]))
    plot = tmp_path / "llama.png"
    assert main(["diagnose", "--hf", str(config), "--batch", "2", "--seq-len", "8", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("llama (LlamaForCausalLM,") and "model.layers.1.mlp.down_proj" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["diagnose", "--hf", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the config" in capsys.readouterr().err
    assert main(["diagnose", "--hf", str(config), "--widths", "4,4"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["diagnose", "--activation", "relu"]) == 2
    err = capsys.readouterr().err
    assert "--widths, --init required" in err and len(err.splitlines()) == 1
