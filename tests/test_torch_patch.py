"""fastinit.torch.patched: modules' own reset_parameters (every torch.nn layer type with parameters,
built normally, on meta and with zero-size dims) draw fastinit values keyed by parameter name, with
torch's distributions and warnings; views are keyed by their box; copies of the init functions
bound elsewhere are replaced and restored."""

import math
import sys
import types
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
import fastinit as fi  # noqa: E402
import fastinit.torch as fit  # noqa: E402
from fastinit._torch_patch import TORCH_FUNCTIONS  # noqa: E402

nn = torch.nn
SEED = 5

# every torch.nn layer type that has parameters, built small but with enough values for a KS test
ZOO = {
    "Linear": lambda z: nn.Linear(48 * z, 40),
    "Bilinear": lambda z: nn.Bilinear(12 * z, 10, 30),
    "Conv1d": lambda z: nn.Conv1d(8 * z, 30, 5),
    "Conv2d": lambda z: nn.Conv2d(6 * z, 20, 3),
    "Conv3d": lambda z: nn.Conv3d(4 * z, 10, 3),
    "ConvTranspose1d": lambda z: nn.ConvTranspose1d(30, 8 * z, 5),
    "ConvTranspose2d": lambda z: nn.ConvTranspose2d(20, 6 * z, 3, groups=2),
    "ConvTranspose3d": lambda z: nn.ConvTranspose3d(10, 4 * z, 3),
    "Embedding": lambda z: nn.Embedding(100 * z, 16, padding_idx=3 if z else None),
    "EmbeddingBag": lambda z: nn.EmbeddingBag(100 * z, 16),
    "BatchNorm1d": lambda z: nn.BatchNorm1d(600 * z),
    "BatchNorm2d": lambda z: nn.BatchNorm2d(8 * z),
    "BatchNorm3d": lambda z: nn.BatchNorm3d(8 * z),
    "SyncBatchNorm": lambda z: nn.SyncBatchNorm(8 * z),
    "InstanceNorm1d": lambda z: nn.InstanceNorm1d(8 * z, affine=True),
    "InstanceNorm2d": lambda z: nn.InstanceNorm2d(8 * z, affine=True),
    "InstanceNorm3d": lambda z: nn.InstanceNorm3d(8 * z, affine=True),
    "LayerNorm": lambda z: nn.LayerNorm(600 * z),
    "GroupNorm": lambda z: nn.GroupNorm(2, 8 * z),
    "RMSNorm": lambda z: nn.RMSNorm(600 * z),
    "PReLU": lambda z: nn.PReLU(600 * z, init=0.1),
    "RNN": lambda z: nn.RNN(16 * z, 24, 2),
    "LSTM": lambda z: nn.LSTM(16 * z, 24, 2, proj_size=8),
    "GRU": lambda z: nn.GRU(16 * z, 24, bidirectional=True),
    "RNNCell": lambda z: nn.RNNCell(16 * z, 24),
    "LSTMCell": lambda z: nn.LSTMCell(16 * z, 24),
    "GRUCell": lambda z: nn.GRUCell(16 * z, 24),
    "MultiheadAttention": lambda z: nn.MultiheadAttention(32, 4, kdim=16 * z, vdim=24),
    "Transformer": lambda z: nn.Transformer(32, 4, 1, 1, 48 * z),
    "TransformerEncoder": lambda z: nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 48 * z), 2),
    "TransformerDecoder": lambda z: nn.TransformerDecoder(nn.TransformerDecoderLayer(32, 4, 48 * z), 2),
    "TransformerEncoderLayer": lambda z: nn.TransformerEncoderLayer(32, 4, 48 * z),
    "TransformerDecoderLayer": lambda z: nn.TransformerDecoderLayer(32, 4, 48 * z),
    "AdaptiveLogSoftmaxWithLoss": lambda z: nn.AdaptiveLogSoftmaxWithLoss(32, 40, [10, 20]),
    "LinearCrossEntropyLoss": lambda z: nn.LinearCrossEntropyLoss(48 * z, 40),
}
# built with a first input, then like any other layer
LAZY = {"LazyLinear": (lambda: nn.LazyLinear(40), (2, 48)), "LazyConv1d": (lambda: nn.LazyConv1d(30, 5), (2, 8, 9)),
        "LazyConv2d": (lambda: nn.LazyConv2d(20, 3), (2, 6, 5, 5)),
        "LazyConv3d": (lambda: nn.LazyConv3d(10, 3), (2, 4, 5, 5, 5)),
        "LazyConvTranspose1d": (lambda: nn.LazyConvTranspose1d(8, 5), (2, 30, 9)),
        "LazyConvTranspose2d": (lambda: nn.LazyConvTranspose2d(6, 3), (2, 20, 5, 5)),
        "LazyConvTranspose3d": (lambda: nn.LazyConvTranspose3d(4, 3), (2, 10, 5, 5, 5)),
        "LazyBatchNorm1d": (lambda: nn.LazyBatchNorm1d(), (2, 600)),
        "LazyBatchNorm2d": (lambda: nn.LazyBatchNorm2d(), (2, 8, 3, 3)),
        "LazyBatchNorm3d": (lambda: nn.LazyBatchNorm3d(), (2, 8, 3, 3, 3)),
        "LazyInstanceNorm1d": (lambda: nn.LazyInstanceNorm1d(affine=True), (2, 8, 5)),
        "LazyInstanceNorm2d": (lambda: nn.LazyInstanceNorm2d(affine=True), (2, 8, 5, 5)),
        "LazyInstanceNorm3d": (lambda: nn.LazyInstanceNorm3d(affine=True), (2, 8, 3, 3, 3))}


def reset_all(module):
    """Every submodule's own reset, children first, as construction runs them."""
    for sub in reversed(list(module.modules())):
        for method in ("reset_parameters", "_reset_parameters"):
            if method in type(sub).__dict__ or any(method in vars(c) for c in type(sub).__mro__[1:-1]
                                                   if c.__module__.startswith("torch.nn")):
                getattr(sub, method)()
                break


def values(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


# layer types whose constructor needs arguments and that hold no parameters (pools, pads, reshapes), or
# are bases and wrappers of the layers above
NO_PARAMETERS = {
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "ChannelShuffle", "CircularPad1d", "CircularPad2d",
    "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "CrossMapLRN2d", "DataParallel", "Fold",
    "FractionalMaxPool2d", "FractionalMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d", "LocalResponseNorm",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "PixelShuffle",
    "PixelUnshuffle", "RNNBase", "RNNCellBase", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "Threshold", "Unflatten", "Unfold", "ZeroPad1d",
    "ZeroPad2d", "ZeroPad3d",
}


def test_the_zoo_covers_every_layer_type_with_parameters():
    layer_types = {n for n in dir(nn) if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)}
    unclassified = []
    for name in sorted(layer_types - set(ZOO) - set(LAZY) - NO_PARAMETERS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated layer types warn when built
            try:
                module = getattr(nn, name)()
            except TypeError:
                unclassified.append(name)  # a new layer type that needs arguments: add it above
                continue
        if list(module.parameters()):
            unclassified.append(name)
    assert not unclassified, f"torch.nn layer types neither in the zoo nor parameter-free: {unclassified}"


@pytest.mark.parametrize("layer", sorted(ZOO))
def test_own_reset_under_patch_gives_fastinit_values_with_torch_distributions(layer):
    model = ZOO[layer](1)
    rng = torch.get_rng_state()
    with fit.patched(model, seed=SEED):
        reset_all(model)
    assert torch.equal(torch.get_rng_state(), rng), "something still drew from torch's generator"
    ours = values(model)

    again = ZOO[layer](1)  # reproducible by name, whatever the construction drew
    with fit.patched(again, seed=SEED):
        reset_all(again)
    assert all(torch.equal(ours[k], v) for k, v in values(again).items())

    if layer not in ("AdaptiveLogSoftmaxWithLoss", "LinearCrossEntropyLoss", "SyncBatchNorm"):
        expected = values(fit.init_module(ZOO[layer](1), seed=SEED))  # torch's defaults, fastinit's table
        for k, v in expected.items():
            assert torch.equal(ours[k], v), k

    torch.manual_seed(0)
    theirs = ZOO[layer](1)  # torch's own initialization, for the distributions
    for k, v in values(theirs).items():
        if v.numel() >= 500 and float(v.std()) > 0:
            assert stats.ks_2samp(ours[k].flatten().numpy(), v.flatten().numpy()).pvalue > 1e-3, k
        else:
            assert torch.equal(ours[k] == 0, v == 0) or v.numel() < 500, k


def _warnings_of(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("layer", sorted(ZOO))
def test_meta_and_zero_size_layers_reset_as_torch_does(layer):
    with torch.device("meta"):
        on_meta = ZOO[layer](1)
    with fit.patched(on_meta, seed=SEED):
        reset_all(on_meta)  # a no-op, as torch's own
    assert all(p.is_meta for p in on_meta.parameters())

    try:
        empty_theirs = ZOO[layer](0)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return  # torch cannot build this layer with a zero-size dim
    empty_ours = ZOO[layer](0)
    theirs = _warnings_of(lambda: reset_all(empty_theirs))
    with fit.patched(empty_ours, seed=SEED):
        ours = _warnings_of(lambda: reset_all(empty_ours))
    assert ours == theirs
    for (k, mine), ref in zip(values(empty_ours).items(), values(empty_theirs).values()):
        assert mine.shape == ref.shape
        if mine.numel() and float(ref.abs().max()) == 0:
            assert float(mine.abs().max()) == 0, k  # e.g. a bias whose fan_in is 0: U(0, 0)


@pytest.mark.parametrize("layer", sorted(LAZY))
def test_lazy_layers_reset_like_their_eager_twins(layer):
    make, shape = LAZY[layer]
    model = make()
    model(torch.zeros(shape))
    with fit.patched(model, seed=SEED):
        reset_all(model)
    expected = values(fit.init_module(model, seed=SEED))
    assert all(torch.equal(v, expected[k]) for k, v in values(model).items())


def test_views_are_keyed_by_their_box_in_the_parameter():
    model = nn.Sequential(nn.Linear(30, 20), nn.Embedding(50, 8, padding_idx=4))
    with fit.patched(model, seed=SEED):
        init = torch.nn.init
        init.normal_(model[0].weight[3], 0.0, 2.0)              # a row
        init.uniform_(model[0].weight.data[:, 10:20], -1.0, 1.0)  # a block of columns
        init.zeros_(model[1].weight[4])                          # the padding row
        init.kaiming_uniform_(model[0].weight[5:15], a=math.sqrt(5))  # fans of the view
        init.normal_(model[0].weight.t(), 0.0, 3.0)             # not a box: the default stream
    w = model[0].weight.detach().numpy()
    full_normal = fi.normal_(np.empty((20, 30), np.float32), 0.0, 2.0, seed=SEED, name="0.weight")
    full_uniform = fi.uniform_(np.empty((20, 30), np.float32), -1.0, 1.0, seed=SEED, name="0.weight")
    kaiming = fi.kaiming_uniform_(np.empty((10, 30), np.float32), a=math.sqrt(5), fans=(30, 10), seed=SEED,
                                  name="0.weight", global_shape=(20, 30), offset=(5, 0))
    assert not np.array_equal(w, full_normal)  # the last call, through the transpose, rewrote everything
    with fit.patched(model, seed=SEED):
        torch.nn.init.normal_(model[0].weight[3], 0.0, 2.0)
        torch.nn.init.uniform_(model[0].weight.data[:, 10:20], -1.0, 1.0)
        torch.nn.init.kaiming_uniform_(model[0].weight[5:15], a=math.sqrt(5))
    w = model[0].weight.detach().numpy()
    assert np.array_equal(w[3, :10], full_normal[3, :10]) and np.array_equal(w[3, 20:], full_normal[3, 20:])
    assert np.array_equal(w[:5, 10:20], full_uniform[:5, 10:20])
    assert np.array_equal(w[5:15], kaiming)
    assert float(model[1].weight[4].detach().abs().max()) == 0


def test_unresolved_tensors_take_the_default_stream():
    fi.manual_seed(3)
    with fit.patched(seed=SEED):
        a = torch.nn.init.normal_(torch.empty(100))
    fi.manual_seed(3)
    with fit.patched(seed=SEED):
        b = torch.nn.init.normal_(torch.empty(100))
    assert torch.equal(a, b)


def test_bound_copies_and_wrapper_tables_are_replaced_then_restored():
    library = types.ModuleType("a_library_with_init_wrappers")
    library.FUNCTIONS = {"normal_": torch.nn.init.normal_}  # as transformers.initialization keeps them
    library.uniform_ = torch.nn.init.uniform_
    sys.modules[library.__name__] = library
    try:
        layer = nn.Linear(8, 6)
        with fit.patched(layer, seed=SEED):
            assert torch.nn.modules.activation.xavier_uniform_ is not TORCH_FUNCTIONS["xavier_uniform_"]
            library.FUNCTIONS["normal_"](layer.weight, 0.0, 0.5)
            library.uniform_(layer.bias, -0.1, 0.1)
        assert torch.equal(layer.weight, fit.normal_(torch.empty(6, 8), 0.0, 0.5, seed=SEED, name="weight"))
        assert torch.equal(layer.bias, fit.uniform_(torch.empty(6), -0.1, 0.1, seed=SEED, name="bias"))
        for name, original in TORCH_FUNCTIONS.items():
            assert getattr(torch.nn.init, name) is original
        assert torch.nn.modules.activation.xavier_uniform_ is TORCH_FUNCTIONS["xavier_uniform_"]
        assert library.FUNCTIONS["normal_"] is TORCH_FUNCTIONS["normal_"]
    finally:
        del sys.modules[library.__name__]


def test_nested_blocks_key_by_the_innermost_and_restore_on_errors():
    outer, inner = nn.Linear(4, 4), nn.Linear(4, 4)
    with pytest.raises(KeyError), fit.patched(outer, seed=1):
        with fit.patched(inner, seed=2):
            inner.reset_parameters()
        outer.reset_parameters()
        raise KeyError("boom")
    assert torch.equal(inner.weight, fit.init_module(nn.Linear(4, 4), seed=2).weight)
    assert torch.equal(outer.weight, fit.init_module(nn.Linear(4, 4), seed=1).weight)
    assert torch.nn.init.kaiming_uniform_ is TORCH_FUNCTIONS["kaiming_uniform_"]


def test_deprecated_names_and_generators_under_the_patch():
    layer = nn.Linear(4, 4)
    with fit.patched(layer, seed=SEED), pytest.warns(FutureWarning, match="deprecated"):
        torch.nn.init.normal(layer.weight)
    assert torch.equal(layer.weight, fit.normal_(torch.empty(4, 4), seed=SEED, name="weight"))
    with fit.patched(layer, seed=SEED):
        torch.nn.init.uniform_(layer.weight, generator=torch.Generator())  # ignored: the name keys the values
    assert torch.equal(layer.weight, fit.uniform_(torch.empty(4, 4), seed=SEED, name="weight"))
