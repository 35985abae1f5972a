"""The on-disk kernel cache: outside the package, keyed on the kernel modules (not on the layers
above them), and optional: fastinit works without it."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import fastinit as fi
from fastinit import _cache

_FILL = ("import numpy as np, fastinit as fi; a = np.zeros(8, np.float32); "
         "fi.uniform_(a, seed=1, name='w'); print(a.tolist())")
_EXPECTED = f"{fi.uniform_(np.zeros(8, np.float32), seed=1, name='w').tolist()}\n"
_CACHE_VARIABLES = ("FASTINIT_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "NUMBA_CACHE_LOCATOR_CLASSES",
                    "NUMBA_DISABLE_JIT")


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
    assert original == _EXPECTED
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


def _kernel_folders(folder):
    """The per-copy folders (``fastinit-<hash>``) holding cache files directly below ``folder``."""
    return {name.split(os.sep)[0] for name in _cache_files(folder) if name.startswith("fastinit-")
            and name.count(os.sep) == 1}


def test_locations_and_their_precedence(package_copy, tmp_path):
    from fastinit import __version__

    home = tmp_path / "home"
    _run(package_copy, HOME=home)
    assert len(_kernel_folders(home / ".cache" / "fastinit" / __version__)) == 1
    _run(package_copy, HOME=home, XDG_CACHE_HOME=tmp_path / "xdg")
    assert len(_kernel_folders(tmp_path / "xdg" / "fastinit" / __version__)) == 1
    _run(package_copy, HOME=home, XDG_CACHE_HOME="relative/xdg")  # not absolute: ignored, as the spec says
    assert not (package_copy / "relative").exists()
    _run(package_copy, HOME=home, NUMBA_CACHE_DIR=tmp_path / "numba")
    assert len(_kernel_folders(tmp_path / "numba")) == 1
    _run(package_copy, HOME=home, NUMBA_CACHE_DIR=tmp_path / "numba2", FASTINIT_CACHE_DIR=tmp_path / "ours")
    assert len(_kernel_folders(tmp_path / "ours")) == 1 and not (tmp_path / "numba2").exists()
    assert _cache_files(package_copy) == {}


def test_the_directory_is_chosen_once_at_import(package_copy, tmp_path):
    change = ("import os, fastinit; os.environ['FASTINIT_CACHE_DIR'] = {later!r}; " + _FILL)
    _run(package_copy, change.format(later=str(tmp_path / "later")), FASTINIT_CACHE_DIR=tmp_path / "first")
    assert _kernel_folders(tmp_path / "first") and not (tmp_path / "later").exists()


def test_nothing_is_set_up_without_the_jit(package_copy, tmp_path):
    out, err = _run(package_copy, HOME=tmp_path / "home", NUMBA_DISABLE_JIT=1)
    assert "RuntimeWarning" not in err and not (tmp_path / "home").exists()
    assert out == _EXPECTED


_BREAK_NUMBA_HOOK = "import numba.core.caching as c; del c.CacheImpl._locator_classes; "


_NO_HOME = "import os.path; os.path.expanduser = lambda path: path; "


@pytest.mark.parametrize("how", ["numba moved its hook", "numba's locator list replaced", "not writable", "no home"])
def test_without_a_usable_cache_fastinit_warns_once_and_works(package_copy, tmp_path, how):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = dict(FASTINIT_CACHE_DIR=tmp_path / "cache")
    code = _FILL
    if how == "numba moved its hook":
        code = _BREAK_NUMBA_HOOK + _FILL
    elif how == "numba's locator list replaced":
        env["NUMBA_CACHE_LOCATOR_CLASSES"] = "UserWideCacheLocator"
    elif how == "not writable":
        env = dict(FASTINIT_CACHE_DIR=blocker / "cache")
    else:
        env, code = dict(HOME=tmp_path / "home"), _NO_HOME + _FILL
    out, err = _run(package_copy, code, **env)
    assert out == _EXPECTED
    assert err.count("RuntimeWarning") == 1 and "not cached on disk" in err, err
    written = _cache_files(tmp_path)
    assert written == {}, written  # nothing cached anywhere: not in the package, not in the cwd


def test_a_jitted_function_outside_the_kernel_modules_is_refused():
    def kernel():
        pass

    with pytest.raises(RuntimeError, match="KERNEL_MODULES"):
        _cache.KernelCacheLocator.from_function(kernel, os.path.join(_cache.PACKAGE_DIR, "cli.py"))
    assert _cache.KernelCacheLocator.from_function(kernel, __file__) is None  # not fastinit's: Numba decides
