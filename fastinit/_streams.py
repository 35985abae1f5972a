"""Streams: the public key derivation and raw Philox words (validated), and the process-wide
default seed stream that ``seed=None`` draws from."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ._philox import derive_key, philox_words
from ._validate import SEED_LIMIT, check_ints, check_name, check_seed

__all__ = ["key", "philox4x32", "manual_seed", "concrete_seed", "resolve_key"]


def philox4x32(counter4: Any, key2: Any) -> tuple[int, int, int, int]:
    """Philox4x32-10 of one 128-bit counter under one 64-bit key, as four Python ints.

    ``counter4`` is ``(c0, c1, c2, c3)`` and ``key2`` is ``(k0, k1)``, each an int in [0, 2**32).

    Examples:
        >>> [hex(w) for w in philox4x32((0, 0, 0, 0), (0, 0))]
        ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    c = check_ints("counter4", counter4, count=4, below=1 << 32)
    k = check_ints("key2", key2, count=2, below=1 << 32)
    w0, w1, w2, w3 = philox_words(*c, *k)
    return int(w0), int(w1), int(w2), int(w3)


def key(seed: int, name: str = "") -> tuple[int, int]:
    """The Philox key ``(k0, k1)`` of the stream named ``name`` under ``seed``.

    The derivation, stable across processes, platforms and versions:

    1. ``d = blake2b(name.encode("utf-8"), digest_size=16).digest()``, read as four little-endian
       uint32 words ``n0, n1, n2, n3``;
    2. ``(k0, k1, _, _) = philox4x32_10(counter=(n0, n1, n2, n3), key=(seed % 2**32, seed // 2**32))``.

    Different names under one seed get unrelated keys (the digest spreads the name, Philox mixes
    it with the seed), so adding, removing or reordering tensors never changes another tensor.

    Examples:
        >>> key(0, "")
        (1140075542, 4266292422)
    """
    return derive_key(check_seed(seed), check_name(name))


class _DefaultSeeds:
    """The process-wide stream of seeds used when a fill gets ``seed=None``: a fresh base from the
    operating system's entropy in every process, a forked child included (which would otherwise
    repeat its parent's stream)."""

    def __init__(self) -> None:
        self.start_fresh()

    def start_fresh(self) -> None:
        """A new lock (a forked child may inherit a held one) and a base no other process has."""
        self._lock = threading.Lock()
        self._base = int.from_bytes(np.random.SeedSequence().generate_state(2, np.uint32).tobytes(), "little")
        self._count = 0

    def manual_seed(self, seed: Any) -> None:
        seed = check_seed(seed)
        with self._lock:
            self._base, self._count = seed, 0

    def next(self) -> int:
        with self._lock:
            count, base = self._count, self._base
            self._count += 1
        w = philox_words(count & 0xFFFFFFFF, count >> 32, 0x5EED, 0, base & 0xFFFFFFFF, base >> 32)
        return (int(w[0]) | int(w[1]) << 32) % SEED_LIMIT


DEFAULT_SEEDS = _DefaultSeeds()
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=DEFAULT_SEEDS.start_fresh)


def manual_seed(seed: int) -> None:
    """Reset the default seed stream: calls with ``seed=None`` then repeat from the start.

    Each call with ``seed=None`` takes the next 64-bit seed of a process-wide stream (thread
    safe), so two same-shaped layers never get equal weights by accident. Every process starts its
    own stream, a forked child included: call ``manual_seed`` in a worker to make it repeat. An
    explicit ``seed`` (with ``name``) is the reproducible, shard-invariant contract and ignores this
    stream.
    """
    DEFAULT_SEEDS.manual_seed(seed)


def concrete_seed(seed: Any) -> int:
    """An explicit seed, checked; ``None``: the next seed of the default stream (taken once, so a
    scheme that makes several draws uses one seed for all of them)."""
    return DEFAULT_SEEDS.next() if seed is None else check_seed(seed)


def resolve_key(seed: Any, name: Any) -> tuple[np.uint32, np.uint32]:
    """The kernel key of a fill's ``seed`` (None: the default stream) and ``name``."""
    name = check_name(name)
    k0, k1 = derive_key(concrete_seed(seed), name)
    return np.uint32(k0), np.uint32(k1)
