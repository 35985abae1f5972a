"""Where Numba keeps fastinit's compiled kernels, and when a cached kernel is still valid.

Location (the first that is set wins):

1. ``FASTINIT_CACHE_DIR``;
2. ``NUMBA_CACHE_DIR`` (Numba's own override);
3. the per-user cache directory, ``fastinit/<version>`` under ``$XDG_CACHE_HOME`` (default
   ``~/.cache``) on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows.

The directory is chosen once, when fastinit is imported. Below it, each installed copy of the
package, with each Numba and llvmlite version, has a folder named after their hash, so two
checkouts (or two environments sharing one checkout) never overwrite each other's kernels. Nothing
is ever written inside the installed package: uninstalling or reinstalling leaves no file behind
in ``site-packages``. Without a home directory (and neither variable set) nothing is cached: a
cache in the working directory or a shared temporary one would not be safe to load code from.

Validity: Numba stamps a cache entry with the source of the file that defines the kernel only.
fastinit's kernels are built from several modules (``KERNEL_MODULES``), so every entry is stamped
with the hash of all of them plus the Numba and llvmlite versions (``source_stamp``): an edit to
``_convert.py`` recompiles every kernel, an edit to ``cli.py`` recompiles nothing.

The hook into Numba (``CacheImpl._locator_classes``) is private Numba API. If a Numba release
moves it, ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's locator list, or the cache directory
cannot be written, fastinit still works: it compiles in every process instead, after one
``RuntimeWarning``. Under ``NUMBA_DISABLE_JIT=1`` nothing is compiled and nothing is set up.
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


def _user_cache_root() -> str | None:
    """The per-user cache root, or None when it cannot be resolved to an absolute path (no home
    directory): a cache in the working directory or a shared temporary one would not be safe."""
    if sys.platform == "darwin":
        root = os.path.expanduser("~/Library/Caches")
    elif sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        root = xdg if os.path.isabs(xdg) else os.path.expanduser("~/.cache")  # a relative one is ignored
    return root if os.path.isabs(root) else None


def cache_dir() -> str:
    """The directory for this copy of fastinit's compiled kernels (see the module docstring); an
    ``OSError`` when there is none."""
    base = os.environ.get("FASTINIT_CACHE_DIR") or getattr(numba.config, "CACHE_DIR", "")
    if base:
        base = os.path.abspath(os.path.expanduser(base))
    else:
        root = _user_cache_root()
        if root is None:
            raise OSError("no home directory to hold a per-user cache")
        base = os.path.join(root, "fastinit", __version__)
    copy = f"{PACKAGE_DIR}\0numba {numba.__version__}\0llvmlite {llvmlite.__version__}"
    return os.path.join(base, "fastinit-" + hashlib.sha256(copy.encode()).hexdigest()[:16])


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
    kernels of this package: entries in the directory ``install`` chose, stamped with ``source_stamp()``."""

    path: str | None = None  # set by install()

    def __init__(self, py_func, py_file: str):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno

    @classmethod
    def from_function(cls, py_func, py_file: str):
        if os.path.dirname(os.path.abspath(py_file)) != PACKAGE_DIR:
            return None  # not fastinit's: Numba's own locators decide
        if os.path.basename(py_file) not in KERNEL_MODULES:
            raise RuntimeError(f"fastinit: {py_file} defines the cached jitted function "
                               f"{py_func.__qualname__} but is not listed in _cache.KERNEL_MODULES")
        return cls(py_func, py_file)

    def ensure_cache_path(self) -> None:
        assert self.path is not None
        os.makedirs(self.path, exist_ok=True)
        tempfile.TemporaryFile(dir=self.path).close()

    def get_cache_path(self) -> str:
        assert self.path is not None
        return self.path

    def get_source_stamp(self) -> str:
        return source_stamp()

    def get_disambiguator(self) -> str:
        return str(self._lineno)


def _locator_classes() -> list:
    """Numba's list of cache locator classes (private API, checked)."""
    from numba.core import caching

    if getattr(numba.config, "CACHE_LOCATOR_CLASSES", ""):
        raise AttributeError("NUMBA_CACHE_LOCATOR_CLASSES replaces Numba's locator list")
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        raise AttributeError("numba.core.caching.CacheImpl._locator_classes is not a list")
    return classes


def install() -> bool:
    """Choose the cache directory once and put ``KernelCacheLocator`` first in Numba's locator list;
    False (after one warning) when that hook or a writable directory is missing, and kernels must
    not be cached. Nothing is done when Numba's JIT is disabled."""
    if getattr(numba.config, "DISABLE_JIT", False):
        return False
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
    KernelCacheLocator.path = path
    if KernelCacheLocator not in classes:
        classes.insert(0, KernelCacheLocator)
    return True
