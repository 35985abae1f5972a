"""The kernels' loops vectorize: a loop that stops vectorizing (a branch, a call, an error check
in it) keeps its values and only gets slower, which no value test sees.

Each loop is compiled afresh (Numba cannot inspect cached code). Its x86 assembly must hold
packed floating-point arithmetic (``mulps``, ``vaddpd %zmm``, ...), and it must call no
transcendental libm function (``log``, ``exp``, ``sin``, ...): LLVM vectorizes a loop around such
a call but runs the call one lane at a time, which is why the kernels use polynomials. Every stage of the staged
kernels (``_normal_blocks_staged``, ``_trunc_blocks_staged``) is checked alone, in a loop of its
own over arrays, as the staged kernel runs it; the fused kernels (``_fill_blocks``) are checked
whole. A control build with LLVM's vectorizers turned off holds no packed arithmetic, so the count
can fail.
"""

import os
import platform
import re
import subprocess
import sys

import numba
import numpy as np
import pytest
from conftest import ROOT

from fastinit import _convert, _kernels
from fastinit._jit import JIT_DISABLED, JIT_OPTIONS

pytestmark = pytest.mark.skipif(JIT_DISABLED or platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="reads x86-64 assembly of jitted code")

_PACKED = re.compile(r"\bv?(?:mul|add|sub|div)p[sd]\b")
#: libm's transcendental functions, as Numba's LLVM IR calls them: there is no packed instruction
#: for them, so a vectorized loop would call them lane by lane (the kernels use polynomials)
_LIBM = re.compile(r"@\"?(?:llvm\.)?(?:log|log2|log10|log1p|exp|exp2|expm1|sin|cos|tan|pow|erf|erfc)f?\b")


def packed_arithmetic(dispatcher) -> int:
    """Packed floating-point multiplies, adds, subtracts and divides in a compiled function."""
    return len(_PACKED.findall(dispatcher.inspect_asm(dispatcher.signatures[0])))


def libm_calls(dispatcher) -> list[str]:
    """The transcendental libm functions a compiled function calls."""
    return _LIBM.findall(dispatcher.inspect_llvm(dispatcher.signatures[0]))


def fresh(func):
    """``func`` compiled anew with fastinit's options (no cache: cached code cannot be inspected)."""
    return numba.njit(**{**JIT_OPTIONS, "cache": False})(func)


def _radius_reduced(w, r, e):
    for j in range(w.size):
        r[j], e[j] = _convert.radius_f32_reduced(w[j])


def _radius(r, e):
    for j in range(r.size):
        r[j] = _convert.radius_f32(r[j], e[j])


def _sincos_head(w, psi, psi2, c, s):
    for j in range(w.size):
        psi[j], psi2[j], c[j], s[j] = _convert.sincos_f32_head(w[j])


def _sincos_tail(psi, psi2, c, s):
    for j in range(psi.size):
        c[j], s[j] = _convert.sincos_f32_tail(psi[j], psi2[j], c[j], s[j])


def _rotate(w, r, c, s, z0, z1):
    for j in range(w.size):
        z0[j], z1[j] = _convert.rotate(w[j], r[j], c[j], s[j])


def _ppf_central(p, x):
    for i in range(p.size):
        x[i] = _convert.ppf_central(p[i])


def _ppf_tail(p):
    for t in range(p.size):
        p[t] = _convert.ppf_tail(p[t])


def _probabilities(w, p, p0, p1):
    for i in range(w.size):
        p[i] = p0 + _convert.u32_open_f64(w[i]) * p1


def _f32s(k, n=64):
    return [np.full(n, 0.5, np.float32) for _ in range(k)]


_WORDS = np.arange(64, dtype=np.uint32)
STAGES = {  # each stage loop of the staged kernels, with arguments to compile it for
    "normal: radius, reduction": (_radius_reduced, (_WORDS, *_f32s(2))),
    "normal: radius, series": (_radius, tuple(_f32s(2))),
    "normal: angle, head": (_sincos_head, (_WORDS, *_f32s(4))),
    "normal: angle, tail": (_sincos_tail, tuple(_f32s(4))),
    "normal: quadrant": (_rotate, (_WORDS, *_f32s(5))),
    "trunc_normal: probabilities": (_probabilities, (_WORDS, np.empty(64), 0.02, 0.95)),
    "trunc_normal: central branch": (_ppf_central, (np.full(64, 0.5), np.empty(64))),
    "trunc_normal: tail branch": (_ppf_tail, (np.full(64, 0.01),)),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_of_the_staged_kernels_vectorizes(stage):
    func, args = STAGES[stage]
    loop = fresh(func)
    loop(*args)
    assert packed_arithmetic(loop) > 0, f"{stage}: no packed arithmetic, the loop did not vectorize"
    assert not libm_calls(loop), f"{stage}: calls {libm_calls(loop)}, one lane at a time"


@pytest.mark.parametrize("fill, store", [(_kernels.UNIFORM, _kernels.F32), (_kernels.UNIFORM, _kernels.F64),
                                         (_kernels.NORMAL, _kernels.F64)])
def test_the_fused_kernels_vectorize(fill, store):
    assert (fill, store) not in _kernels._BLOCK_LOOPS  # these run through _fill_blocks
    kernel = fresh(_kernels._fill_blocks.py_func)
    out = np.empty(64, np.float64 if store == _kernels.F64 else np.float32)
    kernel(out, 0, 0, np.uint32(1), np.uint32(2), fill, store, 0.0, 1.0, -1.0, 1.0, 0.0, 0.0)
    assert packed_arithmetic(kernel) > 0
    assert not libm_calls(kernel)


_CONTROL = """
import numpy as np
from test_vectorize import STAGES, fresh, packed_arithmetic
func, args = STAGES["trunc_normal: central branch"]
loop = fresh(func)
loop(*args)
print(packed_arithmetic(loop))
"""


def test_the_count_reads_zero_without_the_vectorizers():
    env = {"NUMBA_LOOP_VECTORIZE": "0", "NUMBA_SLP_VECTORIZE": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", _CONTROL], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) == 0
