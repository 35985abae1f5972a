"""The on-disk kernel cache is keyed on the whole package, not only on the kernel's own file."""

import os
import shutil
import subprocess
import sys

from conftest import ROOT

_FILL = ("import numpy as np, fastinit as fi; a = np.zeros(8, np.float32); "
         "fi.uniform_(a, seed=1, name='w'); print(a.tolist())")


def _run(package_root):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(package_root)
    done = subprocess.run([sys.executable, "-c", _FILL], capture_output=True, text=True, env=env,
                          cwd=package_root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_editing_a_helper_module_invalidates_cached_kernels(tmp_path):
    package = tmp_path / "fastinit"
    shutil.copytree(ROOT / "fastinit", package, ignore=shutil.ignore_patterns("__pycache__"))
    original = _run(tmp_path)
    assert any(p.suffix == ".nbi" for p in (package / "__pycache__").iterdir())
    assert _run(tmp_path) == original  # served from the cache

    # the kernels live in _kernels.py; change the uniform scale in _convert.py only
    convert = package / "_convert.py"
    source = convert.read_text()
    assert "_F32_2_M24 = np.float32(2.0**-24)" in source
    convert.write_text(source.replace("_F32_2_M24 = np.float32(2.0**-24)",
                                      "_F32_2_M24 = np.float32(2.0**-25)"))
    assert _run(tmp_path) != original
