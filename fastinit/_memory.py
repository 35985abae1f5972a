"""Fresh memory: transparent huge pages for the arrays the kernels fill.

The first write to untouched memory faults it in page by page; with 4 KiB pages that is 262,144
faults per GiB, each a trap into the kernel (and, in a VM, often into the hypervisor), which can
cost more than the fill itself. ``advise_huge_pages`` asks Linux to back the array's 2 MiB-aligned
interior with transparent huge pages (``madvise(MADV_HUGEPAGE)``): 512 times fewer faults. Only
whole huge pages inside the array are advised, so no page extends past it and RSS stays the
array's size. Elsewhere (another OS, THP disabled, a file-backed memmap), the call is a no-op and
nothing changes: the values never depend on it.

The advice is off unless ``FASTINIT_HUGE_PAGES=1`` is in the environment (read at import). Where
``/sys/kernel/mm/transparent_hugepage/defrag`` is ``madvise`` (a common default), an advised fault
compacts memory synchronously to find a free huge page; on the development VM that made fills
into fresh memory 10-50x slower than plain 4 KiB faults (``benchmarks/test_fresh_memory.py``).
Turn it on where huge pages are cheap to get (``defrag`` set to ``defer``, memory not fragmented).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

import numpy as np

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
ENABLED = os.environ.get("FASTINIT_HUGE_PAGES", "0") == "1"


@functools.cache
def _madvise():
    """libc's ``madvise``, or None where there is none to call (not Linux, or turned off)."""
    if not ENABLED or not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def advise_huge_pages(array: np.ndarray) -> None:
    """Advise huge pages for the 2 MiB-aligned interior of ``array``'s buffer (if it spans one)."""
    if array.nbytes < 2 * HUGE_PAGE:
        return
    madvise = _madvise()
    if madvise is None:
        return
    start = array.ctypes.data
    low = -(-start // HUGE_PAGE) * HUGE_PAGE
    high = (start + array.nbytes) // HUGE_PAGE * HUGE_PAGE
    if high > low:
        madvise(low, high - low, MADV_HUGEPAGE)  # failure (EINVAL on a file mapping) changes nothing
