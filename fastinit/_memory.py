"""Fresh memory: transparent huge pages for the arrays the kernels fill.

The first write to untouched memory faults it in page by page; with 4 KiB pages that is 262,144
faults per GiB, each a trap into the kernel (and, in a VM, often into the hypervisor), which can
cost more than the fill itself. ``advise_huge_pages`` asks Linux to back the array's 2 MiB-aligned
interior with transparent huge pages (``madvise(MADV_HUGEPAGE)``): 512 times fewer faults. Only
whole huge pages inside the array are advised, so no page extends past it and RSS stays the
array's size. Elsewhere (another OS, THP disabled, a file-backed memmap), the call is a no-op and
nothing changes: the values never depend on it.

Whether to advise: ``FASTINIT_HUGE_PAGES=1`` always, ``FASTINIT_HUGE_PAGES=0`` never (read at
import); unset, only where an advised fault cannot stall, that is where
``/sys/kernel/mm/transparent_hugepage/defrag`` is ``defer`` or ``never`` (``huge_pages_by_default``):
a fault then takes a free huge page or falls back to 4 KiB pages, and never compacts memory
synchronously. Where it is ``madvise`` (a common default), ``defer+madvise`` or ``always``, an
advised fault compacts memory to find a huge page; on the development VM that made fills into
fresh memory anything from 1.6x faster (``materialize`` of a 1.24 G-parameter model) to 10-50x
slower than with 4 KiB faults, depending on how fragmented memory was (``docs/performance.md``),
so there it is the user's call.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys

import numpy as np

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
DEFRAG = "/sys/kernel/mm/transparent_hugepage/defrag"


def huge_pages_by_default(defrag: str | None) -> bool:
    """Whether to advise huge pages without being asked, given the text of ``DEFRAG`` (None: no such
    file): only where the selected mode (in brackets) never compacts on an advised fault.

    Examples:
        >>> huge_pages_by_default("always defer [defer+madvise] madvise never")
        False
        >>> huge_pages_by_default("always [defer] defer+madvise madvise never")
        True
        >>> huge_pages_by_default("[defer"), huge_pages_by_default(None)
        (False, False)
    """
    selected = re.search(r"\[([^\]]*)\]", defrag or "")
    return selected is not None and selected.group(1) in ("defer", "never")


def _read_defrag() -> str | None:
    try:
        with open(DEFRAG) as f:
            return f.read()
    except OSError:
        return None


_CHOICE = os.environ.get("FASTINIT_HUGE_PAGES", "")
ENABLED = _CHOICE == "1" or (_CHOICE != "0" and sys.platform.startswith("linux")
                             and huge_pages_by_default(_read_defrag()))


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
