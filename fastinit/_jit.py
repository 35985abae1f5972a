"""The one place that configures Numba for fastinit.

Every jitted function in the package is declared through the decorators below, so the compile
options that decide the output bits are stated once:

* ``error_model="numpy"``: no Python-style zero-division checks inside loops (they block SIMD);
* no ``fastmath``: no reassociation and no FMA contraction, so every float operation is the IEEE
  operation written in the source and results do not depend on the CPU's instruction set;
* ``cache=True``: compiled kernels are cached on disk (next to the package, or in Numba's
  user-wide cache directory when that is not writable; ``NUMBA_CACHE_DIR`` overrides both).
  Numba keys a cache entry on the source of the file defining the kernel only, so an edit to a
  helper in another module (or an upgrade that changes only ``_convert.py``) would reuse stale
  machine code. fastinit's locators key every entry on the whole package instead
  (``source_stamp``).

It also holds the two bit-cast primitives the transforms need (float <-> unsigned integer of the
same width) and the atomic counter the parallel drivers hand out work with (``claim_next``), each
with a pure NumPy fallback under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import functools
import hashlib
import os

import numba
import numpy as np
from numba import njit
from numba.core import caching, types
from numba.extending import intrinsic

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
    "source_stamp",
    "claim_next",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.cache
def source_stamp() -> str:
    """SHA-256 over the name and bytes of every module of the package: the freshness stamp of
    each cached kernel, so that any change to any module recompiles every kernel."""
    digest = hashlib.sha256()
    for entry in sorted(os.listdir(_PACKAGE_DIR)):
        if entry.endswith(".py"):
            with open(os.path.join(_PACKAGE_DIR, entry), "rb") as file:
                digest.update(entry.encode() + b"\0" + file.read() + b"\0")
    return digest.hexdigest()


def _package_locator(base):
    """``base`` (a Numba cache locator) restricted to fastinit's modules and stamped with
    ``source_stamp()`` instead of the defining file's own hash."""

    class PackageLocator(base):
        def get_source_stamp(self):
            return source_stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != _PACKAGE_DIR:
                return None
            return super().from_function(py_func, py_file)

    PackageLocator.__name__ = PackageLocator.__qualname__ = f"FastinitPackage{base.__name__}"
    return PackageLocator


def _numba_class(name):
    """A class of ``numba.core.caching`` by its current public name or its older underscored one."""
    return getattr(caching, name, None) or getattr(caching, "_" + name)


_numba_class("CacheImpl")._locator_classes[:0] = [
    _package_locator(_numba_class(name))
    for name in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
]

JIT_DISABLED: bool = bool(numba.config.DISABLE_JIT)

#: options of every fastinit function (overload implementations included)
JIT_OPTIONS = dict(cache=True, error_model="numpy", nogil=True)

#: small scalar helpers, inlined into their callers at the Numba IR level
inline_jit = njit(inline="always", **JIT_OPTIONS)


def kernel_jit(func):
    """Serial kernel: a plain loop over arrays and scalars."""
    return njit(**JIT_OPTIONS)(func)


def parallel_jit(func):
    """Parallel driver: ``prange`` over workers that share independent tasks (see ``claim_next``)."""
    return njit(parallel=True, **JIT_OPTIONS)(func)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for fills (at most ``NUMBA_NUM_THREADS``, fixed when Numba starts)."""
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
