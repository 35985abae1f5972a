import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16]


def bits(a: np.ndarray) -> np.ndarray:
    """The raw bit patterns of an array (so that -0.0 != 0.0 and NaNs compare equal)."""
    return np.ascontiguousarray(a).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    diff = np.flatnonzero(bits(actual) != bits(expected))
    assert diff.size == 0, (
        f"{diff.size} of {actual.size} elements differ, first at flat index {diff[0]}: "
        f"{actual.reshape(-1)[diff[0]]!r} != {expected.reshape(-1)[diff[0]]!r}"
    )


def run_python(code: str, **env) -> str:
    """Run ``code`` in a fresh interpreter with extra environment variables; return its stdout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def free_port() -> int:
    """A free TCP port on loopback (for a torch.distributed rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_venv(where: Path, *installs: list[str]) -> str:
    """A venv at ``where`` with each of ``installs`` (``pip install`` arguments) run in turn; its python."""
    import venv

    venv.create(where, with_pip=True)
    python = str(where / "bin" / "python")
    for arguments in installs:
        subprocess.run([python, "-m", "pip", "install", "-q", *arguments], check=True, timeout=3600)
    return python


def pytest_collection_modifyitems(config, items):
    """Deselect the tests that need more JAX devices than this process has (they run in a
    subprocess made with that many: see tests/test_jax_sharding.py)."""
    needing = [(item, item.get_closest_marker("mesh_devices").args[0]) for item in items
               if item.get_closest_marker("mesh_devices") is not None]
    if not needing:
        return
    import jax

    have = len(jax.devices())
    deselected = {id(item) for item, n in needing if n > have}
    if deselected:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in deselected])
        items[:] = [item for item in items if id(item) not in deselected]
