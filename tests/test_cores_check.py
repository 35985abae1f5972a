"""The prepared many-core check (``benchmarks/cores_check.py``) runs, and reports every thread count."""

import importlib.util
import json
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "cores_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("cores_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thread_counts_are_powers_of_two_then_every_core():
    counts = _module().thread_counts
    assert counts(1) == [1]
    assert counts(2) == [1, 2]
    assert counts(6) == [1, 2, 4, 6]
    assert counts(16) == [1, 2, 4, 8, 16]


def test_a_small_run_reports_each_fill_at_each_thread_count(tmp_path):
    out = tmp_path / "cores.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--log2", "16", "--no-checkpoint", "--json", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["fills"]["same_bits_at_every_count"] is True
    seen = {(r["fill"], r["threads"]) for r in results["fills"]["rows"]}
    assert seen == {(f, t) for f in ("uniform", "normal", "trunc_normal", "constant") for t in (1, 2)}
    assert "target uniform_ >= 0.5 of the constant fill" in done.stdout
