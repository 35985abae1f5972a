"""The prepared many-core check (``benchmarks/cores_check.py``) runs, and reports every thread count."""

import json
import os
import subprocess
import sys

from conftest import ROOT, run_python

SCRIPT = ROOT / "benchmarks" / "cores_check.py"


def test_thread_counts_are_powers_of_two_then_every_core():
    # in a process of its own: the script imports benchmarks/conftest.py, not the tests' conftest
    code = ("import sys; sys.path.insert(0, 'benchmarks'); from cores_check import thread_counts; "
            "print([thread_counts(n) for n in (1, 2, 6, 16)])")
    assert run_python(code).strip() == "[[1], [1, 2], [1, 2, 4, 6], [1, 2, 4, 8, 16]]"


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
