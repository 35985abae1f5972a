"""DLPack for GPU memory: reading a CUDA array a producer exports, and exporting one fastinit filled.

* ``consume(obj, stream)``: an object with ``__dlpack__`` / ``__dlpack_device__`` on a CUDA device
  as a ``fastinit._cuda.DeviceArray`` over the same memory (the fills then write it in place, and
  wait for the kernel: DLPack cannot order the producer's later work after it). The capsule is
  kept alive by the array and never marked as used: the producer's capsule destructor releases
  the tensor when the array is gone, as it does for any capsule nobody consumed.
* ``Exported(array, owner)``: a C-contiguous array in device memory (``DeviceArray``) as an object
  with ``__dlpack__`` / ``__dlpack_device__``, for ``jax.dlpack.from_dlpack`` and any other
  consumer; ``owner`` (the allocation) lives until the consumer calls the tensor's deleter.

The structures are DLPack's (``dlpack.h``): an unversioned ``DLManagedTensor`` is exported (every
consumer takes it), a versioned or unversioned one is read. Nothing here draws a number.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import operator
import threading
from typing import Any

import numpy as np

from ._dtypes import numpy_dtype

#: DLPack device types
CPU, CUDA, CUDA_MANAGED = 1, 2, 13
#: DLPack's stream argument for CUDA's legacy default stream
LEGACY_DEFAULT_STREAM = 1
_READ_ONLY, _IS_COPIED = 1, 2  # DLPACK_FLAG_BITMASK_READ_ONLY, _IS_COPIED
#: (type code, bits) -> dtype name: int, uint, float, bfloat
_CODES = {(0, 8): "int8", (0, 16): "int16", (0, 32): "int32", (0, 64): "int64",
          (1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (1, 64): "uint64",
          (2, 16): "float16", (2, 32): "float32", (2, 64): "float64", (4, 16): "bfloat16"}
_NAMES = {name: code for code, name in _CODES.items()}


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int32), ("dtype", _DataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


_Deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _Managed(ctypes.Structure):
    _fields_ = [("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _Deleter)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class _ManagedVersioned(ctypes.Structure):
    _fields_ = [("version", _Version), ("manager_ctx", ctypes.c_void_p), ("deleter", _Deleter),
                ("flags", ctypes.c_uint64), ("dl_tensor", _Tensor)]


def _capi(name: str, restype: Any, *argtypes: Any) -> Any:
    """A function of the Python C API with its own prototype (object arguments as ``py_object``)."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_capsule_valid = _capi("PyCapsule_IsValid", ctypes.c_int, ctypes.py_object, ctypes.c_char_p)
_capsule_pointer = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)
_capsule_new = _capi("PyCapsule_New", ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
_raw_capsule_valid = _capi("PyCapsule_IsValid", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
_raw_capsule_pointer = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)


def dlpack_device(obj: Any) -> tuple[int, int] | None:
    """``obj.__dlpack_device__()`` as ``(device type, device id)``, or None where it has none."""
    method = getattr(obj, "__dlpack_device__", None)
    if method is None or not hasattr(obj, "__dlpack__"):
        return None
    try:
        device_type, device_id = method()
        return operator.index(device_type), operator.index(device_id)
    except Exception:  # no device DLPack names (a torch meta tensor), or not a pair of ints: not GPU memory
        return None


def _tensor_of(capsule: Any) -> tuple[_Tensor, int]:
    """The ``DLTensor`` a capsule holds and its flags (0 for an unversioned capsule)."""
    if _capsule_valid(capsule, b"dltensor_versioned"):
        managed = _ManagedVersioned.from_address(_capsule_pointer(capsule, b"dltensor_versioned"))
        if managed.version.major != 1:
            raise ValueError(f"out exports DLPack {managed.version.major}.{managed.version.minor}; "
                             "fastinit reads DLPack 1.x")
        return managed.dl_tensor, int(managed.flags)
    if _capsule_valid(capsule, b"dltensor"):
        return _Managed.from_address(_capsule_pointer(capsule, b"dltensor")).dl_tensor, 0
    raise ValueError("out.__dlpack__() returned no DLPack capsule (or one already consumed)")


def read_capsule(capsule: Any) -> dict:
    """A capsule's tensor: ``data`` (its address plus byte offset), ``device``, ``shape``,
    ``strides`` (in elements, None for C order), ``dtype`` (a dtype name) and ``read_only``."""
    tensor, flags = _tensor_of(capsule)
    ndim = int(tensor.ndim)
    shape = tuple(int(tensor.shape[d]) for d in range(ndim))
    strides = tuple(int(tensor.strides[d]) for d in range(ndim)) if tensor.strides else None
    kind = (int(tensor.dtype.code), int(tensor.dtype.bits))
    if int(tensor.dtype.lanes) != 1 or kind not in _CODES:
        raise TypeError(f"out's DLPack dtype (code {kind[0]}, {kind[1]} bits, {tensor.dtype.lanes} lanes) is not one "
                        "fastinit fills")
    return {"data": int(tensor.data or 0) + int(tensor.byte_offset), "shape": shape, "strides": strides,
            "device": (int(tensor.device.device_type), int(tensor.device.device_id)), "dtype": _CODES[kind],
            "read_only": bool(flags & _READ_ONLY), "copied": bool(flags & _IS_COPIED)}


def consume(obj: Any, stream: int | None) -> Any:
    """``obj``'s CUDA memory as a ``DeviceArray``, the producer asked to order its work before
    ``stream`` (DLPack's stream argument: 1 is the legacy default stream)."""
    from ._cuda import DeviceArray, _c_contiguous

    try:
        capsule = obj.__dlpack__(stream=stream, max_version=(1, 0))
    except TypeError:  # a producer from before DLPack 1.0 takes no max_version
        try:
            capsule = obj.__dlpack__(stream=stream)
        except TypeError as e:
            raise TypeError(f"out.__dlpack__ takes no stream= argument ({e}): fastinit cannot order its fill "
                            "after the producer's work; pass an array with __cuda_array_interface__") from None
    info = read_capsule(capsule)
    if info["device"][0] not in (CUDA, CUDA_MANAGED):
        raise ValueError(f"out's DLPack capsule is on device type {info['device'][0]}, not CUDA")
    if info["copied"]:
        raise ValueError("out must be filled in place (its DLPack producer exported a copy)")
    if info["data"] == 0 and math.prod(info["shape"]) > 0:
        raise ValueError("out's DLPack capsule has no data pointer")
    if info["read_only"]:
        raise ValueError("out must be writable (its DLPack capsule is marked read-only)")
    dtype = numpy_dtype(info["dtype"])
    byte_strides = None if info["strides"] is None else tuple(s * dtype.itemsize for s in info["strides"])
    if not _c_contiguous(info["shape"], byte_strides, dtype.itemsize):
        raise ValueError("out must be C-contiguous (fill a contiguous array and copy it into place)")
    return DeviceArray(info["data"], info["shape"], dtype, ordinal=info["device"][1], stream=stream,
                       owner=(obj, capsule), synchronous=True)


#: exported tensors not yet released by their consumer: key -> (managed tensor, shape, owner)
_EXPORTED: dict[int, tuple] = {}
_EXPORTED_LOCK = threading.Lock()
_KEYS = itertools.count(1)
#: the capsule name, alive as long as the module (a capsule keeps a pointer to its name)
_CAPSULE_NAME = b"dltensor"


def _forget(address: int, managed_at: Any = _Managed.from_address, lock: Any = _EXPORTED_LOCK,
            exported: dict = _EXPORTED) -> None:
    """Release the exported tensor at ``address``: its structures and its owner. (What it uses is
    bound as defaults: a consumer may call it while interpreter teardown clears module globals.)"""
    key = managed_at(address).manager_ctx
    with lock:
        exported.pop(key, None)


#: DLPack's deleter of an exported tensor (its consumer calls it, maybe on another thread)
_release = _Deleter(_forget)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _capsule_destructor(capsule: int, valid: Any = _raw_capsule_valid, pointer: Any = _raw_capsule_pointer,
                        name: bytes = _CAPSULE_NAME, forget: Any = _forget) -> None:
    """A capsule nobody consumed (still named ``dltensor``) releases its tensor itself."""
    if valid(capsule, name):
        forget(pointer(capsule, name))


# the two callbacks are never freed: a consumer may hold an exported tensor until the process exits
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_release))
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_capsule_destructor))


class Exported:
    """``array`` (C-contiguous memory with ``pointer``, ``shape``, ``dtype`` and ``ordinal``) behind
    the DLPack protocol; ``device_type`` is ``CUDA``, or ``CPU`` for host memory (the simulator)."""

    def __init__(self, array: Any, owner: Any, device_type: int = CUDA):
        self.array, self.owner, self.device_type = array, owner, device_type

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.device_type, 0 if self.device_type == CPU else int(self.array.ordinal or 0)

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: Any = None) -> Any:
        """An unversioned capsule. The memory is ready: fastinit synchronizes its fill before exporting."""
        if copy:
            raise BufferError("fastinit exports its GPU arrays without a copy")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"fastinit exports on {self.__dlpack_device__()}, not {tuple(dl_device)}")
        shape = (ctypes.c_int64 * max(1, len(self.array.shape)))(*self.array.shape)
        code, bits = _NAMES[np.dtype(self.array.dtype).name]
        managed = _Managed()
        managed.dl_tensor = _Tensor(self.array.pointer, _Device(*self.__dlpack_device__()), len(self.array.shape),
                                    _DataType(code, bits, 1), shape, None, 0)
        managed.deleter = _release
        key = next(_KEYS)
        managed.manager_ctx = key
        with _EXPORTED_LOCK:
            _EXPORTED[key] = (managed, shape, self.owner)
        return _capsule_new(ctypes.addressof(managed), _CAPSULE_NAME, ctypes.cast(_capsule_destructor, ctypes.c_void_p))
