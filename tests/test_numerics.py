"""The numerics of the stream contract (docs/contract.md): intervals, resolution, tails, rounding,
transform accuracy."""

import math

import numpy as np
import pytest
from conftest import BF16, FLOAT_DTYPES, assert_bits_equal
from numba import njit
from scipy import special, stats

import fastinit as fi
from fastinit import _convert as C
from fastinit import _kernels as K
from fastinit._ndtr import normal_cdf

f32 = np.float32


# ------------------------------------------------------------------------------ uniforms
def test_u24_spans_zero_to_one_minus_ulp():
    assert C.u24(np.uint32(0)) == 0.0
    assert C.u24(np.uint32(0xFFFFFFFF)) == f32(1 - 2.0**-24)


def test_uniform_never_returns_high_for_the_extreme_word():
    # [1, 2) in float32: 1 + (1 - 2**-24) is a tie that rounds to 2.0 = high without the clamp
    x = C.u24(np.uint32(0xFFFFFFFF))
    assert f32(1) + f32(1) * x == f32(2)
    below = float(np.nextafter(f32(2), f32(0)))
    assert K._uniform(x, f32(1), f32(1), f32(1), f32(below)) == f32(below)
    assert K._uniform(C.u24(np.uint32(0)), f32(1), f32(1), f32(1), f32(below)) == f32(1)


def test_open_uniforms_stay_inside_zero_one():
    assert C.u32_open_f32(np.uint32(0)) == f32(2.0**-33)
    assert C.u32_open_f32(np.uint32(0xFFFFFFFF)) == f32(1 - 2.0**-24)
    assert C.u32_open_f64(np.uint32(0)) == 2.0**-33
    assert C.u32_open_f64(np.uint32(0xFFFFFFFF)) == 1 - 2.0**-33
    assert C.u53_open(np.uint32(0), np.uint32(0)) == 2.0**-53
    assert C.u53_open(np.uint32(0xFFFFFFFF), np.uint32(0xFFFFFFFF)) == 1 - 2.0**-53
    assert C.u53(np.uint32(0xFFFFFFFF), np.uint32(0xFFFFFFFF)) == 1 - 2.0**-53


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("low, high", [(0.0, 1.0), (1.0, 2.0), (-0.1, 0.1), (-3.0, -2.5)])
def test_uniform_stays_in_half_open_interval(dtype, low, high):
    x = fi.uniform_(np.empty(1 << 18, dtype), low, high, seed=1, name="u").astype(np.float64)
    assert x.min() >= low and x.max() < high
    coarse = (abs(high) + abs(low)) * 2.0**-7 if dtype.itemsize == 2 else 0.0  # 16-bit resolution
    assert x.max() > high - (high - low) * 1e-3 - coarse  # reaches the top of the interval


def test_bfloat16_uniform_is_clamped_float32_rounded():
    x32 = fi.uniform_(np.empty(1 << 16, np.float32), seed=4, name="b")
    xb = fi.uniform_(np.empty(1 << 16, BF16), seed=4, name="b")
    top = np.nextafter(np.array(1, BF16), np.array(0, BF16)).astype(np.float32)
    assert_bits_equal(xb, np.minimum(x32, top).astype(BF16))
    assert (x32.astype(BF16) == 1).any()  # plain rounding would return high


def test_float64_uniform_uses_53_bits_float32_24():
    x = fi.uniform_(np.empty(1 << 12, np.float64), seed=2, name="b")
    k = x * 2.0**53
    assert np.array_equal(k, np.floor(k)) and (k % 2 == 1).any() and (k % 2 == 0).any()
    y = fi.uniform_(np.empty(1 << 12, np.float32), seed=2, name="b").astype(np.float64) * 2.0**24
    assert np.array_equal(y, np.floor(y)) and (y % 2 == 1).any()


# ---------------------------------------------------------------------- 16-bit rounding
@njit
def _round_all(x, fn_code):
    out = np.empty(x.size, np.uint16)
    for i in range(x.size):
        out[i] = C.f32_to_f16_bits(x[i]) if fn_code == 0 else C.f32_to_bf16_bits(x[i])
    return out


def _edge_patterns():
    """float32 bit patterns around every f16 / bf16 rounding edge, plus random ones."""
    rng = np.random.default_rng(0)
    exps = np.arange(90, 160, dtype=np.uint32)
    edges = np.array([0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2001, 0x3000, 0x7FFF, 0x8000, 0x8001,
                      0x18000, 0x7FE000, 0x7FEFFF, 0x7FF000, 0x7FFFFF], np.uint32)
    mant = np.concatenate([edges, rng.integers(0, 1 << 23, 4096, dtype=np.uint32)])
    patterns = (exps[:, None] << np.uint32(23) | mant[None, :]).ravel()
    patterns = np.concatenate([patterns, rng.integers(0, 0x7F800000, 1 << 20, dtype=np.uint32),
                               np.arange(0, 1 << 16, dtype=np.uint32), [0x7F800000, 0x7F7FFFFF]]).astype(np.uint32)
    return np.concatenate([patterns, patterns | np.uint32(0x80000000)]).view(np.float32)


def test_float16_rounding_equals_numpy():
    x = _edge_patterns()
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16).view(np.uint16)
    assert np.array_equal(_round_all(x, 0), expected)


def test_bfloat16_rounding_equals_ml_dtypes():
    x = _edge_patterns()
    assert np.array_equal(_round_all(x, 1), x.astype(BF16).view(np.uint16))


@pytest.mark.parametrize("half", [np.dtype(np.float16), BF16], ids=lambda d: d.name)
def test_half_precision_fills_are_rounded_float32_fills(half):
    for call in (lambda o: fi.normal_(o, 0.5, 3.0, seed=9, name="h", global_shape=(50, 77), offset=(3, 5)),
                 lambda o: fi.trunc_normal_(o, 0.0, 1.0, -1.5, 2.25, seed=9, name="h", global_shape=(50, 77),
                                            offset=(3, 5))):
        assert_bits_equal(call(np.empty((40, 70), half)), call(np.empty((40, 70), np.float32)).astype(half))


# ------------------------------------------------------------------- transcendentals
def _ulps(actual, exact, dtype):
    return np.abs(actual.astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)


def _elementwise(fn):
    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = fn(x[i])
        return out

    return apply


_log32_all, _log64_all = _elementwise(C.log_f32), _elementwise(C.log_f64)


def test_log_polynomials_are_accurate():
    rng = np.random.default_rng(1)
    x32 = np.concatenate([rng.uniform(2.0**-33, 1, 1 << 16), 2.0 ** -rng.uniform(0, 33, 1 << 16),
                          [2.0**-33, 0.5, 1 - 2.0**-24, 0.7071067, 1.4142135]]).astype(np.float32)
    assert _ulps(_log32_all(x32), np.log(x32.astype(np.float64)), np.float32).max() <= 3
    x64 = np.concatenate([rng.uniform(2.0**-53, 1, 1 << 16), 2.0 ** -rng.uniform(0, 1000, 1 << 16),
                          [2.0**-53, 0.5, 1 - 2.0**-53, 2.0**-1000]])
    exact = np.log(x64)
    ok = exact != 0
    assert _ulps(_log64_all(x64)[ok], exact[ok], np.float64).max() <= 2


@njit
def _bm_all(wr, wa):
    out = np.empty((wr.size, 2), np.float32)
    for i in range(wr.size):
        out[i, 0], out[i, 1] = C.box_muller_f32(wr[i], wa[i])
    return out


def test_box_muller_float32_matches_float64_math():
    rng = np.random.default_rng(2)
    wr = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    wa = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    z = _bm_all(wr, wa).astype(np.float64)
    u = np.minimum(wr.astype(np.float32) * np.float32(2.0**-32) + np.float32(2.0**-33), np.float32(1 - 2**-24))
    angle = 2 * np.pi * ((wa >> np.uint32(6)).astype(np.float64) + 0.5) / 2.0**26
    r = np.sqrt(-2 * np.log(u.astype(np.float64)))
    err = np.abs(z - np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1))
    assert err.max() < 3e-6 * max(1.0, r.max()) and np.median(err) < 2e-7


def test_normal_tails_reach_6_7_sigma_float32_and_8_5_float64():
    z = C.box_muller_f32(np.uint32(0), np.uint32(0x00000000))
    assert math.hypot(*z) == pytest.approx(math.sqrt(66 * math.log(2)), rel=1e-6)  # 6.757
    z = C.box_muller_f64(np.uint32(0), np.uint32(0), np.uint32(0), np.uint32(0))
    assert math.hypot(*z) == pytest.approx(math.sqrt(106 * math.log(2)), rel=1e-12)  # 8.572


def test_normal_ppf_matches_scipy():
    p = np.concatenate([np.logspace(-300, -0.302, 4000), 1 - np.logspace(-16, -0.302, 2000), [0.5, 0.075, 0.925]])
    ours = np.array([C.normal_ppf(v) for v in p])
    ref = special.ndtri(p)
    assert np.allclose(ours, ref, rtol=2e-14, atol=1e-300)


def test_normal_cdf_is_correctly_rounded_at_known_values():
    known = {  # Phi(x) to 20 significant digits
        -1.0: 0.15865525393145705142, -3.0: 0.0013498980316300945267, -10.0: 7.6198530241605260660e-24,
        -20.0: 2.7536241186062336951e-89, 1.5: 0.93319279873114191406,
    }
    for x, value in known.items():
        assert normal_cdf(x) == value
    assert normal_cdf(-math.inf) == 0.0 and normal_cdf(math.inf) == 1.0


def test_normal_cdf_agrees_with_scipy():
    xs = np.linspace(-37, 8.2, 700)
    ours = np.array([normal_cdf(float(x)) for x in xs])
    assert np.allclose(ours, special.ndtr(xs), rtol=1e-12, atol=0)  # SciPy's own error in the far tail


# -------------------------------------------------------------------- truncated normal
TRUNC = [
    (0.0, 1.0, -2.0, 2.0), (0.0, 1.0, 3.0, 6.0), (0.0, 1.0, -6.0, -3.0), (0.0, 1.0, 3.0, math.inf),
    (0.0, 1.0, -math.inf, -4.0), (1.0, 2.0, -3.0, 9.0), (0.0, 1.0, 8.0, 8.5), (0.0, 1.0, -0.5, 0.25),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("mean, std, a, b", TRUNC)
def test_trunc_normal_matches_scipy_truncnorm(dtype, mean, std, a, b):
    x = fi.trunc_normal_(np.empty(1 << 17, dtype), mean, std, a, b, seed=21, name="t").astype(np.float64)
    assert x.min() >= a and x.max() <= b
    dist = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3
    assert np.count_nonzero((x == a) | (x == b)) <= 2  # no pile-up at the bounds


def test_trunc_normal_tiny_std_with_absolute_bounds_is_the_plain_normal():
    # torch's default trunc_normal_(std=0.02) keeps a=-2, b=2: 100 std away, no truncation in effect
    x = fi.trunc_normal_(np.empty(1 << 18, np.float32), 0.0, 0.02, -2.0, 2.0, seed=3, name="t").astype(np.float64)
    assert stats.kstest(x, stats.norm(0, 0.02).cdf).pvalue > 1e-3
    assert abs(x.std() / 0.02 - 1) < 0.01


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
def test_trunc_normal_bounds_that_the_dtype_cannot_represent(dtype):
    # 0.1 is not exact in any binary format: bounds are rounded inward to the output dtype
    x = fi.trunc_normal_(np.empty(1 << 16, dtype), 0.0, 0.05, -0.1, 0.1, seed=5, name="t").astype(np.float64)
    assert x.min() >= -0.1 and x.max() <= 0.1
