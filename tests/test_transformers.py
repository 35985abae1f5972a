"""fastinit.transformers beside transformers itself: directories from_pretrained loads without a
report, each parameter distributed as the model's own init distributes it, init_model equal to the
files bit for bit whatever the sharding, and clear errors (nothing written) for bad input."""

import io
import json
import logging
import math
import os

import numpy as np
import pytest
from conftest import free_port
from hf_models import AUTO, CONFIGS, inputs, output

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")
scipy_stats = pytest.importorskip("scipy.stats")

import fastinit.transformers as fit  # noqa: E402
from fastinit.checkpoint import generate, parse_size, verify  # noqa: E402
from fastinit.cli import main  # noqa: E402
from fastinit.spec import load_spec  # noqa: E402

ARCHS = list(CONFIGS)
SEED = 11


@pytest.fixture(autouse=True)
def _quiet_transformers():
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    yield
    transformers.logging.set_verbosity(level)


def model_class(arch):
    return getattr(transformers, CONFIGS[arch]["architectures"][0])


def read_files(directory) -> dict:
    """Every tensor of a safetensors directory (one file or shards), by name."""
    tensors = {}
    for file in sorted(os.listdir(directory)):
        if file.endswith(".safetensors"):
            tensors.update(safetensors_torch.load_file(os.path.join(directory, file)))
    return tensors


def hf_saved(model, directory, **kwargs) -> dict:
    """What transformers' own save_pretrained writes for ``model``."""
    model.save_pretrained(directory, **kwargs)
    return read_files(directory)


def assert_same_tensors(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert torch.equal(a[name].view(-1).view(torch.uint8), b[name].contiguous().view(-1).view(torch.uint8)), name


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``save_pretrained(config, d, seed=SEED)`` of each architecture, written once."""
    cache = {}

    def get(arch):
        if arch not in cache:
            directory = tmp_path_factory.mktemp(arch) / "model"
            fit.save_pretrained(CONFIGS[arch], directory, seed=SEED, max_shard_size="40KB")
            cache[arch] = directory
        return cache[arch]

    return get


# --------------------------------------------------------------------------- from_pretrained
@pytest.mark.parametrize("arch", ARCHS)
def test_from_pretrained_loads_it_without_a_report(arch, saved, tmp_path):
    directory = saved(arch)
    auto = getattr(transformers, AUTO[arch])
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    transformers.logging.set_verbosity_warning()
    transformers.logging.add_handler(handler)
    try:
        model, info = auto.from_pretrained(directory, output_loading_info=True)
    finally:
        transformers.logging.remove_handler(handler)
        transformers.logging.set_verbosity_error()
    assert type(model) is model_class(arch)
    assert not any(info.values()), info  # missing, unexpected, mismatched keys, errors
    assert records.getvalue() == ""  # no load report, nothing "newly initialized"
    assert not any(t.is_meta for t in model.state_dict().values())
    # what transformers writes back from the loaded model is the files, byte for byte
    assert_same_tensors(hf_saved(model, tmp_path / "resaved"), read_files(directory))
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(output(model(**inputs(arch)))).all()


def test_the_side_files_are_transformers_own(tmp_path):
    config = fit.load_config(CONFIGS["llama"])
    model = fit.init_model(model_class("llama")(config), seed=0)
    model.save_pretrained(tmp_path / "hf")
    fit.save_pretrained(config, tmp_path / "fi")
    for name in ("config.json", "generation_config.json"):
        assert (tmp_path / "fi" / name).read_bytes() == (tmp_path / "hf" / name).read_bytes()
    fit.save_pretrained(CONFIGS["bert"], tmp_path / "bert")  # a model that does not generate
    assert sorted(os.listdir(tmp_path / "bert")) == ["config.json", "model.safetensors"]


def test_dtype_is_applied_as_transformers_applies_it(tmp_path):
    fit.save_pretrained(CONFIGS["t5"], tmp_path / "fi", dtype="float16")
    config = fit.load_config(CONFIGS["t5"])
    hf = hf_saved(model_class("t5")._from_config(config, dtype=torch.float16), tmp_path / "hf")
    ours = read_files(tmp_path / "fi")
    assert {n: t.dtype for n, t in ours.items()} == {n: t.dtype for n, t in hf.items()}
    assert torch.float16 in {t.dtype for t in ours.values()}
    config_json = json.loads((tmp_path / "fi" / "config.json").read_text())
    assert config_json["dtype"] == json.loads((tmp_path / "hf" / "config.json").read_text())["dtype"]


# ------------------------------------------------------------------------- distributions
def hf_inits(arch, seeds):
    """The model's own initialization (``from_config`` on CPU) under torch seeds ``seeds``."""
    config = fit.load_config(CONFIGS[arch])
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(model_class(arch)._from_config(config))
    return models


def fi_inits(arch, seeds):
    return [fit.init_model(fit.build_model(CONFIGS[arch]), seed=seed) for seed in seeds]


POOLED = 50_000  # values per sample: the std of 2 samples then differs by ~0.45% (1 sigma)
DRAWN = 256  # tensors of at least this many values are compared


@pytest.mark.parametrize("arch", ARCHS)
def test_each_parameter_is_distributed_as_the_models_own_init(arch):
    """Two-sample KS p > 1e-3 and std within 2% for every drawn tensor of 256 values or more, on
    samples pooled over seeds to at least 50,000 values each; constants and zeroed rows exactly."""
    hf_first = hf_inits(arch, range(2))
    sizes = [p.numel() for p in hf_first[0].parameters() if p.numel() >= DRAWN]
    rounds = min(math.ceil(POOLED / min(sizes)), 64)
    hf_models, fi_models = hf_first + hf_inits(arch, range(2, rounds)), fi_inits(arch, range(rounds))
    checked = 0
    for name, hf_param in hf_models[0].named_parameters():
        ours, hf_value = fi_models[0].get_parameter(name).detach(), hf_param.detach()
        assert ours.dtype == hf_value.dtype and ours.shape == hf_value.shape, name
        if torch.all(hf_value == hf_value.reshape(-1)[0]) and torch.equal(hf_models[1].get_parameter(name), hf_value):
            assert torch.equal(ours, hf_value), f"{name} is a constant in the model's own init"
            continue
        if hf_value.dim() == 2:  # rows the model's init zeroes (padding), and only those
            hf_zero, our_zero = (hf_value == 0).all(1), (ours == 0).all(1)
            assert torch.equal(hf_zero, our_zero), f"{name}: zeroed rows {our_zero.nonzero()} vs {hf_zero.nonzero()}"
        if hf_value.numel() < DRAWN:
            continue
        used = min(math.ceil(POOLED / hf_value.numel()), rounds)
        pooled = [torch.cat([m.get_parameter(name).detach().reshape(-1).double() for m in models[:used]]).numpy()
                  for models in (fi_models, hf_models)]
        p = scipy_stats.ks_2samp(*pooled).pvalue
        assert p > 1e-3, f"{name}: KS p = {p:.2g}"
        assert abs(pooled[0].std() / pooled[1].std() - 1) < 0.02, f"{name}: std {pooled[0].std()} vs {pooled[1].std()}"
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("arch", ARCHS)
def test_buffers_are_the_models_own(arch):
    ours = dict(fi_inits(arch, [0])[0].named_buffers())
    hf = dict(hf_inits(arch, [0])[0].named_buffers())
    assert sorted(ours) == sorted(hf)
    for name in hf:
        assert ours[name].dtype == hf[name].dtype and torch.equal(ours[name], hf[name]), name


# ------------------------------------------------------------------ init_model == the files
@pytest.mark.parametrize("arch", ARCHS)
def test_init_model_equals_the_files_bit_for_bit(arch, saved, tmp_path):
    config = fit.load_config(CONFIGS[arch])
    built = model_class(arch)(config)  # materialized, initialized by transformers with torch's generator
    assert fit.init_model(built, seed=SEED) is built
    assert_same_tensors(hf_saved(built, tmp_path / "cpu"), read_files(saved(arch)))
    meta = fit.init_model(fit.build_model(config), seed=SEED)  # meta-built: storage first
    assert not any(t.is_meta for t in meta.state_dict().values())
    assert_same_tensors(hf_saved(meta, tmp_path / "meta"), read_files(saved(arch)))


def test_init_model_keeps_ties_and_keys_them_by_the_kept_name():
    model = fit.init_model(fit.build_model(CONFIGS["llama"]), seed=0)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    alone = fit.init_model(fit.build_model({**CONFIGS["llama"], "tie_word_embeddings": False}), seed=0)
    assert torch.equal(model.model.embed_tokens.weight, alone.model.embed_tokens.weight)


DTENSOR_ARCHS = ["llama", "bert", "mixtral"]  # tied embeddings, a zeroed padding row, 3-D fused experts


def _dtensor_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    results = {}
    for arch in DTENSOR_ARCHS:
        model = fit.init_model(fit.build_model(CONFIGS[arch]), seed=1)  # storage, then every parameter sharded
        sharded: dict[int, torch.nn.Parameter] = {}
        for module in model.modules():
            for local, p in list(module._parameters.items()):
                if p is not None:
                    if id(p) not in sharded:
                        sharded[id(p)] = torch.nn.Parameter(distribute_tensor(p.detach(), mesh, [Shard(0)]))
                    module._parameters[local] = sharded[id(p)]
        fit.init_model(model, seed=SEED)
        results[arch] = {name: p.full_tensor() for name, p in model.named_parameters(remove_duplicate=False)}
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()
    os._exit(0)  # torch's gloo teardown can abort the interpreter; everything is written


def test_dtensor_sharded_init_model_assembles_to_the_same_values(tmp_path):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    import torch.multiprocessing as mp

    out = str(tmp_path / "results.pt")
    mp.spawn(_dtensor_worker, args=(2, free_port(), out), nprocs=2, join=True)
    results = torch.load(out)
    for arch in DTENSOR_ARCHS:
        single = fit.init_model(fit.build_model(CONFIGS[arch]), seed=SEED)
        expected = dict(single.named_parameters(remove_duplicate=False))
        assert sorted(results[arch]) == sorted(expected)
        for name, value in expected.items():
            assert torch.equal(results[arch][name], value.detach()), (arch, name)


def test_bytes_do_not_depend_on_the_shard_size(tmp_path):
    config = CONFIGS["mixtral"]
    for size in ("5GB", "40KB", 20_000):
        fit.save_pretrained(config, tmp_path / str(size), seed=1, max_shard_size=size)
    one = read_files(tmp_path / "5GB")
    assert sorted(os.listdir(tmp_path / "5GB")) == ["config.json", "generation_config.json", "model.safetensors"]
    assert_same_tensors(read_files(tmp_path / "40KB"), one)
    assert_same_tensors(read_files(tmp_path / "20000"), one)


@pytest.mark.parametrize("size", ["40KB", "100KB"])
def test_shards_and_index_as_transformers_writes_them(size, tmp_path):
    model = fit.init_model(fit.build_model(CONFIGS["mixtral"]), seed=0)
    model.save_pretrained(tmp_path / "hf", max_shard_size=size)
    fit.save_pretrained(model, tmp_path / "fi", max_shard_size=size)
    assert sorted(os.listdir(tmp_path / "fi")) == sorted(os.listdir(tmp_path / "hf"))
    ours = json.loads((tmp_path / "fi" / "model.safetensors.index.json").read_text())
    hf = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    assert ours["weight_map"] == hf["weight_map"]
    assert {k: ours["metadata"][k] for k in hf["metadata"]} == hf["metadata"]
    assert_same_tensors(read_files(tmp_path / "fi"), read_files(tmp_path / "hf"))


# ------------------------------------------------------------------------- spec_from_model
def test_spec_from_model_allocates_nothing_and_leaves_the_model_as_it_was(tmp_path):
    model = fit.build_model(CONFIGS["bert"])
    flags = {name: getattr(p, "_is_hf_initialized", None) for name, p in model.named_parameters()}
    spec = fit.spec_from_model(model)
    assert all(t.is_meta for t in model.state_dict().values())
    assert flags == {name: getattr(p, "_is_hf_initialized", None) for name, p in model.named_parameters()}
    embedding = {t.name: t for t in spec.tensors}["bert.embeddings.word_embeddings.weight"]
    assert (embedding.init, embedding.params) == ("normal", {"mean": 0.0, "std": 0.02})
    assert [(b.offset, b.shape, b.init, b.params) for b in embedding.then] == [((3, 0), (1, 64), "zeros", {})]
    norm = {t.name: t for t in spec.tensors}["bert.embeddings.LayerNorm.weight"]
    assert (norm.init, norm.params) == ("ones", {})


def test_a_spec_file_of_the_model_generates_the_same_files(tmp_path, saved):
    spec = fit.spec_from_model(fit.build_model(CONFIGS["mixtral"]))
    experts = {t.name: t for t in spec.tensors}["model.layers.0.block_sparse_moe.experts.1.w2.weight"]
    assert experts.stream.name == "model.layers.0.mlp.experts.down_proj"
    assert experts.stream.offset == (1, 0, 0) and experts.stream.box == (1, 64, 96)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec.to_dict()))
    generate(load_spec(path), tmp_path / "out", seed=SEED, max_shard_size="5GB")
    assert_same_tensors(read_files(tmp_path / "out"), read_files(saved("mixtral")))
    assert verify(tmp_path / "out") == []


# --------------------------------------------------------------------------------- the CLI
def test_cli_generate_hf_writes_what_save_pretrained_writes(tmp_path, saved, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIGS["gpt2"]))
    assert main(["generate", "--hf", str(tmp_path), "--out", str(tmp_path / "out"), "--seed", str(SEED),
                 "--max-shard-size", "40KB", "--quiet"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.listdir(saved("gpt2")))
    for name in os.listdir(saved("gpt2")):
        assert (tmp_path / "out" / name).read_bytes() == (saved("gpt2") / name).read_bytes(), name
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "out")]) == 0
    assert "matches (every value checked)" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "out")]) == 0
    listing = capsys.readouterr().out
    assert "transformer.h.1.attn.c_proj.weight" in listing and "lm_head" not in listing


def test_cli_verify_finds_a_changed_byte_in_a_shard(tmp_path, capsys):
    fit.save_pretrained(CONFIGS["qwen2"], tmp_path / "m", max_shard_size="40KB")
    index = json.loads((tmp_path / "m" / "model.safetensors.index.json").read_text())
    shard = tmp_path / "m" / index["weight_map"]["model.layers.1.mlp.up_proj.weight"]
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x40
    shard.write_bytes(bytes(data))
    assert main(["verify", str(tmp_path / "m")]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_cli_generate_shards_any_spec(tmp_path):
    spec = {"tensors": {f"w{i}": {"shape": [64, 64], "dtype": "float32", "init": "normal", "std": 0.02}
                        for i in range(5)}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["generate", str(tmp_path / "spec.json"), "--out", str(tmp_path / "sharded"), "--max-shard-size",
                 "40KB", "--quiet"]) == 0
    assert main(["generate", str(tmp_path / "spec.json"), "--out", str(tmp_path / "one.safetensors"),
                 "--quiet"]) == 0
    files = sorted(os.listdir(tmp_path / "sharded"))
    assert files == [f"model-0000{k}-of-00003.safetensors" for k in (1, 2, 3)] + ["model.safetensors.index.json"]
    assert_same_tensors(read_files(tmp_path / "sharded"), safetensors_torch.load_file(tmp_path / "one.safetensors"))


@pytest.mark.parametrize("argv, message", [
    (["--hf", "{dir}/missing.json"], "cannot read the config"),
    (["--hf", "{dir}/not_json.json"], "is not a JSON config"),
    (["--hf", "{dir}/no_type.json"], "has no model_type"),
    (["--hf", "{dir}/unknown.json"], "unknown model_type 'no-such-model'"),
    (["--hf", "{dir}/llama.json", "{dir}/llama.json"], "either a SPEC or --hf"),
    (["--hf", "{dir}/llama.json", "--format", "npy"], "safetensors"),
    (["--hf", "{dir}/llama.json", "--max-shard-size", "5XB"], "max_shard_size"),
    (["--hf", "{dir}/llama.json", "--max-shard-size", "0"], "max_shard_size"),
    (["--hf", "{dir}/llama.json", "--dtype", "float16", "--max-shard-size=-1GB"], "max_shard_size"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(argv, message, tmp_path, capsys):
    (tmp_path / "not_json.json").write_text("{model_type: llama")
    (tmp_path / "no_type.json").write_text(json.dumps({"hidden_size": 8}))
    (tmp_path / "unknown.json").write_text(json.dumps({"model_type": "no-such-model"}))
    (tmp_path / "llama.json").write_text(json.dumps(CONFIGS["llama"]))
    before = sorted(os.listdir(tmp_path))
    out = tmp_path / "out"
    assert main(["generate", *[a.format(dir=tmp_path) for a in argv], "--out", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before


# ----------------------------------------------------------------------------- bad input
class TinyConfig(transformers.PretrainedConfig):
    model_type = "fastinit-tiny"

    def __init__(self, how="normal", **kwargs):
        self.how = how
        super().__init__(**kwargs)


class Tiny(transformers.PreTrainedModel):
    """A model whose ``_init_weights`` does what ``config.how`` says."""

    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(8, 8)
        self.out = torch.nn.Linear(8, 4)
        if config.how == "buffer as built":
            self.register_buffer("scratch", torch.zeros(3), persistent=False)
        self.post_init()

    def _init_weights(self, module):
        from transformers import initialization as init

        how = self.config.how
        if module is self.proj:
            if how == "tensor method":
                module.weight.data.normal_()
            elif how == "foreign tensor":
                init.normal_(torch.empty(5, 5))
                init.normal_(module.weight)
            elif how != "skips proj":
                init.normal_(module.weight, std=0.1)
            init.zeros_(module.bias)
        elif module is self.out:
            init.normal_(module.weight, std=0.1)
            init.zeros_(module.bias)


def tiny(how):
    with torch.device("meta"):
        return Tiny(TinyConfig(how=how))


def test_a_custom_model_with_a_plain_init_works(tmp_path):
    model = fit.init_model(tiny("normal"), seed=4)
    assert model.proj.weight.std() > 0.05 and torch.equal(model.proj.bias, torch.zeros(8))
    result = fit.save_pretrained(tiny("normal"), tmp_path / "tiny", seed=4)
    assert result.tensors == 4
    files = read_files(tmp_path / "tiny")
    assert torch.equal(files["proj.weight"], model.proj.weight.detach())


SKIPPED = ["does not initialize proj.weight", "tensor.normal_()", "drawn: out.weight"]


@pytest.mark.parametrize("how, init_model_says, save_pretrained_says", [
    # on real storage a tensor method draws from torch's generator; on the meta device it draws nothing
    ("tensor method", ["torch's own generator", "tensor.normal_()"], SKIPPED),
    ("foreign tensor", ["cannot key by parameter name", "normal_ of a (5, 5) tensor", "drawn by name: proj.weight"],
     None),
    ("skips proj", SKIPPED, SKIPPED),
    ("buffer as built", ["does not initialize scratch", "a buffer it leaves as built"], None),
])
def test_an_init_fastinit_cannot_follow_is_refused_naming_what_was_drawn(how, init_model_says, save_pretrained_says,
                                                                         tmp_path):
    for call, messages in ((lambda: fit.init_model(tiny(how), seed=0), init_model_says),
                           (lambda: fit.save_pretrained(tiny(how), tmp_path / "out"), save_pretrained_says)):
        if messages is None:  # a buffer nobody saves does not stop a checkpoint
            continue
        with pytest.raises(ValueError) as err:
            call()
        for message in messages:
            assert message in str(err.value)
    assert os.listdir(tmp_path) == []


def test_a_module_that_is_not_a_transformers_model_is_refused():
    for call in (fit.init_model, fit.spec_from_model, fit.pretrained_files):
        with pytest.raises(TypeError, match="must be a transformers PreTrainedModel.*fastinit.torch.init_module"):
            call(torch.nn.Linear(3, 3))


@pytest.mark.parametrize("source, error, message", [
    ({"hidden_size": 8}, ValueError, "has no model_type"),
    ({"model_type": 3}, ValueError, "has no model_type"),
    ({"model_type": "no-such-model"}, ValueError, "unknown model_type 'no-such-model'"),
    ([1, 2], TypeError, "config must be"),
    (3.5, TypeError, "config must be"),
])
def test_load_config_refuses_bad_configs(source, error, message):
    with pytest.raises(error, match=message):
        fit.load_config(source)


def test_load_config_reads_files_and_directories_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "config.json").write_text(json.dumps(CONFIGS["gpt2"]))
    for source in (tmp_path, tmp_path / "config.json", str(tmp_path)):
        config = fit.load_config(source)
        assert type(config).__name__ == "GPT2Config" and config.n_layer == 2
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="has no model_type"):
        fit.load_config(tmp_path / "list.json")
    with pytest.raises(ValueError, match="cannot read the config"):
        fit.load_config(tmp_path / "missing")


def test_save_pretrained_refuses_to_overwrite_and_leaves_nothing_partial(tmp_path):
    out = tmp_path / "model"
    fit.save_pretrained(CONFIGS["gpt2"], out, seed=0)
    first = read_files(out)
    with pytest.raises(FileExistsError):
        fit.save_pretrained(CONFIGS["gpt2"], out, seed=1)
    assert_same_tensors(read_files(out), first)
    fit.save_pretrained(CONFIGS["gpt2"], out, seed=1, overwrite=True)
    assert not torch.equal(read_files(out)["transformer.wte.weight"], first["transformer.wte.weight"])
    assert sorted(os.listdir(tmp_path)) == ["model"]


@pytest.mark.parametrize("size, expected", [
    ("5GB", 5 * 10**9), ("500MB", 500 * 10**6), ("2GiB", 2 * 2**30), ("100KB", 100_000), ("1.5 gb", 1_500_000_000),
    (1234, 1234), ("7B", 7),
])
def test_parse_size_reads_sizes_as_transformers_writes_them(size, expected):
    assert parse_size(size) == expected


@pytest.mark.parametrize("size", ["5XB", "GB", "-1GB", "0", 0, -5, True, 2.5, None, "nanGB", "infGB"])
def test_parse_size_refuses_bad_sizes(size):
    with pytest.raises((ValueError, TypeError), match="max_shard_size"):
        parse_size(size)


# ---------------------------------------------------------------------- the generic torch path
def test_spec_from_module_names_a_tied_weight_as_transformers_saves_it():
    import fastinit.torch as ft

    model = model_class("llama")(fit.load_config(CONFIGS["llama"]))
    names = [t.name for t in ft.spec_from_module(model, schemes={"*": "zeros"}).tensors]
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names
    with pytest.raises(ValueError, match=r"LlamaRMSNorm: \{'weight': 'ones'\}.*fastinit.transformers.init_model"):
        ft.init_module(model)


def test_the_values_do_not_depend_on_numpy_or_torch_state():
    np.random.seed(1)
    torch.manual_seed(1)
    a = fit.init_model(fit.build_model(CONFIGS["gemma2"]), seed=5)
    np.random.seed(2)
    torch.manual_seed(2)
    b = fit.init_model(fit.build_model(CONFIGS["gemma2"]), seed=5)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
