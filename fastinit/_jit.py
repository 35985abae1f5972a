"""The one place that configures Numba for fastinit.

Every jitted function in the package is declared through the decorators below, so the compile
options that decide the output bits are stated once:

* ``error_model="numpy"``: no Python-style zero-division checks inside loops (they block SIMD);
* no ``fastmath``: no reassociation and no FMA contraction, so every float operation is the IEEE
  operation written in the source and results do not depend on the CPU's instruction set;
* ``cache=True``: compiled kernels are cached on disk in a per-user directory, never inside the
  installed package, and stamped with the source of every kernel module (see ``fastinit._cache``).

Threads: unless ``NUMBA_THREADING_LAYER`` says otherwise, Numba's fork-safe threading layer
(``tbb`` when installed, else ``workqueue``): with GNU OpenMP (the ``omp`` layer Numba otherwise
prefers) a process forked after a parallel fill aborts at its first one. This is set when fastinit
is imported, before Numba starts its threads (a program that ran a parallel Numba function before
importing fastinit keeps the layer it got).

It also holds the two bit-cast primitives the transforms need (float <-> unsigned integer of the
same width) and the atomic counter the parallel drivers hand out work with (``claim_next``), each
with a pure NumPy fallback under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import os
from typing import Any

import numba
import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic

from . import _cache

__all__ = [
    "JIT_DISABLED",
    "JIT_OPTIONS",
    "inline_jit",
    "kernel_jit",
    "parallel_jit",
    "f32_bits",
    "bits_f32",
    "f64_bits",
    "bits_f64",
    "set_num_threads",
    "get_num_threads",
    "claim_next",
]

JIT_DISABLED: bool = bool(getattr(numba.config, "DISABLE_JIT", False))

_config: Any = numba.config
if "NUMBA_THREADING_LAYER" not in os.environ and _config.THREADING_LAYER == "default":
    _config.THREADING_LAYER = "forksafe"

#: options of every fastinit function (overload implementations included); typed Any because
#: Numba's own annotations type them as a private TypedDict
JIT_OPTIONS: Any = dict(cache=_cache.install(), error_model="numpy", nogil=True)

#: small scalar helpers, inlined into their callers at the Numba IR level
inline_jit = njit(inline="always", **JIT_OPTIONS)


def kernel_jit(func):
    """Serial kernel: a plain loop over arrays and scalars."""
    return njit(**JIT_OPTIONS)(func)


def parallel_jit(func):
    """Parallel driver: ``prange`` over workers that share independent tasks (see ``claim_next``)."""
    return njit(parallel=True, **JIT_OPTIONS)(func)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the fills this Python thread calls (at most ``NUMBA_NUM_THREADS``,
    fixed when Numba starts); fills from other threads keep their own count, as in Numba."""
    numba.set_num_threads(n)


def get_num_threads() -> int:
    """Number of threads the fills use now."""
    return numba.get_num_threads()


def _bitcast(src, dst, name):
    """A Numba intrinsic reinterpreting the bits of a ``src`` scalar as a ``dst`` scalar."""

    @intrinsic
    def cast(typingctx, x):
        if x != src:
            return None
        sig = dst(src)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return sig, codegen

    cast.__name__ = cast.__qualname__ = name
    return cast


def _atomic_claim_next():
    """A Numba intrinsic: ``counter[0]`` of an int64 array, incremented atomically.

    Read the counter only through ``claim_next`` inside the parallel loop: Numba does not know
    that the call writes to the array, and a plain ``counter[0]`` after the loop may read the
    value it had before."""

    @intrinsic
    def claim_next(typingctx, counter):
        if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            return builder.atomic_rmw("add", data, context.get_constant(types.int64, 1), "monotonic")

        return types.int64(counter), codegen

    return claim_next


if JIT_DISABLED:  # pure NumPy versions, so NUMBA_DISABLE_JIT=1 runs the same code paths

    def claim_next(counter):
        """``counter[0]``, then incremented: the number of the next task to run."""
        claimed = int(counter[0])
        counter[0] += 1
        return claimed

    def f32_bits(x):
        return np.float32(x).view(np.uint32)

    def bits_f32(u):
        return np.uint32(u).view(np.float32)

    def f64_bits(x):
        return np.float64(x).view(np.uint64)

    def bits_f64(u):
        return np.uint64(u).view(np.float64)

else:
    claim_next = _atomic_claim_next()
    f32_bits = _bitcast(types.float32, types.uint32, "f32_bits")
    bits_f32 = _bitcast(types.uint32, types.float32, "bits_f32")
    f64_bits = _bitcast(types.float64, types.uint64, "f64_bits")
    bits_f64 = _bitcast(types.uint64, types.float64, "bits_f64")
