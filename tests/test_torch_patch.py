"""fastinit.torch.patched: modules' own reset_parameters (every torch.nn layer type with parameters,
built normally, on meta and with zero-size dims) draw fastinit values keyed by parameter name, with
torch's distributions and warnings; views are keyed by their box, also of strided parameters, of
Parameter subclasses and of DTensors; copies of the init functions bound elsewhere are replaced and
restored, and those bound inside a block are torch's own after it; unresolved tensors are
reproducible under an explicit seed; draws from torch's generator inside a block warn; blocks of
two threads are refused, calls from any thread are keyed."""

import contextlib
import math
import os
import pickle
import socket
import sys
import threading
import time
import types
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
from torch_modes import SeenCalls  # noqa: E402

import fastinit as fi  # noqa: E402
import fastinit.torch as fit  # noqa: E402
from fastinit._torch_patch import TORCH_FUNCTIONS, Resolver, patching  # noqa: E402

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


def test_unresolved_tensors_take_the_default_stream_without_a_seed():
    fi.manual_seed(3)
    with fit.patched():
        a = torch.nn.init.normal_(torch.empty(100))
    fi.manual_seed(3)
    with fit.patched():
        b = torch.nn.init.normal_(torch.empty(100))
    assert torch.equal(a, b)


def test_unresolved_tensors_are_keyed_by_call_order_under_an_explicit_seed():
    def run(seed):
        fi.manual_seed(1)  # the default stream plays no part
        with fit.patched(seed=seed):
            built_inside = nn.Linear(6, 4)  # its constructor's own init: unresolved draws 0 and 1
            first = torch.nn.init.normal_(torch.empty(50), 0.0, 2.0)
            torch.nn.init.zeros_(torch.empty(3))  # draws nothing: no k
            second = torch.nn.init.xavier_uniform_(torch.empty(5, 7))
        return built_inside, first, second

    built_inside, first, second = run(SEED)
    fi.manual_seed(2)
    again = run(SEED)
    assert all(torch.equal(x, y) for x, y in zip(values(built_inside).values(), values(again[0]).values()))
    assert torch.equal(first, again[1]) and torch.equal(second, again[2])
    assert torch.equal(first, fit.normal_(torch.empty(50), 0.0, 2.0, seed=SEED, name="<unresolved 2>"))
    assert torch.equal(second, fit.xavier_uniform_(torch.empty(5, 7), seed=SEED, name="<unresolved 3>"))
    assert not torch.equal(run(SEED + 1)[1], first)


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


def outcome(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as err:  # comparing classes is the point
            return ("raises", err, ())
    return ("returns", result, tuple((w.category, str(w.message)) for w in caught))


def test_copies_bound_inside_a_block_are_torchs_own_functions_after_it():
    library = types.ModuleType("a_library_imported_inside_the_block")
    layer = nn.Linear(8, 6)
    with fit.patched(layer, seed=SEED):
        exec("from torch.nn.init import normal_, xavier_uniform\nINITS = {'u': __import__('torch').nn.init.uniform_}",
             library.__dict__)
        sys.modules[library.__name__] = library
    try:
        assert library.normal_ is not TORCH_FUNCTIONS["normal_"]  # the replacement, kept
        for ours, theirs, args in ((library.normal_, "normal_", (0.0, 2.0)), (library.INITS["u"], "uniform_", ()),
                                   (library.xavier_uniform, "xavier_uniform", (0.5,))):
            torch.manual_seed(0)
            mine = outcome(lambda: ours(torch.empty(4, 3), *args))  # noqa: B023
            torch.manual_seed(0)
            reference = outcome(lambda: TORCH_FUNCTIONS[theirs](torch.empty(4, 3), *args))  # noqa: B023
            assert mine[0] == reference[0] == "returns" and torch.equal(mine[1], reference[1]), theirs
            assert mine[2] == reference[2]  # the deprecated name's FutureWarning, once
        with fit.patched(layer, seed=SEED):  # a later block keys them again
            library.normal_(layer.weight, 0.0, 0.5)
        assert torch.equal(layer.weight, fit.normal_(torch.empty(6, 8), 0.0, 0.5, seed=SEED, name="weight"))
    finally:
        del sys.modules[library.__name__]


class _Holder(nn.Module):
    def __init__(self, parameter):
        super().__init__()
        self.w = parameter


class _SubclassParameter(nn.Parameter):
    pass


# (label, parameter, the call on it, the function, args, the box it writes: (offset, shape) or None: whole)
STRIDED = [
    ("channels_last .data", lambda: nn.Parameter(torch.empty(8, 3, 3, 3).to(memory_format=torch.channels_last)),
     lambda w: torch.nn.init.kaiming_normal_(w.data), "kaiming_normal_", (), None),
    ("channels_last .data[:, 1]", lambda: nn.Parameter(torch.zeros(8, 3, 3, 3).to(memory_format=torch.channels_last)),
     lambda w: torch.nn.init.normal_(w.data[:, 1]), "normal_", (), ((0, 1, 0, 0), (8, 1, 3, 3))),
    ("transposed .data", lambda: nn.Parameter(torch.empty(4, 6).t()), lambda w: torch.nn.init.normal_(w.data),
     "normal_", (), None),
    ("transposed row", lambda: nn.Parameter(torch.zeros(4, 6).t()), lambda w: torch.nn.init.normal_(w.data[1]),
     "normal_", (), ((1, 0), (1, 4))),
    ("transposed block", lambda: nn.Parameter(torch.zeros(4, 6).t()),
     lambda w: torch.nn.init.uniform_(w.detach()[2:5, 1:3], -1.0, 1.0), "uniform_", (-1.0, 1.0), ((2, 1), (3, 2))),
    ("Parameter subclass .data", lambda: _SubclassParameter(torch.empty(6, 4)),
     lambda w: torch.nn.init.normal_(w.data), "normal_", (), None),
    ("Parameter subclass row", lambda: _SubclassParameter(torch.zeros(6, 4)),
     lambda w: torch.nn.init.normal_(w.data[3]), "normal_", (), ((3, 0), (1, 4))),
]


@pytest.mark.parametrize("label, make, call, function, args, box", STRIDED, ids=[c[0] for c in STRIDED])
def test_views_of_strided_parameters_and_parameter_subclasses_are_keyed(label, make, call, function, args, box):
    holder = _Holder(make())
    with fit.patched(holder, seed=SEED):
        call(holder.w)
    shape = tuple(holder.w.shape)
    full = getattr(fit, function)(torch.empty(shape), *args, seed=SEED, name="w")
    if box is None:
        assert torch.equal(holder.w.detach(), full)
    else:
        (offset, box_shape), region = box, holder.w.detach()
        index = tuple(slice(o, o + n) for o, n in zip(offset, box_shape))
        assert torch.equal(region[index], full[index])
        untouched = torch.ones(shape, dtype=torch.bool)
        untouched[index] = False
        assert not region[untouched].any()


def test_views_that_are_not_boxes_stay_unresolved():
    holder = _Holder(nn.Parameter(torch.zeros(6, 8)))
    observed = []
    views = [lambda w: w.data[::2], lambda w: w.data.t(), lambda w: w.data.reshape(8, 6),
             lambda w: w.data.as_strided((3, 3), (1, 1))]  # stepped, transposed, reshaped, overlapping
    with patching(Resolver(holder), SEED,
                                   lambda function, target, tensor: observed.append(target)):
        for view in views:
            torch.nn.init.zeros_(view(holder.w))
        torch.nn.init.zeros_(holder.w.data[1:3])
    assert observed[:-1] == [None] * len(views) and observed[-1].offset == (1, 0)


ROUTES = """
import collections, functools, torch
from torch import nn
class Block(nn.Module):
    init_fn = nn.init.normal_
    init_static = staticmethod(nn.init.normal_)
INIT_LIST = [nn.init.normal_]
INIT_ORDERED = collections.OrderedDict(n=nn.init.normal_)
INIT_NESTED = {"a": {"n": nn.init.normal_}}
INIT_PARTIAL = functools.partial(nn.init.normal_, std=0.02)
"""


def test_draws_from_torchs_generator_inside_a_block_warn_once():
    library = types.ModuleType("a_library_with_unreached_copies")
    exec(ROUTES, library.__dict__)
    sys.modules[library.__name__] = library
    holder = _Holder(nn.Parameter(torch.zeros(4, 4)))
    routes = {"class attribute": lambda: library.Block.init_fn(holder.w),
              "staticmethod": lambda: library.Block().init_static(holder.w),
              "list": lambda: library.INIT_LIST[0](holder.w),
              "OrderedDict": lambda: library.INIT_ORDERED["n"](holder.w),
              "nested dict": lambda: library.INIT_NESTED["a"]["n"](holder.w),
              "partial": lambda: library.INIT_PARTIAL(holder.w),
              "tensor method": lambda: holder.w.data.normal_()}
    try:
        for route, call in routes.items():
            state = torch.random.get_rng_state()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with fit.patched(holder, seed=SEED), fit.patched(holder, seed=SEED):  # only the outer one warns
                    call()
            drew = not torch.equal(torch.random.get_rng_state(), state)  # what torch's own generator says
            messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
            assert drew and len(messages) == 1, route
            assert "torch's own generator" in messages[0] and "functools.partial" in messages[0]
            assert caught[-1].filename == __file__
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fit.patched(holder, seed=SEED):
                torch.nn.init.normal_(holder.w)  # reached: torch's generator untouched, no warning
    finally:
        del sys.modules[library.__name__]


def test_modes_and_subclasses_see_the_call_under_the_patch_as_without_it():
    layer = nn.Linear(5, 4)
    seen = []
    for patch in (contextlib.nullcontext(), fit.patched(layer, seed=SEED)):
        with patch, SeenCalls() as mode:
            torch.nn.init.uniform_(layer.bias, -0.5, 0.5)
            torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
        seen.append([name for name in mode.seen if name.endswith("_")][:2])
    assert seen[1] == seen[0] == ["uniform_", "kaiming_uniform_"]
    assert torch.equal(layer.weight, fit.init_module(nn.Linear(5, 4), seed=SEED).weight)
    assert torch.equal(layer.bias, fit.uniform_(torch.empty(4), -0.5, 0.5, seed=SEED, name="bias"))


# ------------------------------------------------------------------------------------ threads
def test_a_block_of_another_thread_is_refused_while_one_is_open():
    opened, release, errors = threading.Event(), threading.Event(), []

    def hold():
        with fit.patched(nn.Linear(2, 2), seed=1):
            opened.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    opened.wait(10)
    try:
        with pytest.raises(RuntimeError, match="another thread"), fit.patched(nn.Linear(2, 2), seed=2):
            pass
    finally:
        release.set()
        holder.join()
    layer = nn.Linear(4, 3)
    with fit.patched(layer, seed=2):  # once it is closed
        worker = threading.Thread(target=lambda: errors.append(layer.reset_parameters()))
        worker.start()  # a call from another thread inside the open block is keyed by it
        worker.join()
    assert errors == [None]
    expected = fit.init_module(nn.Linear(4, 3), seed=2)
    assert torch.equal(layer.weight, expected.weight) and torch.equal(layer.bias, expected.bias)


def test_the_resolver_builds_its_index_under_a_lock(monkeypatch):
    from fastinit import _torch_patch

    model = nn.Sequential(*[nn.Linear(3, 3) for _ in range(64)])
    building, most = [0], [0]
    index = _torch_patch.Resolver._index

    def slow_index(self):
        building[0] += 1
        most[0] = max(most[0], building[0])
        time.sleep(0.002)
        index(self)
        building[0] -= 1

    monkeypatch.setattr(_torch_patch.Resolver, "_index", slow_index)
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()
        for j in range(i, 64, 4):
            model[j].reset_parameters()
            torch.nn.init.normal_(torch.empty(2))  # unresolved: a fresh index while others resolve

    with fit.patched(model, seed=SEED):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert most[0] == 1
    expected = fit.init_module(nn.Sequential(*[nn.Linear(3, 3) for _ in range(64)]), seed=SEED)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected.parameters()))


# ------------------------------------------------------------------------------------ DTensor
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dtensor_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    results = {}

    def distributed():
        layer = nn.Linear(8, 6)
        layer.weight = nn.Parameter(distribute_tensor(layer.weight.detach(), mesh, [Shard(0)]))
        layer.bias = nn.Parameter(distribute_tensor(layer.bias.detach(), mesh, [Replicate()]))
        return layer

    def full(t):
        return t.full_tensor().detach().clone()

    layer = distributed()
    for label, call in [("no seed", lambda: layer.reset_parameters()),
                        ("no seed, unregistered", lambda: torch.nn.init.normal_(
                            distribute_tensor(torch.zeros(4, 4), mesh, [Shard(0)])))]:
        try:
            with fit.patched(layer):
                call()
            results[label] = None
        except ValueError as err:
            results[label] = str(err)
    with fit.patched(layer):
        zeros = torch.nn.init.zeros_(distribute_tensor(torch.ones(4, 4), mesh, [Shard(0)]))  # draws nothing
    results["zeros"] = full(zeros)
    layer = distributed()
    with fit.patched(layer, seed=SEED):
        layer.reset_parameters()
    results["reset"] = (full(layer.weight), full(layer.bias), layer.bias.to_local().detach().clone())
    for label, view in [(".data", lambda p: p.data), (".detach()", lambda p: p.detach())]:
        with fit.patched(layer, seed=SEED):
            torch.nn.init.normal_(view(layer.weight), 0.0, 2.0)
        results[label] = full(layer.weight)
    with fit.patched(layer, seed=SEED):
        loose = torch.nn.init.normal_(distribute_tensor(torch.zeros(4, 4), mesh, [Replicate()]))
    results["unregistered"] = (full(loose), loose.to_local().detach().clone())
    gathered = [None] * world
    dist.all_gather_object(gathered, {k: v for k, v in results.items() if k in ("reset", "unregistered")})
    if rank == 0:
        with open(os.path.join(out_dir, "results.pkl"), "wb") as f:
            pickle.dump((results, gathered), f)
    dist.destroy_process_group()
    os._exit(0)  # as in test_torch_distributed: gloo's teardown can abort the interpreter


def test_dtensor_parameters_are_keyed_under_an_explicit_seed_and_refused_without(tmp_path):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    import torch.multiprocessing as mp

    mp.spawn(_dtensor_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    with open(tmp_path / "results.pkl", "rb") as f:
        results, ranks = pickle.load(f)
    assert "'weight'" in results["no seed"] and "patched(module, seed=...)" in results["no seed"]
    assert "no registered module" in results["no seed, unregistered"]
    assert not results["zeros"].any()
    weight, bias, _ = results["reset"]
    expected = fit.init_module(nn.Linear(8, 6), seed=SEED)
    assert torch.equal(weight, expected.weight) and torch.equal(bias, expected.bias)
    assert torch.equal(ranks[0]["reset"][2], ranks[1]["reset"][2])  # the replicated bias: the same on both ranks
    for label in (".data", ".detach()"):
        assert torch.equal(results[label], fit.normal_(torch.empty(6, 8), 0.0, 2.0, seed=SEED, name="weight")), label
    loose, _ = results["unregistered"]
    assert torch.equal(loose, fit.normal_(torch.empty(4, 4), seed=SEED, name="<unresolved 0>"))
    assert torch.equal(ranks[0]["unregistered"][1], ranks[1]["unregistered"][1])
