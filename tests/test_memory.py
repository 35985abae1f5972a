"""No temporaries proportional to the array: peak RSS grows by at most the output + 64 MiB."""

import pytest
from conftest import run_python

MIB = 1 << 20
SLACK = 64 * MIB

_SCRIPT = """
import resource, numpy as np, ml_dtypes, fastinit as fi
def fill(out):
    {call}
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
fill(np.empty({small}, {dtype}))  # compile or load the kernels, warm the allocator
before = peak()
out = fill(np.empty({shape}, {dtype}))
print(peak() - before, out.nbytes)
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


@pytest.mark.parametrize("case", sorted(CASES))
def test_peak_rss_is_output_plus_bounded_slack(case):
    call, shape, dtype = CASES[case]
    small = "(64, 64)" if shape.startswith("(") else "4096"
    growth, nbytes = map(int, run_python(_SCRIPT.format(call=call, shape=shape, dtype=dtype,
                                                        small=small)).split())
    assert nbytes >= 128 * MIB
    assert growth <= nbytes + SLACK, f"peak RSS grew {growth / MIB:.0f} MiB for {nbytes / MIB:.0f} MiB"
