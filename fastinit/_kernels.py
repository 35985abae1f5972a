"""Parallel fills over boxes of global indices. No validation here: see ``_target`` and ``_launch``.

Layout (the stream contract, ``docs/contract.md``): element ``i`` of the global C-order flattening
belongs to Philox block ``i // E`` (counter ``(lo32, hi32, 0, 0)`` of the block number) and uses
words ``i % E`` of it:

* ``E = 4`` for raw bits and every float32 / bfloat16 / float16 fill: one word per element;
  normal pairs are words (0, 1) and (2, 3), each pair giving the cos value to its even element
  and the sin value to its odd element;
* ``E = 2`` for float64 fills: words (0, 1) to element ``2b``, words (2, 3) to element ``2b + 1``;
  a float64 normal takes the radius from words (0, 1) and the angle from words (2, 3).

The fill and storage kinds are literal (compile-time) arguments, so each combination compiles to
its own branch-free loop. Inner loops keep the high counter word invariant and step the low word
as ``np.uint32``; runs are split so that no inner loop crosses a multiple of 2**32 blocks.

The per-block values (``BLOCK_FUNCTIONS``), the stores (``STORE_FUNCTIONS``) and ``_row_start``
are also what the CUDA kernels of ``fastinit._cuda`` compile: one source for both targets.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import literally, prange
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload

from ._convert import (
    box_muller_f32,
    box_muller_f64,
    f32_to_bf16_bits,
    f32_to_f16_bits,
    log_f64,
    normal_ppf,
    ppf_central,
    ppf_is_central,
    ppf_tail,
    radius_f32,
    radius_f32_reduced,
    rotate,
    sincos_f32_head,
    sincos_f32_tail,
    u24,
    u32_open_f64,
    u53,
    u53_open,
)
from ._jit import JIT_OPTIONS, claim_next, inline_jit, kernel_jit, parallel_jit
from ._philox import philox4x32_10

# what is drawn
BITS, UNIFORM, NORMAL, TRUNC_NORMAL = 0, 1, 2, 3
# how it is stored: the array handed to the kernel is uint32, float32, float64 or a uint16 view
U32, F32, F64, BF16, F16 = 0, 1, 2, 3, 4

_ZERO = np.uint32(0)
_LOW32 = np.int64(0xFFFFFFFF)
_BLOCKS_PER_HI = np.int64(1) << np.int64(32)


def kernel_params(params) -> list[float]:
    """The six float64 parameters every driver takes (CPU and CUDA): ``params`` padded with zeros."""
    return [float(x) for x in params] + [0.0] * (6 - len(params))


def elements_per_block(store):
    """Elements per Philox block: 2 for float64, 4 otherwise."""
    return 2 if store == F64 else 4


per_block = kernel_jit(elements_per_block)


@inline_jit
def _uniform(x, p0, p1, p2, p3):
    """``clamp(low + scale * u, lo, hi)``; parameters ``low, scale, lo, hi`` already in ``x``'s type."""
    return min(max(p0 + p1 * x, p2), p3)


@inline_jit
def _trunc(u, p0, p1, p2, p3, p4, p5):
    """``clamp(mean + s * ppf(pa + u * d), lo, hi)`` with ``(pa, d, s, mean, lo, hi)`` = ``p0..p5``."""
    return min(max(p3 + p2 * normal_ppf(p0 + u * p1), p4), p5)


@inline_jit
def _words(c0, c1, k0, k1):
    return philox4x32_10(c0, c1, _ZERO, _ZERO, k0, k1)


@inline_jit
def _bits4(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    return _words(c0, c1, k0, k1)


@inline_jit
def _uniform4(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    w0, w1, w2, w3 = _words(c0, c1, k0, k1)
    a, b, lo, hi = np.float32(p0), np.float32(p1), np.float32(p2), np.float32(p3)
    return (_uniform(u24(w0), a, b, lo, hi), _uniform(u24(w1), a, b, lo, hi),
            _uniform(u24(w2), a, b, lo, hi), _uniform(u24(w3), a, b, lo, hi))


@inline_jit
def _uniform2(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    w0, w1, w2, w3 = _words(c0, c1, k0, k1)
    return (_uniform(u53(w0, w1), p0, p1, p2, p3), _uniform(u53(w2, w3), p0, p1, p2, p3))


@inline_jit
def _normal4(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    w0, w1, w2, w3 = _words(c0, c1, k0, k1)
    mean, std = np.float32(p0), np.float32(p1)
    z0, z1 = box_muller_f32(w0, w1)
    z2, z3 = box_muller_f32(w2, w3)
    return (mean + std * z0, mean + std * z1, mean + std * z2, mean + std * z3)


@inline_jit
def _normal2(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    w0, w1, w2, w3 = _words(c0, c1, k0, k1)
    z0, z1 = box_muller_f64(w0, w1, w2, w3)
    return (p0 + p1 * z0, p0 + p1 * z1)


@inline_jit
def _trunc4(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    w0, w1, w2, w3 = _words(c0, c1, k0, k1)
    return (np.float32(_trunc(u32_open_f64(w0), p0, p1, p2, p3, p4, p5)),
            np.float32(_trunc(u32_open_f64(w1), p0, p1, p2, p3, p4, p5)),
            np.float32(_trunc(u32_open_f64(w2), p0, p1, p2, p3, p4, p5)),
            np.float32(_trunc(u32_open_f64(w3), p0, p1, p2, p3, p4, p5)))


@inline_jit
def _trunc2(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    w0, w1, w2, w3 = _words(c0, c1, k0, k1)
    return (_trunc(u53_open(w0, w1), p0, p1, p2, p3, p4, p5),
            _trunc(u53_open(w2, w3), p0, p1, p2, p3, p4, p5))


#: (fill, store) -> the values of one block, ``f(c0, c1, k0, k1, p0, ..., p5)``: what the CPU
#: loops (through ``block_values``) and the CUDA kernels (``fastinit._cuda``) compute
BLOCK_FUNCTIONS = {
    BITS: {U32: _bits4},
    UNIFORM: {F64: _uniform2, F32: _uniform4, BF16: _uniform4, F16: _uniform4},
    NORMAL: {F64: _normal2, F32: _normal4, BF16: _normal4, F16: _normal4},
    TRUNC_NORMAL: {F64: _trunc2, F32: _trunc4, BF16: _trunc4, F16: _trunc4},
}


def _literal(value, name):
    if not isinstance(value, types.IntegerLiteral):
        raise TypingError(f"fastinit kernels need {name} as a compile-time literal")
    return value.literal_value


def block_values(fill, store, c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    """The ``per_block(store)`` values of Philox block ``(c0, c1)``, before storage rounding.

    This Python body runs under ``NUMBA_DISABLE_JIT=1``; jitted callers get the overload below,
    specialized on the literal ``fill`` and ``store``.
    """
    return BLOCK_FUNCTIONS[fill][store](c0, c1, k0, k1, p0, p1, p2, p3, p4, p5)


@overload(block_values, prefer_literal=True, inline="always", jit_options=JIT_OPTIONS)
def _block_values(fill, store, c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
    block = BLOCK_FUNCTIONS[_literal(fill, "fill")][_literal(store, "store")]

    def impl(fill, store, c0, c1, k0, k1, p0, p1, p2, p3, p4, p5):
        return block(c0, c1, k0, k1, p0, p1, p2, p3, p4, p5)

    return impl


@inline_jit
def _store_bf16(out, i, x):
    out[i] = f32_to_bf16_bits(x)


@inline_jit
def _store_f16(out, i, x):
    out[i] = f32_to_f16_bits(x)


@inline_jit
def _store_plain(out, i, x):
    out[i] = x


#: store -> ``put(out, i, x)``: ``out[i] = x`` in the storage format, on the CPU and on CUDA
STORE_FUNCTIONS = {U32: _store_plain, F32: _store_plain, F64: _store_plain,
                    BF16: _store_bf16, F16: _store_f16}


def store_value(out, i, x, store):
    """``out[i] = x`` in the storage format: 16-bit formats round the float32 ``x`` to
    nearest-even into a uint16 view (jitted callers get the overload below)."""
    STORE_FUNCTIONS[store](out, i, x)


@overload(store_value, prefer_literal=True, inline="always", jit_options=JIT_OPTIONS)
def _store_value(out, i, x, store):
    put = STORE_FUNCTIONS[_literal(store, "store")]

    def impl(out, i, x, store):
        put(out, i, x)

    return impl


def in_store_precision(x, store):
    """``x`` as the value a store rounds from: itself for float64, ``float32(x)`` for the other
    formats (jitted callers get the overload below)."""
    return x if store == F64 else np.float32(x)


@overload(in_store_precision, prefer_literal=True, inline="always", jit_options=JIT_OPTIONS)
def _in_store_precision(x, store):
    if _literal(store, "store") == F64:
        return lambda x, store: x
    return lambda x, store: np.float32(x)


def store_block(out, j, values, store):
    """``out[E*j : E*j + E] = values`` for the E values of one block (jitted callers get the
    overload below)."""
    for t, x in enumerate(values):
        STORE_FUNCTIONS[store](out, len(values) * j + t, x)


@overload(store_block, prefer_literal=True, inline="always", jit_options=JIT_OPTIONS)
def _store_block(out, j, values, store):
    put = STORE_FUNCTIONS[_literal(store, "store")]
    if values.count == 2:

        def impl2(out, j, values, store):
            put(out, 2 * j, values[0])
            put(out, 2 * j + 1, values[1])

        return impl2

    def impl4(out, j, values, store):
        put(out, 4 * j, values[0])
        put(out, 4 * j + 1, values[1])
        put(out, 4 * j + 2, values[2])
        put(out, 4 * j + 3, values[3])

    return impl4


@kernel_jit
def _fill_blocks(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    """Fill ``out`` (a whole number of blocks) from blocks ``hi * 2**32 + lo + j``; the hot loop."""
    literally(fill)
    literally(store)
    c1 = np.uint32(hi)
    for j in range(out.size // per_block(store)):
        values = block_values(fill, store, np.uint32(lo + j), c1, k0, k1, p0, p1, p2, p3, p4, p5)
        store_block(out, j, values, store)


#: blocks per pass of ``_normal_blocks_staged`` (its buffers: 16 KiB, in L1)
STAGE_BLOCKS = 256


@kernel_jit
def _normal_blocks_staged(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    """``_fill_blocks`` for float32-computed normals (4 per block), in passes of up to
    ``STAGE_BLOCKS`` blocks. A pass is six loops over buffers: the Philox words; the two halves of
    each radius (``radius_f32_reduced``, ``radius_f32``); the two halves of each angle's cosine and
    sine (``sincos_f32_head``, ``sincos_f32_tail``); the quadrant, scaling and stores.

    The values are ``_normal4``'s: the same functions, composed through memory. In one fused loop
    a value's dependency chain (divide, square root, three polynomials: about 100 cycles) fills the
    out-of-order window; short chains in separate loops let the core overlap many iterations
    (1.2x faster on Zen 3; ``docs/internals.md``, "Where the time goes").
    """
    literally(store)
    b = STAGE_BLOCKS
    words = np.empty((4, b), np.uint32)
    floats = np.empty((12, b), np.float32)
    # stream 0: the pair (w0, w1) of each block; stream 1: the pair (w2, w3)
    w_radius0, w_angle0, w_radius1, w_angle1 = words[0], words[1], words[2], words[3]
    radius0, e_ln2_0, psi0, psi2_0, cos0, sin0 = floats[0], floats[1], floats[2], floats[3], floats[4], floats[5]
    radius1, e_ln2_1, psi1, psi2_1, cos1, sin1 = floats[6], floats[7], floats[8], floats[9], floats[10], floats[11]
    mean, std = np.float32(p0), np.float32(p1)
    c1 = np.uint32(hi)
    n_blocks = out.size // 4
    for first in range(0, n_blocks, b):
        m = min(b, n_blocks - first)
        for j in range(m):
            w_radius0[j], w_angle0[j], w_radius1[j], w_angle1[j] = _words(np.uint32(lo + first + j), c1, k0, k1)
        for j in range(m):
            radius0[j], e_ln2_0[j] = radius_f32_reduced(w_radius0[j])
            radius1[j], e_ln2_1[j] = radius_f32_reduced(w_radius1[j])
        for j in range(m):
            radius0[j] = radius_f32(radius0[j], e_ln2_0[j])
            radius1[j] = radius_f32(radius1[j], e_ln2_1[j])
        for j in range(m):
            psi0[j], psi2_0[j], cos0[j], sin0[j] = sincos_f32_head(w_angle0[j])
            psi1[j], psi2_1[j], cos1[j], sin1[j] = sincos_f32_head(w_angle1[j])
        for j in range(m):
            cos0[j], sin0[j] = sincos_f32_tail(psi0[j], psi2_0[j], cos0[j], sin0[j])
            cos1[j], sin1[j] = sincos_f32_tail(psi1[j], psi2_1[j], cos1[j], sin1[j])
        o = out[4 * first:4 * (first + m)]
        for j in range(m):
            z0, z1 = rotate(w_angle0[j], radius0[j], cos0[j], sin0[j])
            z2, z3 = rotate(w_angle1[j], radius1[j], cos1[j], sin1[j])
            store_block(o, j, (mean + std * z0, mean + std * z1, mean + std * z2, mean + std * z3), store)


@kernel_jit
def _trunc_blocks_staged(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    """``_fill_blocks`` for truncated normals, in passes of up to ``STAGE_BLOCKS`` blocks: the
    probabilities ``pa + u * d`` of every element; AS 241's central branch for every element (no
    log: a loop the compiler vectorizes), gathering the elements outside the central interval
    (about 15% of them for a wide interval, none for a narrow one) without a branch; the tail branch
    over those, packed (vectorized too), scattered back over their central values; the clamp and
    the stores.

    The values are ``_trunc4`` / ``_trunc2``'s: each element takes the same operations of the same
    branch of ``normal_ppf`` (``ppf_central``, ``ppf_tail``), composed through memory instead of
    evaluating every branch for every element.
    """
    literally(store)
    per = per_block(store)
    b = STAGE_BLOCKS
    prob = np.empty(4 * b, np.float64)
    x = np.empty(4 * b, np.float64)
    tails = np.empty(4 * b, np.int64)
    tail_prob = np.empty(4 * b, np.float64)
    c1 = np.uint32(hi)
    n_blocks = out.size // per
    for first in range(0, n_blocks, b):
        m = min(b, n_blocks - first)
        n = m * per
        for j in range(m):
            w0, w1, w2, w3 = _words(np.uint32(lo + first + j), c1, k0, k1)
            if per == 4:
                prob[4 * j] = p0 + u32_open_f64(w0) * p1
                prob[4 * j + 1] = p0 + u32_open_f64(w1) * p1
                prob[4 * j + 2] = p0 + u32_open_f64(w2) * p1
                prob[4 * j + 3] = p0 + u32_open_f64(w3) * p1
            else:
                prob[2 * j] = p0 + u53_open(w0, w1) * p1
                prob[2 * j + 1] = p0 + u53_open(w2, w3) * p1
        for i in range(n):
            x[i] = ppf_central(prob[i])
        n_tails = 0
        for i in range(n):  # branch-free: every element is written, the tail ones are kept
            tails[n_tails] = i
            tail_prob[n_tails] = prob[i]
            n_tails += 0 if ppf_is_central(prob[i]) else 1
        for t in range(n_tails):  # packed: a loop the compiler vectorizes
            tail_prob[t] = ppf_tail(tail_prob[t])
        for t in range(n_tails):
            x[tails[t]] = tail_prob[t]
        o = out[per * first:per * (first + m)]
        for i in range(n):
            store_value(o, i, in_store_precision(min(max(p3 + p2 * x[i], p4), p5), store), store)


#: (fill, store) -> its loop over whole blocks where that is not ``_fill_blocks``
_BLOCK_LOOPS = {**{(NORMAL, store): _normal_blocks_staged for store in (F32, BF16, F16)},
                **{(TRUNC_NORMAL, store): _trunc_blocks_staged for store in (F32, BF16, F16, F64)}}


def fill_blocks(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    """Fill ``out`` (a whole number of blocks) from blocks ``hi * 2**32 + lo + j``: the staged
    loop where there is one for ``(fill, store)``, else the fused ``_fill_blocks`` (jitted
    callers get the overload below)."""
    loop = _BLOCK_LOOPS.get((fill, store), _fill_blocks)
    loop(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5)


@overload(fill_blocks, prefer_literal=True, inline="always", jit_options=JIT_OPTIONS)
def _fill_blocks_overload(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    loop = _BLOCK_LOOPS.get((_literal(fill, "fill"), _literal(store, "store")), _fill_blocks)

    def impl(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
        loop(out, lo, hi, k0, k1, fill, store, p0, p1, p2, p3, p4, p5)

    return impl


@kernel_jit
def _fill_partial(out, start, lane, block, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    """Write lanes ``lane, lane + 1, ...`` of one block to ``out[start:]`` (at most to the block's end)."""
    literally(fill)
    literally(store)
    v = block_values(fill, store, np.uint32(block & _LOW32), np.uint32(block >> np.int64(32)),
                     k0, k1, p0, p1, p2, p3, p4, p5)
    n = min(len(v) - lane, out.size - start)
    for t in range(n):
        store_value(out, start + t, v[lane + t], store)
    return n


@kernel_jit
def fill_run(out, first, k0, k1, fill, store, p0, p1, p2, p3, p4, p5):
    """Fill ``out`` with the elements at global indices ``first, first + 1, ...``."""
    literally(fill)
    literally(store)
    per = per_block(store)
    block = first // per
    i = 0
    lane = first - block * per
    if lane != 0:
        i = _fill_partial(out, 0, lane, block, k0, k1, fill, store, p0, p1, p2, p3, p4, p5)
        block += 1
    full = (out.size - i) // per
    while full > 0:
        lo = block & _LOW32
        m = min(full, _BLOCKS_PER_HI - lo)
        fill_blocks(out[i:i + m * per], lo, block >> np.int64(32), k0, k1, fill, store,
                    p0, p1, p2, p3, p4, p5)
        i += m * per
        block += m
        full -= m
    if i < out.size:
        _fill_partial(out, i, 0, block, k0, k1, fill, store, p0, p1, p2, p3, p4, p5)


@inline_jit
def _row_start(row, base, lead_shape, lead_strides):
    """Global index of the first element of ``row`` (C-order over ``lead_shape``) of a box."""
    first = base
    for d in range(len(lead_shape) - 1, -1, -1):
        q = row // lead_shape[d]
        first += (row - q * lead_shape[d]) * lead_strides[d]
        row = q
    return first


@functools.cache
def box_filler(fill: int, store: int, parallel: bool = True):
    """The driver for one (fill, store) kind, parallel or (for small boxes, where waking the
    threads costs more than the fill) serial; the same code either way:
    ``fill_box(out, lead_shape, lead_strides, base, row_len, chunk, workers, k0, k1, p0, ..., p5)``.

    It fills the flat C-order ``out`` holding a box of a larger tensor. The box is
    ``prod(lead_shape)`` rows of ``row_len`` elements; row ``r`` (C-order over ``lead_shape``)
    starts at global index ``base + sum(index_d * lead_strides[d])``. Rows are cut into tasks of
    ``chunk`` elements. Each of the ``workers`` (one per thread) claims the next task from a shared
    atomic counter until none is left, so a thread that runs slower (a busy or slower core, a
    descheduled vCPU) takes fewer tasks instead of holding up the others, where ``prange`` alone
    would give each thread a fixed share. Which thread fills a task does not change its values.
    (The kinds are closure constants, so calls from Python dispatch without Numba's
    literal-argument round trip.)
    """

    def fill_box(out, lead_shape, lead_strides, base, row_len, chunk, workers, k0, k1, p0, p1, p2, p3, p4, p5):
        n_rows = out.size // row_len
        per_row = (row_len + chunk - 1) // chunk
        n_tasks = n_rows * per_row
        next_task = np.empty(1, np.int64)  # not np.zeros: that is a parallel loop of its own
        next_task[0] = 0
        # ``parallel`` is a closure constant, so the two variants have distinct cache entries. It
        # stays out of the ``prange`` call: a conditional expression there leaves Numba's parfor
        # pass a plain serial loop, without a warning
        n_workers = min(workers, n_tasks) if parallel else 1
        for _worker in prange(n_workers):
            t = claim_next(next_task)
            while t < n_tasks:
                row = t // per_row
                lo = (t - row * per_row) * chunk
                hi = min(lo + chunk, row_len)
                at = row * row_len
                first = _row_start(row, base, lead_shape, lead_strides)
                fill_run(out[at + lo:at + hi], first + lo, k0, k1, fill, store, p0, p1, p2, p3, p4, p5)
                t = claim_next(next_task)

    return (parallel_jit if parallel else kernel_jit)(fill_box)


@kernel_jit
def neg_log1m_(x):
    """``x[i] = -ln(1 - x[i])`` in place for a float64 array with values in [0, 1), by the fixed
    polynomial log (the same bits on every CPU): the inverse CDF of a truncated exponential."""
    for i in range(x.size):
        x[i] = -log_f64(1.0 - x[i])
