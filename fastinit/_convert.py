"""Bits to floats: uniform intervals, Box-Muller, the inverse normal CDF, bf16 / f16 rounding.

Every function here is a fixed sequence of IEEE operations (+, -, *, /, sqrt, min, max, integer
bit manipulation): no libm call and no fastmath, so a value is the same on every CPU, and the
loops that call these functions vectorize (llvmlite ships without SVML; libm calls stay scalar).
The same functions compile for CUDA (``fastinit._cuda``), which is why square roots are
``math.sqrt`` (the same CPU code as ``np.sqrt``; numba-cuda has no ``np.sqrt`` for scalars).

Transcendentals are written out:

* ``log``: ``x = m * 2**e`` with ``m`` in [sqrt(1/2), sqrt(2)), ``s = (m - 1) / (m + 1)``,
  ``log(m) = 2 * atanh(s) = 2s (1 + s^2/3 + s^4/5 + ...)`` (Taylor, |s| <= 0.1716: 5 terms reach
  float32 precision, 11 terms float64);
* ``sin`` / ``cos`` of an angle in [0, 2pi): the top two bits of the angle word pick the quadrant,
  the rest give ``psi`` in (-pi/4, pi/4); ``(cos psi -+ sin psi)`` = ``sqrt(2) (cos, sin)(psi + pi/4)``
  by Taylor polynomials (to psi^10 / psi^9 in float32, psi^16 / psi^17 in float64);
* the inverse normal CDF: Wichura's AS 241 (Applied Statistics 37, 1988), relative error ~1e-16,
  its three rational branches selected per value without jumps.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import bits_f32, bits_f64, f32_bits, f64_bits, inline_jit

# ---------------------------------------------------------------------------------- uniforms
_F32_2_M24 = np.float32(2.0**-24)
_F32_2_M32 = np.float32(2.0**-32)
_F32_2_M33 = np.float32(2.0**-33)
_F32_BELOW_ONE = np.float32(1.0 - 2.0**-24)
_F64_2_M33 = 2.0**-33
_F64_2_M53 = 2.0**-53


@inline_jit
def u24(w):
    """float32 in [0, 1): the top 24 bits of ``w`` times 2**-24."""
    return np.float32(np.int32(w >> np.uint32(8))) * _F32_2_M24


@inline_jit
def u53_bits(wa, wb):
    """53 random bits as an integer: the top 27 bits of ``wa`` then the top 26 bits of ``wb``."""
    return (np.uint64(wa >> np.uint32(5)) << np.uint64(26)) | np.uint64(wb >> np.uint32(6))


@inline_jit
def u53(wa, wb):
    """float64 in [0, 1) with 53 random bits."""
    return np.float64(np.int64(u53_bits(wa, wb))) * _F64_2_M53


@inline_jit
def u53_open(wa, wb):
    """float64 in (0, 1): ``(k | 1) * 2**-53`` for the 53-bit integer ``k``; from 2**-53 to 1 - 2**-53."""
    return np.float64(np.int64(u53_bits(wa, wb) | np.uint64(1))) * _F64_2_M53


@inline_jit
def u32_open_f64(w):
    """float64 in (0, 1): ``(w + 1/2) * 2**-32``, exact; from 2**-33 to 1 - 2**-33."""
    return np.float64(np.int64(w) * 2 + 1) * _F64_2_M33


@inline_jit
def u32_open_f32(w):
    """float32 in (0, 1): ``min(f32(w) * 2**-32 + 2**-33, 1 - 2**-24)``, with f32() rounding to nearest.

    Exact ``(w + 1/2) * 2**-32`` for ``w < 2**23``, so the smallest value is 2**-33 and a
    Box-Muller radius reaches 6.76 sigma.
    """
    return min(np.float32(w) * _F32_2_M32 + _F32_2_M33, _F32_BELOW_ONE)


# --------------------------------------------------------------------------------------- log
_F32_LN2 = np.float32(math.log(2.0))
_LN2_HI = 6.93147180369123816490e-01  # ln 2 with 32 trailing zero bits: e * _LN2_HI is exact
_LN2_LO = math.log(2.0) - _LN2_HI
_F32_ATANH = tuple(np.float32(1.0 / (2 * k + 1)) for k in range(5))
_F64_ATANH = tuple(1.0 / (2 * k + 1) for k in range(11))
_SQRT_HALF_F32_BITS = np.int64(0x3F3504F3)
_SQRT_HALF_F64_BITS = np.int64(0x3FE6A09E667F3BCD)


@inline_jit
def log_f32_reduce(x):
    """The argument reduction of ``log_f32``: ``(s, e * ln 2)`` for ``x = m * 2**e``,
    ``s = (m - 1) / (m + 1)``.

    The exponent split is written as truncations of exact int64 differences (the bits of a
    positive float32 are below 2**31), which LLVM narrows to 32-bit lanes when it vectorizes.
    """
    b = np.int64(f32_bits(x))
    e = np.int32(b - _SQRT_HALF_F32_BITS) >> np.int32(23)
    m = bits_f32(np.uint32(b - (np.int64(e) << np.int64(23))))
    f = m - np.float32(1.0)
    return f / (f + np.float32(2.0)), np.float32(e) * _F32_LN2


@inline_jit
def log_f32_series(s, e_ln2):
    """``e ln 2 + 2 atanh(s)`` by the atanh series: the second half of ``log_f32``."""
    z = s * s
    c = _F32_ATANH
    p = c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * c[4])))
    return e_ln2 + (s + s) * p


@inline_jit
def log_f32(x):
    """Natural log of a positive normal float32, to about 1 ulp."""
    s, e_ln2 = log_f32_reduce(x)
    return log_f32_series(s, e_ln2)


@inline_jit
def log_f64(x):
    """Natural log of a positive normal float64, to about 1 ulp."""
    t = np.int64(f64_bits(x)) - _SQRT_HALF_F64_BITS
    e = t >> np.int64(52)
    m = bits_f64(np.uint64(np.int64(f64_bits(x)) - (e << np.int64(52))))
    f = m - 1.0
    s = f / (f + 2.0)
    z = s * s
    c = _F64_ATANH
    p = c[10]
    for k in range(9, -1, -1):
        p = c[k] + z * p
    fe = np.float64(e)
    return fe * _LN2_HI + ((s + s) * p + fe * _LN2_LO)


# ------------------------------------------------------------------------------- Box-Muller
_F32_QUARTER_TURN = np.float32(math.pi / 2 * 2.0**-24)
_F64_QUARTER_TURN = math.pi / 2 * 2.0**-51
_F32_COS = tuple(np.float32((-1) ** k / math.factorial(2 * k)) for k in range(6))
_F32_SIN = tuple(np.float32((-1) ** k / math.factorial(2 * k + 1)) for k in range(5))
_F64_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))
_F64_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(9))


@inline_jit
def _horner_steps(c, z, p, top, bottom):
    """Continue a Horner evaluation: ``p = c[k] + z * p`` for ``k = top - 1`` down to ``bottom``."""
    for k in range(top - 1, bottom - 1, -1):
        p = c[k] + z * p
    return p


@inline_jit
def _horner_down_to(c, z, bottom):
    """Horner from the top coefficient down to ``c[bottom]`` (``bottom = 0``: the whole polynomial)."""
    return _horner_steps(c, z, c[len(c) - 1], len(c) - 1, bottom)


@inline_jit
def rotate(w, r, a, b):
    """``r * (cos, sin)(q*pi/2 + phi)`` from ``a = sqrt(2) cos(phi)``, ``b = sqrt(2) sin(phi)``,
    with ``r`` already divided by sqrt(2); the quadrant ``q`` is the top two bits of the uint32
    angle word ``w``.

    Each choice is a sign-bit test of a 32-bit word (quadrant bit 0 moved to bit 31 by ``w << 1``),
    which vectorizes to a blend on that word with no compare and no 64-bit lanes.
    """
    w_low = np.uint32(w << np.uint32(1))
    odd = np.int32(w_low) < np.int32(0)
    x = b if odd else a
    y = a if odd else b
    x = -x if np.int32(np.uint32(w ^ w_low)) < np.int32(0) else x
    y = -y if np.int32(w) < np.int32(0) else y
    return r * x, r * y


@inline_jit
def radius_f32_reduced(w_radius):
    """``log_f32_reduce(u32_open_f32(w_radius))``: the first half of a Box-Muller radius."""
    return log_f32_reduce(u32_open_f32(w_radius))


@inline_jit
def radius_f32(s, e_ln2):
    """``sqrt(-ln u)`` from ``radius_f32_reduced``'s pair: the second half of a Box-Muller radius
    (``sqrt(-2 ln u) / sqrt(2)``; ``polar_f32``'s factors carry the sqrt(2))."""
    return np.float32(math.sqrt(-log_f32_series(s, e_ln2)))


_COS_HEAD, _SIN_HEAD = 3, 2  # Horner steps left to sincos_f32_tail


@inline_jit
def sincos_f32_head(w_angle):
    """The angle of ``w_angle`` and the first Horner steps of its cosine and sine:
    ``(psi, psi**2, cos part, sin part)`` for ``sincos_f32_tail``."""
    f = np.int32((w_angle >> np.uint32(6)) & np.uint32(0xFFFFFF)) - np.int32(0x800000)
    psi = (np.float32(f) + np.float32(0.5)) * _F32_QUARTER_TURN
    z = psi * psi
    return psi, z, _horner_down_to(_F32_COS, z, _COS_HEAD), _horner_down_to(_F32_SIN, z, _SIN_HEAD)


@inline_jit
def sincos_f32_tail(psi, z, c, s):
    """``(sqrt(2) cos(phi), sqrt(2) sin(phi))`` of the angle ``phi = psi + pi/4`` from
    ``sincos_f32_head``'s four values."""
    c = _horner_steps(_F32_COS, z, c, _COS_HEAD, 0)
    s = psi * _horner_steps(_F32_SIN, z, s, _SIN_HEAD, 0)
    return c - s, c + s


@inline_jit
def polar_f32(r, w_angle):
    """``r * sqrt(2) * (cos, sin)(angle)`` with ``angle = 2 pi ((w_angle >> 6) + 1/2) / 2**26``."""
    psi, z, c, s = sincos_f32_head(w_angle)
    a, b = sincos_f32_tail(psi, z, c, s)
    return rotate(w_angle, r, a, b)


@inline_jit
def box_muller_f32(w_radius, w_angle):
    """Two independent float32 N(0, 1) values from two words.

    ``u = u32_open_f32(w_radius)``, ``angle = 2 pi ((w_angle >> 6) + 1/2) / 2**26``; returns
    ``sqrt(-2 ln u) * (cos, sin)(angle)``. It is a composition of stages (``radius_f32_reduced``
    then ``radius_f32``; ``sincos_f32_head`` then ``sincos_f32_tail``; ``rotate``) that a kernel
    may also run as separate loops over a buffer, with the same bits.
    """
    s, e_ln2 = radius_f32_reduced(w_radius)
    return polar_f32(radius_f32(s, e_ln2), w_angle)


@inline_jit
def box_muller_f64(w0, w1, w2, w3):
    """Two independent float64 N(0, 1) values from four words.

    ``u = u53_open(w0, w1)``, ``angle = 2 pi (k + 1/2) / 2**53`` for the top 53 bits ``k`` of
    ``(w2, w3)`` (``w2``'s 32 bits, then ``w3 >> 11``); returns
    ``sqrt(-2 ln u) * (cos, sin)(angle)``.
    """
    r = math.sqrt(-log_f64(u53_open(w0, w1)))
    bits51 = (np.uint64(w2 & np.uint32(0x3FFFFFFF)) << np.uint64(21)) | np.uint64(w3 >> np.uint32(11))
    psi = (np.float64(np.int64(bits51) - np.int64(1 << 50)) + 0.5) * _F64_QUARTER_TURN
    z = psi * psi
    c = _horner_down_to(_F64_COS, z, 0)
    s = psi * _horner_down_to(_F64_SIN, z, 0)
    return rotate(w2, r, c - s, c + s)


# ------------------------------------------------------------------- inverse normal CDF (AS 241)
_AS241_CENTRAL_NUM = (
    3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
    1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
    3.3430575583588128105e4, 2.5090809287301226727e3,
)
_AS241_CENTRAL_DEN = (
    1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
    2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_AS241_NEAR_NUM = (
    1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
    3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
    2.27238449892691845833e-2, 7.74545014278341407640e-4,
)
_AS241_NEAR_DEN = (
    1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
    1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
_AS241_FAR_NUM = (
    6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
    2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
    2.71155556874348757815e-5, 2.01033439929228813265e-7,
)
_AS241_FAR_DEN = (
    1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
    7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)


@inline_jit
def _rational(central, far, t):
    """AS 241's degree-7 rational function of the branch selected by ``central`` / ``far``, by
    Horner from the top coefficients (the same values as from ``0 * t + c[7]``: ``t`` is finite)."""
    num = _AS241_CENTRAL_NUM[7] if central else (_AS241_FAR_NUM[7] if far else _AS241_NEAR_NUM[7])
    den = _AS241_CENTRAL_DEN[7] if central else (_AS241_FAR_DEN[7] if far else _AS241_NEAR_DEN[7])
    for k in range(6, -1, -1):
        cn = _AS241_FAR_NUM[k] if far else _AS241_NEAR_NUM[k]
        cd = _AS241_FAR_DEN[k] if far else _AS241_NEAR_DEN[k]
        num = num * t + (_AS241_CENTRAL_NUM[k] if central else cn)
        den = den * t + (_AS241_CENTRAL_DEN[k] if central else cd)
    return num / den


@inline_jit
def ppf_is_central(p):
    """Whether AS 241 takes its central branch for ``p``: ``|p - 1/2| <= 0.425``."""
    return abs(p - 0.5) <= 0.425


@inline_jit
def ppf_central(p):
    """AS 241's central branch (``normal_ppf`` where ``ppf_is_central(p)``)."""
    q = p - 0.5
    return q * _rational(True, False, 0.180625 - q * q)


@inline_jit
def ppf_tail(p):
    """AS 241's tail branches (``normal_ppf`` where not ``ppf_is_central(p)``)."""
    r = math.sqrt(-log_f64(min(p, 1.0 - p)))
    far = r > 5.0
    x = _rational(False, far, r - 5.0 if far else r - 1.6)
    return -x if p - 0.5 < 0.0 else x


@inline_jit
def normal_ppf(p):
    """Inverse standard normal CDF of ``p`` in (0, 1), float64 (AS 241)."""
    return ppf_central(p) if ppf_is_central(p) else ppf_tail(p)


# ------------------------------------------------------------------------- 16-bit rounding
@inline_jit
def f32_to_bf16_bits(x):
    """bfloat16 bits of float32 ``x`` rounded to nearest, ties to even (x is never NaN here)."""
    u = np.uint64(f32_bits(x))
    return np.uint16((u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16))


@inline_jit
def f32_to_f16_bits(x):
    """IEEE binary16 bits of float32 ``x`` rounded to nearest, ties to even (x is never NaN here).

    Normal results re-bias the exponent and round the mantissa in integer arithmetic; subnormal
    results come from the FPU's own rounding of ``|x| + 0.5``, whose ulp is the f16 subnormal unit.
    Every integer fits an int32 and the shifts act on int32 values (``np.int32`` of exact int64
    expressions), so a vectorized loop stays in 32-bit lanes.
    """
    u = np.int64(f32_bits(x))
    sign = np.int32((u >> np.int64(16)) & np.int64(0x8000))
    a = np.int32(u & np.int64(0x7FFFFFFF))
    rounded = np.int64(a) - np.int64(0x38000000) + np.int64(0x0FFF) + ((np.int64(a) >> np.int64(13)) & np.int64(1))
    normal = np.int32(rounded) >> np.int32(13)
    normal = normal if normal < np.int32(0x7C00) else np.int32(0x7C00)
    sub = np.int32(np.int64(f32_bits(bits_f32(np.uint32(a)) + np.float32(0.5))) - np.int64(0x3F000000))
    return np.uint16(sign | (sub if a < np.int32(0x38800000) else normal))
