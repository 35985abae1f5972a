"""The on-disk kernel cache: outside the package, keyed on the kernel modules (not on the layers
above them), and optional: fastinit works without it."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from fastinit import _cache

_FILL = ("import numpy as np, fastinit as fi; a = np.zeros(8, np.float32); "
         "fi.uniform_(a, seed=1, name='w'); print(a.tolist())")
_CACHE_VARIABLES = ("FASTINIT_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")


def _run(package_root, code=_FILL, **env):
    """Run ``code`` with ``package_root`` first on the path and only the cache variables in ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k not in _CACHE_VARIABLES}
    full_env.update(PYTHONPATH=str(package_root), **{k: str(v) for k, v in env.items()})
    done = subprocess.run([sys.executable, "-W", "always::RuntimeWarning", "-c", code], capture_output=True,
                          text=True, env=full_env, cwd=package_root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, done.stderr


def _cache_files(folder):
    """Every Numba cache file under ``folder`` with its size and modification time."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name.endswith((".nbi", ".nbc")):
                stat = os.stat(os.path.join(root, name))
                found[os.path.relpath(os.path.join(root, name), folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def package_copy(tmp_path):
    """A private copy of the package (so edits and caches touch nothing else)."""
    shutil.copytree(ROOT / "fastinit", tmp_path / "src" / "fastinit", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "src"


def test_cache_is_outside_the_package_and_keyed_on_kernel_modules_only(package_copy, tmp_path):
    cache = tmp_path / "cache"
    original, _ = _run(package_copy, FASTINIT_CACHE_DIR=cache)
    files = _cache_files(cache)
    assert any(name.endswith(".nbi") for name in files)
    assert _cache_files(package_copy) == {}  # nothing next to the package's source

    assert _run(package_copy, FASTINIT_CACHE_DIR=cache)[0] == original
    assert _cache_files(cache) == files  # served from the cache: nothing recompiled

    cli = package_copy / "fastinit" / "cli.py"
    cli.write_text(cli.read_text().replace('"""Command line:', '"""The command line:', 1))
    assert _run(package_copy, FASTINIT_CACHE_DIR=cache)[0] == original
    assert _cache_files(cache) == files  # an upper layer changed: still nothing recompiled

    # the kernels live in _kernels.py; change the uniform scale in _convert.py only
    convert = package_copy / "fastinit" / "_convert.py"
    source = convert.read_text()
    assert "_F32_2_M24 = np.float32(2.0**-24)" in source
    convert.write_text(source.replace("_F32_2_M24 = np.float32(2.0**-24)", "_F32_2_M24 = np.float32(2.0**-25)"))
    assert _run(package_copy, FASTINIT_CACHE_DIR=cache)[0] != original


def test_default_location_is_the_per_user_cache_directory(package_copy, tmp_path):
    from fastinit import __version__

    home = tmp_path / "home"
    _run(package_copy, HOME=home)
    assert any(n.endswith(".nbi") for n in _cache_files(home / ".cache" / "fastinit" / __version__))
    _run(package_copy, HOME=home, XDG_CACHE_HOME=tmp_path / "xdg")
    assert any(n.endswith(".nbi") for n in _cache_files(tmp_path / "xdg" / "fastinit" / __version__))
    _run(package_copy, HOME=home, NUMBA_CACHE_DIR=tmp_path / "numba")
    assert any(n.endswith(".nbi") for n in _cache_files(tmp_path / "numba"))
    assert _cache_files(package_copy) == {}


_BREAK_NUMBA_HOOK = "import numba.core.caching as c; del c.CacheImpl._locator_classes; "


@pytest.mark.parametrize("how", ["numba moved its hook", "cache directory not writable"])
def test_without_a_usable_cache_fastinit_warns_once_and_works(package_copy, tmp_path, how):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    if how == "numba moved its hook":
        out, err = _run(package_copy, _BREAK_NUMBA_HOOK + _FILL, FASTINIT_CACHE_DIR=tmp_path / "cache")
    else:
        out, err = _run(package_copy, FASTINIT_CACHE_DIR=blocker / "cache")
    assert out == _run(package_copy, FASTINIT_CACHE_DIR=tmp_path / "good")[0]
    assert err.count("RuntimeWarning") == 1 and "not cached on disk" in err, err
    assert _cache_files(tmp_path / "cache") == {} and _cache_files(package_copy) == {}


def test_a_jitted_function_outside_the_kernel_modules_is_refused():
    def kernel():
        pass

    with pytest.raises(RuntimeError, match="KERNEL_MODULES"):
        _cache.KernelCacheLocator.from_function(kernel, os.path.join(_cache.PACKAGE_DIR, "cli.py"))
    assert _cache.KernelCacheLocator.from_function(kernel, __file__) is None  # not fastinit's: Numba decides
