"""GPU fills: the per-block functions of ``fastinit._kernels`` compiled for NVIDIA GPUs by
numba-cuda, from the same Python source as the CPU kernels, writing arrays in GPU memory in place.

Imported only when a fill is handed an array with ``__cuda_array_interface__`` (CuPy, Numba
device arrays, CUDA tensors through ``fastinit.torch``): ``import fastinit`` needs no GPU stack.

* **Kernel.** One thread per Philox block of each row of the box (``fill_box``): the thread
  computes the block's values with ``BLOCK_FUNCTIONS[fill][store]`` (the functions the CPU loops
  call) and stores the lanes that fall in its row with ``STORE_FUNCTIONS[store]`` (the same bf16 /
  f16 rounding). Global indices are int64, so boxes whose flat indices pass 2**32 are filled as on
  the CPU. The fill and storage kinds are closure constants, one kernel per kind.
* **Exact arithmetic.** numba-cuda compiles with ``fastmath=False`` (no flush-to-zero, IEEE
  division and square root), but NVVM contracts ``a * b + c`` into a fused multiply-add unless it
  is given ``-fma=0``, which ``@cuda.jit`` does not expose. The kernels are compiled with NVVM's
  entry point wrapped to add it (under numba-cuda's compiler lock, so no other compilation sees
  it), and each compiled kernel's PTX is checked for fused, flush-to-zero, approximate or
  unrounded float instructions before it runs (``inexact_ptx``): a numba-cuda release that
  changed this path makes the fill fail instead of drawing other values.
* **Streams.** A fill runs on the stream the array's producer names in its interface (version 3),
  so it is ordered after the work that made the array without a host synchronization, and returns
  before the kernel finishes, as GPU operations do.

Under ``NUMBA_ENABLE_CUDASIM=1`` (Numba's CUDA simulator, for tests on machines without a GPU) a
device pointer is a host pointer, and the kernels run as Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.metadata
import importlib.util
import math
import re
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ._dtypes import DTYPES
from ._kernels import BLOCK_FUNCTIONS, STORE_FUNCTIONS, _row_start, elements_per_block, kernel_params
from ._target import Target
from ._validate import check_box, check_dtype

if importlib.util.find_spec("numba_cuda") is None:
    raise ModuleNotFoundError(
        "filling a GPU array needs numba-cuda: pip install 'fastinit-philox[cuda]'", name="numba_cuda"
    )

from numba import cuda
from numba.cuda.core import config as _cuda_config
from numba.cuda.core import errors as _cuda_errors

__all__ = ["DeviceArray", "DeviceTarget", "box_kernel", "empty", "inexact_ptx", "launch", "synchronize"]

SIMULATOR: bool = bool(_cuda_config.ENABLE_CUDASIM)

#: threads per CUDA block, and at most this many blocks (the threads then loop over the rest)
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 1 << 16

#: no fast math, and no link-time optimization: the cubin is built from the PTX that is checked
#: (an LTO build would generate code after the check; the simulator takes neither option)
_JIT_OPTIONS: dict = {} if SIMULATOR else {"fastmath": False, "lto": False}

#: CUDA_ERROR_OUT_OF_MEMORY, the code of numba-cuda's CudaAPIError
_OUT_OF_MEMORY = 2
_LOW32 = np.int64(0xFFFFFFFF)
_HIGH_SHIFT = np.int64(32)

#: PTX that would make a value differ from the CPU's: a fused multiply-add, flush-to-zero,
#: an approximate operation, or a float add / sub / mul without a rounding mode (which ptxas may fuse)
_INEXACT = re.compile(r"\bfma\.|\bmad\.(?:[a-z]+\.)*f(?:32|64)\b|\.ftz\b|\.approx\b|\bdiv\.full\b"
                      r"|\b(?:add|sub|mul)\.f(?:32|64)\b")


def inexact_ptx(ptx: str) -> list[str]:
    """The instructions of ``ptx`` whose result is not the IEEE operation the source wrote.

    Examples:
        >>> inexact_ptx("mul.rn.f32 %f3, %f2, %f1;\\nadd.rn.f32 %f4, %f3, %f0;")
        []
        >>> inexact_ptx("fma.rn.f32 %f3, %f2, %f1, %f0;\\nmul.f32 %f5, %f4, %f4;")
        ['fma.rn.f32 %f3, %f2, %f1, %f0;', 'mul.f32 %f5, %f4, %f4;']
    """
    return [line.strip() for line in ptx.splitlines() if _INEXACT.search(line)]


@functools.cache
def box_kernel(fill: int, store: int):
    """The CUDA kernel for one (fill, store) kind:
    ``fill_box(out, lead_shape, lead_strides, base, row_len, blocks_per_row, k0, k1, p0, ..., p5)``.

    ``out`` is the flat C-order box: ``prod(lead_shape)`` rows of ``row_len`` elements, row ``r``
    starting at global index ``base + sum(index_d * lead_strides[d])`` (``_kernels._row_start``,
    as on the CPU). Thread ``t`` takes Philox block ``t % blocks_per_row`` of row ``t //
    blocks_per_row``, counted from the block of the row's first element, and writes the lanes of
    that block that lie in the row.
    """
    block_values = BLOCK_FUNCTIONS[fill][store]
    put = STORE_FUNCTIONS[store]
    per = elements_per_block(store)

    def fill_box(out, lead_shape, lead_strides, base, row_len, blocks_per_row, k0, k1, p0, p1, p2, p3, p4, p5):
        n_threads = out.size // row_len * blocks_per_row
        for t in range(cuda.grid(1), n_threads, cuda.gridsize(1)):
            row = t // blocks_per_row
            first = _row_start(row, base, lead_shape, lead_strides)
            block = first // per + (t - row * blocks_per_row)
            values = block_values(np.uint32(block & _LOW32), np.uint32(block >> _HIGH_SHIFT), k0, k1,
                                  p0, p1, p2, p3, p4, p5)
            shift = row * row_len - first  # global index g is out[g + shift]
            for lane in range(per):
                g = block * per + lane
                if first <= g < first + row_len:
                    put(out, g + shift, values[lane])

    return cuda.jit(**_JIT_OPTIONS)(fill_box)


@contextlib.contextmanager
def _nvvm_without_fma():
    """Compilations inside the block pass ``-fma=0`` to NVVM (no multiply-add contraction).

    Held under numba-cuda's compiler lock, so that no other thread compiles while NVVM's entry
    point is wrapped."""
    from numba.cuda.core.compiler_lock import global_compiler_lock
    from numba.cuda.cudadrv import nvvm

    with global_compiler_lock:
        compile_ir = nvvm.compile_ir

        def compile_ir_without_fma(llvmir, **options):
            return compile_ir(llvmir, **{**options, "fma": False})

        nvvm.compile_ir = compile_ir_without_fma
        try:
            yield
        finally:
            nvvm.compile_ir = compile_ir


@functools.cache
def _compiled(fill: int, store: int, argtypes: tuple) -> Any:
    """The kernel of ``box_kernel(fill, store)`` for ``argtypes``, compiled without contraction,
    after checking its PTX (a kernel that fails the check is never launched)."""
    dispatcher = box_kernel(fill, store)
    with _nvvm_without_fma():
        kernel = dispatcher.compile(argtypes)
        inexact = inexact_ptx(kernel.inspect_asm(None))  # the PTX the cubin was built from
    if inexact:
        raise RuntimeError(
            f"numba-cuda {importlib.metadata.version('numba-cuda')} compiled fastinit's CUDA kernel with "
            f"instructions that change values ({', '.join(inexact[:3])}): -fma=0 did not reach NVVM. "
            "Fill on the CPU, or use a numba-cuda version fastinit supports"
        )
    return kernel


def _stream(value: Any) -> Any:
    """The stream a fill runs on: the one the array's producer named (``__cuda_array_interface__``
    version 3: 1 is the legacy default stream, 2 the per-thread default stream, other values a
    ``cudaStream_t``), else the default stream."""
    if SIMULATOR or value in (None, 0):
        return cuda.default_stream()
    if value == 1:
        return cuda.legacy_default_stream()
    if value == 2:
        return cuda.per_thread_default_stream()
    return cuda.external_stream(value)


def _device_view(pointer: int, size: int, dtype: np.dtype, owner: Any) -> Any:
    """A flat array of ``size`` elements of ``dtype`` at device address ``pointer`` (kept alive by
    ``owner``); in the simulator the address is host memory."""
    if size == 0:
        return np.empty(0, dtype)
    if SIMULATOR:
        host = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_uint8))
        return np.ctypeslib.as_array(host, (size * dtype.itemsize,)).view(dtype)
    interface = {"shape": (size,), "strides": None, "typestr": dtype.str, "data": (pointer, False), "version": 3}
    return cuda.from_cuda_array_interface(interface, owner=owner, sync=False)


def _c_contiguous(shape: tuple[int, ...], strides: Any, itemsize: int) -> bool:
    """Whether byte ``strides`` (None: C-contiguous, as the interface says) are C order for ``shape``."""
    if strides is None or math.prod(shape) == 0:
        return True
    step = itemsize
    for n, s in zip(reversed(shape), reversed(tuple(strides))):
        if n != 1 and s != step:
            return False
        step *= n
    return True


def _dtype(out: Any, typestr: str) -> Any:
    """The array's dtype: its ``dtype`` where that is a NumPy dtype (bfloat16 has no type string),
    else the interface's type string."""
    try:
        return np.dtype(out.dtype)
    except (AttributeError, TypeError):
        return np.dtype(typestr)


def _ordinal(out: Any) -> int | None:
    """The GPU ``out`` lives on where it says (a ``DeviceArray``, a CuPy array, a torch tensor),
    else None (the current device)."""
    if isinstance(out, DeviceArray):
        return out.ordinal
    device = getattr(out, "device", None)
    for attribute in ("id", "index"):  # CuPy, torch
        value = getattr(device, attribute, None)
        if isinstance(value, int):
            return value
    return None


def _on_device(ordinal: int | None) -> Any:
    """A context on GPU ``ordinal`` (None: the current one)."""
    return cuda.gpus[ordinal] if ordinal is not None else contextlib.nullcontext()


class DeviceTarget(Target):
    """A GPU array as a kernel target: ``Target``'s checks on its ``__cuda_array_interface__``,
    its flat kernel view (a Numba device array), its device and the stream to fill it on."""

    __slots__ = ("ordinal", "shape", "stream", "synchronous")

    def __init__(self, out: Any, accepted: Sequence[str], global_shape: Any, offset: Any):
        try:
            interface = out.__cuda_array_interface__
        except (AttributeError, TypeError) as e:  # torch raises TypeError for bfloat16
            raise TypeError(f"out has no usable __cuda_array_interface__: {e} "
                            "(for torch tensors use fastinit.torch)") from None
        shape = tuple(int(n) for n in interface["shape"])
        dtype = check_dtype(_dtype(out, interface["typestr"]), accepted, "out.dtype")
        if np.dtype(interface["typestr"]).itemsize != dtype.itemsize:
            raise TypeError(f"out.dtype {dtype.name} and its interface's type {interface['typestr']} "
                            "differ in size")
        if not np.dtype(interface["typestr"]).isnative:
            raise ValueError(f"out must be in the machine's byte order, got {interface['typestr']}")
        if not _c_contiguous(shape, interface.get("strides"), dtype.itemsize):
            raise ValueError("out must be C-contiguous (fill a contiguous array and copy it into place)")
        if interface.get("mask") is not None:
            raise ValueError("out must not be a masked array")
        pointer, readonly = interface["data"]
        if readonly:
            raise ValueError("out must be writable (got a read-only GPU array)")
        entry = DTYPES[dtype.name]
        self.out = out
        self.dtype = dtype
        self.storage = entry.storage
        self.shape = shape
        self.ordinal = _ordinal(out)
        self.synchronous = isinstance(out, DeviceArray) and out.synchronous
        with _on_device(self.ordinal):  # the stream and the view belong to the array's GPU
            self.stream = _stream(interface.get("stream"))
            self.flat = _device_view(pointer, math.prod(shape), np.dtype(entry.kernel_view), out)
        self.global_shape, self.offset = check_box(shape, global_shape, offset)
        self._canonicalize(shape, self.offset)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def copy_from_host(self, host: np.ndarray) -> None:
        """Copy ``host`` (the box's values, in ``self.dtype``) into the array, queued on its stream."""
        bits = np.ascontiguousarray(host).reshape(-1).view(self.flat.dtype)
        if SIMULATOR or bits.size == 0:  # the view is host memory
            self.flat[...] = bits
            return
        with _on_device(self.ordinal):
            cast(Any, self.flat).copy_to_device(bits, stream=self.stream)  # a Numba device array
            if self.synchronous:
                self.stream.synchronize()


def launch(target: DeviceTarget, fill: int, k: tuple, params: Sequence[float]) -> None:
    """Queue the kernel for ``fill`` on ``target``'s stream with up to six float64 ``params``."""
    if target.size == 0:
        return
    p = kernel_params(params)
    per = elements_per_block(target.storage)
    blocks_per_row = (target.row_len + per - 2) // per + 1  # blocks a row of row_len can touch
    # a box with no lead dims is one row: one lead dim of extent 1 keeps the tuples typed
    lead_shape = tuple(int(n) for n in target.lead_shape) or (1,)
    lead_strides = tuple(int(s) for s in target.lead_strides) or (0,)
    args = (target.flat, lead_shape, lead_strides, target.base, target.row_len, blocks_per_row,
            np.uint32(k[0]), np.uint32(k[1]), *p)
    n_threads = target.size // target.row_len * blocks_per_row
    grid = (min(-(-n_threads // THREADS_PER_BLOCK), MAX_BLOCKS), THREADS_PER_BLOCK, target.stream)
    kernel = box_kernel(fill, target.storage)
    with _on_device(target.ordinal):
        if not SIMULATOR:
            _compiled(fill, target.storage, tuple(kernel.typeof_pyval(a) for a in args))
        with warnings.catch_warnings():  # a small box is a small grid, which numba-cuda warns about
            warnings.simplefilter("ignore", _cuda_errors.NumbaPerformanceWarning)
            configured = kernel[grid]
        configured(*args)
        if target.synchronous:
            target.stream.synchronize()


class DeviceArray:
    """A C-contiguous array in GPU memory as the fills take it: a device pointer, a shape, a NumPy
    dtype (bfloat16 included, which ``__cuda_array_interface__`` has no type string for), the GPU
    and the stream its producer works on. ``fastinit.torch`` hands CUDA tensors to the fills so.

    ``reshape`` gives another view of the same memory; ``a[key] = value`` converts ``value`` to
    the dtype on the host (NumPy / ml_dtypes rounding, as for a NumPy array) and copies it in.
    ``synchronous``: a fill waits for its kernel before it returns (for memory from a DLPack producer,
    whose later work on its own stream nothing would order after the fill)."""

    def __init__(self, pointer: int, shape: Sequence[int], dtype: Any, *, ordinal: int | None = None,
                 stream: int | None = None, owner: Any = None, synchronous: bool = False):
        self.pointer = int(pointer)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.ordinal = ordinal
        self.stream = stream
        self.owner = owner
        self.synchronous = synchronous

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def __cuda_array_interface__(self) -> dict:
        typestr = f"<u{self.dtype.itemsize}" if self.dtype.kind == "V" else self.dtype.str
        return {"shape": self.shape, "typestr": typestr, "data": (self.pointer, False), "strides": None,
                "version": 3, "stream": self.stream}

    def reshape(self, *shape: Any) -> DeviceArray:
        """The same memory as ``shape`` (one ``-1`` is inferred, as in NumPy)."""
        new = np.empty(self.shape, np.bool_).reshape(*shape).shape  # NumPy's rules, on a tiny dtype
        return DeviceArray(self.pointer, new, self.dtype, ordinal=self.ordinal, stream=self.stream,
                           owner=self.owner, synchronous=self.synchronous)

    def __setitem__(self, key: Any, value: Any) -> None:
        storage = np.dtype(DTYPES[self.dtype.name].kernel_view)
        bits = np.asarray(np.asarray(value).astype(self.dtype)).view(storage)
        with _on_device(self.ordinal):
            _device_view(self.pointer, self.size, storage, self).reshape(self.shape)[key] = bits


def empty(shape: Sequence[int], dtype: Any, ordinal: int | None = None) -> DeviceArray:
    """A new C-contiguous ``DeviceArray`` of ``shape`` and ``dtype`` in the memory of GPU
    ``ordinal`` (None: the current one), from numba-cuda's allocator (host memory in the simulator);
    ``MemoryError`` where the GPU has not that much free."""
    dtype = np.dtype(dtype)
    nbytes = max(1, math.prod(shape) * dtype.itemsize)
    with _on_device(ordinal):
        try:
            buffer = cuda.device_array(nbytes, np.uint8)
        except Exception as e:
            if getattr(e, "code", None) == _OUT_OF_MEMORY:
                raise MemoryError(f"GPU {ordinal}: out of memory for {nbytes:,} bytes") from e
            raise
    interface = buffer.__array_interface__ if SIMULATOR else buffer.__cuda_array_interface__
    return DeviceArray(interface["data"][0], shape, dtype, ordinal=ordinal, owner=buffer)


def synchronize(ordinal: int | None = None) -> None:
    """Wait for the work queued on GPU ``ordinal`` (None: the current one)."""
    with _on_device(ordinal):
        cuda.synchronize()
