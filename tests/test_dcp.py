"""torch.distributed.checkpoint seed checkpoints: ``generate(format="dcp")`` loads with torch's own
``dcp.load`` into plain tensors and into models sharded any way (FSDP2 ``fully_shard``,
tensor-parallel DTensors; gloo, 1, 2 and 4 processes), each assembling to the single-process
values; an FSDP2 model built on meta and filled rank-locally by a recipe is the same on every
world size; verify / inspect read DCP directories chunk by chunk."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from conftest import free_port

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)
import torch.distributed.checkpoint as dcp  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from trainer_models import TorchtitanLike  # noqa: E402

import fastinit.checkpoint as ckpt  # noqa: E402
import fastinit.torch as fit  # noqa: E402
from fastinit.spec import load_spec  # noqa: E402

SIZES = {"dim": 32, "layers": 2, "hidden": 64, "vocab": 96}
RECIPE = {"recipe": "torchtitan-llama3"}
SPEC = {"tensors": {
    "a": {"shape": [300, 70], "dtype": "bfloat16", "init": "normal", "std": 0.02},
    "b": {"shape": [5], "dtype": "float32", "init": "ones"},
    "o": {"shape": [40, 30], "dtype": "float64", "init": "orthogonal"},
    "k": {"shape": [8, 4, 3, 3], "dtype": "float16", "init": "kaiming_uniform"},
    "s": {"shape": [], "dtype": "float32", "init": "normal"},
    "e": {"shape": [0, 3], "dtype": "float32", "init": "normal"}}}


def _empty_like_spec(spec):
    return {t.name: torch.empty(t.shape, dtype=getattr(torch, t.dtype)) for t in spec.tensors}


@pytest.mark.parametrize("chunk_bytes", [4000, 32 << 20])
def test_dcp_load_gives_the_safetensors_values(tmp_path, chunk_bytes):
    spec = load_spec(SPEC)
    ckpt.generate(spec, tmp_path / "seed", seed=3, format="dcp", chunk_bytes=chunk_bytes)
    ckpt.generate(spec, tmp_path / "x.safetensors", seed=3)
    loaded = _empty_like_spec(spec)
    dcp.load(loaded, checkpoint_id=str(tmp_path / "seed"), no_dist=True)
    expected = load_file(tmp_path / "x.safetensors")
    for name, tensor in loaded.items():
        assert torch.equal(tensor.view(torch.uint8) if tensor.dim() else tensor, expected[name].view(torch.uint8)
                           if tensor.dim() else expected[name]), name
    assert ckpt.verify(tmp_path / "seed") == []
    fmt, metadata, rows = ckpt.summarize(tmp_path / "seed")
    assert fmt == "dcp" and metadata["fastinit.seed"] == "3" and [r["name"] for r in rows] == list(SPEC["tensors"])
    assert sorted(os.listdir(tmp_path)) == ["seed", "x.safetensors"]  # nothing partial left


def test_verify_finds_a_changed_byte_in_a_dcp_chunk(tmp_path):
    ckpt.generate(load_spec(SPEC), tmp_path / "seed", seed=3, format="dcp", chunk_bytes=4000)
    rows = 4000 // (70 * 2)  # rows per chunk: the second chunk starts at row 28
    reader = dcp.FileSystemReader(str(tmp_path / "seed"))
    # the chunk at [28, 0] (the metadata lists chunks in the order the writer threads finished them)
    info = next(v for k, v in reader.read_metadata().storage_data.items() if k.fqn == "a" and k.offset[0] == rows)
    data = tmp_path / "seed" / info.relative_path
    raw = bytearray(data.read_bytes())
    values = fit.normal_(torch.empty(300, 70, dtype=torch.bfloat16), std=0.02, seed=3, name="a")
    chunk = values[rows:2 * rows].contiguous().view(torch.uint8).numpy().tobytes()
    at = raw.index(chunk, info.offset, info.offset + info.length)  # the chunk's tensor data in its blob
    raw[at + 101] ^= 0x40
    data.write_bytes(bytes(raw))
    problems = ckpt.verify(tmp_path / "seed")
    assert [p.tensor for p in problems] == ["a"] and "1 values differ" in problems[0].problem
    raw[info.offset + info.length - 20] ^= 0x40  # the blob's own structure
    data.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="at \\[28, 0\\] is not a readable torch.save blob"):
        ckpt.verify(tmp_path / "seed")


def test_dcp_refuses_to_overwrite_or_resume(tmp_path):
    ckpt.generate(load_spec(SPEC), tmp_path / "seed", format="dcp")
    with pytest.raises(FileExistsError, match="overwrite"):
        ckpt.generate(load_spec(SPEC), tmp_path / "seed", format="dcp")
    with pytest.raises(ValueError, match="not resumable"):
        ckpt.generate(load_spec(SPEC), tmp_path / "other", format="dcp", resume=True)
    ckpt.generate(load_spec(SPEC), tmp_path / "seed", format="dcp", overwrite=True, seed=9)
    assert ckpt.verify(tmp_path / "seed") == [] and ckpt.summarize(tmp_path / "seed")[1]["fastinit.seed"] == "9"


def test_dcp_without_torch_is_a_clear_error(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import fastinit.checkpoint as c\n"
            "try:\n    c.generate({'tensors': {'w': {'shape': [2], 'dtype': 'float32', 'init': 'ones'}}}, "
            f"{str(tmp_path / 'x')!r}, format='dcp')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "the dcp format needs torch" in out and not (tmp_path / "x").exists()


def test_cli_generates_verifies_and_inspects_dcp(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(__import__("json").dumps(SPEC))
    run = [sys.executable, "-m", "fastinit"]
    subprocess.run([*run, "generate", str(spec), "--out", str(tmp_path / "seed"), "--format", "dcp",
                    "--seed", "4"], check=True, capture_output=True)
    verify = subprocess.run([*run, "verify", str(tmp_path / "seed")], capture_output=True, text=True)
    assert verify.returncode == 0 and "match" in verify.stdout + verify.stderr
    inspect = subprocess.run([*run, "inspect", str(tmp_path / "seed")], capture_output=True, text=True, check=True)
    assert "dcp" in inspect.stdout and "orthogonal" not in inspect.stderr


# ----------------------------------------------------------------------------- distributed
def _full(state):
    from torch.distributed.tensor import DTensor

    return {k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().clone() for k, v in state.items()}


def _fsdp(mesh):
    from torch.distributed.fsdp import fully_shard

    with torch.device("meta"):
        model = TorchtitanLike(**SIZES)
    for block in model.layers.values():
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model.to_empty(device="cpu")


def _tensor_parallel(mesh):
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    with torch.device("meta"):
        model = TorchtitanLike(**SIZES)
    plan = {}
    for i in model.layers:
        plan.update({f"layers.{i}.attention.wq": ColwiseParallel(), f"layers.{i}.attention.wk": ColwiseParallel(),
                     f"layers.{i}.attention.wv": ColwiseParallel(), f"layers.{i}.attention.wo": RowwiseParallel(),
                     f"layers.{i}.feed_forward.w1": ColwiseParallel(), f"layers.{i}.feed_forward.w3": ColwiseParallel(),
                     f"layers.{i}.feed_forward.w2": RowwiseParallel()})
    plan["output"] = ColwiseParallel()
    return parallelize_module(model, mesh, plan).to_empty(device="cpu")


def _worker(rank, world, port, seed_dir, out_dir):
    from torch.distributed.device_mesh import init_device_mesh

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    results = {}
    for layout, build in (("fsdp", _fsdp), ("tp", _tensor_parallel)):
        model = build(mesh)
        state = model.state_dict()
        dcp.load(state, checkpoint_id=seed_dir)
        results[f"{layout} loaded"] = _full(state)
        model = fit.init_module(build(mesh), seed=11, **RECIPE)  # in place, rank-local
        results[f"{layout} in place"] = _full(model.state_dict())
    if rank == 0:
        with open(os.path.join(out_dir, "results.pkl"), "wb") as f:
            pickle.dump(results, f)
    dist.destroy_process_group()
    os._exit(0)  # gloo's teardown can abort the interpreter; everything is written (see test_torch_distributed)


@pytest.fixture(scope="module")
def seed_checkpoint(tmp_path_factory):
    """The recipe's DCP seed checkpoint, written in one process from a meta model's spec."""
    with torch.device("meta"):
        model = TorchtitanLike(**SIZES)
    where = tmp_path_factory.mktemp("dcp") / "seed"
    ckpt.generate(fit.spec_from_module(model, **RECIPE), where, seed=11, format="dcp", chunk_bytes=2048)
    return str(where)


@pytest.mark.parametrize("world", [1, 2, 4])
def test_seed_checkpoint_loads_into_any_sharding(world, seed_checkpoint, tmp_path):
    mp.spawn(_worker, args=(world, free_port(), seed_checkpoint, str(tmp_path)), nprocs=world, join=True)
    with open(tmp_path / "results.pkl", "rb") as f:
        results = pickle.load(f)
    expected = fit.init_module(TorchtitanLike(**SIZES), seed=11, **RECIPE).state_dict()
    for key, state in results.items():
        assert set(state) == set(expected), key
        for name, tensor in state.items():
            assert torch.equal(tensor, expected[name]), (key, name)
    assert not np.array_equal(expected["layers.0.attention.wo.weight"], expected["layers.1.attention.wo.weight"])
