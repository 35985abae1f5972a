"""Where Numba keeps fastinit's compiled kernels, and when a cached kernel is still valid.

Location (the first that is set wins):

1. ``FASTINIT_CACHE_DIR``;
2. ``NUMBA_CACHE_DIR`` (Numba's own override);
3. the per-user cache directory, ``fastinit/<version>`` under ``$XDG_CACHE_HOME`` (default
   ``~/.cache``) on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows.

Below it, each installed copy of the package has a folder named after the hash of its path, so
two checkouts never overwrite each other's kernels. Nothing is ever written inside the installed
package: uninstalling or reinstalling leaves no file behind in ``site-packages``.

Validity: Numba stamps a cache entry with the source of the file that defines the kernel only.
fastinit's kernels are built from several modules (``KERNEL_MODULES``), so every entry is stamped
with the hash of all of them plus the Numba and llvmlite versions (``source_stamp``): an edit to
``_convert.py`` recompiles every kernel, an edit to ``cli.py`` recompiles nothing.

The hook into Numba (``CacheImpl._locator_classes``) is private Numba API. If a Numba release
moves it, or the cache directory cannot be written, fastinit still works: it compiles in every
process instead, after one ``RuntimeWarning``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import warnings

import llvmlite
import numba

from ._version import __version__

__all__ = ["KERNEL_MODULES", "cache_dir", "install", "source_stamp"]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: the modules whose source decides the compiled code; a jitted function defined in any other
#: module of the package is an error at import (add its module here)
KERNEL_MODULES = ("_jit.py", "_philox.py", "_convert.py", "_kernels.py")


def _user_cache_root() -> str:
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches")
    if sys.platform == "win32":
        return os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    return os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")


def cache_dir() -> str:
    """The directory holding this copy of fastinit's compiled kernels (see the module docstring)."""
    base = os.environ.get("FASTINIT_CACHE_DIR") or getattr(numba.config, "CACHE_DIR", "")
    if not base:
        base = os.path.join(_user_cache_root(), "fastinit", __version__)
    return os.path.join(os.path.abspath(os.path.expanduser(base)),
                        "fastinit-" + hashlib.sha256(PACKAGE_DIR.encode()).hexdigest()[:16])


@functools.cache
def source_stamp() -> str:
    """SHA-256 over the Numba and llvmlite versions and the name and bytes of every kernel module:
    the freshness stamp of every cached kernel."""
    digest = hashlib.sha256(f"numba {numba.__version__}\0llvmlite {llvmlite.__version__}\0".encode())
    for module in KERNEL_MODULES:
        with open(os.path.join(PACKAGE_DIR, module), "rb") as file:
            digest.update(module.encode() + b"\0" + file.read() + b"\0")
    return digest.hexdigest()


class KernelCacheLocator:
    """A Numba cache locator (the interface of ``numba.core.caching._CacheLocator``) for the
    kernels of this package: entries in ``cache_dir()``, stamped with ``source_stamp()``."""

    def __init__(self, py_func, py_file: str, path: str):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._path = path

    @classmethod
    def from_function(cls, py_func, py_file: str):
        if os.path.dirname(os.path.abspath(py_file)) != PACKAGE_DIR:
            return None  # not fastinit's: Numba's own locators decide
        if os.path.basename(py_file) not in KERNEL_MODULES:
            raise RuntimeError(f"fastinit: {py_file} defines the cached jitted function "
                               f"{py_func.__qualname__} but is not listed in _cache.KERNEL_MODULES")
        return cls(py_func, py_file, cache_dir())

    def ensure_cache_path(self) -> None:
        os.makedirs(self._path, exist_ok=True)
        tempfile.TemporaryFile(dir=self._path).close()

    def get_cache_path(self) -> str:
        return self._path

    def get_source_stamp(self) -> str:
        return source_stamp()

    def get_disambiguator(self) -> str:
        return str(self._lineno)


def _locator_classes() -> list:
    """Numba's list of cache locator classes (private API, checked)."""
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        raise AttributeError("numba.core.caching.CacheImpl._locator_classes is not a list")
    return classes


def install() -> bool:
    """Put ``KernelCacheLocator`` first in Numba's locator list; False (after one warning) when
    that hook or a writable cache directory is missing, and kernels must not be cached."""
    try:
        classes = _locator_classes()
        path = cache_dir()
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except (AttributeError, ImportError, OSError) as err:
        warnings.warn(f"fastinit: kernels will be compiled in every process, not cached on disk ({err}); "
                      "set FASTINIT_CACHE_DIR to a writable directory to cache them", RuntimeWarning,
                      stacklevel=2)
        return False
    if KernelCacheLocator not in classes:
        classes.insert(0, KernelCacheLocator)
    return True
