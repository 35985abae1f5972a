"""Distributional checks at fixed seeds (deterministic: a failure is a real change, not bad luck)."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import FLOAT_DTYPES, ROOT
from scipy import stats

import fastinit as fi

N_WIDE, N_HALF = 1 << 18, 1 << 14  # 16-bit outputs are coarse: KS on fewer samples


def _draw(fill, dtype, *args, seed=17):
    n = N_HALF if np.dtype(dtype).itemsize == 2 else N_WIDE
    return fill(np.empty(n, dtype), *args, seed=seed, name="stats").astype(np.float64)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("fill, args, dist", [
    (fi.uniform_, (-0.5, 1.5), stats.uniform(-0.5, 2.0)),
    (fi.normal_, (0.3, 2.0), stats.norm(0.3, 2.0)),
    (fi.trunc_normal_, (0.0, 1.0, -2.0, 2.0), stats.truncnorm(-2, 2)),
    (fi.trunc_normal_, (0.0, 0.02, -2.0, 2.0), stats.norm(0, 0.02)),
], ids=["uniform", "normal", "trunc_normal", "trunc_normal_tiny_std"])
def test_ks_and_moments(fill, args, dist, dtype):
    x = _draw(fill, dtype, *args)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3
    n = x.size
    mean, var = dist.stats()
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / n)
    assert abs(x.var() / var - 1) < 5 * np.sqrt(2 / n) + (2e-4 if dtype.itemsize == 2 else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_normal_skew_and_kurtosis(dtype):
    x = fi.normal_(np.empty(1 << 20, dtype), seed=5, name="m").astype(np.float64)
    assert abs(stats.skew(x)) < 5 * np.sqrt(6 / x.size)
    assert abs(stats.kurtosis(x)) < 5 * np.sqrt(24 / x.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("fill", [fi.uniform_, fi.normal_, fi.trunc_normal_])
def test_neighbours_are_uncorrelated(fill, dtype):
    x = fill(np.empty(1 << 20, dtype), seed=8, name="c").astype(np.float64)
    x -= x.mean()
    bound = 5 / np.sqrt(x.size)
    for lag in (1, 2, 3, 4, 5, 8):  # within a Box-Muller pair, within a block, across blocks
        assert abs(np.corrcoef(x[:-lag], x[lag:])[0, 1]) < bound
    # the two members of a Box-Muller pair share a radius: their squares must still be independent
    sq = x ** 2
    assert abs(np.corrcoef(sq[0::2], sq[1::2])[0, 1]) < bound * 1.5


def test_columns_of_a_matrix_are_uncorrelated():
    w = fi.normal_(np.empty((4096, 64), np.float32), seed=1, name="w").astype(np.float64)
    c = np.corrcoef(w, rowvar=False)
    assert np.abs(c[~np.eye(64, dtype=bool)]).max() < 5 / np.sqrt(4096) + 0.01


# --------------------------------------------------------------------------- slow, large
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_tail_counts_of_2_30_normals(dtype):
    n, chunk = 1 << 30, 1 << 26
    counts = {5.0: 0, 5.5: 0, 6.0: 0}
    buf = np.empty(chunk, dtype)
    for start in range(0, n, chunk):
        fi.normal_(buf, seed=2024, name="tails", global_shape=(n,), offset=(start,))
        a = np.abs(buf)
        for k in counts:
            counts[k] += int(np.count_nonzero(a > k))
    for k, c in counts.items():
        expected = n * 2 * stats.norm.sf(k)
        lo, hi = stats.poisson.ppf([1e-4, 1 - 1e-4], expected)
        assert lo <= c <= hi, f"|z| > {k}: {c} values, expected {expected:.1f} ({lo}..{hi})"


# dieharder -d N [extra options]. rgb_minimum_distance (201) needs an explicit dimension: with its
# default "-n 0" it reports p = 0 for mt19937 (-g 13) and AES_OFB (-g 205) too (dieharder 3.31.1)
_DIEHARDER_TESTS = [["0"], ["1"], ["2"], ["3"], ["4"], ["8"], ["9"], ["10"], ["11"], ["12"], ["13"], ["15"],
                    ["100"], ["101"], ["102"], ["201", "-n", "3"]]


@pytest.mark.slow
def test_raw_words_pass_dieharder(tmp_path):
    exe = shutil.which("dieharder")
    if exe is None:
        pytest.skip("dieharder is not installed (Debian package 'dieharder')")
    writer = ("import sys, numpy as np, fastinit as fi\n"
              "buf = np.empty(1 << 24, np.uint32); start = 0\n"
              "try:\n"
              "    while True:\n"
              "        fi.random_bits_(buf, seed=20261123, name='dieharder', global_shape=(1 << 60,),\n"
              "                        offset=(start,))\n"
              "        sys.stdout.buffer.write(buf.tobytes()); start += buf.size\n"
              "except (BrokenPipeError, OSError):\n"
              "    pass\n")
    failed = []
    for test in _DIEHARDER_TESTS:
        source = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, cwd=ROOT,
                                  stderr=subprocess.DEVNULL)
        result = subprocess.run([exe, "-g", "200", "-d", *test], stdin=source.stdout, capture_output=True,
                                text=True, timeout=1800)
        source.kill()
        lines = [ln for ln in result.stdout.splitlines() if "|" in ln and ("PASSED" in ln or "WEAK" in ln
                                                                          or "FAILED" in ln)]
        assert lines, result.stdout + result.stderr
        failed += [ln for ln in lines if "FAILED" in ln]
    assert not failed, "\n".join(failed)
