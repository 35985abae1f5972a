"""Checkpoint writing against `dd bs=16M conv=fsync` of the same size on the same disk, in one run.

    pytest benchmarks -m huge -k writer --benchmark-enable -s
"""

import os
import subprocess
import time

import pytest

from fastinit.checkpoint import generate
from fastinit.spec import default_spec


@pytest.mark.huge
def test_writer_against_dd(benchmark, tmp_path):
    pytest.importorskip("ml_dtypes")
    spec = default_spec()  # 2.3 GiB of bfloat16
    blocks = -(-spec.nbytes // (16 << 20))
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={tmp_path / 'dd.bin'}", "bs=16M", f"count={blocks}", "conv=fsync"],
                   check=True, capture_output=True)
    dd_s = time.perf_counter() - t0
    os.remove(tmp_path / "dd.bin")
    result = generate(spec, tmp_path / "model.safetensors")  # fsynced before the rename
    dd_gb_s = blocks * (16 << 20) / dd_s / 1e9
    benchmark.group = "checkpoint writer vs dd"
    benchmark.extra_info.update(writer_gb_s=result.gb_per_s, dd_gb_s=dd_gb_s, ratio=result.gb_per_s / dd_gb_s)
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\nwriter {result.gb_per_s:.3f} GB/s, dd {dd_gb_s:.3f} GB/s: {result.gb_per_s / dd_gb_s:.2f}x")
