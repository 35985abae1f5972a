"""``torch.distributed.checkpoint`` (DCP) directories: a spec's tensors saved as DCP chunks through
torch's own ``FileSystemWriter`` (its metadata and file layout, so any torch that reads DCP reads
them), one chunk in memory at a time, and read back chunk by chunk for verify and inspect.

Each tensor is saved as the C-order slabs ``fastinit.checkpoint.boxes`` cuts it into, as if each slab
were one rank's shard, one data file per slab: ``torch.distributed.checkpoint.load`` reshards them
into any placement (plain tensors, FSDP2 ``fully_shard``, tensor-parallel DTensors). The fastinit metadata (spec, seed,
version) is a JSON file beside DCP's ``.metadata``; DCP ignores it.
"""

from __future__ import annotations

import functools
import io
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._atomic import fsync_dir
from ._dtypes import FLOAT_NAMES, numpy_dtype, raw_dtype
from ._formats import StoredTensor, _same, manifest_bytes, read_manifest, recorded_tensors, regular_file
from .spec import Spec, TensorSpec

MANIFEST = "fastinit.json"
METADATA = ".metadata"


def import_torch_dcp():
    try:
        import torch
        import torch.distributed.checkpoint as dcp
    except ImportError:
        raise ImportError("the dcp format needs torch: pip install 'fastinit-philox[torch]'") from None
    return torch, dcp


def _planner(torch, dcp, spec: Spec, seed: int, chunks: Callable[[TensorSpec], Iterator],
             progress: Callable[[int, str], None] | None):
    """A save planner whose write items are the chunks of ``spec`` and whose data is filled on
    demand (a DCP save otherwise starts from tensors in memory)."""
    from torch.distributed.checkpoint.default_planner import DefaultSavePlanner
    from torch.distributed.checkpoint.metadata import ChunkStorageMetadata, MetadataIndex, TensorProperties
    from torch.distributed.checkpoint.planner import SavePlan, TensorWriteData, WriteItem, WriteItemType

    by_name = {t.name: t for t in spec.tensors}
    lock = threading.Lock()  # the writer's threads share the whole-tensor cache and the progress callback
    wholes: dict[str, np.ndarray] = {}

    def whole(t: TensorSpec) -> np.ndarray:
        """A whole-tensor scheme's tensor (a QR), computed once; kept while a writer thread may still
        need it (the two latest)."""
        with lock:
            if t.name not in wholes:
                wholes[t.name] = t.fill(np.empty(t.shape, numpy_dtype(t.dtype)), seed)
                while len(wholes) > 2:
                    del wholes[next(iter(wholes))]
            return wholes[t.name]

    class SpecPlanner(DefaultSavePlanner):
        def set_up_planner(self, state_dict, storage_meta=None, is_coordinator=False) -> None:
            self.is_coordinator = is_coordinator

        def create_local_plan(self) -> SavePlan:
            items = []
            for t in spec.tensors:
                properties = TensorProperties(dtype=getattr(torch, t.dtype))
                for offset, shape in chunks(t) if t.size else [((0,) * len(t.shape), t.shape)]:
                    items.append(WriteItem(
                        index=MetadataIndex(t.name, offset), type=WriteItemType.SHARD,
                        tensor_data=TensorWriteData(chunk=ChunkStorageMetadata(torch.Size(offset), torch.Size(shape)),
                                                    properties=properties, size=torch.Size(t.shape))))
            self.plan = SavePlan(items)
            return self.plan

        def resolve_data(self, write_item: Any) -> Any:
            t = by_name[write_item.index.fqn]
            offset = tuple(write_item.tensor_data.chunk.offsets)
            shape = tuple(write_item.tensor_data.chunk.sizes)
            if t.scheme.whole_tensor:  # computed once, saved chunk by chunk
                box = np.ascontiguousarray(whole(t)[tuple(slice(o, o + n) for o, n in zip(offset, shape))])
            else:
                box = t.fill(np.empty(shape, numpy_dtype(t.dtype)), seed, offset)
            data = torch.from_numpy(box.reshape(-1).view(np.uint8)).view(getattr(torch, t.dtype)).reshape(shape)
            if progress:
                with lock:
                    progress(box.nbytes, t.name)
            return data

    return SpecPlanner(flatten_state_dict=False, flatten_sharded_tensors=False)


def write_dcp(spec: Spec, directory: str, seed: int, metadata: dict[str, str],
              chunks: Callable[[TensorSpec], Iterator], progress: Callable[[int, str], None] | None,
              extra_files: tuple[tuple[str, bytes], ...] = ()) -> None:
    """Save ``spec``'s tensors into the new ``directory`` (one DCP data file per chunk, and
    ``.metadata``) with ``extra_files`` beside them, and make it all durable.

    One file per chunk: torch's writer keeps the last chunk of each tensor of a file in memory until
    the file is closed, so one file for everything would hold a chunk of every tensor. Two writer
    threads: one fills while the other writes."""
    torch, dcp = import_torch_dcp()
    os.makedirs(directory)
    writer = dcp.FileSystemWriter(directory, single_file_per_rank=False, sync_files=False, thread_count=2)
    with warnings.catch_warnings():  # "assuming the intent is to save in a single process": it is
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        dcp.save({}, storage_writer=writer, planner=_planner(torch, dcp, spec, seed, chunks, progress), no_dist=True)
    for name, data in ((MANIFEST, manifest_bytes(metadata)), *extra_files):
        with open(os.path.join(directory, name), "wb") as file:
            file.write(data)
    for name in os.listdir(directory):  # one pass at the end: the disk writes back while chunks are filled
        fd = os.open(os.path.join(directory, name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(directory)


class _Chunks:
    """A stored DCP tensor as a read-only array-like: ``[region]`` loads the chunks it overlaps."""

    def __init__(self, path: str, name: str, shape: tuple[int, ...], dtype: str, chunks: list, storage: dict):
        self.path, self.name, self.shape, self.dtype_name = path, name, shape, dtype
        self.dtype = np.dtype(raw_dtype(dtype))
        self.chunks, self.storage = chunks, storage

    def __getitem__(self, region: tuple[slice, ...]) -> np.ndarray:
        torch, _ = import_torch_dcp()
        from torch.distributed.checkpoint.metadata import MetadataIndex

        start = [s.start for s in region]
        stop = [s.stop for s in region]
        out = np.empty([b - a for a, b in zip(start, stop)], self.dtype)
        covered = 0
        for chunk in self.chunks:
            lo = [max(a, o) for a, o in zip(start, chunk.offsets)]
            hi = [min(b, o + n) for b, o, n in zip(stop, chunk.offsets, chunk.sizes)]
            if any(h <= low for low, h in zip(lo, hi)):
                continue
            info = self.storage.get(MetadataIndex(self.name, chunk.offsets))
            if info is None or os.path.basename(info.relative_path) != info.relative_path:
                raise ValueError(f"{self.path}: the chunk of {self.name!r} at {list(chunk.offsets)} has no data file "
                                 "in the checkpoint's directory")
            with open(regular_file(os.path.join(self.path, info.relative_path)), "rb") as file:
                file.seek(info.offset)
                blob = io.BytesIO(file.read(info.length))
            try:
                tensor = torch.load(blob, map_location="cpu", weights_only=True)
            except (RuntimeError, ValueError, EOFError) as err:
                raise ValueError(f"{self.path}: the chunk of {self.name!r} at {list(chunk.offsets)} is not a "
                                 f"readable torch.save blob ({err})") from None
            if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(chunk.sizes):
                raise ValueError(f"{self.path}: chunk of {self.name!r} at {list(chunk.offsets)} holds shape "
                                 f"{list(getattr(tensor, 'shape', ()))}, its metadata says {list(chunk.sizes)}")
            values = tensor.reshape(-1).view(torch.uint8).numpy().view(self.dtype).reshape(tensor.shape)
            part = values[tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, chunk.offsets))]
            out[tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start))] = part
            covered += part.size
        if covered != out.size:
            raise ValueError(f"{self.path}: the chunks of {self.name!r} do not cover {[list(start), list(stop)]} "
                             f"exactly once")
        return out


def read_dcp(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    """The fastinit metadata of a DCP directory (empty if not written by fastinit) and its tensors,
    in the order of the recorded spec (else DCP's)."""
    torch, dcp = import_torch_dcp()
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    regular_file(os.path.join(path, METADATA))
    try:
        stored = dcp.FileSystemReader(path).read_metadata()
        entries = dict(stored.state_dict_metadata)
    except Exception as err:  # whatever unpickling a damaged file raises
        raise ValueError(f"{path}: {METADATA} is not readable DCP metadata ({type(err).__name__}: {err})") from None
    metadata = read_manifest(path, MANIFEST) if os.path.lexists(os.path.join(path, MANIFEST)) else {}
    names = list(recorded_tensors(metadata, os.path.join(path, MANIFEST))) or list(entries)
    dtype_names = {getattr(torch, n): n for n in FLOAT_NAMES}
    tensors = []
    for name in names:
        entry = entries.get(name)
        if not isinstance(entry, TensorStorageMetadata):
            raise ValueError(f"{path}: {name!r} is not a tensor of the checkpoint")
        dtype = dtype_names.get(entry.properties.dtype)
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry.properties.dtype}, not one fastinit writes")
        array = _Chunks(path, name, tuple(entry.size), dtype, list(entry.chunks), stored.storage_data)
        tensors.append(StoredTensor(name, tuple(entry.size), dtype, functools.partial(_same, array)))
    return metadata, tensors
