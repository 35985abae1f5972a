"""verify under attack: it must never say "matches" of a file whose values differ from the spec's
(a zero's sign, trailing bytes, an edited header, a sample of nothing), and a malformed file is one
clear error line, never a traceback or a hang."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import fastinit as fi
from fastinit import cli
from fastinit.checkpoint import generate, verify

SPEC = {"tensors": {
    "w": {"shape": [40, 30], "dtype": "float32", "init": "normal"},
    "z": {"shape": [16], "dtype": "float32", "init": "zeros"},
}}
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli_fails_cleanly(capsys, args, codes=(1, 2)):
    """The command exits 1 or 2 with one ``fastinit: error:`` line or a mismatch, no traceback."""
    code = cli.main(args)
    captured = capsys.readouterr()
    assert code in codes, captured
    assert "Traceback" not in captured.err and "matches (" not in captured.out
    return captured


def _safetensors(tmp_path):
    path = tmp_path / "m.safetensors"
    generate(SPEC, path, seed=1)
    return path


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _with_header(path, header, data):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


# ---------------------------------------------------------------------------- bits, not values
def test_a_negative_zero_is_not_a_zero(tmp_path, capsys):
    path = _safetensors(tmp_path)
    header, data = _header(path)
    begin = header["z"]["data_offsets"][0]
    data = bytearray(data)
    data[begin + 4 * 5:begin + 4 * 6] = np.array([-0.0], np.float32).tobytes()
    _with_header(path, header, bytes(data))
    problems = verify(path)
    assert [p.tensor for p in problems] == ["z"] and "index [5]" in problems[0].problem
    _cli_fails_cleanly(capsys, ["verify", str(path)], codes=(1,))


# --------------------------------------------------------------------------- safetensors framing
def test_trailing_bytes_after_the_last_tensor_are_refused_as_the_safetensors_library_does(tmp_path, capsys):
    safetensors = pytest.importorskip("safetensors")
    st = pytest.importorskip("safetensors.numpy")
    path = _safetensors(tmp_path)
    with open(path, "ab") as file:
        file.write(b"\0" * 8)
    with pytest.raises(safetensors.SafetensorError, match="not fully covered"):  # the peer refuses the file
        st.load_file(str(path))
    with pytest.raises(ValueError, match="the file has"):
        verify(path)
    _cli_fails_cleanly(capsys, ["verify", str(path)])


@pytest.mark.parametrize("edit", [
    lambda h: h["w"].pop("dtype"),
    lambda h: h["w"].pop("data_offsets"),
    lambda h: h["w"].update(data_offsets=[0, 12]),
    lambda h: h["w"].update(shape="40x30"),
    lambda h: h.update(__metadata__=["a", "list"]),
    lambda h: h.update(__metadata__={"fastinit.seed": 1}),
    lambda h: h["__metadata__"].update({"fastinit.spec": "{"}),
    lambda h: h["__metadata__"].update({"fastinit.spec": json.dumps({"tensors": []})}),
    lambda h: h["__metadata__"].update({"fastinit.seed": "minus one"}),
], ids=["no-dtype", "no-offsets", "short-offsets", "shape-str", "metadata-list", "metadata-int", "spec-not-json",
        "spec-not-a-spec", "seed-not-int"])
def test_malformed_safetensors_headers_are_one_error_line(tmp_path, capsys, edit):
    path = _safetensors(tmp_path)
    header, data = _header(path)
    edit(header)
    _with_header(path, header, data)
    with pytest.raises(ValueError):
        verify(path)
    err = _cli_fails_cleanly(capsys, ["verify", str(path)], codes=(2,)).err
    assert err.startswith("fastinit: error:") and err.count("\n") == 1
    _cli_fails_cleanly(capsys, ["inspect", str(path)], codes=(0, 2))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("where", ["file", "npy-member", "manifest"])
def test_a_fifo_is_refused_at_once_not_read_forever(tmp_path, where):
    if where == "file":
        target = tmp_path / "fifo.safetensors"
        os.mkfifo(target)
    else:
        target = tmp_path / "ckpt"
        generate(SPEC, target, format="npy", seed=1)
        member = target / ("w.npy" if where == "npy-member" else "fastinit.json")
        member.unlink()
        os.mkfifo(member)
    for command in ("verify", "inspect"):
        done = subprocess.run([sys.executable, "-m", "fastinit", command, str(target)], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "is not a regular file" in done.stderr, done.stderr


# ------------------------------------------------------------------------------ npy headers
@pytest.mark.parametrize("old, new", [(b"'<f4'", b"'>f4'"), (b"'<f4'", b"'<i4'"),
                                      (b"'fortran_order': False", b"'fortran_order': True ")])
def test_an_edited_npy_header_never_matches(tmp_path, capsys, old, new):
    out = tmp_path / "ckpt"
    generate(SPEC, out, format="npy", seed=1)
    path = out / "w.npy"
    raw = path.read_bytes()
    assert raw.count(old) == 1
    path.write_bytes(raw.replace(old, new))
    spec_values = fi.normal_(np.empty((40, 30), np.float32), seed=1, name="w")
    assert not np.array_equal(np.load(path), spec_values)  # the peer: np.load reads other numbers
    with pytest.raises(ValueError, match="header says"):
        verify(out)
    _cli_fails_cleanly(capsys, ["verify", str(out)], codes=(2,))


def test_an_npy_file_shorter_or_longer_than_its_header_says_is_refused(tmp_path, capsys):
    out = tmp_path / "ckpt"
    generate(SPEC, out, format="npy", seed=1)
    with open(out / "z.npy", "ab") as file:
        file.write(b"\0" * 4)
    with pytest.raises(ValueError, match="the file has"):
        verify(out)
    _cli_fails_cleanly(capsys, ["verify", str(out)], codes=(2,))


def test_an_npy_manifest_without_the_spec_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "ckpt"
    generate(SPEC, out, format="npy", seed=1)
    manifest = json.loads((out / "fastinit.json").read_text())
    for broken in ({k: v for k, v in manifest.items() if k != "fastinit.spec"}, [manifest], "text"):
        (out / "fastinit.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match="fastinit"):
            verify(out)
        _cli_fails_cleanly(capsys, ["verify", str(out)], codes=(2,))
        _cli_fails_cleanly(capsys, ["inspect", str(out)], codes=(2,))


# ------------------------------------------------------------------------------------- zarr
def test_an_edited_zarr_data_type_never_matches(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    out = tmp_path / "ckpt.zarr"
    generate(SPEC, out, format="zarr", seed=1)
    meta = out / "w" / "zarr.json"
    array = json.loads(meta.read_text())
    assert array["data_type"] == "float32"
    meta.write_text(json.dumps({**array, "data_type": "int32"}))  # the attributes still say float32
    assert zarr.open_group(str(out), mode="r")["w"].dtype == np.int32  # the peer reads other numbers
    with pytest.raises(ValueError, match="data type is int32, its fastinit.dtype attribute says float32"):
        verify(out)
    _cli_fails_cleanly(capsys, ["verify", str(out)], codes=(2,))


def test_a_truncated_zarr_chunk_is_one_error_line(tmp_path, capsys):
    pytest.importorskip("zarr")
    out = tmp_path / "ckpt.zarr"
    generate(SPEC, out, format="zarr", seed=1, chunk_bytes=1000)
    chunk = next(p for p in sorted((out / "w" / "c").rglob("*")) if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(ValueError, match="tensor 'w': a chunk cannot be read"):
        verify(out)
    _cli_fails_cleanly(capsys, ["verify", str(out)], codes=(2,))
    _cli_fails_cleanly(capsys, ["inspect", str(out)], codes=(2,))


# ------------------------------------------------------------------------------------- dcp
def test_a_damaged_dcp_metadata_file_is_one_error_line(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "seed"
    generate(SPEC, out, format="dcp", seed=1)
    assert verify(out) == []
    (out / ".metadata").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not readable DCP metadata"):
        verify(out)
    _cli_fails_cleanly(capsys, ["verify", str(out)], codes=(2,))


# --------------------------------------------------------------------------------- --sample
def test_sample_zero_is_refused_and_a_sample_never_claims_every_value(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    generate(SPEC, path, seed=1, chunk_bytes=400)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="sample must be a positive int"):
            verify(path, sample=bad, chunk_bytes=400)
    _cli_fails_cleanly(capsys, ["verify", str(path), "--sample", "0"], codes=(2,))
    checked = []
    assert verify(path, sample=1, chunk_bytes=400, progress=lambda n, name: checked.append((name, n))) == []
    assert checked == [("w", 360), ("z", 64)]  # one box of w (its first 3 rows), all of z
    assert cli.main(["verify", str(path), "--sample", "1"]) == 0
    out = capsys.readouterr().out
    assert "every value" in out  # the command line's boxes are 32 MiB: one per tensor here
    big = tmp_path / "big.safetensors"
    generate({"tensors": {"w": {"shape": [3000, 3000], "dtype": "float32", "init": "normal"}}}, big, seed=1)
    assert cli.main(["verify", str(big), "--sample", "1"]) == 0
    out = capsys.readouterr().out
    assert "every value" not in out and "33,552,000 of 36,000,000 bytes" in out
