"""No temporaries proportional to the array: peak RSS grows by at most the output + 64 MiB."""

import os
import subprocess
import sys

import pytest
from conftest import run_python

MIB = 1 << 20
SLACK = 64 * MIB

# VmHWM is this process's own peak (ru_maxrss would include the forking parent's); writing 5 to
# clear_refs resets it to the current RSS
_SCRIPT = """
import numpy as np, ml_dtypes, fastinit as fi
def fill(out):
    {call}
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
fill(np.empty({small}, {dtype}))  # compile or load the kernels, warm the allocator
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
out = fill(np.empty({shape}, {dtype}))
print(status("VmHWM") - before, out.nbytes)
"""

CASES = {  # id -> (call, shape, dtype)
    "uniform f32": ("return fi.uniform_(out, -1, 1, seed=0)", "1 << 25", "np.float32"),
    "normal bf16": ("return fi.normal_(out, seed=0)", "1 << 26", "ml_dtypes.bfloat16"),
    "trunc_normal f64": ("return fi.trunc_normal_(out, 0, 1, -2, 2, seed=0)", "1 << 24", "np.float64"),
    "kaiming_normal 2-d f32": ("return fi.kaiming_normal_(out, seed=0)", "(4096, 8192)", "np.float32"),
    "sparse 2-d f32": ("return fi.sparse_(out, 0.5, seed=0)", "(4096, 8192)", "np.float32"),
    "init to a .npy memmap": (
        "import tempfile, os; d = tempfile.mkdtemp(); "
        "return fi.init(out.shape, 'kaiming_uniform', out.dtype, seed=0, "
        "path=os.path.join(d, f'w{out.size}.npy'))", "(4096, 8192)", "np.float32"),
}


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.parametrize("case", sorted(CASES))
def test_peak_rss_is_output_plus_bounded_slack(case):
    call, shape, dtype = CASES[case]
    small = "(64, 64)" if shape.startswith("(") else "4096"
    growth, nbytes = map(int, run_python(_SCRIPT.format(call=call, shape=shape, dtype=dtype,
                                                        small=small)).split())
    assert nbytes >= 128 * MIB
    assert growth <= nbytes + SLACK, f"peak RSS grew {growth / MIB:.0f} MiB for {nbytes / MIB:.0f} MiB"


@pytest.mark.parametrize("choice", ["0", "1", None])
def test_huge_page_advice_follows_the_environment_or_the_defrag_mode(choice):
    env = {k: v for k, v in os.environ.items() if k != "FASTINIT_HUGE_PAGES"}
    if choice is not None:
        env["FASTINIT_HUGE_PAGES"] = choice
    code = ("import sys, fastinit._memory as m; linux = sys.platform.startswith('linux'); "
            "print(m.ENABLED, linux and m.huge_pages_by_default(m._read_defrag()))")
    enabled, by_default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                         check=True).stdout.split()
    assert enabled == {"0": "False", "1": "True", None: by_default}[choice]
