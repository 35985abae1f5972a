"""The checkpoint writer under attack: two writers on one path, overwrite of what fastinit did not
write, invalid paths, failed starts, kills before the first progress record, a killed zarr chunk
write, Ctrl-C twice."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT

import fastinit as fi
from fastinit import cli
from fastinit._atomic import write_atomic, writer_lock
from fastinit.checkpoint import Interrupted, generate, verify

SPEC = {"tensors": {
    "a": {"shape": [64, 50], "dtype": "float32", "init": "normal", "std": 0.5},
    "b": {"shape": [40], "dtype": "float16", "init": "uniform"},
    "c": {"shape": [30, 20], "dtype": "float64", "init": "kaiming_normal"},
    "d": {"shape": [7], "dtype": "float32", "init": "ones"},
}}
CHUNK = 400  # bytes per box: dozens of boxes
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


def _tree(path):
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return path.read_bytes()


def _python(code, **kwargs):
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


# ------------------------------------------------------------------------ two writers, one path
@pytest.mark.parametrize("fmt", ["safetensors", "dcp"])
def test_a_second_writer_of_a_path_stops_at_once_and_leaves_the_first_run_alone(tmp_path, spec_file, fmt):
    if fmt == "dcp":
        pytest.importorskip("torch")
    out, started, release = tmp_path / "x", tmp_path / "started", tmp_path / "release"
    first = _python(  # writes seed 0, and waits inside its first box until told to go on
        "import os, time\nfrom fastinit.checkpoint import generate\n"
        "def hold(nbytes, name):\n"
        f"    if not os.path.exists({str(started)!r}):\n"
        f"        open({str(started)!r}, 'w').close()\n"
        f"        while not os.path.exists({str(release)!r}): time.sleep(0.01)\n"
        f"generate({str(spec_file)!r}, {str(out)!r}, seed=0, format={fmt!r}, chunk_bytes={CHUNK}, progress=hold)\n")
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        second = subprocess.run([sys.executable, "-m", "fastinit", "generate", str(spec_file), "--out", str(out),
                                 "--format", fmt, "--overwrite", "--seed", "1", "--quiet"],
                                cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1, second.stderr
        assert f"is being written by process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        release.touch()
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert verify(out) == [] and fi.checkpoint.summarize(out)[1]["fastinit.seed"] == "0"  # the first run's
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["spec.json", "x", "started", "release"])


def test_the_lock_excludes_writers_in_one_process_too_and_is_removed(tmp_path):
    path = str(tmp_path / "w.npy")
    with writer_lock(path):
        with pytest.raises(BlockingIOError, match="being written by process"):
            fi.init((4, 4), "ones", path=path)
        with pytest.raises(BlockingIOError):
            generate(SPEC, path, format="npy")
    assert os.listdir(tmp_path) == []
    fi.init((4, 4), "ones", path=path)
    assert os.listdir(tmp_path) == ["w.npy"]


def test_concurrent_small_file_replacements_never_share_a_temporary_file(tmp_path):
    target, errors = str(tmp_path / "progress"), []

    def replace_many(k):
        try:
            for i in range(200):
                write_atomic(target, f"{k} {i}".encode())
        except OSError as err:
            errors.append(err)

    threads = [threading.Thread(target=replace_many, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and os.listdir(tmp_path) == ["progress"]


# ---------------------------------------------------------------- overwrite only what fastinit wrote
@pytest.mark.parametrize("fmt, extra", [("npy", {}), ("zarr", {}), ("safetensors", {"max_shard_size": "1KB"}),
                                        ("dcp", {})])
def test_overwrite_never_deletes_a_directory_fastinit_did_not_write(tmp_path, fmt, extra):
    pytest.importorskip({"zarr": "zarr", "dcp": "torch"}.get(fmt, "numpy"))
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "notes.txt").write_text("precious")
    (mine / "fastinit.json").write_text("{}")  # a manifest's name, but not fastinit's
    with pytest.raises(FileExistsError, match="did not write"):
        generate(SPEC, mine, format=fmt, overwrite=True, **extra)
    assert (mine / "sub" / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    ckpt = tmp_path / "ckpt"  # fastinit's own checkpoint directory is replaced
    generate(SPEC, ckpt, format=fmt, seed=1, **extra)
    generate(SPEC, ckpt, format=fmt, seed=2, overwrite=True, **extra)
    assert fi.checkpoint.summarize(ckpt)[1]["fastinit.seed"] == "2"
    assert cli.main(["generate", "--out", str(mine), "--format", fmt, "--overwrite", "--quiet"]) == 1
    assert (mine / "sub" / "notes.txt").read_text() == "precious"


def test_a_file_checkpoint_never_replaces_a_directory_and_says_so_before_writing(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        generate(SPEC, folder, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"] and list(folder.iterdir()) == []


# --------------------------------------------------------------------------------- invalid paths
@pytest.mark.parametrize("path", ["", ".", "..", "sub/", "x\0y", "n" * 250])
def test_invalid_output_paths_are_refused_before_anything_is_written(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="output path"):
        generate(SPEC, path)
    assert cli.main(["generate", "--out", path, "--quiet"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"] and list((tmp_path / "sub").iterdir()) == []


# ------------------------------------------------------------------------ names the format refuses
@pytest.mark.parametrize("fmt, name, message", [
    ("zarr", "zarr.json", "group's metadata"),
    ("npy", "w" * 260, "at most"),
    ("zarr", "w" * 260, "at most"),
    ("npy", "\ud800", "UTF-8"),
    ("safetensors", "\ud800", "UTF-8"),
])
def test_names_the_format_cannot_store_are_refused_up_front(tmp_path, fmt, name, message):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    with pytest.raises(ValueError, match=message):
        generate({"tensors": {"ok": SPEC["tensors"]["d"], name: SPEC["tensors"]["d"]}}, tmp_path / "x", format=fmt)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs resource.RLIMIT_NOFILE")
def test_a_failed_start_leaves_no_partial_and_a_rerun_needs_no_resume(tmp_path):
    spec = {"tensors": {f"t{i}": {"shape": [2], "dtype": "float32", "init": "ones"} for i in range(200)}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    out = tmp_path / "x"
    code = ("import resource, sys; from fastinit.cli import main; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100)); "
            f"sys.exit(main(['generate', {str(tmp_path / 's.json')!r}, '--out', {str(out)!r}, '--format', 'npy',"
            " '--quiet']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "Too many open files" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]
    generate(tmp_path / "s.json", out, format="npy")
    assert verify(out) == []


# -------------------------------------------------------------------- killed before any record
@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
@pytest.mark.parametrize("fmt", ["safetensors", "npy"])
def test_resume_after_a_kill_before_the_first_progress_record_starts_over(tmp_path, spec_file, fmt):
    reference, out = tmp_path / "ref", tmp_path / "x"
    generate(spec_file, reference, seed=3, format=fmt, chunk_bytes=CHUNK)
    killed = _python(
        "import os, signal\nfrom fastinit.checkpoint import generate\n"
        "calls = []\n"
        "def kill(nbytes, name):\n"
        "    calls.append(name)\n"
        "    if len(calls) == 5: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"generate({str(spec_file)!r}, {str(out)!r}, seed=3, format={fmt!r}, chunk_bytes={CHUNK}, progress=kill)\n")
    killed.communicate(timeout=300)
    assert killed.returncode == -9
    assert (tmp_path / "x.partial").exists() and not (tmp_path / "x.partial.progress").exists()
    generate(spec_file, out, seed=3, format=fmt, chunk_bytes=CHUNK, resume=True)
    assert _tree(out) == _tree(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref", "spec.json", "x"]


def test_resume_without_any_partial_writes_the_whole_checkpoint(tmp_path, spec_file):
    generate(spec_file, tmp_path / "x", seed=3, resume=True)
    assert verify(tmp_path / "x") == []


# ------------------------------------------------------------------ zarr: a killed chunk write
def test_resumed_zarr_group_holds_no_temporary_chunk_of_a_killed_write(tmp_path, spec_file):
    pytest.importorskip("zarr")
    reference, out = tmp_path / "ref", tmp_path / "x"
    generate(spec_file, reference, seed=3, format="zarr", chunk_bytes=CHUNK)
    calls = []

    def interrupt(nbytes, name):
        calls.append(name)
        if len(calls) == 10:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        generate(spec_file, out, seed=3, format="zarr", chunk_bytes=CHUNK, progress=interrupt)
    # what zarr-python's atomic chunk write leaves when the process is killed inside it
    stray = tmp_path / "x.partial" / "a" / "c" / "0" / f"0.{'ab12' * 8}.partial"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a chunk")
    generate(spec_file, out, seed=3, format="zarr", chunk_bytes=CHUNK, resume=True)
    assert _tree(out) == _tree(reference)


# --------------------------------------------------------------------------------- Ctrl-C twice
@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGINT to the process")
def test_ctrl_c_again_while_the_first_is_recorded_still_leaves_a_resumable_partial(tmp_path):
    spec_file = tmp_path / "many.json"  # the command line writes a box per tensor here: 12 boxes
    spec_file.write_text(json.dumps({"tensors": {f"t{i}": SPEC["tensors"]["a"] for i in range(12)}}))
    reference, out = tmp_path / "ref.safetensors", tmp_path / "x.safetensors"
    generate(spec_file, reference, seed=3)
    code = (  # Ctrl-C every 10 ms from box 5 on, while syncing the interrupted run takes 0.5 s
        "import os, signal, sys, threading, time\n"
        # Ctrl-C as in a terminal: a child of a background job of a script inherits SIGINT ignored
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from fastinit import checkpoint, cli\n"
        "real_sync = checkpoint._FileSink.sync\n"
        "def slow_sync(self):\n"
        "    time.sleep(0.5)\n"
        "    real_sync(self)\n"
        "checkpoint._FileSink.sync = slow_sync\n"
        "def presses():\n"
        "    for _ in range(20):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.01)\n"
        "calls = []\n"
        "real_call = cli._Progress.__call__\n"
        "def call(self, nbytes, name):\n"
        "    calls.append(name)\n"
        "    if len(calls) == 5:\n"
        "        threading.Thread(target=presses).start()\n"
        "        time.sleep(5)\n"
        "    real_call(self, nbytes, name)\n"
        "cli._Progress.__call__ = call\n"
        f"sys.exit(cli.main(['generate', {str(spec_file)!r}, '--out', {str(out)!r}, '--seed', '3', '--quiet']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 130 and "run again with --resume" in done.stderr, done.stderr
    record = json.loads((tmp_path / "x.safetensors.partial.progress").read_text())
    assert record["boxes_done"] >= 4
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert cli.main(["generate", str(spec_file), "--out", str(out), "--seed", "3", "--resume", "--quiet"]) == 0
    assert out.read_bytes() == reference.read_bytes()


def test_interrupt_bookkeeping_still_works_from_a_worker_thread(tmp_path, spec_file):
    calls, errors = [], []

    def interrupt(nbytes, name):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt

    def run():
        try:
            generate(spec_file, tmp_path / "x", chunk_bytes=CHUNK, progress=interrupt)
        except Interrupted as err:
            errors.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert len(errors) == 1 and (tmp_path / "x.partial.progress").exists()
    generate(spec_file, tmp_path / "x", chunk_bytes=CHUNK, resume=True)
    assert verify(tmp_path / "x") == []
