"""The call into a parallel kernel: task size, thread count, and one launch at a time."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence

from . import _kernels
from ._jit import get_num_threads
from ._memory import advise_huge_pages
from ._target import Target

# Numba's default "workqueue" threading layer must not be entered by two threads at once; the
# fills are parallel already, so concurrent calls are serialized.
_LAUNCH_LOCK = threading.Lock()


def _reset_launch_lock() -> None:
    """A child forked while another thread held the lock gets a free one (else its first fill hangs)."""
    global _LAUNCH_LOCK
    _LAUNCH_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_launch_lock)


def _chunk(row_len: int) -> int:
    """Elements per parallel task: whole blocks, enough tasks to balance the threads."""
    return max(1 << 14, min(1 << 18, -(-row_len // (8 * get_num_threads())))) // 4 * 4


#: below this many elements a fill runs on the calling thread. Waking the workers of a parallel
#: launch costs 30-90 us on the development machine (2 cores); a serial float32 fill of 2**16
#: elements takes 21 us (uniform_), 33 us (normal_) and 117 us (trunc_normal_), so below 2**16
#: the serial fill is faster or about as fast for every fill (docs/performance.md, "Small calls")
SERIAL_BELOW = 1 << 16


def launch(target: Target, fill: int, k: tuple, params: Sequence[float]) -> None:
    """Run the kernel for ``fill`` on ``target`` with up to six float64 ``params``."""
    if target.size == 0:
        return
    p = _kernels.kernel_params(params)
    parallel = target.size >= SERIAL_BELOW
    kernel = _kernels.box_filler(fill, target.storage, parallel)
    advise_huge_pages(target.flat)  # opt-in: fresh memory faults in 2 MiB at a time (fastinit._memory)
    # the serial kernel runs on the calling thread and never enters the threading layer
    with _LAUNCH_LOCK if parallel else contextlib.nullcontext():
        kernel(target.flat, target.lead_shape, target.lead_strides, target.base, target.row_len,
               _chunk(target.row_len), get_num_threads(), k[0], k[1], *p)
