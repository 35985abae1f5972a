"""Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3",
SC'11) and the documented derivation of a tensor's key from ``(seed, name)``.

The rounds run on uint64 carriers (see ``philox_round``); every constant is an ``np.uint64`` so
that Numba never mixes signed and unsigned integers (which it would promote to float64).
"""

from __future__ import annotations

import functools
import hashlib
import operator

import numpy as np

from ._jit import inline_jit, kernel_jit

_MUL0 = np.uint64(0xD2511F53)
_MUL1 = np.uint64(0xCD9E8D57)
_WEYL0 = np.uint64(0x9E3779B9)
_WEYL1 = np.uint64(0xBB67AE85)
_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)

SEED_LIMIT = 1 << 64


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
def _philox_words(c0, c1, c2, c3, k0, k1):
    return philox4x32_10(
        np.uint32(c0), np.uint32(c1), np.uint32(c2), np.uint32(c3), np.uint32(k0), np.uint32(k1)
    )


def _uint32_words(values, count: int, argname: str) -> tuple[int, ...]:
    try:
        words = tuple(operator.index(v) for v in values)
    except TypeError:
        raise TypeError(f"{argname} must be a sequence of {count} ints in [0, 2**32)") from None
    if len(words) != count or not all(0 <= w < 1 << 32 for w in words):
        raise ValueError(f"{argname} must be {count} ints in [0, 2**32), got {values!r}")
    return words


def philox4x32(counter4, key2) -> tuple[int, int, int, int]:
    """Philox4x32-10 of one 128-bit counter under one 64-bit key, as four Python ints.

    ``counter4`` is ``(c0, c1, c2, c3)`` and ``key2`` is ``(k0, k1)``, each an int in [0, 2**32).

    >>> [hex(w) for w in philox4x32((0, 0, 0, 0), (0, 0))]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    c = _uint32_words(counter4, 4, "counter4")
    k = _uint32_words(key2, 2, "key2")
    return tuple(int(w) for w in _philox_words(*c, *k))


def check_seed(seed) -> int:
    """``seed`` as a Python int in [0, 2**64), or a TypeError / ValueError naming it."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int in [0, 2**64), got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def check_name(name) -> str:
    """``name`` as a str that encodes to UTF-8, or a TypeError / ValueError naming it."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"name must be encodable as UTF-8: {err}") from None
    return name


def key(seed: int, name: str = "") -> tuple[int, int]:
    """The Philox key ``(k0, k1)`` of the stream named ``name`` under ``seed``.

    The derivation, stable across processes, platforms and versions:

    1. ``d = blake2b(name.encode("utf-8"), digest_size=16).digest()``, read as four little-endian
       uint32 words ``n0, n1, n2, n3``;
    2. ``(k0, k1, _, _) = philox4x32_10(counter=(n0, n1, n2, n3), key=(seed % 2**32, seed // 2**32))``.

    Different names under one seed get unrelated keys (the digest spreads the name, Philox mixes
    it with the seed), so adding, removing or reordering tensors never changes another tensor.

    >>> key(0, "")
    (1140075542, 4266292422)
    """
    return _derive_key(check_seed(seed), check_name(name))


@functools.lru_cache(maxsize=4096)
def _derive_key(seed: int, name: str) -> tuple[int, int]:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    n = [int.from_bytes(digest[4 * i : 4 * i + 4], "little") for i in range(4)]
    k0, k1, _, _ = philox4x32(n, (seed & 0xFFFFFFFF, seed >> 32))
    return k0, k1
