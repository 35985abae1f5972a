"""fastinit.torch: drop-in fills equal the NumPy fills bit for bit; modules; meta; specs; errors."""

import math

import numpy as np
import pytest
from conftest import BF16, FLOAT_DTYPES, assert_bits_equal

torch = pytest.importorskip("torch")
import fastinit as fi  # noqa: E402
import fastinit.torch as fit  # noqa: E402
from fastinit import checkpoint  # noqa: E402

nn = torch.nn
TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
               np.dtype(np.float16): torch.float16, BF16: torch.bfloat16}


def as_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(BF16)
    return t.numpy()


# (fastinit.torch call, equivalent NumPy fastinit call) on a (24, 10, 3) tensor
FILLS = {
    "uniform": (lambda t: fit.uniform_(t, -2.0, 3.0, seed=5, name="w"),
                lambda a: fi.uniform_(a, -2.0, 3.0, seed=5, name="w")),
    "normal": (lambda t: fit.normal_(t, 0.5, 2.0, seed=5, name="w"),
               lambda a: fi.normal_(a, 0.5, 2.0, seed=5, name="w")),
    "trunc_normal": (lambda t: fit.trunc_normal_(t, 0.0, 0.02, -0.04, 0.04, seed=5, name="w"),
                     lambda a: fi.trunc_normal_(a, 0.0, 0.02, -0.04, 0.04, seed=5, name="w")),
    "xavier_uniform": (lambda t: fit.xavier_uniform_(t, 2.0, seed=5), lambda a: fi.xavier_uniform_(a, 2.0, seed=5)),
    "xavier_normal": (lambda t: fit.xavier_normal_(t, seed=5), lambda a: fi.xavier_normal_(a, seed=5)),
    "kaiming_uniform": (lambda t: fit.kaiming_uniform_(t, a=math.sqrt(5), seed=5),
                        lambda a: fi.kaiming_uniform_(a, a=math.sqrt(5), seed=5)),
    "kaiming_normal": (lambda t: fit.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", seed=5),
                       lambda a: fi.kaiming_normal_(a, mode="fan_out", nonlinearity="relu", seed=5)),
    "orthogonal": (lambda t: fit.orthogonal_(t, 1.5, seed=5), lambda a: fi.orthogonal_(a, 1.5, seed=5)),
    "constant": (lambda t: fit.constant_(t, 0.25), lambda a: fi.constant_(a, 0.25)),
    "dirac": (lambda t: fit.dirac_(t, 2), lambda a: fi.dirac_(a, 2)),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("fill", FILLS)
def test_fills_equal_numpy(fill, dtype):
    ours, reference = FILLS[fill]
    t = torch.empty(24, 10, 3, dtype=TORCH_DTYPE[dtype])
    assert ours(t) is t
    assert_bits_equal(as_numpy(t), reference(np.empty((24, 10, 3), dtype)))


def test_sparse_eye_and_2d_fills():
    t = fit.sparse_(torch.empty(30, 20), 0.3, seed=1, name="s")
    assert_bits_equal(t.numpy(), fi.sparse_(np.empty((30, 20), np.float32), 0.3, seed=1, name="s"))
    assert torch.equal(fit.eye_(torch.empty(3, 5)), torch.eye(3, 5))


@pytest.mark.parametrize("make", [lambda: torch.empty(10, 24).t(), lambda: torch.empty(24, 20)[:, ::2],
                                  lambda: torch.empty(6, 24, 10)[2]], ids=["transposed", "strided", "offset-view"])
def test_non_contiguous_tensors_filled_by_logical_index(make):
    t = make()
    assert t.shape == (24, 10)
    fit.normal_(t, seed=3, name="w")
    assert_bits_equal(as_numpy(t), fi.normal_(np.empty((24, 10), np.float32), seed=3, name="w"))


def test_parameter_fill_records_no_autograd_but_bumps_version():
    w = nn.Parameter(torch.empty(8, 4))
    version = w._version
    fit.kaiming_normal_(w, seed=0, name="w")
    assert w.grad_fn is None and w.requires_grad and w.is_leaf
    assert w._version > version
    assert_bits_equal(as_numpy(w), fi.kaiming_normal_(np.empty((8, 4), np.float32), seed=0, name="w"))


def test_plain_tensor_box_of_a_larger_tensor():
    full = fi.normal_(np.empty((12, 9), np.float32), seed=2, name="w")
    shard = fit.normal_(torch.empty(4, 5), seed=2, name="w", global_shape=(12, 9), offset=(4, 3))
    assert_bits_equal(shard.numpy(), full[4:8, 3:8])


def test_meta_tensors_are_left_alone_but_init_module_says_to_materialize():
    t = torch.empty(3, 3, device="meta")
    assert fit.normal_(t, seed=0) is t and t.is_meta  # as torch.nn.init: a no-op
    with pytest.raises(ValueError, match="meta device.*materialize"):
        fit.init_module(nn.Linear(3, 3, device="meta"), seed=0)


@pytest.mark.parametrize("tensor, error, match", [
    (lambda: torch.empty(3, 3, dtype=torch.int32), TypeError, "dtype must be one of"),
    (lambda: np.empty((3, 3), np.float32), TypeError, "must be a torch.Tensor"),
])
def test_bad_tensors(tensor, error, match):
    with pytest.raises(error, match=match):
        fit.normal_(tensor(), seed=0)


def test_cuda_tensor_error_says_what_to_do():
    # no GPU needed: a tensor on a device fastinit cannot fill is refused before any access
    t = torch.empty(2, 2)
    fake_device = torch.device("xpu", 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.Tensor, "device", property(lambda self: fake_device))
        with pytest.raises(ValueError, match=r"xpu:0.*fill a CPU tensor and move it"):
            fit.uniform_(t, seed=0)


def test_generator_and_bad_parameters():
    with pytest.raises(ValueError, match="torch generators.*seed="):
        fit.normal_(torch.empty(3), generator=torch.Generator())
    with pytest.raises(ValueError, match="std"):
        fit.normal_(torch.empty(3), std=-1.0, seed=0)
    with pytest.raises(ValueError, match="global_shape|offset"):
        fit.normal_(torch.empty(4, 5), seed=0, global_shape=(4, 4), offset=(0, 0))


def test_default_seed_gives_fresh_values():
    a, b = fit.normal_(torch.empty(100)), fit.normal_(torch.empty(100))
    assert not torch.equal(a, b)


# ----------------------------------------------------------------------------- modules
class Block(nn.Module):
    def __init__(self, reverse: bool = False):
        super().__init__()
        layers = [("fc", lambda: nn.Linear(16, 32)), ("norm", lambda: nn.LayerNorm(32)),
                  ("emb", lambda: nn.Embedding(50, 16, padding_idx=3)), ("conv", lambda: nn.Conv2d(4, 8, 3)),
                  ("attn", lambda: nn.MultiheadAttention(16, 4)), ("lstm", lambda: nn.LSTM(8, 12, 2)),
                  ("gru", lambda: nn.GRUCell(8, 6)), ("bn", lambda: nn.BatchNorm1d(8)),
                  ("rms", lambda: nn.RMSNorm(8)), ("tconv", lambda: nn.ConvTranspose1d(4, 6, 5)),
                  ("bil", lambda: nn.Bilinear(5, 7, 3)), ("prelu", lambda: nn.PReLU(4, init=0.1))]
        for name, make in (reversed(layers) if reverse else layers):
            self.add_module(name, make())


def state(module) -> dict:
    return {k: as_numpy(v).copy() for k, v in module.state_dict().items()}


def test_init_module_independent_of_construction_order_and_torch_rng():
    torch.manual_seed(0)
    a = fit.init_module(Block(), seed=11)
    torch.manual_seed(1)
    b = fit.init_module(Block(reverse=True), seed=11)
    sa, sb = state(a), state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert_bits_equal(sa[k], sb[k])
    c = state(fit.init_module(Block(), seed=12))
    assert not np.array_equal(c["fc.weight"], sa["fc.weight"])


def test_init_module_values_are_keyed_by_parameter_name():
    m = fit.init_module(Block(), seed=4)
    w = fi.kaiming_uniform_(np.empty((32, 16), np.float32), a=math.sqrt(5), seed=4, name="fc.weight")
    assert_bits_equal(as_numpy(m.fc.weight), w)
    b = fi.uniform_(np.empty(32, np.float32), -0.25, 0.25, seed=4, name="fc.bias")
    assert_bits_equal(as_numpy(m.fc.bias), b)


def test_init_module_follows_torch_defaults():
    m = fit.init_module(Block(), seed=0)
    reference = Block()  # torch's own initialization

    def bound(t):
        return float(t.detach().abs().max())

    for name in ("fc.weight", "fc.bias", "conv.weight", "conv.bias", "tconv.weight", "tconv.bias", "bil.weight",
                 "lstm.weight_hh_l1", "lstm.bias_ih_l0", "gru.weight_ih", "attn.in_proj_weight"):
        ours, theirs = m.get_parameter(name), reference.get_parameter(name)
        limit = {"fc.weight": 1 / 4, "fc.bias": 1 / 4, "conv.weight": 1 / 6, "conv.bias": 1 / 6,
                 "tconv.weight": 1 / math.sqrt(30), "tconv.bias": 1 / math.sqrt(30), "bil.weight": 1 / math.sqrt(5),
                 "lstm.weight_hh_l1": 1 / math.sqrt(12), "lstm.bias_ih_l0": 1 / math.sqrt(12),
                 "gru.weight_ih": 1 / math.sqrt(6), "attn.in_proj_weight": math.sqrt(6 / (16 + 48))}[name]
        assert bound(ours) <= limit * (1 + 1e-6) and bound(theirs) <= limit * (1 + 1e-6), name
        if ours.numel() >= 100:  # spread over the whole interval, as torch's
            assert bound(ours) > 0.9 * limit, name
    for name, fan_in in (("conv.bias", 36), ("tconv.bias", 30), ("bil.bias", 5)):  # bounds as torch computes them
        bound_ = 1 / math.sqrt(fan_in)
        expected = fi.uniform_(np.empty(m.get_parameter(name).shape, np.float32), -bound_, bound_, seed=0, name=name)
        assert_bits_equal(as_numpy(m.get_parameter(name)), expected)
    assert torch.all(m.norm.weight == 1) and torch.all(m.norm.bias == 0)
    assert torch.all(m.rms.weight == 1) and torch.all(m.bn.weight == 1) and torch.all(m.bn.bias == 0)
    assert torch.all(m.attn.in_proj_bias == 0) and torch.all(m.attn.out_proj.bias == 0)
    assert torch.all(m.prelu.weight == torch.tensor(0.1))
    assert torch.all(m.emb.weight[3] == 0) and 0.9 < float(m.emb.weight.detach().std()) < 1.1
    # out_proj keeps Linear's default (MultiheadAttention only zeroes its bias)
    assert bound(m.attn.out_proj.weight) <= 0.25


def test_transformer_overrides_its_layers_with_xavier():
    m = fit.init_module(nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True), seed=0)
    w = m.encoder.layers[0].linear1.weight
    expected = fi.xavier_uniform_(np.empty((32, 16), np.float32), seed=0, name="encoder.layers.0.linear1.weight")
    assert_bits_equal(as_numpy(w), expected)
    assert torch.all(m.encoder.layers[0].norm1.weight == 1)


def test_user_schemes_patterns_then_types():
    hf = {"*.bias": "zeros", nn.Linear: {"weight": ("normal", {"std": 0.02})}, nn.Embedding: ("normal", {"std": 0.5})}
    m = fit.init_module(Block(), seed=0, schemes=hf)
    assert torch.all(m.fc.bias == 0) and torch.all(m.conv.bias == 0)
    assert_bits_equal(as_numpy(m.fc.weight), fi.normal_(np.empty((32, 16), np.float32), std=0.02, seed=0,
                                                        name="fc.weight"))
    assert 0.45 < float(m.emb.weight.detach().std()) < 0.55 and not torch.all(m.emb.weight[3] == 0)


@pytest.mark.parametrize("schemes, error, match", [
    ({"*": "nrmal"}, ValueError, "unknown init 'nrmal'"),
    ({nn.Linear: {"weight": ("normal", {"sd": 1})}}, ValueError, "does not take"),
    ({3: "zeros"}, TypeError, "keys must be"),
    ({"*": ["normal"]}, TypeError, "scheme name or"),
    ("normal", TypeError, "mapping"),
    ({"*": ("sparse", {"sparsity": 0.1})}, ValueError, "fc.bias"),
])
def test_bad_schemes_change_nothing(schemes, error, match):
    m = nn.Sequential()
    m.add_module("fc", nn.Linear(3, 4))
    before = state(m)
    with pytest.raises(error, match=match):
        fit.init_module(m, schemes=schemes)
    for k, v in state(m).items():
        assert_bits_equal(v, before[k])


def test_unknown_module_parameter_needs_a_scheme():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(3))

    m = nn.Sequential(nn.Linear(3, 3), Scale())
    with pytest.raises(ValueError, match=r"1\.gamma belongs to a Scale.*schemes="):
        fit.init_module(m)
    fit.init_module(m, schemes={"*.gamma": "ones"})
    assert torch.all(m[1].gamma == 1)


def test_tied_parameter_keyed_by_smallest_name():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.z_head = nn.Linear(4, 10, bias=False)
            self.a_embed = nn.Embedding(10, 4)
            self.z_head.weight = self.a_embed.weight

    m = fit.init_module(Tied(), seed=1)
    assert m.z_head.weight is m.a_embed.weight
    assert_bits_equal(as_numpy(m.a_embed.weight), fi.normal_(np.empty((10, 4), np.float32), seed=1,
                                                             name="a_embed.weight"))


# ------------------------------------------------------------------------ meta and specs
def test_materialize_never_runs_torch_init(monkeypatch):
    with torch.device("meta"):
        m = Block()

    def forbidden(*args, **kwargs):
        raise AssertionError("torch init ran")

    for name in ("uniform_", "normal_", "kaiming_uniform_", "xavier_uniform_", "constant_", "ones_", "zeros_"):
        monkeypatch.setattr(torch.nn.init, name, forbidden)
    monkeypatch.setattr(torch.Tensor, "uniform_", forbidden)
    monkeypatch.setattr(torch.Tensor, "normal_", forbidden)
    fit.materialize(m, seed=3)
    monkeypatch.undo()
    assert all(p.device.type == "cpu" for p in m.parameters())
    assert torch.all(m.bn.running_var == 1) and torch.all(m.bn.running_mean == 0)
    expected = state(fit.init_module(Block(), seed=3))
    got = state(m)
    for k, v in expected.items():
        assert_bits_equal(got[k], v)


def test_materialize_dtype_keeps_ties_and_real_parameters():
    with torch.device("meta"):
        m = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    m[1].weight = m[0].weight
    m.add_module("real", nn.Linear(2, 2))
    real_before = m.real.weight.detach().clone()
    fit.materialize(m, seed=0, dtype=torch.bfloat16)
    assert m[1].weight is m[0].weight and m[0].weight.dtype == torch.bfloat16
    assert torch.equal(m.real.weight, real_before) and m.real.weight.dtype == torch.float32
    with pytest.raises(TypeError, match="dtype must be one of"):
        fit.materialize(nn.Linear(2, 2, device="meta"), dtype=torch.int8)


def test_materialize_refuses_unknown_meta_buffers_before_changing_anything():
    with torch.device("meta"):
        m = nn.Linear(4, 4)
    m.register_buffer("inv_freq", torch.empty(4, device="meta"))
    with pytest.raises(ValueError, match="inv_freq"):
        fit.materialize(m)
    assert m.weight.device.type == "meta"


def test_spec_from_module_writes_the_init_module_checkpoint(tmp_path):
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.Embedding(20, 8), nn.Conv1d(3, 5, 3))
    spec = fit.spec_from_module(m, dtype=torch.bfloat16)
    assert [t.name for t in spec.tensors] == [n for n, _ in m.named_parameters()]
    path = tmp_path / "m.safetensors"
    checkpoint.generate(spec, path, seed=9)
    fit.materialize(m, seed=9, dtype=torch.bfloat16)
    from safetensors.torch import load_file

    loaded = load_file(path)
    for name, p in m.named_parameters():
        assert torch.equal(loaded[name].view(torch.int16), p.detach().view(torch.int16)), name


def test_spec_from_module_refuses_padding_rows():
    with pytest.raises(ValueError, match="padding_idx=0"):
        fit.spec_from_module(nn.Embedding(5, 2, padding_idx=0))
