"""Lint, types and the docs build are part of the suite, so the README's test command checks them
too: ruff (config in pyproject.toml), mypy on the package, and ``mkdocs build --strict`` (the API
reference generated from the docstrings; any warning fails)."""

import subprocess
import sys

import pytest
from conftest import ROOT


def _run(*command: str, cwd=ROOT) -> None:
    done = subprocess.run([sys.executable, "-m", *command], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_ruff():
    pytest.importorskip("ruff")
    _run("ruff", "check", "fastinit", "tests", "benchmarks")


def test_mypy(tmp_path):
    pytest.importorskip("mypy")
    _run("mypy", "--cache-dir", str(tmp_path / "mypy-cache"))


def test_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    _run("mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"))
