"""Philox4x32-10 known answers and the key derivation."""

import numpy as np
import pytest
import reference
from conftest import run_python

import fastinit as fi

# Random123 kat_vectors: counter words, key words -> output words
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_known_answers(counter, key, expected):
    assert fi.philox4x32(counter, key) == expected
    assert tuple(int(w) for w in reference.philox(*counter, *key)) == expected


def test_random_bits_are_philox_words():
    out = fi.random_bits_(np.empty(10, np.uint32), seed=99, name="n")
    k = fi.key(99, "n")
    words = [w for b in range(3) for w in fi.philox4x32((b, 0, 0, 0), k)]
    assert out.tolist() == words[:10]


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, 2**32, 2**63 + 12345, 2**64 - 1])
@pytest.mark.parametrize("name", ["", "w", "model.layers.0.self_attn.q_proj.weight", "ünï/名前"])
def test_key_matches_documented_derivation(seed, name):
    assert fi.key(seed, name) == reference.key(seed, name)


def test_key_is_stable_across_processes():
    # Python's hash() is salted per process; the key must not be
    code = "import fastinit as fi; print(fi.key(7, 'layer.weight'))"
    assert run_python(code, PYTHONHASHSEED=1) == run_python(code, PYTHONHASHSEED=2) == f"{fi.key(7, 'layer.weight')}\n"


def test_names_and_seeds_give_distinct_keys():
    keys = {fi.key(s, f"layer.{i}.weight") for s in range(20) for i in range(50)}
    assert len(keys) == 1000


def test_streams_of_different_names_are_uncorrelated():
    a = fi.normal_(np.empty(1 << 18, np.float64), seed=5, name="a")
    b = fi.normal_(np.empty(1 << 18, np.float64), seed=5, name="b")
    c = fi.normal_(np.empty(1 << 18, np.float64), seed=6, name="a")
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(x.size)


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (2**64, ValueError), (1.0, TypeError), ("1", TypeError),
                                        (True, TypeError), (None, TypeError)])
def test_key_rejects_bad_seeds(bad, error):
    with pytest.raises(error, match="seed"):
        fi.key(bad, "x")


@pytest.mark.parametrize("bad, error", [(b"x", TypeError), (3, TypeError), ("\udcff", ValueError)])
def test_key_rejects_bad_names(bad, error):
    with pytest.raises(error, match="name"):
        fi.key(0, bad)


@pytest.mark.parametrize("counter, key", [((0, 0, 0), (0, 0)), ((0, 0, 0, 2**32), (0, 0)), ((0,) * 4, (-1, 0)),
                                          ("abcd", (0, 0))])
def test_philox4x32_rejects_bad_words(counter, key):
    with pytest.raises((ValueError, TypeError), match="counter4|key2"):
        fi.philox4x32(counter, key)
