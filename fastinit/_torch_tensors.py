"""torch tensors (and DTensor shards) as views of boxes of the global tensor: NumPy arrays for CPU
tensors, ``fastinit._cuda.DeviceArray`` for CUDA tensors (filled on their GPU, on torch's current
stream); the one place that knows torch's memory and sharding. No RNG here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._dtypes import FLOAT_NAMES

#: the torch dtypes fastinit fills, and their fastinit names
DTYPES = {getattr(torch, name): name for name in FLOAT_NAMES}


def _check_tensor(tensor, function: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{function}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type == "meta":
        raise ValueError(f"{function}: {tensor.shape} tensor is on the meta device and has no storage; "
                         "give it storage first (fastinit.torch.materialize(module) or .to_empty(device='cpu'))")
    if tensor.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{function}: tensor is on {tensor.device}; fastinit fills CPU and CUDA memory: fill a "
                         "CPU tensor and move it (.to(device)), or materialize the module on the CPU first")
    if tensor.dtype not in DTYPES and not tensor.is_complex():
        raise TypeError(f"{function}: tensor dtype must be one of {', '.join(map(str, DTYPES))}, "
                        f"got {tensor.dtype}")


def _numpy_view(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy array sharing the memory of a contiguous CPU tensor."""
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _array_view(tensor: torch.Tensor) -> Any:
    """What the fills write a contiguous tensor through: a NumPy view of a CPU tensor's memory, or a
    ``DeviceArray`` of a CUDA tensor's, queued on torch's current stream of its device."""
    if tensor.device.type == "cpu":
        return _numpy_view(tensor)
    from ._cuda import DeviceArray
    from ._dtypes import numpy_dtype

    stream = torch.cuda.current_stream(tensor.device).cuda_stream
    return DeviceArray(tensor.data_ptr(), tuple(tensor.shape), numpy_dtype(DTYPES[tensor.dtype]),
                       ordinal=tensor.device.index, stream=stream or 1, owner=tensor)  # 0: legacy default (1)


def _dtensor_class():
    if not torch.distributed.is_available():
        return None
    from torch.distributed.tensor import DTensor

    return DTensor


def _shard_box(dtensor) -> tuple[tuple[int, ...], torch.Tensor]:
    """The global offset of a DTensor's local shard and the local tensor.

    ``Shard(d)`` on mesh dimension ``i`` splits the current extent of dimension ``d`` as
    ``torch.chunk`` does (pieces of ``ceil(n / k)``, trailing ones shorter or empty); mesh
    dimensions apply left to right, so two of them sharding one dimension nest.
    """
    from torch.distributed.tensor import Replicate, Shard

    shape = tuple(dtensor.shape)
    local = dtensor.to_local()
    coordinate = dtensor.device_mesh.get_coordinate()
    if coordinate is None:  # this rank holds no part of the tensor
        return (0,) * len(shape), local
    start, extent = [0] * len(shape), list(shape)
    for mesh_dim, placement in enumerate(dtensor.placements):
        if isinstance(placement, Replicate):
            continue
        if not isinstance(placement, Shard):
            raise ValueError(f"DTensor placement {placement} is not supported: fastinit fills Shard(dim) and "
                             "Replicate placements (a Partial tensor holds summands, not values)")
        d = placement.dim % len(shape)
        pieces, piece = dtensor.device_mesh.size(mesh_dim), coordinate[mesh_dim]
        step = -(-extent[d] // pieces)
        lo, hi = min(piece * step, extent[d]), min((piece + 1) * step, extent[d])
        start[d] += lo
        extent[d] = hi - lo
    if tuple(local.shape) != tuple(extent):
        raise ValueError(f"DTensor local shard has shape {tuple(local.shape)}, but placements "
                         f"{dtensor.placements} of global shape {shape} give {tuple(extent)} on mesh coordinate "
                         f"{coordinate}: the shard metadata is inconsistent")
    return tuple(start), local


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard; any other tensor itself."""
    dtensor = _dtensor_class()
    return tensor.to_local() if dtensor is not None and isinstance(tensor, dtensor) else tensor


def fill_tensor(tensor: Any, fill: Callable, function: str, seed: Any = None, global_shape: Any = None,
                offset: Any = None) -> Any:
    """Call ``fill(array, global_shape, offset)`` on a view of ``tensor`` (or of its DTensor shard;
    ``_array_view``) and return ``tensor``: the one place that turns torch tensors into fastinit boxes.

    A complex tensor is filled through its real view (``torch.view_as_real``): the box gains a last
    dimension of 2, the real and imaginary part of each element."""
    dtensor = _dtensor_class()
    local = tensor
    if dtensor is not None and isinstance(tensor, dtensor):
        if global_shape is not None or offset is not None:
            raise ValueError(f"{function}: a DTensor knows its global shape and offset; do not pass "
                             "global_shape or offset")
        if seed is None:
            raise ValueError(f"{function}: a DTensor needs an explicit seed= (the same on every rank), "
                             "or the ranks would fill their shards from different streams")
        global_shape = tuple(tensor.shape)
        offset, local = _shard_box(tensor)
    _check_tensor(local, function)
    with torch.no_grad():
        if local.is_complex():
            shape = tuple(local.shape) if global_shape is None else tuple(global_shape)
            global_shape = (*shape, 2)
            offset = (*((0,) * len(shape) if offset is None else tuple(offset)), 0)
            local = torch.view_as_real(local)
        if local.is_contiguous():
            fill(_array_view(local.detach()), global_shape, offset)
            torch.autograd.graph.increment_version(local)
        else:
            dense = torch.empty(local.shape, dtype=local.dtype, device=local.device)
            fill(_array_view(dense), global_shape, offset)
            local.copy_(dense)
    return tensor
