import sys

import pytest
from conftest import ROOT, run_python

from fastinit import cli


def test_demo_small_layer(capsys):
    assert cli.main(["demo", "--shape", "512x1024", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "He-normal 512 x 1024 float32" in out and "statistics match" in out
    assert "expected 4.419417e-02" in out  # sqrt(2 / 1024)


def test_default_command_is_demo(capsys):
    assert cli.main(["--shape", "64x256", "--dtype", "bfloat16"]) == 0
    assert "bfloat16" in capsys.readouterr().out


def test_bad_shape_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--shape", "12xab"])
    assert exc.value.code == 2
    assert "ROWSxCOLS" in capsys.readouterr().err


def test_python_dash_m_runs():
    out = run_python("import runpy, sys; sys.argv = ['fastinit', 'demo', '--shape', '128x128']; "
                     "runpy.run_module('fastinit', run_name='__main__')")
    assert "statistics match" in out
    assert ROOT.exists() and sys.executable
