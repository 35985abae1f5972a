"""Criticality (Roberts, Yaida & Hanin, ch. 5): critical points against an independent calculation
(scipy quad split at 0, brentq, the activations written afresh here), the book's values, and the
biases, susceptibilities and recommendations built on them."""

import math
import warnings

import numpy as np
import pytest

import fastinit.diagnostics as fd

scipy_integrate = pytest.importorskip("scipy.integrate")
from scipy import optimize, special  # noqa: E402


def expect(f, k):
    """E[f(z)], z ~ N(0, k), by adaptive quadrature on each side of 0."""
    density = lambda z: math.exp(-z * z / (2 * k)) / math.sqrt(2 * math.pi * k)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy_integrate.IntegrationWarning)  # quad's roundoff notes at 1e-13
        return sum(scipy_integrate.quad(lambda z: float(f(z)) * density(z), lo, hi, limit=400, epsabs=0,
                                        epsrel=1e-13)[0] for lo, hi in ((-np.inf, 0.0), (0.0, np.inf)))


def phi(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


# the activation, its first and second derivative, written independently of fastinit
SMOOTH = {
    "silu": (lambda z: z * special.expit(z), lambda z: special.expit(z) * (1 + z * (1 - special.expit(z))),
             lambda z: special.expit(z) * (1 - special.expit(z)) * (2 + z * (1 - 2 * special.expit(z)))),
    "gelu_erf": (lambda z: z * special.ndtr(z), lambda z: special.ndtr(z) + z * phi(z),
                 lambda z: (2 - z * z) * phi(z)),
    "mish": (lambda z: z * math.tanh(np.logaddexp(0.0, z)), None, None),
    "gelu": (lambda z: 0.5 * z * (1 + math.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3))), None, None),
}


def derivative(f, h=1e-5):
    return lambda z: (f(z + h) - f(z - h)) / (2 * h)


def independent_critical_point(activation, bracket):
    """K* where <s s''>_K = 0, then C_W = 1 / <s'^2>, C_b = K* - C_W <s^2>."""
    s, ds, d2s = SMOOTH[activation]
    ds = ds or derivative(s)
    d2s = d2s or derivative(ds, 1e-4)
    k_star = optimize.brentq(lambda k: expect(lambda z: s(z) * d2s(z), k), *bracket, xtol=1e-12, rtol=1e-13)
    c_w = 1 / expect(lambda z: ds(z) ** 2, k_star)
    return k_star, c_w, k_star - c_w * expect(lambda z: s(z) ** 2, k_star)


@pytest.mark.parametrize("activation, bracket", [("silu", (10, 20)), ("gelu_erf", (2, 5)), ("mish", (1, 3)),
                                                 ("gelu", (2, 5))])
def test_half_stable_critical_points_match_an_independent_calculation(activation, bracket):
    found = fd.critical(activation)
    k_star, c_w, c_b = independent_critical_point(activation, bracket)
    assert found.universality == "neither" and found.exists
    # four significant digits (and in fact far more)
    assert found.k_star == pytest.approx(k_star, rel=5e-5)
    assert found.c_w == pytest.approx(c_w, rel=5e-5)
    assert found.c_b == pytest.approx(c_b, rel=5e-5)


def test_the_books_values():
    gelu = fd.critical("gelu_erf")  # the exact GELU: K* solves K^2 - 3K - 2 = 0
    assert gelu.k_star == pytest.approx((3 + math.sqrt(17)) / 2, rel=1e-9)
    assert (round(gelu.c_b, 4), round(gelu.c_w, 3)) == (0.1729, 1.983)
    swish = fd.critical("silu")
    assert (round(swish.k_star, 2), round(swish.c_b, 4), round(swish.c_w, 3)) == (14.32, 0.5551, 1.988)
    for activation, c_w in (("relu", 2.0), ("leaky_relu", 2 / (1 + 0.01 ** 2)), ("linear", 1.0)):
        found = fd.critical(activation)
        assert (found.universality, found.c_b, found.k_star) == ("scale-invariant", 0.0, None)
        assert found.c_w == pytest.approx(c_w, rel=1e-12)
    tanh = fd.critical("tanh")
    assert (tanh.universality, tanh.c_b, tanh.c_w, tanh.k_star) == ("K*=0", 0.0, 1.0, 0.0)


@pytest.mark.parametrize("activation, c_w", [("softsign", 1.0), ("elu", 1.0),
                                             ("selu", 2 / (1.0507009873554805 ** 2 * (1 + 1.6732632423543772 ** 2)))])
def test_kinked_activations_with_zero_at_zero_are_in_the_k0_class(activation, c_w):
    found = fd.critical(activation)
    assert found.universality == "K*=0" and found.c_b == 0.0
    assert found.c_w == pytest.approx(c_w, rel=1e-12)  # 1 / mean of s'(0+)^2 and s'(0-)^2


@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])
def test_no_critical_point(activation):
    found = fd.critical(activation)
    assert not found.exists and found.universality == "none"
    assert (found.c_b, found.c_w, found.k_star) == (None, None, None)
    assert "no critical point" in found.reason and "!= 0" in found.reason


def test_no_critical_point_at_a_given_bias_variance():
    relu = fd.critical("relu", c_b=0.1)
    assert not relu.exists and "no fixed point unless C_b = 0" in relu.reason
    assert fd.critical("relu", c_b=0.0).exists
    assert not fd.critical("tanh", c_b=0.1).exists
    gelu = fd.critical("gelu_erf")
    assert fd.critical("gelu_erf", c_b=gelu.c_b) == gelu


@pytest.mark.parametrize("activation", ["gelu_erf", "silu", "mish"])
def test_half_stable_fixed_point_attracts_from_one_side_only(activation):
    c = fd.critical(activation)
    s = SMOOTH[activation][0]

    def step(k):  # K' - K, by quadrature
        return c.c_b + c.c_w * expect(lambda z: s(z) ** 2, k) - k

    below, above = step(0.99 * c.k_star), step(1.01 * c.k_star)
    assert below * above > 0  # one sign on both sides: half-stable, not an ordinary fixed point
    side = "below" if below > 0 else "above"
    assert f"a kernel just {side} K* flows to it" in c.reason


def test_susceptibilities_against_finite_differences_and_closed_forms():
    assert fd.susceptibilities("relu", 3.7, 2.0) == pytest.approx((1.0, 1.0), rel=1e-12)
    for activation, k, c_w in (("tanh", 0.7, 1.3), ("silu", 5.0, 2.0), ("elu", 1.0, 1.0)):
        h = 1e-4 * k
        slope = (fd.kernel_map(activation, k + h, 0.0, c_w) - fd.kernel_map(activation, k - h, 0.0, c_w)) / (2 * h)
        par, _ = fd.susceptibilities(activation, k, c_w)
        assert par == pytest.approx(slope, rel=1e-6)
    tanh_perp = c_w * expect(lambda z: (1 - math.tanh(z) ** 2) ** 2, 5.0)
    assert fd.susceptibilities("tanh", 5.0, c_w)[1] == pytest.approx(tanh_perp, rel=1e-10)


def test_propagate_with_biases_matches_its_theory():
    c = fd.critical("gelu_erf")
    p = fd.propagate([1024] * 9, "gelu_erf", "variance_scaling", scale=c.c_w, mode="fan_in", distribution="normal",
                     batch=100, bias_init="normal", bias_params={"std": math.sqrt(c.c_b)})
    np.testing.assert_allclose(p.forward_std, p.theory_forward_std, rtol=0.1)
    np.testing.assert_allclose(p.backward_std, p.theory_backward_std, rtol=0.1)
    # K_1 = C_b + C_W = 2.16 < K* = 3.56, on the side the half-stable point attracts
    assert p.theory_forward_std[0] ** 2 == pytest.approx(c.c_b + c.c_w, rel=0.02)
    # near criticality the kernel neither explodes nor vanishes, and both chis stay near 1
    assert np.all(np.abs(p.theory_forward_std / p.theory_forward_std[0] - 1) < 0.03)
    assert np.all(np.abs(p.theory_chi_parallel[1:] - 1) < 0.02) and np.all(np.abs(p.theory_chi_perp[1:] - 1) < 0.04)
    assert p.bias_init == "normal" and "bias normal" in p.label


def test_drift_from_criticality_shows_in_the_chi_columns():
    he = fd.propagate([256] * 6, "gelu_erf", "kaiming_normal", nonlinearity="relu", batch=50)
    assert np.isnan(he.theory_chi_perp[0]) and np.all(he.theory_chi_perp[1:] < 0.99)
    assert "chi_par" in he.table() and "chi_perp" in he.table()


def test_recommend_uses_the_critical_point():
    for activation, init in (("relu", "kaiming_normal"), ("leaky_relu", "kaiming_normal"), ("tanh", "xavier_normal"),
                             ("linear", "xavier_normal"), ("elu", "xavier_normal"), ("selu", "lecun_normal")):
        rec = fd.recommend(activation)
        assert rec.init == init and rec.bias_init is None and rec.criticality == fd.critical(activation)
    gelu = fd.recommend("gelu_erf")
    c = fd.critical("gelu_erf")
    assert gelu.init == "variance_scaling" and gelu.params == {"scale": c.c_w, "mode": "fan_in",
                                                               "distribution": "normal"}
    assert gelu.bias_init == "normal" and gelu.bias_params["std"] ** 2 == pytest.approx(c.c_b)
    assert "half-stable" in gelu.reason
    sigmoid = fd.recommend("sigmoid")
    assert sigmoid.init == "xavier_normal" and "no critical point" in sigmoid.reason


@pytest.mark.parametrize("call, error, match", [
    (lambda: fd.critical("swish"), ValueError, "unknown activation 'swish'.*gelu_erf"),
    (lambda: fd.critical("relu", c_b=-0.1), ValueError, "c_b must be >= 0"),
    (lambda: fd.critical("relu", c_b="0"), TypeError, "c_b must be a real number"),
    (lambda: fd.susceptibilities("relu", float("nan"), 2.0), ValueError, "k must be finite"),
    (lambda: fd.propagate([10, 10], "relu", "normal", bias_params={"std": 1}), ValueError, "bias_params needs"),
    (lambda: fd.propagate([10, 10], "relu", "normal", bias_init="he"), ValueError, "unknown bias_init 'he'"),
    (lambda: fd.propagate([10, 10], "relu", "normal", bias_init="normal", bias_params={"sd": 1}), ValueError,
     "does not take"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
