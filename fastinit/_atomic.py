"""The one atomic-write helper: outputs are written beside their final path and renamed into place,
so a path only ever holds a complete file (or directory), and an existing one is replaced only
when the caller asked for it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

__all__ = ["atomic_output", "fsync_dir", "partial_path", "publish", "refuse_existing", "remove", "write_atomic"]


def partial_path(path: str, keep_extension: bool = False) -> str:
    """Where ``path`` is written before it is complete: ``path.partial``, or ``stem.partial.ext``
    when the writer infers the format from the extension (``keep_extension``)."""
    if keep_extension:
        root, ext = os.path.splitext(path)
        return f"{root}.partial{ext}"
    return path + ".partial"


def refuse_existing(path: str, overwrite: bool, hint: str = "pass overwrite=True to replace it") -> None:
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; {hint}")


def remove(path: str) -> None:
    """Remove a file, link or directory tree if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def fsync_dir(path: str) -> None:
    """Make a rename in directory ``path`` durable (a no-op on Windows, which cannot open directories)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(partial: str, path: str) -> None:
    """Rename the complete ``partial`` to ``path`` (replacing what is there) and make it durable.

    A file replaces a file atomically; a directory ``partial`` (an npy checkpoint) first removes what
    is at ``path``. A file never replaces a directory: that is an ``IsADirectoryError``."""
    if os.path.isdir(partial) and os.path.lexists(path):
        remove(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        raise IsADirectoryError(f"{path} is a directory; not replacing it with a file")
    os.replace(partial, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool, hint: str = "pass overwrite=True to replace it",
                  keep_extension: bool = False) -> Iterator[str]:
    """Yield the partial path to write ``path``'s content to; on success it is renamed to ``path``,
    on any error (or interrupt) it is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    refuse_existing(path, overwrite, hint)
    partial = partial_path(path, keep_extension)
    try:
        yield partial
        publish(partial, path)
    except BaseException:
        remove(partial)
        raise


def write_atomic(path: str, data: bytes) -> None:
    """Replace the small file ``path`` with ``data``, durably: a reader sees the old or the new bytes."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
