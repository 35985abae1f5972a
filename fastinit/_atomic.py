"""The one atomic-write helper: outputs are written beside their final path and renamed into place,
so a path only ever holds a complete file (or directory), and an existing one is replaced only
when the caller asked for it.

One writer at a time per path: [`writer_lock`][fastinit._atomic.writer_lock] holds an exclusive
``flock`` on ``PATH.partial.lock`` while a run writes ``PATH.partial`` and renames it, so a second
run on the same path stops at once instead of renaming (or deleting) a partial it does not own.
The operating system releases the lock when its process dies, so a killed run leaves no stale lock.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
from collections.abc import Callable, Iterator

__all__ = ["atomic_output", "check_output_path", "fsync_dir", "lock_path", "partial_path", "publish",
           "refuse_existing", "remove", "writer_lock", "write_atomic"]

#: bytes a writer may append to a path's last component (``.partial.progress`` and a temporary suffix)
SUFFIX_ROOM = 40
_TEMPORARY = itertools.count()  # unique temporary names within a process (with the pid: across processes)


def partial_path(path: str, keep_extension: bool = False) -> str:
    """Where ``path`` is written before it is complete: ``path.partial``, or ``stem.partial.ext``
    when the writer infers the format from the extension (``keep_extension``)."""
    if keep_extension:
        root, ext = os.path.splitext(path)
        return f"{root}.partial{ext}"
    return path + ".partial"


def lock_path(path: str) -> str:
    """The lock file of the writers of ``path``."""
    return path + ".partial.lock"


def name_limit(directory: str) -> int:
    """The longest file name (in bytes) the file system of ``directory`` takes (255 when unknown)."""
    try:
        return os.pathconf(directory or ".", "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        return 255


def check_output_path(path: str | os.PathLike) -> str:
    """``path`` as a str an output can be written to: not empty, no NUL byte, a last component that
    names a file (not ``.``, ``..`` or a trailing separator) and leaves room for the writer's
    ``.partial`` files; else a ``ValueError`` naming it."""
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"the output path must be a str or os.PathLike of str, got {path!r}")
    if not path or "\0" in path:
        raise ValueError(f"the output path must be a non-empty path without NUL bytes, got {path!r}")
    head, last = os.path.split(path)
    if last in ("", ".", ".."):
        raise ValueError(f"the output path {path!r} must end in a file or directory name, not {last or '/'!r}")
    try:
        size = len(os.fsencode(last))
    except UnicodeError:
        raise ValueError(f"the output path {path!r} cannot be encoded for the file system") from None
    limit = name_limit(head)
    if size + SUFFIX_ROOM > limit:
        raise ValueError(f"the output path's last component is {size} bytes long; this file system takes "
                         f"{limit}, and the writer adds up to {SUFFIX_ROOM} for its partial files")
    return path


def refuse_existing(path: str, overwrite: bool, hint: str = "pass overwrite=True to replace it",
                    replaceable: Callable[[str], bool] | None = None) -> None:
    """Refuse an existing ``path`` unless ``overwrite``. A directory is never replaced by a file
    (``replaceable`` None: an ``IsADirectoryError``), and by a directory only when
    ``replaceable(path)`` says the writer wrote it (a ``FileExistsError`` otherwise)."""
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(f"{path} exists; {hint}")
    if not os.path.isdir(path) or os.path.islink(path):
        return
    if replaceable is None:
        raise IsADirectoryError(f"{path} is a directory; not replacing it with a file")
    if not replaceable(path):
        raise FileExistsError(f"{path} is a directory this writer did not write; overwrite replaces only "
                              "its own outputs: remove it yourself or write elsewhere")


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


def _lock(fd: int) -> None:
    """An exclusive lock on the open file ``fd``, at once or ``BlockingIOError``."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _holder(lock: str) -> str:
    try:
        with open(lock, "rb") as file:
            pid = file.read(32).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


@contextlib.contextmanager
def writer_lock(path: str) -> Iterator[None]:
    """Hold the lock of the writers of ``path`` for the block; a ``BlockingIOError`` at once when
    another run holds it. The lock file (holding the holder's pid) is removed at the end."""
    lock = lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except BlockingIOError:
            os.close(fd)
            raise BlockingIOError(f"{path} is being written by {_holder(lock)} (it holds {lock}); wait for "
                                  "that run to finish or write elsewhere") from None
        try:  # a holder removes the file before it unlocks: a lock on a removed file is no lock
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool, hint: str = "pass overwrite=True to replace it",
                  keep_extension: bool = False) -> Iterator[str]:
    """Yield the partial path to write ``path``'s content to; on success it is renamed to ``path``,
    on any error (or interrupt) it is removed and ``path`` is left as it was. Another writer of
    ``path`` is refused while this one runs."""
    path = check_output_path(path)
    refuse_existing(path, overwrite, hint)
    partial = partial_path(path, keep_extension)
    with writer_lock(path):
        try:
            yield partial
            publish(partial, path)
        except BaseException:
            remove(partial)
            raise


def write_atomic(path: str, data: bytes) -> None:
    """Replace the small file ``path`` with ``data``, durably: a reader sees the old or the new bytes.
    The temporary file has a name of its own, so two writers (threads or processes) never share it."""
    tmp = f"{path}.{os.getpid()}-{next(_TEMPORARY)}.tmp"
    try:
        with open(tmp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
