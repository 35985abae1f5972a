"""Residual networks and the residual stream of a pre-norm transformer stack at initialization:
measured with fastinit weights against the recursion, and the plots written atomically."""

import math
import os

import numpy as np
import pytest

import fastinit.diagnostics as fd
from fastinit._residual_stream import _predict


@pytest.mark.parametrize("gamma2", [0.5, 0.1])
def test_residual_mlp_matches_its_recursion(gamma2):
    xi, gamma = math.sqrt(1 - gamma2), math.sqrt(gamma2)
    p = fd.propagate([512] * 21, "tanh", "normal", std=1 / math.sqrt(512), batch=100, residual=(xi, gamma))
    np.testing.assert_allclose(p.forward_std, p.theory_forward_std, rtol=0.1)
    np.testing.assert_allclose(p.backward_std, p.theory_backward_std, rtol=0.1)
    np.testing.assert_allclose(p.weight_grad_std, p.theory_weight_grad_std, rtol=0.1)
    # the recursion itself, written out with the nominal C_W = 1: K' = xi^2 K + gamma^2 E[tanh(z)^2]
    nodes, weights = np.polynomial.hermite.hermgauss(200)
    k = [1.0]
    for _ in range(19):
        k.append(xi ** 2 * k[-1] + gamma2 * weights @ np.tanh(np.sqrt(2 * k[-1]) * nodes) ** 2 / math.sqrt(math.pi))
    np.testing.assert_allclose(p.theory_forward_std, np.sqrt(k), rtol=0.01)
    assert np.isnan(p.theory_forward_spread[1:]).all() and p.residual == (xi, gamma)
    assert "residual xi=" in p.label


def test_residual_scaling_sets_the_effective_depth():
    """With xi^2 + gamma^2 = 1 at the MLP's critical C_W, each block moves K by gamma^2 times one
    MLP layer's step: L blocks act like gamma^2 L layers, so gamma^2 = 0.2 over 40 blocks and
    gamma^2 = 0.1 over 80 blocks end at the same K, far from where 40 blocks of gamma^2 = 0.1 are."""
    def run(gamma2, blocks):
        return fd.propagate([256] * (blocks + 2), "tanh", "normal", std=1 / 16, batch=20,
                            residual=(math.sqrt(1 - gamma2), math.sqrt(gamma2)))

    short, long = run(0.2, 40), run(0.1, 80)
    assert long.theory_forward_std[-1] == pytest.approx(short.theory_forward_std[-1], rel=0.03)
    assert long.forward_std[-1] == pytest.approx(short.forward_std[-1], rel=0.1)
    assert long.forward_std[40] > 1.2 * short.forward_std[-1]


def test_residual_needs_one_width():
    with pytest.raises(ValueError, match="one width"):
        fd.propagate([10, 20, 30], "relu", "normal", residual=(1.0, 1.0))
    with pytest.raises(TypeError, match="pair"):
        fd.propagate([10, 10], "relu", "normal", residual=1.0)


@pytest.fixture(scope="module")
def streams():
    return {recipe: fd.residual_stream(recipe, width=512, layers=6, heads=8, seq_len=32, batch=4)
            for recipe in fd.RECIPES}


@pytest.mark.parametrize("recipe", ["torch", "hf", "gpt2", "torchtitan"])
def test_measured_stream_matches_the_prediction_within_ten_percent(streams, recipe):
    r = streams[recipe]
    np.testing.assert_allclose(r.measured_variance, r.predicted_variance, rtol=0.1)
    assert r.measured_variance[0] == pytest.approx({"torch": 1, "hf": 4e-4, "gpt2": 4e-4, "torchtitan": 1}[recipe],
                                                   rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["torch", "hf", "gpt2", "torchtitan"])
@pytest.mark.parametrize("width", [512, 1024])
def test_deep_wide_stream_matches_the_prediction_within_ten_percent(recipe, width):
    r = fd.residual_stream(recipe, width=width, layers=24, heads=width // 64, seq_len=64, batch=8)
    np.testing.assert_allclose(r.measured_variance, r.predicted_variance, rtol=0.1)


def test_predicted_growth_with_depth_by_recipe():
    """HF's constant 0.02 adds the same variance per block (linear growth); GPT-2's 1/sqrt(2L)
    makes the total independent of L; torchtitan's depth_init adds less and less (log L)."""
    def final(recipe, layers):
        return _predict(recipe, 512, 1408, layers, 16)[-1]

    hf = [final("hf", n) for n in (0, 16, 32)]
    assert hf[2] - hf[1] == pytest.approx(hf[1] - hf[0], rel=0.2)
    gpt2 = [final("gpt2", n) for n in (8, 16, 32)]
    assert gpt2[2] / gpt2[0] < 1.5 and hf[2] / hf[1] > 1.8
    titan = [final("torchtitan", n) for n in (8, 16, 32)]
    assert titan[2] - titan[1] == pytest.approx(titan[1] - titan[0], rel=0.2)  # the same step per doubling


def test_stream_table_and_bad_input(streams):
    text = streams["hf"].table()
    assert text.splitlines()[0].split()[:3] == ["block", "stream", "var"] and len(text.splitlines()) == 8
    with pytest.raises(ValueError, match="recipe must be one of"):
        fd.residual_stream("megatron")
    with pytest.raises(ValueError, match="multiple of heads"):
        fd.residual_stream("hf", width=100, heads=8)
    with pytest.raises(ValueError, match="norm must be one of"):
        fd.residual_stream("hf", norm="batch")


def test_plots_are_written_atomically(streams, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "stream.png"
    fd.plot_residual_stream(list(streams.values()), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="exists"):
        fd.plot_residual_stream(list(streams.values()), path)
    before = path.read_bytes()
    fd.plot_residual_stream(list(streams.values())[:1], path, overwrite=True)
    assert path.read_bytes() != before
    with pytest.raises(FileNotFoundError):
        fd.plot_residual_stream(list(streams.values()), tmp_path / "missing" / "stream.png")
    assert sorted(os.listdir(tmp_path)) == ["stream.png"]  # no partial file left behind
