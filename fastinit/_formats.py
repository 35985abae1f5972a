"""On-disk layouts of a checkpoint: where each tensor's bytes go, and the headers around them.

``safetensors`` and ``npy`` are "files made of a header and raw little-endian C-order tensor data",
described by a ``Layout``, so one writer fills them: ``safetensors`` is one file whose JSON header
lists every tensor, or a directory of shards named and split as Hugging Face's ``save_pretrained``
does (``model-00001-of-0000N.safetensors`` and ``model.safetensors.index.json``); ``npy`` is a
directory with one ``.npy`` file per tensor and a ``fastinit.json`` manifest. ``zarr`` is a zarr v3
group with one chunked array per tensor, written through zarr-python.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._dtypes import DTYPES, FLOAT_NAMES, raw_dtype
from .spec import Spec, TensorSpec

_FROM_SAFETENSORS = {DTYPES[name].safetensors: name for name in FLOAT_NAMES}
MANIFEST = "fastinit.json"
INDEX = "model.safetensors.index.json"
SHARD = "model{suffix}.safetensors"


@dataclass(frozen=True)
class Layout:
    """``files[k] = (relative path, header bytes)`` (relative path ``""``: the checkpoint is one
    file); tensor ``i`` is stored in file ``places[i][0]`` from byte ``places[i][1]``; ``closing``
    files (a manifest, an index) are written whole once every tensor is."""

    files: tuple[tuple[str, bytes], ...]
    places: tuple[tuple[int, int], ...]
    sizes: tuple[int, ...]  # each file's final size in bytes
    closing: tuple[tuple[str, bytes], ...] = ()


def _safetensors_header(tensors: list[TensorSpec], metadata: dict[str, str]) -> bytes:
    """The safetensors header: u64 little-endian length, then JSON (padded with spaces so the data
    starts 8-byte aligned) with each tensor's dtype, shape and [begin, end) data offsets."""
    header: dict[str, Any] = {"__metadata__": metadata}
    begin = 0
    for t in tensors:
        header[t.name] = {"dtype": DTYPES[t.dtype].safetensors, "shape": list(t.shape),
                          "data_offsets": [begin, begin + t.nbytes]}
        begin += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def safetensors_layout(spec: Spec, metadata: dict[str, str]) -> Layout:
    """One safetensors file holding every tensor of ``spec``."""
    head = _safetensors_header(list(spec.tensors), metadata)
    places, start = [], len(head)
    for t in spec.tensors:
        places.append((0, start))
        start += t.nbytes
    return Layout((("", head),), tuple(places), (start,))


def shards(spec: Spec, max_shard_size: int, storage: Mapping[str, tuple[str, int]] | None = None) -> list[list[int]]:
    """The tensors (indices into ``spec``) of each shard, as Hugging Face splits a state dict: in
    order, a new shard when the next tensor would pass ``max_shard_size`` bytes, a tensor larger than
    that in a shard of its own. ``storage`` (``{tensor name: (storage key, its bytes)}``) says which
    tensors share one storage in memory: those go together into the shard of the first, which counts
    the storage's bytes."""
    split: list[list[int]] = []
    current: list[int] = []
    size = 0
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(spec.tensors):
        nbytes = t.nbytes
        if storage is not None and t.name in storage:
            key, nbytes = storage[t.name]
            if key in groups:
                groups[key].append(i)
                continue
            groups[key] = [i]
        if nbytes > max_shard_size:
            split.append([i])
            continue
        if size + nbytes > max_shard_size:
            split.append(current)
            current, size = [], 0
        current.append(i)
        size += nbytes
    split = [s for s in (*split, current) if s] or [[]]
    for first, *rest in groups.values():
        next(part for part in split if first in part).extend(rest)
    return split


def sharded_layout(spec: Spec, metadata: dict[str, str], max_shard_size: int,
                   storage: Mapping[str, tuple[str, int]] | None = None) -> Layout:
    """A directory of safetensors shards (split by ``shards``) named as Hugging Face names them,
    with the index when there is more than one. The index's ``metadata`` holds ``total_size``,
    ``total_parameters`` and the fastinit metadata (the spec); each shard's header holds the metadata
    without the spec."""
    split = shards(spec, max_shard_size, storage)
    if len(split) == 1:
        return _files(spec, split, [SHARD.format(suffix="")], [metadata], ())
    names = [SHARD.format(suffix=f"-{k + 1:05d}-of-{len(split):05d}") for k in range(len(split))]
    short = {k: v for k, v in metadata.items() if k != "fastinit.spec"}
    index = {"metadata": {"total_size": spec.nbytes, "total_parameters": spec.parameters, **metadata},
             "weight_map": {spec.tensors[i].name: names[k] for k, part in enumerate(split) for i in part}}
    return _files(spec, split, names, [short] * len(split), ((INDEX, manifest_bytes(index)),))


def _files(spec: Spec, split: list[list[int]], names: list[str], metadata: list[dict[str, str]],
           closing: tuple[tuple[str, bytes], ...]) -> Layout:
    files, places, sizes = [], [(0, 0)] * len(spec.tensors), []
    for k, (part, name, meta) in enumerate(zip(split, names, metadata)):
        head = _safetensors_header([spec.tensors[i] for i in part], meta)
        start = len(head)
        for i in part:
            places[i] = (k, start)
            start += spec.tensors[i].nbytes
        files.append((name, head))
        sizes.append(start)
    return Layout(tuple(files), tuple(places), tuple(sizes), closing)


def npy_file_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"tensor {name!r}: the npy and zarr formats store each tensor under its name, so names "
                         "cannot contain '/', '\\' or NUL or be '.' / '..'")
    return name + ".npy"


def _npy_header(shape, dtype_name: str) -> bytes:
    # bfloat16 has no .npy type code: it is written as 2-byte void ('|V2') records
    header = {"descr": DTYPES[dtype_name].npy_descr, "fortran_order": False, "shape": tuple(shape)}
    text = repr(header).encode("latin1")
    pad = -(len(text) + 1 + 10) % 64  # magic (6) + version (2) + length (2); data 64-byte aligned
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def npy_layout(spec: Spec, metadata: dict[str, str]) -> Layout:
    files, places, sizes = [], [], []
    for t in spec.tensors:
        head = _npy_header(t.shape, t.dtype)
        files.append((npy_file_name(t.name), head))
        places.append((len(files) - 1, len(head)))
        sizes.append(len(head) + t.nbytes)
    return Layout(tuple(files), tuple(places), tuple(sizes), ((MANIFEST, manifest_bytes(metadata)),))


def manifest_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode() + b"\n"


# --------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class StoredTensor:
    """A tensor of a checkpoint on disk; ``open()`` gives a read-only array-like (bfloat16 as uint16)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    open: Callable[[], Any]


def _memmap(file: str, start: int, shape: tuple[int, ...], dtype: str) -> Callable[[], np.ndarray]:
    def open_memmap():
        kind = raw_dtype(dtype)
        if 0 in shape:
            return np.empty(shape, kind)
        return np.memmap(file, dtype=kind, mode="r", offset=start, shape=shape)

    return open_memmap


def read_safetensors(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    with open(path, "rb") as file:
        raw = file.read(8)
        if len(raw) < 8:
            raise ValueError(f"{path} is not a safetensors file (shorter than 8 bytes)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 << 20:
            raise ValueError(f"{path} is not a safetensors file (header length {length})")
        try:
            header = json.loads(file.read(length))
        except ValueError:
            raise ValueError(f"{path} is not a safetensors file (header is not JSON)") from None
    metadata = header.pop("__metadata__", {}) or {}
    tensors = []
    for name, entry in header.items():
        if entry["dtype"] not in _FROM_SAFETENSORS:
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, not one fastinit writes")
        start = 8 + length + entry["data_offsets"][0]
        dtype, shape = _FROM_SAFETENSORS[entry["dtype"]], tuple(entry["shape"])
        tensors.append((start, StoredTensor(name, shape, dtype, _memmap(path, start, shape, dtype))))
    return metadata, [t for _, t in sorted(tensors, key=lambda pair: pair[0])]


def read_npy_dir(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    manifest = os.path.join(path, MANIFEST)
    try:
        with open(manifest, "rb") as file:
            metadata = json.load(file)
    except OSError:
        raise ValueError(f"{path} has no {MANIFEST}: not a fastinit npy checkpoint") from None
    spec = json.loads(metadata["fastinit.spec"])
    tensors = []
    for name in spec["tensors"]:
        file_path = os.path.join(path, npy_file_name(name))
        with open(file_path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, _ = read_header(file)
            start = file.tell()
        dtype = spec["tensors"][name]["dtype"]
        tensors.append(StoredTensor(name, tuple(shape), dtype, _memmap(file_path, start, tuple(shape), dtype)))
    return metadata, tensors


def import_zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("the zarr format needs zarr-python 3: pip install 'fastinit-philox[zarr]'") from None
    return zarr


def _same(value: Any) -> Any:
    return value


def read_zarr(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    group = import_zarr().open_group(store=path, mode="r")
    metadata = dict(group.attrs)
    if "fastinit.spec" in metadata:
        names = list(json.loads(metadata["fastinit.spec"])["tensors"])
    else:
        names = sorted(group.array_keys())
    tensors = []
    for name in names:
        array = group[name]
        dtype = array.attrs.get("fastinit.dtype", str(array.dtype))
        tensors.append(StoredTensor(name, tuple(array.shape), dtype, functools.partial(_same, array)))
    return metadata, tensors


def read_sharded(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    """A directory of safetensors shards: the index's metadata, and every tensor in weight-map order
    (a directory holding only ``model.safetensors``: that file)."""
    index_path = os.path.join(path, INDEX)
    if not os.path.exists(index_path):
        return read_safetensors(os.path.join(path, SHARD.format(suffix="")))
    try:
        with open(index_path, "rb") as file:
            index = json.load(file)
        weight_map, metadata = index["weight_map"], index.get("metadata", {})
        if not isinstance(weight_map, dict) or not isinstance(metadata, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{index_path} is not a safetensors index (JSON with a weight_map)") from None
    stored: dict[str, StoredTensor] = {}
    for shard in dict.fromkeys(weight_map.values()):
        _, tensors = read_safetensors(os.path.join(path, os.path.basename(shard)))
        stored.update((t.name, t) for t in tensors)
    missing = [name for name in weight_map if name not in stored]
    if missing:
        raise ValueError(f"{path}: the index lists tensors no shard holds: {', '.join(missing[:5])}")
    return {k: str(v) for k, v in metadata.items()}, [stored[name] for name in weight_map]


def read_checkpoint(path: str) -> tuple[str, dict[str, str], list[StoredTensor]]:
    """``(format, metadata, tensors)`` of a checkpoint written by fastinit."""
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, ".metadata")):
            from ._dcp import read_dcp

            return "dcp", *read_dcp(path)
        if os.path.exists(os.path.join(path, "zarr.json")):
            return "zarr", *read_zarr(path)
        if os.path.exists(os.path.join(path, INDEX)) or os.path.exists(os.path.join(path, SHARD.format(suffix=""))):
            return "safetensors", *read_sharded(path)
        return "npy", *read_npy_dir(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist")
    return "safetensors", *read_safetensors(path)

