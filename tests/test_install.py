"""A newcomer's install, in a virtual environment of its own: a regular install, a fill (which
compiles and caches kernels), an editable install of the same checkout over it, then an uninstall.
Nothing fastinit writes at run time may stay behind in site-packages: a leftover directory would
turn ``import fastinit`` into an empty namespace package."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
from conftest import ROOT

import fastinit as fi
from fastinit import __version__

#: what the package needs at import, taken from the running environment (no download)
_DEPENDENCIES = ("numpy", "numpy.libs", "numba", "llvmlite", "setuptools", "_distutils_hack", "pkg_resources")
_FILL = ("import numpy as np, fastinit as fi; a = fi.uniform_(np.empty(8, np.float32), seed=1, name='w'); "
         "print(fi.__file__); print(a.tolist())")


_EXPECTED = fi.uniform_(np.empty(8, np.float32), seed=1, name="w").tolist()


def _checkout_copy(dest: Path) -> Path:
    """The checkout's tracked files (what a clone holds), or the tree without build outputs."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            if name and (ROOT / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, dest / name)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "*.egg-info", "build", "dist", "site", ".venv", ".*_cache", ".benchmarks"))
    return dest


class Venv:
    def __init__(self, root: Path, home: Path):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        self.site = Path(self._run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
        deps = root / "dependencies"
        deps.mkdir()
        here = Path(sysconfig.get_paths()["purelib"])
        for name in _DEPENDENCIES:  # the packages and their metadata (setuptools finds its commands there)
            for entry in [here / name, *here.glob(f"{name}-*.dist-info")]:
                if entry.exists():
                    (deps / entry.name).symlink_to(entry)
        (self.site / "_dependencies.pth").write_text(f"{deps}\n")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "FASTINIT_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
        self.env["HOME"] = str(home)

    def _run(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        done = subprocess.run([str(self.python), *args], capture_output=True, text=True, cwd=cwd,
                              env=getattr(self, "env", None), timeout=900)
        if check:
            assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout if check else done.stderr

    def pip(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), *args, "--quiet"],
                              capture_output=True, text=True, env=self.env, timeout=900)
        assert done.returncode == 0, f"pip {args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"

    def python_in(self, cwd: Path, code: str, check: bool = True) -> str:
        return self._run("-c", code, cwd=cwd, check=check)

    def fastinit_files(self) -> list[str]:
        """Every file and folder of site-packages that belongs to fastinit."""
        found = []
        for entry in self.site.iterdir():
            if entry.name.startswith(("fastinit", "__editable__")):
                found += [entry, *entry.rglob("*")] if entry.is_dir() else [entry]
        return sorted(str(p.relative_to(self.site)) for p in found)


def test_install_then_editable_then_uninstall_leaves_nothing_behind(tmp_path):
    src = _checkout_copy(tmp_path / "src")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    venv = Venv(tmp_path / "venv", home)
    install = ("install", "--no-deps", "--no-build-isolation", "--no-index")

    venv.pip(*install, str(src))  # a regular install: files copied into site-packages
    installed = set(venv.fastinit_files())
    out = venv.python_in(elsewhere, _FILL)
    assert out.splitlines() == [str(venv.site / "fastinit" / "__init__.py"), str(_EXPECTED)]

    cache = home / ".cache" / "fastinit" / __version__
    assert any(p.suffix == ".nbi" for p in cache.rglob("*")), "kernels are cached in the per-user directory"
    written = {f for f in set(venv.fastinit_files()) - installed if not f.endswith(".pyc")}
    assert not written, f"running fastinit wrote into site-packages: {sorted(written)}"

    venv.pip(*install, "--editable", str(src))  # the same checkout, editable, over it
    assert not (venv.site / "fastinit").exists(), "the regular install left files behind"
    out = venv.python_in(elsewhere, _FILL)
    assert out.splitlines() == [str(src / "fastinit" / "__init__.py"), str(_EXPECTED)]

    venv.pip("uninstall", "--yes", "fastinit-philox")
    assert venv.fastinit_files() == []
    err = venv.python_in(elsewhere, "import fastinit", check=False)
    assert "ModuleNotFoundError: No module named 'fastinit'" in err
