"""Initialized checkpoints written straight to disk (safetensors, a directory of .npy files, a zarr v3
group), in bounded memory, bit-identical to in-memory fills.

[`generate`][fastinit.checkpoint.generate] fills each tensor of a [`Spec`][fastinit.spec.Spec] box by box
(C-order slabs of at most ``chunk_bytes``) into two reusable buffers — one is filled while the other is
written — so memory stays bounded whatever the checkpoint's size. Nothing half-written is ever claimed:

* the data goes to ``PATH.partial`` (a file, or a directory for ``npy``), is fsynced, then renamed to
  ``PATH``; an existing ``PATH`` is refused unless ``overwrite=True``, and even then a directory is
  replaced only if it is a checkpoint fastinit wrote;
* one run at a time writes a ``PATH``: a second one stops at once (the first holds ``PATH.partial.lock``);
* a write error (disk full, file-size limit) removes the partial output and raises;
* an interrupt (Ctrl-C) syncs what was written, records how far it got in ``PATH.partial.progress``
  and raises [`Interrupted`][fastinit.checkpoint.Interrupted]; ``resume=True`` continues from there, and
  the result equals an uninterrupted run bit for bit (every value depends only on seed, name and position).

[`verify`][fastinit.checkpoint.verify] recomputes a checkpoint (or a sample of its boxes) and reports mismatches;
[`summarize`][fastinit.checkpoint.summarize] lists its tensors with basic statistics.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._atomic import check_output_path, partial_path, publish, refuse_existing, remove, write_atomic, writer_lock
from ._dtypes import numpy_dtype, raw_dtype
from ._formats import (
    Layout,
    check_limits,
    check_names,
    import_zarr,
    is_checkpoint_dir,
    npy_layout,
    read_checkpoint,
    safetensors_layout,
    sharded_layout,
)
from ._validate import check_choice, check_positive_int, check_seed
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


def _slabs(shape: tuple[int, ...], limit: int) -> tuple[int, int, int]:
    """``(k, step, count)``: the boxes of ``boxes(shape, limit)`` cut dim ``k - 1`` in runs of ``step``
    (whole dims ``k:`` in each box; ``k == 0``: one box, the whole tensor), ``count`` of them."""
    if math.prod(shape) == 0:
        return 0, 1, 0
    k = len(shape)  # the smallest k with prod(shape[k:]) <= limit
    while k > 0 and math.prod(shape[k - 1:]) <= limit:
        k -= 1
    if k == 0:
        return 0, 1, 1
    step = max(1, limit // math.prod(shape[k:]))
    return k, step, math.prod(shape[:k - 1]) * -(-shape[k - 1] // step)


def _box(shape: tuple[int, ...], k: int, step: int, j: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Box ``j`` of a tensor cut as ``_slabs`` says."""
    if k == 0:
        return (0,) * len(shape), tuple(shape)
    lead, run = divmod(j, -(-shape[k - 1] // step))
    index = []
    for n in reversed(shape[:k - 1]):
        lead, i = divmod(lead, n)
        index.append(i)
    start = run * step
    n = min(step, shape[k - 1] - start)
    return (*reversed(index), start, *(0,) * (len(shape) - k)), (*(1,) * (k - 1), n, *shape[k:])


def boxes(shape: tuple[int, ...], limit: int) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(offset, box shape)`` of consecutive C-order slabs of ``shape`` with at most ``limit``
    elements each (at least one element): each box is one contiguous run of the flat tensor.

    Examples:
        >>> list(boxes((5, 4), 8))
        [((0, 0), (2, 4)), ((2, 0), (2, 4)), ((4, 0), (1, 4))]
        >>> list(boxes((2, 3), 2))
        [((0, 0), (1, 2)), ((0, 2), (1, 1)), ((1, 0), (1, 2)), ((1, 2), (1, 1))]
    """
    k, step, count = _slabs(tuple(shape), limit)
    return (_box(tuple(shape), k, step, j) for j in range(count))


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
        self.fds: list[int] = []
        try:
            for rel, head in self.layout.files:
                fd = os.open(root if single else os.path.join(root, rel),
                             os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
                self.fds.append(fd)
                if head and fresh:
                    self._pwrite(fd, head, 0)
        except BaseException:  # too many open files, ...: none stays open
            self.close()
            raise

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


_ZARR_TEMPORARY = re.compile(r"\.[0-9a-f]{32}\.partial$")


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
        """Remove the temporary chunk files a killed run left (zarr-python writes each chunk to
        ``<chunk>.<uuid hex>.partial`` and renames it): a resumed group holds only its own files."""
        for folder, _, names in os.walk(self.root):
            for name in names:
                if _ZARR_TEMPORARY.search(name):
                    os.remove(os.path.join(folder, name))

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


def _start(path, identity, chunk_bytes, overwrite, resume, directory) -> tuple[int, int]:
    """Check what is on disk (under the writer lock); return ``(chunk_bytes, boxes already done)``.

    A partial output that records its progress is continued with ``resume`` (and refused without
    it); one that records none (killed before its first record, or a failed start) holds nothing
    durable and is started over."""
    partial, progress = partial_path(path), _progress_path(path)
    refuse_existing(path, overwrite, "pass --overwrite (overwrite=True) to replace it",
                    is_checkpoint_dir if directory else None)
    if os.path.exists(progress) and os.path.lexists(partial):
        if resume:
            try:
                with open(progress, "rb") as file:
                    record = json.load(file)
                int(record["chunk_bytes"]), int(record["boxes_done"])
            except (ValueError, TypeError, KeyError):
                raise ValueError(f"{progress} is not a progress record; pass --overwrite to start over") from None
            if {k: record.get(k) for k in identity} != identity:
                raise ValueError(f"{partial} was started with different settings "
                                 f"({', '.join(f'{k}={record.get(k)!r}' for k in identity)}); "
                                 "pass --overwrite to start over")
            return record["chunk_bytes"], record["boxes_done"]
        if not overwrite:
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
    path = check_output_path(path)
    seed = check_seed(seed)
    check_choice("format", format, FORMATS)
    if max_shard_size is not None:
        if format != "safetensors":
            raise ValueError(f"max_shard_size shards safetensors checkpoints, not {format}")
        max_shard_size = parse_size(max_shard_size)
    elif shard_storage is not None:
        raise ValueError("shard_storage goes with max_shard_size")
    directory = format != "safetensors" or max_shard_size is not None
    extra = _check_extra_files(extra_files, format in ("npy", "dcp") or max_shard_size is not None)
    for t in spec.tensors:  # before anything is written
        numpy_dtype(t.dtype)  # bfloat16 needs ml_dtypes
    check_names(spec, format, os.path.dirname(os.path.abspath(path)))
    if format == "zarr":
        import_zarr()
    metadata = _metadata(spec, seed, format)
    layout = None
    if format in ("safetensors", "npy"):
        layout = (npy_layout(spec, metadata) if format == "npy" else safetensors_layout(spec, metadata)
                  if max_shard_size is None else sharded_layout(spec, metadata, max_shard_size, shard_storage))
        layout = replace(layout, closing=(*layout.closing, *extra))
    check_limits(spec, format, layout)
    if directory:  # as a directory writer does: the folders above it
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if format == "dcp":
        with writer_lock(path):
            return _generate_dcp(spec, path, seed, overwrite, resume, chunk_bytes, extra, progress)
    identity = _identity(spec, seed, format if max_shard_size is None else
                         f"{format} shards of {max_shard_size}{_storage_digest(spec, shard_storage)}")
    with writer_lock(path):
        chunk_bytes, done = _start(path, identity, chunk_bytes, overwrite, resume, directory)
        return _write(spec, path, seed, format, metadata, layout, identity, chunk_bytes, done, progress)


def _write(spec: Spec, path: str, seed: int, fmt: str, metadata: dict, layout: Layout | None, identity: dict,
           chunk_bytes: int, done: int, progress: Callable[[int, str], None] | None) -> Result:
    """Fill and write every box after the first ``done`` into ``PATH.partial``, then publish it (the
    caller holds the writer lock)."""
    partial = partial_path(path)
    t0 = time.perf_counter()
    files: _FileSink | _ZarrSink | None = None
    pending = syncing = None
    count = 0
    try:
        files = (_ZarrSink(partial, spec, metadata, chunk_bytes, fresh=done == 0) if layout is None
                 else _FileSink(partial, layout, fresh=done == 0))
        buffers = [np.empty(chunk_bytes // 8 + 1, np.uint64) for _ in range(2)]
        unsynced = 0
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
        with _interrupts_ignored():  # a second Ctrl-C must not cut the record short
            durable = _durable(count, pending)
            _settle(syncing)
            if files is None:  # interrupted while opening the partial output: a record made before stands
                if not done:
                    remove(partial)
                    raise Interrupted("interrupted before anything was written") from None
                raise Interrupted(f"interrupted; {partial} kept: run again with --resume to continue") from None
            files.sync()
            files.close()
            _record(path, identity, chunk_bytes, durable)
        raise Interrupted(f"interrupted; {partial} kept: run again with --resume to continue") from None
    except BaseException:
        _settle(pending)
        _settle(syncing)
        if files is not None:
            files.close()
        remove(partial)
        remove(_progress_path(path))
        raise
    files.close()
    publish(partial, path)  # overwrite=True was checked in _start
    remove(_progress_path(path))
    return Result(path, fmt, len(spec.tensors), spec.parameters, spec.nbytes, time.perf_counter() - t0)


def _generate_dcp(spec: Spec, path: str, seed: int, overwrite: bool, resume: bool, chunk_bytes: int,
                  extra: tuple[tuple[str, bytes], ...], progress: Callable[[int, str], None] | None) -> Result:
    """A torch.distributed.checkpoint directory (see ``fastinit._dcp``): written whole into
    ``PATH.partial`` and renamed; an interrupted run leaves nothing (no resume), and a partial left
    by a killed one is started over."""
    from ._dcp import import_torch_dcp, write_dcp

    import_torch_dcp()
    if resume:
        raise ValueError("a dcp checkpoint is not resumable: run again without resume (--resume)")
    refuse_existing(path, overwrite, "pass --overwrite (overwrite=True) to replace it", is_checkpoint_dir)
    partial = partial_path(path)
    remove(partial)  # a killed run's: it records no progress (the caller holds the writer lock)
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
    """Boxes certainly on disk after an interrupt (once the writer is done with the last one handed
    to it, which may have failed)."""
    return count if pending is None or _settle(pending) else count - 1


def _settle(future) -> bool:
    """Wait for a background write or sync; whether it succeeded."""
    if future is None:
        return True
    try:
        future.result()
        return True
    except BaseException:
        return False


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored in the block (when it runs in the main thread, the only one Python delivers
    SIGINT to)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:  # None: a handler installed outside Python, which cannot be put back from Python
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


# ------------------------------------------------------------------------------- verify, inspect
@dataclass(frozen=True)
class Mismatch:
    tensor: str
    problem: str


def _stored_spec(metadata: dict, path: str) -> Spec:
    if "fastinit.spec" not in metadata:
        raise ValueError(f"{path} records no fastinit spec; pass the SPEC it was generated from")
    try:
        return load_spec(json.loads(metadata["fastinit.spec"]))
    except (ValueError, TypeError, RecursionError) as err:
        raise ValueError(f"{path}: the recorded fastinit.spec is not a valid spec ({err})") from None


def _bits(values: np.ndarray) -> np.ndarray:
    """The bit patterns of ``values`` in the machine's byte order (so -0.0 differs from 0.0)."""
    native = values.astype(values.dtype.newbyteorder("="), copy=False)
    return np.ascontiguousarray(native).view(f"u{native.dtype.itemsize}")


def _sampled(count: int, sample: int | None, rng: np.random.Generator) -> list[int]:
    """The boxes ``verify`` checks of ``count``: all, or ``sample`` of them (the first, the last and
    others chosen at random)."""
    if sample is None or count <= sample:
        return list(range(count))
    ends = [0, count - 1][:sample]
    inner = rng.choice(count - 2, size=sample - len(ends), replace=False) + 1
    return sorted({*ends, *inner.tolist()})


def verify(path: str | os.PathLike, spec: Spec | str | os.PathLike | dict | None = None, *, seed: int | None = None,
           sample: int | None = None, chunk_bytes: int = CHUNK_BYTES,
           progress: Callable[[int, str], None] | None = None) -> list[Mismatch]:
    """Recompute the checkpoint at ``path`` and compare it bit for bit (``-0.0`` is not ``0.0``).

    ``spec`` defaults to the one recorded in the checkpoint and ``seed`` to the recorded seed.
    With ``sample=k`` (``k >= 1``), only ``k`` boxes per tensor are recomputed: the first, then the
    last, then others chosen at random. ``progress(nbytes, tensor_name)`` is called after each box
    is compared. Returns the mismatches (empty: the checkpoint is exact where it was checked).
    """
    path = os.fspath(path)
    if seed is not None:
        seed = check_seed(seed)
    if sample is not None:
        sample = check_positive_int("sample", sample)
    _, metadata, stored = read_checkpoint(path)
    spec = _stored_spec(metadata, path) if spec is None else (spec if isinstance(spec, Spec) else load_spec(spec))
    if seed is None:
        if "fastinit.seed" not in metadata:
            raise ValueError(f"{path} records no seed; pass --seed")
        try:
            seed = check_seed(int(metadata["fastinit.seed"]))
        except (ValueError, TypeError):
            raise ValueError(f"{path}: the recorded seed {metadata['fastinit.seed']!r} is not a seed; "
                             "pass --seed") from None
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
        k, step, count = _slabs(t.shape, max(1, chunk_bytes // t.itemsize))
        checked = _sampled(count, sample, rng)
        whole = t.fill(np.empty(t.shape, dtype), seed) if t.scheme.whole_tensor and checked else None
        wrong = 0
        first: tuple[int, ...] = ()
        for j in checked:
            offset, shape = _box(t.shape, k, step, j)
            region = tuple(slice(o, o + n) for o, n in zip(offset, shape))
            expected = whole[region] if whole is not None else t.fill(np.empty(shape, dtype), seed, offset)
            got = np.asarray(data[region])
            if got.dtype.itemsize != dtype.itemsize or got.shape != expected.shape:
                raise ValueError(f"{path}: tensor {t.name!r} reads back as {got.dtype} {list(got.shape)}")
            bad = _bits(expected) != _bits(got)
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
