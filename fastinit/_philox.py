"""Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3",
SC'11) and the documented derivation of a tensor's key from ``(seed, name)``: the bit generator
only (arguments are checked above it, in ``fastinit._streams``).

The rounds run on uint64 carriers (see ``philox_round``); every constant is an ``np.uint64`` so
that Numba never mixes signed and unsigned integers (which it would promote to float64).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ._jit import inline_jit, kernel_jit

_MUL0 = np.uint64(0xD2511F53)
_MUL1 = np.uint64(0xCD9E8D57)
_WEYL0 = np.uint64(0x9E3779B9)
_WEYL1 = np.uint64(0xBB67AE85)
_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


@inline_jit
def philox_round(x0, x1, x2, x3, k0, k1):
    """One Philox4x32 round on uint64 carriers whose low 32 bits are the words.

    The high halves are don't-care bits: the multiplies read only ``x & 0xFFFFFFFF`` and every
    other operation (xor, wrap-around add) keeps the low 32 bits exact. So no value is ever
    truncated inside the rounds, and a loop over blocks vectorizes to one 64-bit lane per block
    (AVX2 ``vpmuludq``/``vpsrlq``/``vpxor``) instead of shuffling between 32- and 64-bit lanes.
    """
    p0 = (x0 & _LOW) * _MUL0
    p1 = (x2 & _LOW) * _MUL1
    return (p1 >> _SHIFT) ^ x1 ^ k0, p1, (p0 >> _SHIFT) ^ x3 ^ k1, p0


@inline_jit
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Ten rounds of Philox4x32 with the Weyl key schedule: unsigned integer arguments holding
    32-bit words, four ``np.uint32`` words returned."""
    x0, x1, x2, x3 = np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3)
    key0, key1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        x0, x1, x2, x3 = philox_round(x0, x1, x2, x3, key0, key1)
        key0 = key0 + _WEYL0
        key1 = key1 + _WEYL1
    return np.uint32(x0 & _LOW), np.uint32(x1 & _LOW), np.uint32(x2 & _LOW), np.uint32(x3 & _LOW)


@kernel_jit
def philox_words(c0, c1, c2, c3, k0, k1):
    """``philox4x32_10`` of unsigned integer words, callable from Python (no validation)."""
    return philox4x32_10(
        np.uint32(c0), np.uint32(c1), np.uint32(c2), np.uint32(c3), np.uint32(k0), np.uint32(k1)
    )


@functools.lru_cache(maxsize=4096)
def derive_key(seed: int, name: str) -> tuple[int, int]:
    """The key ``(k0, k1)`` of stream ``name`` under ``seed`` (see ``fastinit.key``; arguments
    already checked): Philox of the name's 16-byte BLAKE2b digest under the seed."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    n = [int.from_bytes(digest[4 * i : 4 * i + 4], "little") for i in range(4)]
    k0, k1, _, _ = philox_words(*n, seed & 0xFFFFFFFF, seed >> 32)
    return int(k0), int(k1)
