"""Initialized checkpoints written straight to disk (safetensors, a directory of .npy files, a zarr v3
group), in bounded memory, bit-identical to in-memory fills.

[`generate`][fastinit.checkpoint.generate] fills each tensor of a [`Spec`][fastinit.spec.Spec] box by box
(C-order slabs of at most ``chunk_bytes``) into two reusable buffers — one is filled while the other is
written — so memory stays bounded whatever the checkpoint's size. Nothing half-written is ever claimed:

* the data goes to ``PATH.partial`` (a file, or a directory for ``npy``), is fsynced, then renamed to
  ``PATH``; an existing ``PATH`` is refused unless ``overwrite=True``;
* a write error (disk full, file-size limit) removes the partial output and raises;
* an interrupt (Ctrl-C) syncs what was written, records how far it got in ``PATH.partial.progress``
  and raises [`Interrupted`][fastinit.checkpoint.Interrupted]; ``resume=True`` continues from there, and
  the result equals an uninterrupted run bit for bit (every value depends only on seed, name and position).

[`verify`][fastinit.checkpoint.verify] recomputes a checkpoint (or a sample of its boxes) and reports mismatches;
[`summarize`][fastinit.checkpoint.summarize] lists its tensors with basic statistics.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._atomic import partial_path, publish, refuse_existing, remove, write_atomic
from ._dtypes import numpy_dtype, raw_dtype
from ._formats import (
    Layout,
    import_zarr,
    npy_file_name,
    npy_layout,
    read_checkpoint,
    safetensors_layout,
    sharded_layout,
)
from ._validate import check_choice, check_seed
from ._version import __version__
from .spec import Spec, TensorSpec, load_spec

__all__ = ["FORMATS", "generate", "parse_size", "verify", "summarize", "statistics", "boxes", "Interrupted", "Mismatch",
           "Result"]

FORMATS = ("safetensors", "npy", "zarr", "dcp")
"""The checkpoint formats [`generate`][fastinit.checkpoint.generate] writes."""
CHUNK_BYTES = 32 << 20
_SYNC_EVERY = 1 << 30  # bytes between background fsync + progress records (resume after a crash)


class Interrupted(Exception):
    """Generation stopped by KeyboardInterrupt; the partial output is kept for ``resume=True``."""


@dataclass(frozen=True)
class Result:
    path: str
    format: str
    tensors: int
    parameters: int
    nbytes: int
    seconds: float

    @property
    def gb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e9 if self.seconds > 0 else math.inf


def boxes(shape: tuple[int, ...], limit: int) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(offset, box shape)`` of consecutive C-order slabs of ``shape`` with at most ``limit``
    elements each (at least one element): each box is one contiguous run of the flat tensor.

    Examples:
        >>> list(boxes((5, 4), 8))
        [((0, 0), (2, 4)), ((2, 0), (2, 4)), ((4, 0), (1, 4))]
        >>> list(boxes((2, 3), 2))
        [((0, 0), (1, 2)), ((0, 2), (1, 1)), ((1, 0), (1, 2)), ((1, 2), (1, 1))]
    """
    if math.prod(shape) == 0:
        return
    k = len(shape)  # the smallest k with prod(shape[k:]) <= limit
    while k > 0 and math.prod(shape[k - 1:]) <= limit:
        k -= 1
    if k == 0:
        yield (0,) * len(shape), tuple(shape)
        return
    inner = math.prod(shape[k:])
    step = max(1, limit // inner)
    for lead in np.ndindex(*shape[:k - 1]):
        for j in range(0, shape[k - 1], step):
            n = min(step, shape[k - 1] - j)
            yield (*lead, j, *(0,) * (len(shape) - k)), (*(1,) * (k - 1), n, *shape[k:])


def _metadata(spec: Spec, seed: int, fmt: str) -> dict[str, str]:
    return {"format": "pt" if fmt == "safetensors" else fmt, "fastinit.version": __version__,
            "fastinit.seed": str(seed), "fastinit.spec_sha256": spec.digest(),
            "fastinit.spec": json.dumps(spec.to_dict(), separators=(",", ":"))}


def _tensor_boxes(t: TensorSpec, chunk_bytes: int):
    return boxes(t.shape, max(1, chunk_bytes // t.itemsize))


class _FileSink:
    """safetensors (one file or shards) / npy: the open files of a partial checkpoint, written with
    ``pwrite``."""

    def __init__(self, root: str, layout: Layout, fresh: bool):
        self.layout, self.root = layout, root
        single = self.layout.files[0][0] == ""
        if not single:
            os.makedirs(root, exist_ok=True)
        self.fds = []
        for rel, head in self.layout.files:
            fd = os.open(root if single else os.path.join(root, rel),
                         os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
            self.fds.append(fd)
            if head and fresh:
                self._pwrite(fd, head, 0)

    @staticmethod
    def _pwrite(fd: int, data, position: int) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(fd, view, position)
            position += done
            view = view[done:]

    def write(self, i: int, t: TensorSpec, offset: tuple[int, ...], box: np.ndarray) -> None:
        k, start = self.layout.places[i]
        flat = sum(o * math.prod(t.shape[d + 1:]) for d, o in enumerate(offset))
        self._pwrite(self.fds[k], box.reshape(-1).view(np.uint8), start + flat * box.itemsize)

    def finish(self) -> None:
        for fd, size in zip(self.fds, self.layout.sizes):
            os.ftruncate(fd, size)  # the exact length, zero-size tensors included
        for rel, data in self.layout.closing:
            write_atomic(os.path.join(self.root, rel), data)

    def sync(self) -> None:
        for fd in self.fds:
            os.fsync(fd)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class _ZarrSink:
    """zarr v3: a group with one array per tensor, chunked like the generation boxes, so every box is
    one chunk written on its own. bfloat16 (which zarr-python has no type for) is stored as uint16
    with the array attribute ``fastinit.dtype = "bfloat16"``."""

    def __init__(self, root: str, spec: Spec, metadata: dict, chunk_bytes: int, fresh: bool):
        zarr = import_zarr()
        self.root = root
        if fresh:
            group = zarr.open_group(store=root, mode="w", zarr_format=3, attributes=metadata)
            self.arrays = []
            for t in spec.tensors:
                first = next(iter(_tensor_boxes(t, chunk_bytes)), (None, tuple(max(1, d) for d in t.shape)))[1]
                kind = raw_dtype(t.dtype).name
                self.arrays.append(group.create_array(
                    t.name, shape=t.shape, dtype=kind, chunks=first, fill_value=0,
                    attributes={"fastinit.dtype": t.dtype}))
        else:
            group = zarr.open_group(store=root, mode="r+")
            self.arrays = [group[t.name] for t in spec.tensors]

    def write(self, i: int, t: TensorSpec, offset: tuple[int, ...], box: np.ndarray) -> None:
        region = tuple(slice(o, o + n) for o, n in zip(offset, box.shape))
        self.arrays[i][region] = box.view(raw_dtype(t.dtype))

    def finish(self) -> None:
        pass

    def sync(self) -> None:
        for folder, _, names in os.walk(self.root):
            for name in names:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def close(self) -> None:
        pass


def _progress_path(path: str) -> str:
    return partial_path(path) + ".progress"


def _identity(spec: Spec, seed: int, fmt: str) -> dict:
    """What a partial output must have been started with for ``resume`` to continue it."""
    return {"format": fmt, "seed": seed, "spec_sha256": spec.digest(), "version": __version__}


def _start(path, identity, chunk_bytes, overwrite, resume) -> tuple[int, int]:
    """Check what is on disk; return ``(chunk_bytes, boxes already done)``."""
    partial, progress = partial_path(path), _progress_path(path)
    refuse_existing(path, overwrite, "pass --overwrite (overwrite=True) to replace it")
    if resume and os.path.exists(progress) and os.path.lexists(partial):
        with open(progress) as file:
            record = json.load(file)
        if {k: record.get(k) for k in identity} != identity:
            raise ValueError(f"{partial} was started with different settings "
                             f"({', '.join(f'{k}={record.get(k)!r}' for k in identity)}); "
                             "pass --overwrite to start over")
        return record["chunk_bytes"], record["boxes_done"]
    if os.path.lexists(partial) and not overwrite:
        raise FileExistsError(f"{partial} exists from an interrupted run: pass --resume to continue it "
                              "or --overwrite to start over")
    remove(partial)
    remove(progress)
    return chunk_bytes, 0


def _record(path, identity, chunk_bytes, boxes_done) -> None:
    record = {**identity, "chunk_bytes": chunk_bytes, "boxes_done": boxes_done}
    write_atomic(_progress_path(path), json.dumps(record).encode())


def parse_size(size: int | str) -> int:
    """A size in bytes: an int, or a string with a unit as Hugging Face writes them ("5GB" = 5 * 10**9,
    "500MB", "2GiB" = 2 * 2**30, "100KB")."""
    if isinstance(size, int) and not isinstance(size, bool):
        if size <= 0:
            raise ValueError(f"max_shard_size must be positive, got {size}")
        return size
    if not isinstance(size, str):
        raise TypeError(f"max_shard_size must be an int or a size such as '5GB', got {size!r}")
    text = size.strip().upper()
    for unit, scale in (("TIB", 2**40), ("GIB", 2**30), ("MIB", 2**20), ("KIB", 2**10), ("TB", 10**12),
                        ("GB", 10**9), ("MB", 10**6), ("KB", 10**3), ("B", 1)):
        if text.endswith(unit):
            try:
                value = float(text[:-len(unit)])
            except ValueError:
                break
            if value > 0 and math.isfinite(value):
                return int(value * scale)
            break
    raise ValueError(f"max_shard_size must be a size such as '5GB', '500MB' or '2GiB', got {size!r}")


def _storage_digest(spec: Spec, shard_storage: Mapping[str, tuple[str, int]] | None) -> str:
    """``shard_storage`` checked (names of ``spec``'s tensors, each ``(key, bytes)``), as a suffix of
    the checkpoint's identity."""
    if not shard_storage:
        return ""
    names = {t.name for t in spec.tensors}
    for name, value in shard_storage.items():
        if name not in names:
            raise ValueError(f"shard_storage names {name!r}, which is no tensor of the spec")
        if (not isinstance(value, tuple) or len(value) != 2 or not isinstance(value[0], str)
                or not isinstance(value[1], int) or isinstance(value[1], bool) or value[1] < 0):
            raise TypeError(f"shard_storage[{name!r}] must be (storage key, bytes), got {value!r}")
    text = json.dumps(sorted(shard_storage.items()))
    return f", storage {hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _check_extra_files(extra_files: Mapping[str, bytes] | None, directory: bool) -> tuple[tuple[str, bytes], ...]:
    if not extra_files:
        return ()
    if not directory:
        raise ValueError("extra_files go into a directory checkpoint (npy, or safetensors with max_shard_size)")
    for name, data in extra_files.items():
        if not isinstance(name, str) or not name or os.sep in name or "/" in name or name in (".", ".."):
            raise ValueError(f"extra_files names are plain file names, got {name!r}")
        if not isinstance(data, bytes):
            raise TypeError(f"extra_files[{name!r}] must be bytes, got {type(data).__name__}")
    return tuple(extra_files.items())


def generate(spec: Spec | str | os.PathLike | dict, path: str | os.PathLike, *, seed: int = 0,
             format: str = "safetensors", overwrite: bool = False, resume: bool = False, chunk_bytes: int = CHUNK_BYTES,
             max_shard_size: int | str | None = None, shard_storage: Mapping[str, tuple[str, int]] | None = None,
             extra_files: Mapping[str, bytes] | None = None, progress: Callable[[int, str], None] | None = None
             ) -> Result:
    """Write the checkpoint of ``spec`` (a Spec, a dict or a spec file) to ``path``.

    With ``max_shard_size`` (safetensors only), ``path`` is a directory of shards split and named as
    Hugging Face's ``save_pretrained`` does (``model-00001-of-0000N.safetensors`` and
    ``model.safetensors.index.json``, or ``model.safetensors`` when everything fits in one); each
    tensor's bytes are the same whatever the size. ``shard_storage`` (``{tensor name: (storage key,
    its bytes)}``) names tensors that share one storage in the model being saved: as transformers
    does, they go into the shard of the first, which counts the storage's bytes. ``extra_files`` (a
    directory checkpoint only:
    npy, or sharded safetensors) are written beside the tensors, ``{file name: bytes}``, and published
    with them. ``progress(nbytes, tensor_name)`` is called after
    each box is handed to the disk. Memory: two buffers of ``chunk_bytes`` (``orthogonal`` /
    ``delta_orthogonal`` tensors are the exception: their QR needs the whole tensor in memory).
    Returns a [`Result`][fastinit.checkpoint.Result].
    """
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    path = os.fspath(path)
    seed = check_seed(seed)
    check_choice("format", format, FORMATS)
    if max_shard_size is not None:
        if format != "safetensors":
            raise ValueError(f"max_shard_size shards safetensors checkpoints, not {format}")
        max_shard_size = parse_size(max_shard_size)
    elif shard_storage is not None:
        raise ValueError("shard_storage goes with max_shard_size")
    extra = _check_extra_files(extra_files, format in ("npy", "dcp") or max_shard_size is not None)
    for t in spec.tensors:  # before anything is written
        numpy_dtype(t.dtype)  # bfloat16 needs ml_dtypes
        if format in ("npy", "zarr"):
            npy_file_name(t.name)
    if format == "zarr":
        import_zarr()
    if format == "dcp":
        return _generate_dcp(spec, path, seed, overwrite, resume, chunk_bytes, extra, progress)
    identity = _identity(spec, seed, format if max_shard_size is None else
                         f"{format} shards of {max_shard_size}{_storage_digest(spec, shard_storage)}")
    chunk_bytes, done = _start(path, identity, chunk_bytes, overwrite, resume)
    partial = partial_path(path)
    t0 = time.perf_counter()
    metadata = _metadata(spec, seed, format)
    if format == "zarr":
        files: _FileSink | _ZarrSink = _ZarrSink(partial, spec, metadata, chunk_bytes, fresh=done == 0)
    else:
        layout = (npy_layout(spec, metadata) if format == "npy" else safetensors_layout(spec, metadata)
                  if max_shard_size is None else sharded_layout(spec, metadata, max_shard_size, shard_storage))
        files = _FileSink(partial, replace(layout, closing=(*layout.closing, *extra)), fresh=done == 0)
    count = 0
    try:
        buffers = [np.empty(chunk_bytes // 8 + 1, np.uint64) for _ in range(2)]
        pending, syncing, unsynced = None, None, 0
        with ThreadPoolExecutor(1, thread_name_prefix="fastinit-writer") as writer, \
                ThreadPoolExecutor(1, thread_name_prefix="fastinit-sync") as syncer:
            for i, t in enumerate(spec.tensors):
                dtype = numpy_dtype(t.dtype)
                whole = None
                for offset, shape in _tensor_boxes(t, chunk_bytes):
                    if count < done:
                        count += 1
                        continue
                    n = math.prod(shape)
                    box = buffers[count % 2].view(np.uint8)[:n * dtype.itemsize].view(dtype).reshape(shape)
                    if t.scheme.whole_tensor:  # computed once, written slab by slab
                        whole = t.fill(np.empty(t.shape, dtype), seed) if whole is None else whole
                        box[...] = whole[tuple(slice(o, o + m) for o, m in zip(offset, shape))]
                    else:
                        t.fill(box, seed, offset)
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(files.write, i, t, offset, box)
                    count += 1
                    unsynced += box.nbytes
                    if progress:
                        progress(box.nbytes, t.name)
                    if unsynced >= _SYNC_EVERY and (syncing is None or syncing.done()):
                        # fsync and record the progress in the background: the disk keeps writing
                        pending.result()
                        if syncing is not None:
                            syncing.result()
                        syncing = syncer.submit(_sync_and_record, files, path, identity, chunk_bytes, count)
                        unsynced = 0
            for future in (pending, syncing):
                if future is not None:
                    future.result()
        files.finish()
        files.sync()
    except KeyboardInterrupt:
        files.sync()
        files.close()
        _record(path, identity, chunk_bytes, _durable(count, pending))
        raise Interrupted(f"interrupted; {partial} kept: run again with --resume to continue") from None
    except BaseException:
        files.close()
        remove(partial)
        remove(_progress_path(path))
        raise
    files.close()
    publish(partial, path)  # overwrite=True was checked in _start
    remove(_progress_path(path))
    return Result(path, format, len(spec.tensors), spec.parameters, spec.nbytes, time.perf_counter() - t0)


def _generate_dcp(spec: Spec, path: str, seed: int, overwrite: bool, resume: bool, chunk_bytes: int,
                  extra: tuple[tuple[str, bytes], ...], progress: Callable[[int, str], None] | None) -> Result:
    """A torch.distributed.checkpoint directory (see ``fastinit._dcp``): written whole into
    ``PATH.partial`` and renamed; an interrupted run leaves nothing (no resume)."""
    from ._dcp import import_torch_dcp, write_dcp

    import_torch_dcp()
    if resume:
        raise ValueError("a dcp checkpoint is not resumable: run again without resume (--resume)")
    refuse_existing(path, overwrite, "pass --overwrite (overwrite=True) to replace it")
    partial = partial_path(path)
    if os.path.lexists(partial) and not overwrite:
        raise FileExistsError(f"{partial} exists; pass --overwrite (overwrite=True) to replace it")
    remove(partial)
    t0 = time.perf_counter()
    try:
        write_dcp(spec, partial, seed, _metadata(spec, seed, "dcp"), lambda t: _tensor_boxes(t, chunk_bytes),
                  progress, extra)
    except BaseException:
        remove(partial)
        raise
    publish(partial, path)
    return Result(path, "dcp", len(spec.tensors), spec.parameters, spec.nbytes, time.perf_counter() - t0)


def _sync_and_record(files, path, identity, chunk_bytes, boxes_done) -> None:
    files.sync()
    _record(path, identity, chunk_bytes, boxes_done)


def _durable(count: int, pending) -> int:
    """Boxes certainly on disk after an interrupt: the last one handed to the writer may not be."""
    if pending is None:
        return count
    try:
        pending.result()
        return count
    except BaseException:
        return count - 1


# ------------------------------------------------------------------------------- verify, inspect
@dataclass(frozen=True)
class Mismatch:
    tensor: str
    problem: str


def _stored_spec(metadata: dict, path: str) -> Spec:
    if "fastinit.spec" not in metadata:
        raise ValueError(f"{path} records no fastinit spec; pass the SPEC it was generated from")
    return load_spec(json.loads(metadata["fastinit.spec"]))


def verify(path: str | os.PathLike, spec: Spec | str | os.PathLike | dict | None = None, *, seed: int | None = None,
           sample: int | None = None, chunk_bytes: int = CHUNK_BYTES,
           progress: Callable[[int, str], None] | None = None) -> list[Mismatch]:
    """Recompute the checkpoint at ``path`` and compare it bit for bit.

    ``spec`` defaults to the one recorded in the checkpoint and ``seed`` to the recorded seed.
    With ``sample=k``, only ``k`` boxes per tensor (chosen at random, always including the first
    and the last) are recomputed. Returns the mismatches (empty: the checkpoint is exact).
    """
    path = os.fspath(path)
    _, metadata, stored = read_checkpoint(path)
    spec = _stored_spec(metadata, path) if spec is None else (spec if isinstance(spec, Spec) else load_spec(spec))
    if seed is None:
        if "fastinit.seed" not in metadata:
            raise ValueError(f"{path} records no seed; pass --seed")
        seed = int(metadata["fastinit.seed"])
    by_name = {t.name: t for t in stored}
    problems = [Mismatch(n, "in the checkpoint but not in the spec") for n in by_name
                if n not in {t.name for t in spec.tensors}]
    rng = np.random.default_rng(0)
    for t in spec.tensors:
        s = by_name.get(t.name)
        if s is None:
            problems.append(Mismatch(t.name, "missing from the checkpoint"))
            continue
        if (s.shape, s.dtype) != (t.shape, t.dtype):
            problems.append(Mismatch(t.name, f"stored as {s.dtype} {list(s.shape)}, "
                                             f"spec says {t.dtype} {list(t.shape)}"))
            continue
        data = s.open()
        dtype = numpy_dtype(t.dtype)
        all_boxes = list(_tensor_boxes(t, chunk_bytes))
        if sample is not None and len(all_boxes) > sample:
            inner = rng.choice(np.arange(1, len(all_boxes) - 1), size=max(0, sample - 2), replace=False)
            all_boxes = [all_boxes[i] for i in sorted({0, len(all_boxes) - 1, *inner.tolist()})]
        whole = t.fill(np.empty(t.shape, dtype), seed) if t.scheme.whole_tensor and all_boxes else None
        wrong = 0
        first: tuple[int, ...] = ()
        for offset, shape in all_boxes:
            region = tuple(slice(o, o + n) for o, n in zip(offset, shape))
            expected = whole[region] if whole is not None else t.fill(np.empty(shape, dtype), seed, offset)
            got = np.asarray(data[region])
            bad = expected.view(got.dtype) != got
            if bad.any():
                wrong += int(bad.sum())
                first = first or tuple(int(o + i) for o, i in zip(offset, np.argwhere(bad)[0]))
            if progress:
                progress(got.nbytes, t.name)
        if wrong:
            problems.append(Mismatch(t.name, f"{wrong} values differ, the first at index {list(first)}"))
    return problems


def statistics(data: Any, dtype: np.dtype, *, chunk_bytes: int = CHUNK_BYTES) -> dict:
    """Mean, std, min and max of an array-like (a stored bfloat16 may be its uint16 bits, viewed as
    ``dtype``), in float64, a slab at a time; NaN for an empty array."""
    shape = tuple(data.shape)
    total = total_sq = 0.0
    lo, hi = math.inf, -math.inf
    for offset, box in boxes(shape, max(1, chunk_bytes // dtype.itemsize)):
        block = np.asarray(data[tuple(slice(o, o + n) for o, n in zip(offset, box))])
        block = block.view(dtype).astype(np.float64)
        total += float(block.sum())
        total_sq += float(np.square(block).sum())
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    n = math.prod(shape)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    mean = total / n
    return {"mean": mean, "std": math.sqrt(max(total_sq / n - mean * mean, 0.0)), "min": lo, "max": hi}


def summarize(path: str | os.PathLike, *, chunk_bytes: int = CHUNK_BYTES) -> tuple[str, dict, list[dict]]:
    """``(format, metadata, rows)`` with one row per tensor: name, shape, dtype and its
    [`statistics`][fastinit.checkpoint.statistics]."""
    fmt, metadata, stored = read_checkpoint(os.fspath(path))
    rows = [{"name": s.name, "shape": s.shape, "dtype": s.dtype,
             **statistics(s.open(), numpy_dtype(s.dtype), chunk_bytes=chunk_bytes)} for s in stored]
    return fmt, metadata, rows
