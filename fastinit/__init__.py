"""fastinit: fast, shard-invariant neural-network weight initialization on the CPU.

Every value is fixed by ``(seed, tensor name, global index)`` through the counter-based
Philox4x32-10 generator, so any shard of a tensor, filled on any machine with any number of
threads, equals the same slice of the full tensor bit for bit.
"""

from __future__ import annotations

from ._dispatch import manual_seed
from ._jit import get_num_threads, set_num_threads
from ._philox import key, philox4x32
from .distributions import normal_, random_bits_, trunc_normal_, uniform_

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "get_num_threads",
    "key",
    "manual_seed",
    "normal_",
    "philox4x32",
    "random_bits_",
    "set_num_threads",
    "trunc_normal_",
    "uniform_",
]
