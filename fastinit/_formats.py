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
import math
import os
import stat
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._atomic import name_limit
from ._dtypes import DTYPES, FLOAT_NAMES, raw_dtype
from .spec import Spec, TensorSpec

_FROM_SAFETENSORS = {DTYPES[name].safetensors: name for name in FLOAT_NAMES}
_FROM_NPY = {DTYPES[name].npy_descr: name for name in FLOAT_NAMES}
MANIFEST = "fastinit.json"
INDEX = "model.safetensors.index.json"
SHARD = "model{suffix}.safetensors"
ZARR_GROUP = "zarr.json"
#: the largest file a signed 64-bit file offset addresses
MAX_FILE_BYTES = (1 << 63) - 1
#: the largest header the safetensors library reads
MAX_SAFETENSORS_HEADER = 100_000_000
#: the most dims each format holds: NumPy's limit (verify reads through NumPy), zarr-python's codecs 32
_NUMPY_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32
MAX_DIMS = {"safetensors": _NUMPY_DIMS, "npy": _NUMPY_DIMS, "zarr": min(32, _NUMPY_DIMS), "dcp": _NUMPY_DIMS}


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


def check_names(spec: Spec, fmt: str, directory: str) -> None:
    """Every tensor name of ``spec`` is a file name the format can store in ``directory`` (npy and zarr
    store each tensor under its name): no separator, not reserved, short enough."""
    if fmt not in ("npy", "zarr"):
        return
    limit = name_limit(directory if os.path.isdir(directory) else "")
    for t in spec.tensors:
        stored = npy_file_name(t.name)  # the same rules for zarr, whose arrays are folders named as the tensor
        if fmt == "zarr":
            stored = t.name
            if stored == ZARR_GROUP:
                raise ValueError(f"tensor {t.name!r}: the zarr format keeps the group's metadata in {ZARR_GROUP}, "
                                 "so a tensor cannot have that name")
        size = len(os.fsencode(stored))
        if size > limit:
            raise ValueError(f"tensor {t.name[:40]!r}...: the {fmt} format stores it as a file named after it, "
                             f"{size} bytes long; this file system takes names of at most {limit} bytes")


def check_limits(spec: Spec, fmt: str, layout: Layout | None) -> None:
    """Every tensor of ``spec`` fits the format: its number of dims, and each file's size and header
    (``layout``: the files of a safetensors or npy checkpoint); else a ``ValueError`` naming it."""
    for t in spec.tensors:
        if len(t.shape) > MAX_DIMS[fmt]:
            raise ValueError(f"tensor {t.name!r}: {len(t.shape)} dims; the {fmt} format holds at most "
                             f"{MAX_DIMS[fmt]}")
        if t.nbytes > MAX_FILE_BYTES:
            raise ValueError(f"tensor {t.name!r}: {t.nbytes} bytes; a file holds at most 2**63 - 1")
    if layout is None:
        return
    for k, ((rel, head), size) in enumerate(zip(layout.files, layout.sizes)):
        names = [t.name for t, (file, _) in zip(spec.tensors, layout.places) if file == k]
        where = f"tensor {names[0]!r}" if len(names) == 1 else f"the file {rel or 'of the checkpoint'}"
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{where}: {size} bytes; a file holds at most 2**63 - 1")
        if fmt == "safetensors" and len(head) - 8 > MAX_SAFETENSORS_HEADER:
            raise ValueError(f"{where}: a safetensors header of {len(head) - 8} bytes; the safetensors library "
                             f"reads at most {MAX_SAFETENSORS_HEADER}")


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


def regular_file(path: str) -> str:
    """``path`` if it is a regular file (a FIFO or a device would block a reader or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    return path


def _check_size(path: str, expected: int, what: str) -> None:
    size = os.path.getsize(path)
    if size != expected:
        raise ValueError(f"{path}: {what} end at byte {expected}, but the file has {size} bytes")


def _memmap(file: str, start: int, shape: tuple[int, ...], dtype: str) -> Callable[[], np.ndarray]:
    def open_memmap():
        kind = raw_dtype(dtype)
        if 0 in shape:
            return np.empty(shape, kind)
        return np.memmap(file, dtype=kind, mode="r", offset=start, shape=shape)

    return open_memmap


def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)


def read_safetensors(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    """The metadata and tensors of a safetensors file, checked as the safetensors library checks it:
    a JSON header of tensor entries whose data fill the rest of the file exactly, back to back."""
    with open(regular_file(path), "rb") as file:
        raw = file.read(8)
        if len(raw) < 8:
            raise ValueError(f"{path} is not a safetensors file (shorter than 8 bytes)")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_SAFETENSORS_HEADER:
            raise ValueError(f"{path} is not a safetensors file (header length {length})")
        try:
            header = json.loads(file.read(length))
        except (ValueError, RecursionError):
            raise ValueError(f"{path} is not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"{path}: __metadata__ must be an object of strings, got {metadata!r:.80}")
    tensors, end = [], 0
    for name, entry in header.items():
        if (not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry)
                or not _is_shape(entry["shape"]) or not _is_shape(entry["data_offsets"])
                or len(entry["data_offsets"]) != 2):
            raise ValueError(f"{path}: tensor {name!r} is not a safetensors entry "
                             "({'dtype': ..., 'shape': [...], 'data_offsets': [begin, end]})")
        if entry["dtype"] not in _FROM_SAFETENSORS:
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, not one fastinit writes")
        dtype, shape = _FROM_SAFETENSORS[entry["dtype"]], tuple(entry["shape"])
        begin, stop = entry["data_offsets"]
        if stop - begin != math.prod(shape) * DTYPES[dtype].itemsize:
            raise ValueError(f"{path}: tensor {name!r} has data_offsets {[begin, stop]}, which do not hold its "
                             f"{entry['dtype']} {list(shape)}")
        tensors.append((begin, stop, StoredTensor(name, shape, dtype, _memmap(path, 8 + length + begin, shape, dtype))))
    tensors.sort(key=lambda item: (item[0], item[1]))
    for begin, stop, t in tensors:
        if begin != end:
            raise ValueError(f"{path}: the data of tensor {t.name!r} starts at byte {begin} of the data, "
                             f"not right after the previous tensor's ({end})")
        end = stop
    _check_size(path, 8 + length + end, "the header and the tensors")
    return metadata, [t for _, _, t in tensors]


def _read_npy_header(file_path: str) -> tuple[tuple[int, ...], str, int]:
    """``(shape, descr, data start)`` of an .npy file fastinit could have written (C order)."""
    with open(regular_file(file_path), "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(file)
        except (ValueError, SyntaxError, TypeError) as err:
            raise ValueError(f"{file_path} is not a readable .npy file ({err})") from None
        start = file.tell()
    descr = np.lib.format.dtype_to_descr(dtype)
    if fortran_order:
        raise ValueError(f"{file_path}: the .npy header says fortran_order: True; fastinit writes C order")
    if not isinstance(descr, str) or descr not in _FROM_NPY:
        raise ValueError(f"{file_path}: the .npy header says dtype {descr!r}; fastinit writes "
                         f"{', '.join(map(repr, _FROM_NPY))}")
    return tuple(shape), descr, start


def read_manifest(path: str, file_name: str) -> dict:
    """A fastinit JSON manifest (an object of strings holding the spec) in the directory ``path``."""
    manifest = os.path.join(path, file_name)
    try:
        regular_file(manifest)
    except FileNotFoundError:
        raise ValueError(f"{path} has no {file_name}: not a fastinit checkpoint") from None
    try:
        with open(manifest, "rb") as file:
            metadata = json.load(file)
    except (ValueError, RecursionError):
        raise ValueError(f"{manifest} is not JSON") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{manifest} is not a JSON object")
    return metadata


def recorded_tensors(metadata: dict, where: str) -> dict:
    """The ``tensors`` of the spec recorded in ``metadata`` (``{}`` when none is recorded)."""
    if "fastinit.spec" not in metadata:
        return {}
    try:
        tensors = json.loads(metadata["fastinit.spec"])["tensors"]
        if not isinstance(tensors, dict) or not all(isinstance(e, dict) for e in tensors.values()):
            raise TypeError
    except (ValueError, RecursionError, TypeError, KeyError):
        raise ValueError(f"{where}: the recorded fastinit.spec is not a spec") from None
    return tensors


def read_npy_dir(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    metadata = read_manifest(path, MANIFEST)
    spec = recorded_tensors(metadata, os.path.join(path, MANIFEST))
    if not spec:
        raise ValueError(f"{os.path.join(path, MANIFEST)} records no fastinit.spec: not a fastinit npy checkpoint")
    tensors = []
    for name in spec:
        file_path = os.path.join(path, npy_file_name(name))
        shape, descr, start = _read_npy_header(file_path)
        dtype = _FROM_NPY[descr]
        _check_size(file_path, start + math.prod(shape) * DTYPES[dtype].itemsize, f"its {descr} {list(shape)} data")
        tensors.append(StoredTensor(name, shape, dtype, _memmap(file_path, start, shape, dtype)))
    return metadata, tensors


def import_zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("the zarr format needs zarr-python 3: pip install 'fastinit-philox[zarr]'") from None
    return zarr


def _same(value: Any) -> Any:
    return value


class _ZarrArray:
    """A stored zarr array as a read-only array-like whose read errors (a truncated or corrupt chunk)
    are one ``ValueError`` naming the tensor and the region."""

    def __init__(self, path: str, name: str, array: Any):
        self.path, self.name, self.array = path, name, array
        self.shape, self.dtype = tuple(array.shape), array.dtype

    def __getitem__(self, region: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[region])
        except Exception as err:  # whatever the codec raises (zstd: RuntimeError)
            raise ValueError(f"{self.path}: tensor {self.name!r}: a chunk cannot be read "
                             f"({type(err).__name__}: {err})") from None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self[...]
        return values if dtype is None else values.astype(dtype)


def _zarr_dtype(array: Any, where: str) -> str:
    """The fastinit dtype of a zarr array: its own data type (bfloat16: uint16 with the attribute)."""
    stored = np.dtype(array.dtype).newbyteorder("=").name
    claimed = array.attrs.get("fastinit.dtype", stored)
    if claimed == "bfloat16" and stored == "uint16":
        return "bfloat16"
    if claimed != stored:
        raise ValueError(f"{where}: the array's data type is {stored}, its fastinit.dtype attribute says {claimed}")
    return stored


def read_zarr(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    regular_file(os.path.join(path, ZARR_GROUP))
    try:
        group = import_zarr().open_group(store=path, mode="r")
        metadata = dict(group.attrs)
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise ValueError(f"{path} is not a readable zarr group ({err})") from None
    names = list(recorded_tensors(metadata, path)) or sorted(group.array_keys())
    tensors = []
    for name in names:
        try:
            array = group[name]
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: tensor {name!r} cannot be opened ({err})") from None
        dtype = _zarr_dtype(array, f"{path}: tensor {name!r}")
        tensors.append(StoredTensor(name, tuple(array.shape), dtype, functools.partial(_same, _ZarrArray(path, name,
                                                                                                       array))))
    return metadata, tensors


def read_sharded(path: str) -> tuple[dict[str, str], list[StoredTensor]]:
    """A directory of safetensors shards: the index's metadata, and every tensor in weight-map order
    (a directory holding only ``model.safetensors``: that file)."""
    index_path = os.path.join(path, INDEX)
    if not os.path.exists(index_path):
        return read_safetensors(os.path.join(path, SHARD.format(suffix="")))
    try:
        with open(regular_file(index_path), "rb") as file:
            index = json.load(file)
        weight_map, metadata = index["weight_map"], index.get("metadata", {})
        if (not isinstance(weight_map, dict) or not isinstance(metadata, dict)
                or not all(isinstance(v, str) for v in weight_map.values())):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise ValueError(f"{index_path} is not a safetensors index (JSON with a weight_map)") from None
    stored: dict[str, StoredTensor] = {}
    for shard in dict.fromkeys(weight_map.values()):
        _, tensors = read_safetensors(os.path.join(path, os.path.basename(shard)))
        stored.update((t.name, t) for t in tensors)
    missing = [name for name in weight_map if name not in stored]
    if missing:
        raise ValueError(f"{path}: the index lists tensors no shard holds: {', '.join(missing[:5])}")
    return {k: str(v) for k, v in metadata.items()}, [stored[name] for name in weight_map]


def _records_fastinit(metadata: Any) -> bool:
    return isinstance(metadata, dict) and "fastinit.version" in metadata


def _json_object(path: str) -> Any:
    try:
        with open(regular_file(path), "rb") as file:
            return json.load(file)
    except (OSError, ValueError, RecursionError):
        return None


def is_checkpoint_dir(path: str) -> bool:
    """Whether the directory ``path`` is a checkpoint fastinit wrote (its manifest, index or group
    metadata records fastinit), which ``overwrite`` may replace."""
    if os.path.isfile(os.path.join(path, MANIFEST)):  # npy and dcp
        return _records_fastinit(_json_object(os.path.join(path, MANIFEST)))
    if os.path.isfile(os.path.join(path, ZARR_GROUP)):
        group = _json_object(os.path.join(path, ZARR_GROUP))
        return isinstance(group, dict) and _records_fastinit(group.get("attributes"))
    if os.path.isfile(os.path.join(path, INDEX)):
        index = _json_object(os.path.join(path, INDEX))
        return isinstance(index, dict) and _records_fastinit(index.get("metadata"))
    if os.path.isfile(os.path.join(path, SHARD.format(suffix=""))):
        try:
            metadata, _ = read_safetensors(os.path.join(path, SHARD.format(suffix="")))
        except (OSError, ValueError):
            return False
        return _records_fastinit(metadata)
    return False


def read_checkpoint(path: str) -> tuple[str, dict[str, str], list[StoredTensor]]:
    """``(format, metadata, tensors)`` of a checkpoint written by fastinit; a ``ValueError`` (one line)
    for anything else."""
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, ".metadata")):
            from ._dcp import read_dcp

            return "dcp", *read_dcp(path)
        if os.path.lexists(os.path.join(path, ZARR_GROUP)):
            return "zarr", *read_zarr(path)
        if os.path.exists(os.path.join(path, INDEX)) or os.path.exists(os.path.join(path, SHARD.format(suffix=""))):
            return "safetensors", *read_sharded(path)
        return "npy", *read_npy_dir(path)
    return "safetensors", *read_safetensors(path)
