"""Specs, parameters and the command line under attack: nesting, sizes each format and scheme cannot
hold, overflowing parameters, a bad seed, a closed pipe and malformed API arguments; each is a clear
ValueError / TypeError (exit 2) before anything is written."""

import json
import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import ROOT

import fastinit as fi
from fastinit import cli
from fastinit.checkpoint import boxes, generate, verify
from fastinit.spec import load_spec

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _one(shape, init="normal", dtype="float32", **params):
    return {"tensors": {"w": {"shape": shape, "dtype": dtype, "init": init, **params}}}


# ----------------------------------------------------------------------------------- nesting
@pytest.mark.parametrize("suffix, text", [
    (".json", '{"tensors": {"w": {"shape": [2], "dtype": "float32", "init": "normal", "std": '
     + "[" * 6000 + "]" * 6000 + "}}}"),
    (".toml", '[tensors.w]\nshape = [2]\ndtype = "float32"\ninit = "normal"\nstd = ' + "[" * 6000 + "]" * 6000 + "\n"),
])
def test_deeply_nested_spec_files_are_a_clear_error(tmp_path, capsys, suffix, text):
    if suffix == ".toml":
        pytest.importorskip("tomllib")
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match="nested too deeply|not valid"):
        load_spec(path)
    assert cli.main(["generate", str(path), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "x").exists()


# ------------------------------------------------------------------- sizes formats cannot hold
def test_cutting_a_huge_tensor_into_boxes_materializes_nothing():
    tracemalloc.start()
    try:
        first = next(iter(boxes((2**31, 2**31), 8 << 20)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first == ((0, 0), (1, 8 << 20)) and peak < 1 << 20
    step = 2**41 // 5  # rows of 5 per box; each of the 3 leading slices takes 3 boxes
    assert list(boxes((3, 2**40, 5), 2**41))[-3:] == [((2, 0, 0), (1, step, 5)), ((2, step, 0), (1, step, 5)),
                                                     ((2, 2 * step, 0), (1, 2**40 - 2 * step, 5))]


@pytest.mark.parametrize("fmt", ["safetensors", "npy", "zarr", "dcp"])
def test_a_tensor_larger_than_a_file_can_be_is_refused_before_writing(tmp_path, fmt):
    pytest.importorskip({"zarr": "zarr", "dcp": "torch"}.get(fmt, "numpy"))
    spec = load_spec(_one([2**31, 2**31]))  # 2**64 bytes of float32
    with pytest.raises(ValueError, match="tensor 'w': .*2\\*\\*63"):
        generate(spec, tmp_path / "x", format=fmt)
    assert os.listdir(tmp_path) == []


def test_zero_size_shapes_with_a_dim_past_2_62_are_refused():
    with pytest.raises(ValueError, match="tensor 'w': shape .*2\\*\\*62"):
        load_spec(_one([0, 2**70]))
    with pytest.raises(ValueError, match="shape .*2\\*\\*62"):
        fi.init((0, 2**63), "zeros")


@pytest.mark.parametrize("fmt, dims", [("zarr", 33), ("npy", 65), ("safetensors", 65)])
def test_more_dims_than_the_format_holds_are_refused_naming_the_tensor(tmp_path, fmt, dims):
    pytest.importorskip({"zarr": "zarr"}.get(fmt, "numpy"))
    with pytest.raises(ValueError, match="tensor 'w'.* dim"):
        generate(_one([1] * dims, "ones"), tmp_path / "x", format=fmt)
    assert os.listdir(tmp_path) == []


def test_a_zarr_tensor_of_32_dims_is_written_and_verified(tmp_path):
    pytest.importorskip("zarr")
    generate(_one([1] * 30 + [3, 2]), tmp_path / "x", format="zarr", seed=1)
    assert verify(tmp_path / "x") == []


@pytest.mark.parametrize("init", ["orthogonal", "delta_orthogonal"])
def test_a_whole_tensor_scheme_that_cannot_fit_in_memory_is_refused_naming_the_tensor(init):
    shape = [2**30, 2**30] if init == "orthogonal" else [2**20, 2**20, 3, 3]
    with pytest.raises(ValueError, match=f"tensor 'w': init '{init}' needs about .* GiB of memory"):
        load_spec(_one(shape, init))


def test_sparse_columns_that_cannot_fit_in_memory_are_refused():
    with pytest.raises(ValueError, match="tensor 'w': init 'sparse' needs about .*whole columns"):
        load_spec(_one([2**50, 4], "sparse", sparsity=0.5))


def test_eye_and_dirac_of_huge_shapes_are_validated_without_materializing_them():
    tracemalloc.start()
    try:
        load_spec(_one([2**31, 2**31], "eye"))
        load_spec(_one([2**30, 2**30, 3], "dirac", groups=2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    corner = fi.eye_(np.empty((3, 4), np.float32), global_shape=(2**31, 2**31), offset=(2**31 - 3, 2**31 - 5))
    assert corner.tolist() == [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


# --------------------------------------------------------------------- overflowing parameters
@pytest.mark.parametrize("call, message", [
    (lambda w: fi.xavier_uniform_(w, 1e300, seed=0), "gain=1e.300 is too large"),
    (lambda w: fi.xavier_normal_(w, -1e300, seed=0), "gain=-1e.300 is too large"),
    (lambda w: fi.kaiming_uniform_(w, 1e200, seed=0), "a=1e.200 is too large"),
    (lambda w: fi.kaiming_normal_(w, a=1e200, seed=0), "a=1e.200 is too large"),
    (lambda w: fi.calculate_gain("leaky_relu", 1e200), "param=1e.200 is too large"),
    (lambda w: fi.variance_scaling_(w, 1e308, "fan_in", "uniform", fans=(1, 1), seed=0), "scale=1e.308 is too large"),
    (lambda w: fi.constant_(w, 1e39), "val=1e.39 overflows float32"),
    (lambda w: fi.constant_(w.astype(np.float16), 70000), "val=70000.0 overflows float16"),
    (lambda w: fi.constant_(w.astype(np.float16), -65520), "overflows float16"),
])
def test_overflowing_parameters_are_value_errors_naming_them(call, message):
    w = np.full((4, 4), 7.0, np.float32)
    with pytest.raises(ValueError, match=message):
        call(w)
    assert (w == 7.0).all()


def test_constants_at_the_edge_of_a_dtype_are_still_written_as_numpy_writes_them():
    for value in (65504.0, 65519.0, -65519.0):  # these round to the largest finite float16
        expected = np.empty(3, np.float16)
        expected[...] = value
        assert fi.constant_(np.empty(3, np.float16), value).tobytes() == expected.tobytes()
    assert fi.constant_(np.empty(2, np.float32), 3.4e38).tolist() == [np.float32(3.4e38)] * 2


@pytest.mark.parametrize("entry", [
    {"init": "xavier_uniform", "gain": 1e300},
    {"init": "kaiming_normal", "a": 1e200},
    {"init": "constant", "val": 1e39},
])
def test_overflowing_parameters_in_a_spec_exit_2_and_write_nothing(tmp_path, capsys, entry):
    (tmp_path / "s.json").write_text(json.dumps({"tensors": {"w": {"shape": [4, 4], "dtype": "float32", **entry}}}))
    assert cli.main(["generate", str(tmp_path / "s.json"), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit: error: tensor 'w':") and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


# --------------------------------------------------------------------------------------- seeds
def test_a_bad_seed_is_refused_before_anything_is_read_or_written(tmp_path, capsys):
    path = tmp_path / "c.safetensors"
    generate(_one([4], "ones"), path)  # no tensor draws
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match="seed must be in"):
            verify(path, seed=seed)
        with pytest.raises(ValueError, match="seed must be in"):
            verify(tmp_path / "does-not-exist", seed=seed)
        assert cli.main(["verify", str(path), "--seed", str(seed)]) == 2
        assert cli.main(["generate", "--out", str(tmp_path / "x"), "--seed", str(seed), "--quiet"]) == 2
        assert cli.main(["generate", "--hf", str(tmp_path / "no-config.json"), "--out", str(tmp_path / "x"),
                         "--seed", str(seed)]) == 2
        assert "seed must be in [0, 2**64)" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["c.safetensors"]


# ------------------------------------------------------------------------------- small things
def test_inspect_into_a_closed_pipe_exits_0_quietly(tmp_path):
    path = tmp_path / "many.safetensors"
    generate({"tensors": {f"layer.{i}.weight": {"shape": [2], "dtype": "float32", "init": "ones"}
                          for i in range(3000)}}, path)
    reader = subprocess.Popen([sys.executable, "-m", "fastinit", "inspect", str(path)], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = reader.stdout.readline()  # as `| head -1` does: one line, then the pipe is closed
    reader.stdout.close()
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=300) == 0 and err == "" and first.startswith(str(path).encode())


def test_verify_into_a_closed_pipe_keeps_its_exit_status(tmp_path):
    path = tmp_path / "many.safetensors"
    spec = {"tensors": {f"t{i}": {"shape": [2], "dtype": "float32", "init": "ones"} for i in range(3000)}}
    generate(spec, path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"tensors": {n: {**e, "init": "zeros"} for n, e in spec["tensors"].items()}}))
    reader = subprocess.Popen([sys.executable, "-m", "fastinit", "verify", str(path), str(other)], cwd=ROOT,
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline().startswith(b"MISMATCH t0:")
    reader.stdout.close()
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=300) == 1 and err == ""


@pytest.mark.parametrize("call, error, message", [
    (lambda: fi.normal_(np.empty((4, 4), np.float32), seed=0, global_shape=(8, 4), offset=(True, 0)), TypeError,
     "offset"),
    (lambda: fi.normal_(np.empty((4, 4), np.float32), seed=0, global_shape=(8, 4), offset=np.array([1.0, 0.0])),
     TypeError, "offset"),
    (lambda: fi.init((-1, 4), "normal"), ValueError, "shape must be non-negative"),
    (lambda: fi.init((2, 2), "normal", None), TypeError, "dtype must be one of"),
    (lambda: fi.init((2, 2), "normal", "int8"), TypeError, "dtype must be one of"),
])
def test_malformed_api_arguments_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_init_still_allocates_every_dtype_its_schemes_fill():
    assert fi.init((4,), "random_bits", "uint32", seed=0).tolist() == list(fi.philox4x32((0, 0, 0, 0), fi.key(0)))
    assert fi.init((2,), "ones", np.float16).dtype == np.float16 and math.isclose(fi.init((1,), "ones")[0], 1.0)
