"""Fills in child processes: forked after the parent filled (GNU OpenMP aborts such a child), from a
forkserver, spawned, and in Dask process pools; the unseeded stream of forked children."""

import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = '''
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import numba
import numpy as np

import fastinit as fi


def fill(_):
    return fi.normal_(np.empty(1 << 16, np.float32), seed=0, name="w").tobytes()


def unseeded(_):
    return fi.normal_(np.empty(8, np.float32)).tobytes()


def unseeded_after_manual_seed(_):
    fi.manual_seed(5)
    return unseeded(0)


if __name__ == "__main__":
    expected = fill(0)  # the parent fills first: its worker threads exist when the children fork
    assert numba.threading_layer() in ("tbb", "workqueue"), numba.threading_layer()
    for method in ("fork", "forkserver", "spawn"):
        with ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as pool:
            assert list(pool.map(fill, range(2))) == [expected] * 2, method

    import dask
    import fastinit.dask as fid

    for context in ("spawn", "fork"):
        with dask.config.set({"scheduler": "processes", "multiprocessing.context": context, "num_workers": 2}):
            got = fid.normal((1 << 16,), chunks=1 << 14, seed=0, name="w").compute()
        assert got.tobytes() == expected, context

    fi.manual_seed(5)
    with ProcessPoolExecutor(4, mp_context=mp.get_context("fork")) as pool:
        children = list(pool.map(unseeded, range(4)))
        again = set(pool.map(unseeded_after_manual_seed, range(4)))
    assert len(set(children)) == 4 and unseeded(0) not in children  # every process has its own stream
    assert again == {unseeded_after_manual_seed(0)}  # and repeats after manual_seed, as the parent does
    print("ok")
'''


def test_fills_in_forked_forkserver_spawned_and_dask_children_and_their_own_unseeded_streams(tmp_path):
    script = tmp_path / "children.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_an_explicit_threading_layer_is_kept(tmp_path):
    code = ("import numpy as np, numba, fastinit as fi; fi.normal_(np.empty(1 << 16, np.float32), seed=0); "
            "print(numba.threading_layer())")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_THREADING_LAYER": "workqueue"})
    assert done.returncode == 0 and done.stdout.strip() == "workqueue", done.stderr[-3000:]
