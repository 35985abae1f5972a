"""fastinit.diagnostics: the classic signal-propagation results, reproduced, and the theory."""

import math

import numpy as np
import pytest

import fastinit.diagnostics as fd
from fastinit.cli import main


def test_linear_std_one_blows_up_std_point_one_keeps():
    big = fd.propagate([100, 100, 100], "linear", "normal", std=1.0)
    np.testing.assert_allclose(big.forward_std, [10, 100], rtol=0.1)
    np.testing.assert_allclose(big.theory_forward_std, [10, 100], rtol=0.02)  # C_W = 100 * E[W^2] ~ 100
    kept = fd.propagate([100, 100, 100], "linear", "normal", std=0.1)
    np.testing.assert_allclose(kept.forward_std, [1, 1], rtol=0.1)


def test_relu_deep_he_keeps_glorot_decays():
    widths = [512] * 31
    he = fd.propagate(widths, "relu", "kaiming_normal", nonlinearity="relu", batch=200)
    ratio = he.forward_std / he.forward_std[0]
    assert ratio.max() < 2 and ratio.min() > 0.5
    glorot = fd.propagate(widths, "relu", "xavier_normal", batch=200)
    assert glorot.forward_std[-1] / glorot.forward_std[0] < 1e-3  # 2**-14.5 ~ 4e-5: orders of magnitude
    assert glorot.theory_forward_std[-1] / glorot.theory_forward_std[0] == pytest.approx(2 ** -14.5, rel=0.05)


def test_wide_relu_he_matches_theory_within_ten_percent():
    p = fd.propagate([2048] * 11, "relu", "kaiming_normal", nonlinearity="relu", batch=200)
    np.testing.assert_allclose(p.forward_std, p.theory_forward_std, rtol=0.1)
    np.testing.assert_allclose(p.backward_std, p.theory_backward_std, rtol=0.1)
    np.testing.assert_allclose(p.weight_grad_std, p.theory_weight_grad_std, rtol=0.1)
    np.testing.assert_allclose(p.theory_forward_std, math.sqrt(2), rtol=0.02)  # He: K = 2 E[x^2] ... constant


def test_finite_width_spread_grows_with_depth_over_width():
    narrow = fd.propagate([512] * 31, "relu", "kaiming_normal", nonlinearity="relu", batch=20, instances=32)
    wide = fd.propagate([2048] * 11, "relu", "kaiming_normal", nonlinearity="relu", batch=20, instances=12)
    # theory: Var[log G_L] = 5 (L - 1) / n + 2 / n for ReLU (Roberts & Yaida's depth-to-width ratio)
    assert narrow.theory_forward_spread[-1] == pytest.approx(math.sqrt((5 * 29 + 2) / 512), rel=0.02)
    assert wide.theory_forward_spread[-1] == pytest.approx(math.sqrt((5 * 9 + 2) / 2048), rel=0.02)
    assert narrow.forward_spread[-1] == pytest.approx(narrow.theory_forward_spread[-1], rel=0.25)
    assert wide.forward_spread[-1] == pytest.approx(wide.theory_forward_spread[-1], rel=0.25)
    assert narrow.forward_spread[-1] > 2.5 * wide.forward_spread[-1]
    # the spread grows with depth, as the theory says
    assert narrow.forward_spread[-1] > 2 * narrow.forward_spread[4]
    assert narrow.forward_std_instances[:, -1].std() > 2 * wide.forward_std_instances[:, -1].std()


def test_tanh_glorot_weight_gradients_nearly_equal_across_layers():
    p = fd.propagate([256] * 21, "tanh", "xavier_normal", batch=200)
    g = p.weight_grad_std
    assert g.max() / g.min() < 1.5
    # with N(0, 1) weights they are not
    bad = fd.propagate([256] * 21, "tanh", "normal", std=1.0, batch=200)
    assert bad.weight_grad_std.max() / bad.weight_grad_std.min() > 10


@pytest.mark.parametrize("activation", list(fd.ACTIVATIONS))
def test_every_activation_runs_and_follows_theory_at_width(activation):
    rec = fd.recommend(activation)
    p = fd.propagate([1024] * 6, activation, rec.init, batch=100, **rec.params)
    np.testing.assert_allclose(p.forward_std, p.theory_forward_std, rtol=0.1)
    np.testing.assert_allclose(p.backward_std, p.theory_backward_std, rtol=0.1)
    assert rec.reason


def test_gaussian_expectation_known_moments():
    relu, _ = fd.ACTIVATIONS["relu"]
    assert fd.gaussian_expectation(lambda z: relu(z) ** 2, 3.0) == pytest.approx(1.5, rel=1e-12)
    assert fd.gaussian_expectation(lambda z: z ** 4, 2.0) == pytest.approx(12.0, rel=1e-12)
    tanh2 = fd.gaussian_expectation(lambda z: np.tanh(z) ** 2, 1.0)
    z = np.random.default_rng(0).standard_normal(2_000_000)
    assert tanh2 == pytest.approx(np.mean(np.tanh(z) ** 2), abs=1e-3)


@pytest.mark.parametrize("activation, init", [("relu", "kaiming_normal"), ("leaky_relu", "kaiming_normal"),
                                              ("tanh", "xavier_normal"), ("linear", "xavier_normal"),
                                              ("selu", "lecun_normal")])
def test_recommendations(activation, init):
    assert fd.recommend(activation).init == init


@pytest.mark.parametrize("call, error, match", [
    (lambda: fd.propagate([100], "relu", "normal"), ValueError, "at least 2"),
    (lambda: fd.propagate(100, "relu", "normal"), TypeError, "widths"),
    (lambda: fd.propagate([100, 0], "relu", "normal"), ValueError, "positive"),
    (lambda: fd.propagate([10, 10], "swish", "normal"), ValueError, "unknown activation 'swish'.*relu"),
    (lambda: fd.propagate([10, 10], "relu", "he"), ValueError, "unknown init 'he'"),
    (lambda: fd.propagate([10, 10], "relu", "normal", sd=1), ValueError, "does not take"),
    (lambda: fd.propagate([10, 10], "relu", "normal", batch=0), ValueError, "batch"),
    (lambda: fd.propagate([10, 10], "relu", "normal", instances=1.5), ValueError, "instances"),
    (lambda: fd.recommend("swish"), ValueError, "unknown activation"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_cli_table_and_plot(tmp_path, capsys):
    out = tmp_path / "std.png"
    assert main(["diagnose", "--widths", "64,64,64,64", "--activation", "relu", "--init", "kaiming_normal",
                 "--param", "nonlinearity=relu", "--batch", "50", "--plot", str(out)]) == 0
    text = capsys.readouterr().out
    assert "forward std" in text and "recommended" in text and len(text.splitlines()) >= 5
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["diagnose", "--widths", "64,64", "--activation", "relu", "--init", "normal", "--plot", str(out)]) == 1
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--widths", "64", "--activation", "relu", "--init", "normal"], "at least 2"),
    (["--widths", "64,x", "--activation", "relu", "--init", "normal"], "widths"),
    (["--widths", "64,64", "--activation", "swish", "--init", "normal"], "unknown activation"),
    (["--widths", "64,64", "--activation", "relu", "--init", "normal", "--param", "std"], "KEY=VALUE"),
])
def test_cli_bad_input_exits_2(argv, match, capsys):
    assert main(["diagnose", *argv]) == 2
    assert match in capsys.readouterr().err
