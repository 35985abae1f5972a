"""A pure NumPy statement of the fastinit stream contract, written from the documentation.

Vectorized over elements with NumPy's IEEE float32 / float64 arithmetic; it shares nothing with
the package but two tables of constants: AS 241's published coefficients and the host-side,
correctly rounded normal CDF values (both tested on their own, against SciPy). 16-bit
outputs are rounded by NumPy (float16) and ml_dtypes (bfloat16), independently of the kernels.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

U32 = np.uint64(0xFFFFFFFF)


def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 arrays holding 32-bit values."""
    c = [np.asarray(x, np.uint64) & U32 for x in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & U32, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & U32]
        k0 = (k0 + np.uint64(0x9E3779B9)) & U32
        k1 = (k1 + np.uint64(0xBB67AE85)) & U32
    return c


def key(seed: int, name: str) -> tuple[int, int]:
    d = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    n = [int.from_bytes(d[4 * i:4 * i + 4], "little") for i in range(4)]
    w = philox(*n, seed & 0xFFFFFFFF, seed >> 32)
    return int(w[0]), int(w[1])


def block_words(blocks, k):
    """The four words (uint32 arrays) of Philox blocks ``blocks`` (uint64 array)."""
    b = np.asarray(blocks, np.uint64)
    w = philox(b & U32, b >> np.uint64(32), 0, 0, *k)
    return [x.astype(np.uint32) for x in w]


def element_words(indices, k, per_block):
    """For each global index: the words it uses, as a list of uint32 arrays."""
    i = np.asarray(indices, np.uint64)
    blocks, lane = i // np.uint64(per_block), (i % np.uint64(per_block)).astype(np.int64)
    w = np.stack(block_words(blocks, k))  # (4, n)
    cols = np.arange(i.size)
    if per_block == 4:
        return w[lane, cols]
    return w[2 * lane, cols], w[2 * lane + 1, cols]


# ----------------------------------------------------------------------------- transforms
f32 = np.float32


def u24(w):
    return (w >> np.uint32(8)).astype(f32) * f32(2.0**-24)


def u53_bits(wa, wb):
    return ((wa.astype(np.uint64) >> np.uint64(5)) << np.uint64(26)) | (wb.astype(np.uint64) >> np.uint64(6))


def log32(x):
    bits = x.view(np.uint32).astype(np.int64)
    e = (bits - 0x3F3504F3) >> 23
    m = (bits - (e << 23)).astype(np.uint32).view(f32)
    f = m - f32(1)
    s = f / (f + f32(2))
    z = s * s
    c = [f32(1 / (2 * k + 1)) for k in range(5)]
    p = c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * c[4])))
    return e.astype(f32) * f32(math.log(2)) + (s + s) * p


def log64(x):
    bits = x.view(np.uint64).astype(np.int64)
    e = (bits - 0x3FE6A09E667F3BCD) >> 52
    m = (bits - (e << 52)).view(np.float64)
    f = m - 1.0
    s = f / (f + 2.0)
    z = s * s
    p = np.full_like(z, 1 / 21)
    for k in range(9, -1, -1):
        p = 1 / (2 * k + 1) + z * p
    hi = 6.93147180369123816490e-01
    fe = e.astype(np.float64)
    return fe * hi + ((s + s) * p + fe * (math.log(2) - hi))


def _poly(coeffs, z):
    p = np.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        p = c + z * p
    return p


def _rotate(q, r, a, b):
    odd = (q & 1) == 1
    x, y = np.where(odd, b, a), np.where(odd, a, b)
    x = np.where(((q ^ (q >> 1)) & 1) == 1, -x, x)
    y = np.where((q >> 1) == 1, -y, y)
    return r * x, r * y


def box_muller32(wr, wa):
    u = np.minimum(wr.astype(f32) * f32(2.0**-32) + f32(2.0**-33), f32(1 - 2.0**-24))
    r = np.sqrt(-log32(u))
    q = (wa >> np.uint32(30)).astype(np.int64)
    frac = ((wa >> np.uint32(6)) & np.uint32(0xFFFFFF)).astype(np.int32) - np.int32(1 << 23)
    psi = (frac.astype(f32) + f32(0.5)) * f32(math.pi / 2 * 2.0**-24)
    z = psi * psi
    c = _poly([f32((-1) ** k / math.factorial(2 * k)) for k in range(6)], z)
    s = psi * _poly([f32((-1) ** k / math.factorial(2 * k + 1)) for k in range(5)], z)
    return _rotate(q, r, c - s, c + s)


def box_muller64(w0, w1, w2, w3):
    u = (u53_bits(w0, w1) | np.uint64(1)).astype(np.int64).astype(np.float64) * 2.0**-53
    r = np.sqrt(-log64(u))
    q = (w2 >> np.uint32(30)).astype(np.int64)
    bits = ((w2 & np.uint32(0x3FFFFFFF)).astype(np.uint64) << np.uint64(21)) | (w3 >> np.uint32(11)).astype(np.uint64)
    psi = ((bits.astype(np.int64) - (1 << 50)).astype(np.float64) + 0.5) * (math.pi / 2 * 2.0**-51)
    z = psi * psi
    c = _poly([(-1) ** k / math.factorial(2 * k) for k in range(9)], z)
    s = psi * _poly([(-1) ** k / math.factorial(2 * k + 1) for k in range(9)], z)
    return _rotate(q, r, c - s, c + s)


def ppf(p):
    """AS 241, branch by branch (np.where over the three regions)."""
    from fastinit import _convert as C  # the published coefficients (AS 241 tables)

    q = p - 0.5
    central = np.abs(q) <= 0.425
    r = np.sqrt(-log64(np.minimum(p, 1.0 - p)))
    far = r > 5.0
    t = np.where(central, 0.180625 - q * q, np.where(far, r - 5.0, r - 1.6))

    def rat(num, den):
        return _poly(list(num), t) / _poly(list(den), t)

    x = np.where(central, rat(C._AS241_CENTRAL_NUM, C._AS241_CENTRAL_DEN),
                 np.where(far, rat(C._AS241_FAR_NUM, C._AS241_FAR_DEN), rat(C._AS241_NEAR_NUM, C._AS241_NEAR_DEN)))
    return np.where(central, q * x, np.where(q < 0, -x, x))


# ------------------------------------------------------------------------------ the fills
def _to_dtype(x32_or_64, dtype):
    dtype = np.dtype(dtype)
    if dtype.name in ("float32", "float64", "uint32"):
        return x32_or_64.astype(dtype)
    return x32_or_64.astype(f32).astype(dtype)  # NumPy / ml_dtypes round to nearest even


def fill(kind, shape, dtype, seed, name, params, *, global_shape=None, offset=None):
    """The values fastinit's ``kind`` fill writes into a box of ``shape`` at ``offset``."""
    dtype = np.dtype(dtype)
    global_shape = tuple(shape) if global_shape is None else tuple(global_shape)
    offset = (0,) * len(shape) if offset is None else tuple(offset)
    grids = np.meshgrid(*[np.arange(o, o + n, dtype=np.uint64) for o, n in zip(offset, shape)], indexing="ij")
    index = np.zeros(shape, np.uint64)
    for d, g in enumerate(grids):
        index = index + g * np.uint64(math.prod(global_shape[d + 1:]))
    index = index.reshape(-1)
    k = key(seed, name)
    wide = dtype == np.float64
    if kind == "bits":
        out = element_words(index, k, 4)
    elif kind == "uniform":
        low, scale, lo, hi = params
        if wide:
            wa, wb = element_words(index, k, 2)
            x = low + scale * (u53_bits(wa, wb).astype(np.int64).astype(np.float64) * 2.0**-53)
        else:
            x = f32(low) + f32(scale) * u24(element_words(index, k, 4))
        out = np.minimum(np.maximum(x, x.dtype.type(lo)), x.dtype.type(hi))
    elif kind == "normal":
        mean, std = params
        blocks = index // np.uint64(2 if wide else 4)
        lane = (index % np.uint64(2 if wide else 4)).astype(np.int64)
        w = block_words(blocks, k)
        if wide:
            z0, z1 = box_muller64(*w)
            z = np.where(lane == 0, z0, z1)
            out = mean + std * z
        else:
            z0, z1 = box_muller32(w[0], w[1])
            z2, z3 = box_muller32(w[2], w[3])
            z = np.choose(lane, [z0, z1, z2, z3])
            out = f32(mean) + f32(std) * z
    elif kind == "trunc_normal":
        pa, d, s, mean, lo, hi = params
        if wide:
            wa, wb = element_words(index, k, 2)
            u = (u53_bits(wa, wb) | np.uint64(1)).astype(np.int64).astype(np.float64) * 2.0**-53
        else:
            u = (element_words(index, k, 4).astype(np.int64) * 2 + 1).astype(np.float64) * 2.0**-33
        out = np.minimum(np.maximum(mean + s * ppf(pa + u * d), lo), hi)
    else:
        raise ValueError(kind)
    return _to_dtype(np.asarray(out), dtype).reshape(shape)
