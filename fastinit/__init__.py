"""fastinit: fast, shard-invariant neural-network weight initialization on the CPU.

Every value is fixed by ``(seed, tensor name, global index)`` through the counter-based
Philox4x32-10 generator, so any shard of a tensor, filled on any machine with any number of
threads, equals the same slice of the full tensor bit for bit.
"""

from __future__ import annotations

from . import checkpoint, conventions, initializers, spec
from ._jit import get_num_threads, set_num_threads
from ._streams import key, manual_seed, philox4x32
from ._version import __version__
from .distributions import normal_, random_bits_, trunc_normal_, uniform_
from .initializers import init
from .schemes import (
    calculate_gain,
    compute_fans,
    constant_,
    delta_orthogonal_,
    dirac_,
    eye_,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    he_uniform_,
    kaiming_normal_,
    kaiming_uniform_,
    lecun_normal_,
    lecun_uniform_,
    ones_,
    orthogonal_,
    sparse_,
    variance_scaling_,
    xavier_normal_,
    xavier_simple_,
    xavier_uniform_,
    zeros_,
)

__all__ = [
    "__version__",
    "calculate_gain",
    "checkpoint",
    "compute_fans",
    "constant_",
    "conventions",
    "delta_orthogonal_",
    "dirac_",
    "eye_",
    "get_num_threads",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "init",
    "initializers",
    "kaiming_normal_",
    "kaiming_uniform_",
    "key",
    "lecun_normal_",
    "lecun_uniform_",
    "manual_seed",
    "normal_",
    "ones_",
    "orthogonal_",
    "philox4x32",
    "random_bits_",
    "set_num_threads",
    "sparse_",
    "spec",
    "trunc_normal_",
    "uniform_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_simple_",
    "xavier_uniform_",
    "zeros_",
]
