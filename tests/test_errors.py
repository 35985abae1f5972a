"""Bad input: a clear ValueError / TypeError naming the argument, and nothing written."""

import math

import numpy as np
import pytest
from conftest import BF16

import fastinit as fi

FILLS = {
    "uniform_": lambda out, **kw: fi.uniform_(out, **kw),
    "normal_": lambda out, **kw: fi.normal_(out, **kw),
    "trunc_normal_": lambda out, **kw: fi.trunc_normal_(out, **kw),
}


@pytest.mark.parametrize("fill", sorted(FILLS))
@pytest.mark.parametrize("out, error, match", [
    (np.zeros(8, np.int32), TypeError, "float32, float64, float16, bfloat16"),
    (np.zeros(8, np.uint32), TypeError, "dtype"),
    (np.zeros(8, np.complex64), TypeError, "dtype"),
    ([0.0] * 8, TypeError, "NumPy array"),
    (np.zeros((8, 8), np.float32)[:, ::2], ValueError, "C-contiguous"),
    (np.zeros((8, 8), np.float32).T, ValueError, "C-contiguous"),
    (np.zeros(8, np.dtype(np.float32).newbyteorder()), ValueError, "byte order"),
], ids=["int32", "uint32", "complex", "list", "strided", "fortran", "byteswapped"])
def test_bad_out(fill, out, error, match):
    with pytest.raises(error, match=match):
        FILLS[fill](out, seed=0)


@pytest.mark.parametrize("fill", sorted(FILLS))
def test_read_only_out_is_rejected_before_compiling(fill, tmp_path):
    a = np.zeros(8, np.float32)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        FILLS[fill](a, seed=0)
    np.zeros(8, np.float32).tofile(tmp_path / "r.bin")
    with pytest.raises(ValueError, match="writable"):
        FILLS[fill](np.memmap(tmp_path / "r.bin", np.float32, mode="r"), seed=0)


def test_random_bits_needs_uint32():
    with pytest.raises(TypeError, match="uint32"):
        fi.random_bits_(np.zeros(4, np.float32), seed=0)
    with pytest.raises(TypeError, match="uint32"):
        fi.random_bits_(np.zeros(4, np.uint64), seed=0)


@pytest.mark.parametrize("global_shape, offset, match", [
    ((8, 8), (5, 0), "outside global_shape"),
    ((8, 8), (0, -1), "non-negative"),
    ((8,), (0,), "dims"),
    ((8, 8), (0,), "dims"),
    ((8, 8), None, "offset is required"),
    (None, (0, 0), "needs global_shape"),
    ((8, 8.5), (0, 0), "ints"),
    ("ab", (0, 0), "ints"),
    ((1 << 40, 1 << 40), (0, 0), "2\\*\\*62"),
])
def test_bad_box(global_shape, offset, match):
    out = np.full((4, 4), 7.0, np.float32)
    with pytest.raises((ValueError, TypeError), match=match):
        fi.normal_(out, seed=0, global_shape=global_shape, offset=offset)
    assert (out == 7.0).all()  # nothing written


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**64, ValueError), (0.5, TypeError), ("0", TypeError),
                                         (True, TypeError)])
@pytest.mark.parametrize("fill", sorted(FILLS))
def test_bad_seed(fill, seed, error):
    with pytest.raises(error, match="seed"):
        FILLS[fill](np.empty(4, np.float32), seed=seed)


@pytest.mark.parametrize("fill", sorted(FILLS))
def test_bad_name(fill):
    with pytest.raises(TypeError, match="name"):
        FILLS[fill](np.empty(4, np.float32), seed=0, name=b"bytes")


@pytest.mark.parametrize("kwargs, match", [
    (dict(low=1.0, high=1.0), "low < high"),
    (dict(low=2.0, high=1.0), "low < high"),
    (dict(low=math.nan), "low must be finite"),
    (dict(high=math.inf), "high must be finite"),
    (dict(low="0"), "low must be a real number"),
    (dict(low=-1e39, high=0.0), "exceeds the range of float32"),
    (dict(low=1.0 + 2.0**-30, high=1.0 + 2.0**-29), "no float32 value"),  # between two float32s
])
def test_bad_uniform_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fi.uniform_(np.empty(4, np.float32), seed=0, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(std=-1.0), "std must be >= 0"),
    (dict(std=math.nan), "std must be finite"),
    (dict(mean=math.inf), "mean must be finite"),
    (dict(mean=None), "mean must be a real number"),
])
def test_bad_normal_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fi.normal_(np.empty(4, np.float32), seed=0, **kwargs)


def test_normal_overflowing_float16_is_rejected():
    with pytest.raises(ValueError, match="overflow float16"):
        fi.normal_(np.empty(4, np.float16), 0.0, 1e4, seed=0)
    with pytest.raises(ValueError, match="exceeds the range of bfloat16"):
        fi.uniform_(np.empty(4, BF16), 0.0, 1e39, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(a=1.0, b=1.0), "a < b"),
    (dict(a=2.0, b=-2.0), "a < b"),
    (dict(std=0.0), "std > 0"),
    (dict(std=-1.0), "std > 0"),
    (dict(a=math.nan), "a must be finite"),
    (dict(mean=math.inf), "mean must be finite"),
    (dict(a=40.0, b=41.0), "more than 36 std"),
    (dict(a=math.inf, b=math.inf), "a < b"),
])
def test_bad_trunc_normal_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fi.trunc_normal_(np.empty(4, np.float32), seed=0, **kwargs)


def test_infinite_bounds_mean_one_sided_truncation():
    x = fi.trunc_normal_(np.empty(1000, np.float32), 0.0, 1.0, -math.inf, -3.0, seed=0)
    assert x.max() <= -3.0
    x = fi.trunc_normal_(np.empty(1000, np.float32), 0.0, 1.0, -math.inf, math.inf, seed=0)
    assert np.isfinite(x).all()


def test_default_seed_stream_gives_fresh_values_and_repeats_after_manual_seed():
    fi.manual_seed(123)
    a = fi.normal_(np.empty(16, np.float32))
    b = fi.normal_(np.empty(16, np.float32))
    fi.manual_seed(123)
    assert not np.array_equal(a, b)
    assert np.array_equal(fi.normal_(np.empty(16, np.float32)), a)
    assert np.array_equal(fi.normal_(np.empty(16, np.float32)), b)
    with pytest.raises(ValueError, match="seed"):
        fi.manual_seed(-5)
