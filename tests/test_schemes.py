"""Schemes: parity with torch.nn.init / JAX / Keras definitions, statistics, shards, bad input."""

import math
import warnings

import numpy as np
import pytest
from conftest import BF16, assert_bits_equal
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import fastinit as fi
from fastinit.schemes import NONLINEARITIES, TRUNCATED_NORMAL_STD

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------------ fans and gains
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=2, max_size=5))
def test_fans_equal_torch(shape):
    assert fi.compute_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=2, max_size=5))
def test_jax_and_keras_fans_follow_their_definition(shape):
    # Keras / JAX: (*kernel, in, out), receptive field = prod(kernel)
    receptive = math.prod(shape[:-2])
    expected = (shape[-2] * receptive, shape[-1] * receptive)
    assert fi.compute_fans(shape, layout="jax") == fi.compute_fans(shape, layout="keras") == expected
    # the torch layout of the same weight, transposed, has the same fans
    assert fi.compute_fans([shape[-1], shape[-2], *shape[:-2]]) == expected


def test_explicit_axes_override_the_layout():
    assert fi.compute_fans((5, 7, 3), in_axis=0, out_axis=2) == (5 * 7, 3 * 7)
    assert fi.compute_fans((4, 5, 7, 3), in_axis=(1, 2), out_axis=3, batch_axis=0) == (35, 3)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_gains_equal_torch(nonlinearity):
    assert fi.calculate_gain(nonlinearity) == torch.nn.init.calculate_gain(nonlinearity)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, math.sqrt(5), 3])
def test_leaky_relu_gain_equals_torch(slope):
    assert fi.calculate_gain("leaky_relu", slope) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope),
                                                                   rel=1e-15)


def test_truncation_correction_is_the_std_of_a_unit_normal_cut_at_2():
    assert pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-15) == TRUNCATED_NORMAL_STD


# ------------------------------------------------------------------------- statistics
SHAPES = [(256, 512), (1024, 96), (64, 32, 3, 3), (16, 8, 5, 5, 5), (8, 65536)]


def _std_ok(x, expected, rel):
    return abs(float(np.asarray(x, np.float64).std()) / expected - 1) < rel


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_torch_named_schemes_match_their_formulas(shape):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    n = math.prod(shape)
    tol = 6 / math.sqrt(n)
    w = fi.xavier_uniform_(np.empty(shape, np.float32), gain=1.5, seed=1, name="a")
    bound = 1.5 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() < bound and np.abs(w).max() > bound * (1 - 1e-3)
    assert _std_ok(w, bound / math.sqrt(3), tol)
    w = fi.xavier_normal_(np.empty(shape, np.float32), gain=0.5, seed=1, name="b")
    assert _std_ok(w, 0.5 * math.sqrt(2 / (fan_in + fan_out)), tol)
    w = fi.kaiming_normal_(np.empty(shape, np.float32), mode="fan_out", nonlinearity="relu", seed=1, name="c")
    assert _std_ok(w, math.sqrt(2 / fan_out), tol)
    assert np.abs(w).max() > 4 * math.sqrt(2 / fan_out) or n < 10**5  # untruncated tails
    w = fi.kaiming_uniform_(np.empty(shape, np.float32), a=0.2, seed=1, name="d")
    bound = math.sqrt(3) * torch.nn.init.calculate_gain("leaky_relu", 0.2) / math.sqrt(fan_in)
    assert np.abs(w).max() < bound and _std_ok(w, bound / math.sqrt(3), tol)


@pytest.mark.parametrize("shape", [(64, 100), (128, 3, 3, 3)], ids=str)
def test_xavier_simple_is_torch_default_linear_and_conv_init(shape):
    fan_in = math.prod(shape[1:])
    w = fi.xavier_simple_(np.empty((400, *shape[1:]), np.float64), seed=2, name="lin").ravel()
    assert stats.kstest(w, stats.uniform(-1 / math.sqrt(fan_in), 2 / math.sqrt(fan_in)).cdf).pvalue > 1e-3
    torch.manual_seed(0)  # the peer's draw at a fixed seed, whatever ran before
    module = torch.nn.Linear(shape[1], shape[0]) if len(shape) == 2 else torch.nn.Conv2d(shape[1], shape[0], 3)
    reference = module.weight.detach().numpy().ravel()
    assert np.abs(reference).max() < 1 / math.sqrt(fan_in)
    assert stats.ks_2samp(w, reference).pvalue > 1e-3


@pytest.mark.parametrize("shape", [(3, 3, 64, 128), (512, 256), (5, 40, 80)], ids=str)
@pytest.mark.parametrize("scheme, scale, mode", [
    ("glorot_normal", 1.0, "fan_avg"), ("he_normal", 2.0, "fan_in"), ("lecun_normal", 1.0, "fan_in")])
def test_jax_convention_truncated_normals(shape, scheme, scale, mode):
    fan_in, fan_out = fi.compute_fans(shape, layout="jax")
    n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    w = getattr(fi.conventions.jax, scheme)(np.empty(shape, np.float64), seed=3, name="j").ravel()
    assert np.abs(w).max() <= 2 * std / TRUNCATED_NORMAL_STD
    assert _std_ok(w, std, 6 / math.sqrt(w.size))
    assert stats.kstest(w / (std / TRUNCATED_NORMAL_STD), stats.truncnorm(-2, 2).cdf).pvalue > 1e-3


def test_jax_samples_agree_with_jax_nn_initializers():
    jax = pytest.importorskip("jax")
    shape = (3, 3, 32, 64)
    for scheme in ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"):
        theirs = np.asarray(getattr(jax.nn.initializers, scheme)()(jax.random.key(0), shape), np.float64)
        ours = getattr(fi.conventions.jax, scheme)(np.empty(shape, np.float64), seed=0, name="w")
        assert abs(np.abs(ours).max() / np.abs(theirs).max() - 1) < 0.05, scheme
        assert abs(ours.std() / theirs.std() - 1) < 0.03, scheme
    theirs = np.asarray(jax.nn.initializers.truncated_normal(0.5, lower=-1.0, upper=3.0)(jax.random.key(0), (50000,)))
    ours = fi.conventions.jax.truncated_normal(np.empty(50000), stddev=0.5, lower=-1.0, upper=3.0, seed=0)
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    theirs = np.asarray(jax.nn.initializers.uniform(2.0)(jax.random.key(0), (50000,)))
    ours = fi.conventions.jax.uniform(np.empty(50000), scale=2.0, seed=0)
    assert ours.min() >= 0 and stats.ks_2samp(ours, theirs).pvalue > 1e-3


def test_keras_conventions():
    w = fi.conventions.keras.truncated_normal(np.empty(100000), mean=1.0, stddev=0.1, seed=0)
    assert w.min() >= 0.8 and w.max() <= 1.2 and abs(w.mean() - 1) < 1e-3
    assert stats.kstest((w - 1) / 0.1, stats.truncnorm(-2, 2).cdf).pvalue > 1e-3
    w = fi.conventions.keras.random_uniform(np.empty(10000), seed=0)
    assert w.min() >= -0.05 and w.max() < 0.05
    legacy = fi.conventions.keras.variance_scaling(np.empty((50, 60)), scale=2.0, distribution="normal", seed=4)
    truncated = fi.variance_scaling_(np.empty((50, 60)), 2.0, "fan_in", "truncated_normal", layout="keras", seed=4)
    assert_bits_equal(legacy, truncated)
    untruncated = fi.conventions.jax.variance_scaling(np.empty((50, 60)), scale=2.0, distribution="normal", seed=4)
    assert_bits_equal(untruncated, fi.variance_scaling_(np.empty((50, 60)), 2.0, "fan_in", "normal", layout="jax",
                                                        seed=4))


def test_torch_conventions_are_the_torch_named_functions():
    a = fi.conventions.torch.kaiming_normal(np.empty((30, 40)), nonlinearity="relu", seed=1, name="k")
    assert_bits_equal(a, fi.kaiming_normal_(np.empty((30, 40)), nonlinearity="relu", seed=1, name="k"))
    u = fi.conventions.torch.uniform(np.empty(1000), a=-3.0, b=-1.0, seed=1)
    assert u.min() >= -3 and u.max() < -1
    assert "lecun_normal" in fi.conventions.flax.default_kernel.describe


def test_unknown_convention_lists_the_known_ones():
    with pytest.raises(AttributeError, match="known: .*glorot_normal"):
        fi.conventions.keras.glorot_gaussian


# ------------------------------------------------------------------ shards and structure
@pytest.mark.parametrize("scheme", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                                    "lecun_normal_", "lecun_uniform_", "xavier_simple_", "orthogonal_", "sparse_"])
def test_column_and_row_shards_equal_slices_of_the_full_weight(scheme):
    fill = getattr(fi, scheme)
    args = (0.25,) if scheme == "sparse_" else ()
    full = fill(np.empty((48, 60), np.float32), *args, seed=9, name="w")
    for c0 in range(0, 60, 20):
        cols = fill(np.empty((48, 20), np.float32), *args, seed=9, name="w", global_shape=(48, 60), offset=(0, c0))
        assert_bits_equal(cols, full[:, c0:c0 + 20])
    rows = fill(np.empty((16, 60), np.float32), *args, seed=9, name="w", global_shape=(48, 60), offset=(16, 0))
    assert_bits_equal(rows, full[16:32])


@pytest.mark.parametrize("shape, layout", [((30, 50), "torch"), ((50, 30), "torch"), ((16, 4, 3, 3), "torch"),
                                           ((3, 3, 4, 16), "jax"), ((40, 40), "keras")])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, layout):
    w = fi.orthogonal_(np.empty(shape), gain=2.0, layout=layout, seed=0, name="q")
    m = w.reshape(shape[0], -1) if layout == "torch" else w.reshape(-1, shape[-1])
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    assert np.allclose(gram, 4 * np.eye(small), atol=1e-12)


def test_orthogonal_is_sign_corrected_qr_of_the_stream():
    g = fi.normal_(np.empty((50, 30)), seed=5, name="q")
    q, r = np.linalg.qr(g)
    expected = q * np.sign(np.diag(r))
    assert np.allclose(fi.orthogonal_(np.empty((50, 30)), seed=5, name="q"), expected, atol=1e-14)
    assert np.allclose(fi.orthogonal_(np.empty((30, 50)), seed=5, name="q"), expected.T, atol=1e-14)


def test_orthogonal_bfloat16_is_rounded_float32():
    a = fi.orthogonal_(np.empty((20, 30), np.float32), seed=1, name="o")
    assert_bits_equal(fi.orthogonal_(np.empty((20, 30), BF16), seed=1, name="o"), a.astype(BF16))


def test_delta_orthogonal_layouts_agree():
    j = fi.delta_orthogonal_(np.empty((3, 3, 4, 8)), gain=1.5, layout="jax", seed=2, name="d")
    t = fi.delta_orthogonal_(np.empty((8, 4, 3, 3)), gain=1.5, layout="torch", seed=2, name="d")
    assert np.array_equal(t, j.transpose(3, 2, 0, 1))
    assert np.count_nonzero(j[[0, 2]]) == 0 and np.count_nonzero(j[:, [0, 2]]) == 0
    assert np.allclose(j[1, 1] @ j[1, 1].T, 2.25 * np.eye(4))
    even = fi.delta_orthogonal_(np.empty((4, 2, 4)), layout="jax", seed=2, name="d")
    assert np.count_nonzero(even[1]) > 0 and np.count_nonzero(even[[0, 2, 3]]) == 0  # tap (k - 1) // 2


@pytest.mark.parametrize("rows, sparsity", [(10, 0.1), (10, 0.25), (100, 0.9), (7, 0.0), (1000, 0.5), (9, 1.0)])
def test_sparse_has_exact_zero_counts_per_column(rows, sparsity):
    w = fi.sparse_(np.empty((rows, 37), np.float32), sparsity, std=0.5, seed=1, name="s")
    assert ((w == 0).sum(axis=0) == math.ceil(sparsity * rows)).all()
    nonzero = w[w != 0].astype(np.float64)
    if nonzero.size > 1000:
        assert _std_ok(nonzero, 0.5, 0.1)


def test_sparse_in_column_passes_equals_one_pass(monkeypatch):
    one_pass = fi.sparse_(np.empty((200, 50), np.float32), 0.3, seed=4, name="s")
    shard = fi.sparse_(np.empty((120, 30), np.float32), 0.3, seed=4, name="s",
                       global_shape=(200, 50), offset=(40, 11))
    monkeypatch.setattr(fi.schemes, "_SPARSE_BLOCK", 3 * 200)  # 3 columns per pass
    assert_bits_equal(fi.sparse_(np.empty((200, 50), np.float32), 0.3, seed=4, name="s"), one_pass)
    passes = fi.sparse_(np.empty((120, 30), np.float32), 0.3, seed=4, name="s",
                        global_shape=(200, 50), offset=(40, 11))
    assert_bits_equal(passes, shard)
    assert_bits_equal(passes, one_pass[40:160, 11:41])


def test_eye_dirac_and_constants_match_torch():
    for shape in ((3, 5), (6, 2)):
        assert np.array_equal(fi.eye_(np.empty(shape, np.float32)), torch.nn.init.eye_(torch.empty(shape)).numpy())
    for shape, groups in (((4, 2, 3), 1), ((6, 3, 3, 3), 2), ((8, 2, 4, 4, 2), 4), ((3, 5, 3), 1)):
        expected = torch.nn.init.dirac_(torch.empty(shape), groups).numpy()
        assert np.array_equal(fi.dirac_(np.empty(shape, np.float32), groups), expected)
        box = fi.dirac_(np.empty((shape[0], 1, *shape[2:]), np.float32), groups, global_shape=shape,
                        offset=(0, 1) + (0,) * (len(shape) - 2))
        assert np.array_equal(box, expected[:, 1:2])
    assert (fi.constant_(np.empty(5, BF16), 0.25) == 0.25).all()
    assert (fi.zeros_(np.empty(5)) == 0).all() and (fi.ones_(np.empty((2, 2), np.float16)) == 1).all()


# ------------------------------------------------------------------ allocating forms
def test_init_allocates_with_any_scheme_name():
    w = fi.init((64, 32), "kaiming_normal", "bfloat16", seed=0, name="w", nonlinearity="relu")
    assert w.dtype == BF16 and w.shape == (64, 32)
    assert_bits_equal(w, fi.kaiming_normal_(np.empty((64, 32), BF16), nonlinearity="relu", seed=0, name="w"))
    assert (fi.init((3, 3), "eye") == np.eye(3)).all()
    with pytest.raises(ValueError, match="unknown scheme 'he_gaussian'; known: .*kaiming_normal"):
        fi.init((2, 2), "he_gaussian")


def test_init_memmap_is_atomic_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "w.npy"
    w = fi.init((100, 50), "normal", path=path, seed=1, name="w", std=0.02)
    assert isinstance(w, np.memmap) and not (tmp_path / "w.npy.partial").exists()
    assert_bits_equal(np.load(path), fi.normal_(np.empty((100, 50), np.float32), 0.0, 0.02, seed=1, name="w"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fi.init((2, 2), "zeros", path=path)
    with pytest.raises(ValueError, match="std"):
        fi.init((2, 2), "normal", path=tmp_path / "bad.npy", std=-1.0)
    assert not (tmp_path / "bad.npy").exists() and not (tmp_path / "bad.npy.partial").exists()
    assert fi.init((2, 2), "ones", path=path, overwrite=True).sum() == 4
    folder = tmp_path / "a-directory"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        fi.init((2, 2), "ones", path=folder, overwrite=True)  # never replaces a directory with a file
    assert (folder / "inside").is_dir() and not (tmp_path / "a-directory.partial").exists()


def test_jax_style_factories():
    init = fi.initializers.he_normal()
    a = init(7, (3, 3, 8, 16))
    assert a.dtype == np.float32 and a.shape == (3, 3, 8, 16)
    assert_bits_equal(a, fi.conventions.jax.he_normal(np.empty((3, 3, 8, 16), np.float32), seed=7))
    assert fi.initializers.normal(stddev=2.0)(0, (10000,), np.float64).std() == pytest.approx(2.0, rel=0.05)
    assert fi.initializers.orthogonal.__doc__ and fi.initializers.glorot_normal().__name__ == "glorot_normal"


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, error, match", [
    (lambda: fi.xavier_uniform_(np.empty(5)), ValueError, "at least 2 dims"),
    (lambda: fi.kaiming_normal_(np.empty(5)), ValueError, "at least 2 dims"),
    (lambda: fi.orthogonal_(np.empty(5)), ValueError, "at least 2 dims"),
    (lambda: fi.kaiming_normal_(np.empty((2, 2)), nonlinearity="gelu"), ValueError,
     "nonlinearity must be one of .*'relu'.*'selu'"),
    (lambda: fi.calculate_gain("swish"), ValueError, "'leaky_relu'"),
    (lambda: fi.calculate_gain("leaky_relu", "x"), TypeError, "param"),
    (lambda: fi.kaiming_normal_(np.empty((2, 2)), mode="fan_avg"), ValueError,
     "mode must be one of 'fan_in', 'fan_out'"),
    (lambda: fi.variance_scaling_(np.empty((2, 2)), mode="fan"), ValueError, "'fan_avg'"),
    (lambda: fi.variance_scaling_(np.empty((2, 2)), distribution="gauss"), ValueError, "'truncated_normal'"),
    (lambda: fi.variance_scaling_(np.empty((2, 2)), scale=0.0), ValueError, "scale must be > 0"),
    (lambda: fi.xavier_normal_(np.empty((2, 2)), layout="tf"), ValueError, "layout must be one of 'torch', 'jax'"),
    (lambda: fi.compute_fans((2, 2), in_axis=5), ValueError, "in_axis 5 is out of range"),
    (lambda: fi.compute_fans((2, 2, 2), in_axis=0, out_axis=0), ValueError, "distinct"),
    (lambda: fi.sparse_(np.empty((4, 4)), 1.5), ValueError, r"sparsity must be in \[0, 1\]"),
    (lambda: fi.sparse_(np.empty((4, 4)), -0.1), ValueError, "sparsity"),
    (lambda: fi.sparse_(np.empty((4, 4, 4)), 0.1), ValueError, "2-d"),
    (lambda: fi.dirac_(np.empty((4, 4))), ValueError, "3-, 4- or 5-d"),
    (lambda: fi.dirac_(np.empty((4, 4, 3)), 3), ValueError, "must divide the out channels"),
    (lambda: fi.dirac_(np.empty((4, 4, 3)), 0), ValueError, "groups must be a positive int"),
    (lambda: fi.eye_(np.empty((2, 2, 2))), ValueError, "2-d"),
    (lambda: fi.delta_orthogonal_(np.empty((3, 8, 4)), layout="jax"), ValueError, "in <= out"),
    (lambda: fi.delta_orthogonal_(np.empty((3, 3))), ValueError, "3-, 4- or 5-d"),
    (lambda: fi.xavier_uniform_(np.empty((2, 2), np.int64)), TypeError, "dtype"),
    (lambda: fi.constant_(np.empty(2), math.nan), ValueError, "val must be finite"),
], ids=lambda v: None)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("scheme", ["xavier_uniform_", "kaiming_normal_", "lecun_normal_", "orthogonal_"])
def test_zero_element_tensors_warn_and_return(scheme):
    out = np.empty((0, 5), np.float32)
    with pytest.warns(UserWarning, match="zero-element"):
        assert getattr(fi, scheme)(out, seed=0) is out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty shard of a non-empty tensor is just a no-op
        getattr(fi, scheme)(np.empty((0, 5), np.float32), seed=0, global_shape=(4, 5), offset=(4, 0))


def test_sparse_written_box_by_box_draws_each_word_a_bounded_number_of_times(tmp_path, monkeypatch):
    """Out of core, a sparse weight costs time linear in its size: its column thresholds are
    computed once, and each slab then draws only its own words (it used to re-rank whole columns
    for every slab, quadratic in the rows)."""
    import fastinit.checkpoint as ckpt
    import fastinit.schemes as schemes

    drawn = []
    real = schemes.random_bits_

    def counting(out, **kw):
        drawn.append(out.size)
        return real(out, **kw)

    monkeypatch.setattr(schemes, "random_bits_", counting)
    schemes._sparse_block_thresholds.cache_clear()
    rows, cols = 512, 4096
    spec = {"tensors": {"w": {"shape": [rows, cols], "dtype": "float32", "init": "sparse", "sparsity": 0.25}}}
    ckpt.generate(spec, tmp_path / "w.safetensors", seed=3, chunk_bytes=4096)  # slabs of 1024 columns of a row
    # the spec check's dry run: one element and its block of 1024 columns' thresholds; then every
    # block's thresholds once, and every slab its own words
    assert sum(drawn) == 1 + rows * 1024 + 2 * rows * cols
    whole = fi.sparse_(np.empty((rows, cols), np.float32), 0.25, seed=3, name="w")
    assert ckpt.verify(tmp_path / "w.safetensors") == []
    assert ((whole == 0).sum(axis=0) == 128).all()
