"""Every code snippet of the README and of docs/ runs: ``python`` blocks in order, one namespace
per page (like a doctest session), ``console`` blocks command by command (lines starting ``$ ``),
each page in a fresh working directory. ``text`` / ``json`` / ``bash`` blocks are not run (``bash``
only holds the README's install commands, which the install test runs)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
_BIN = Path(sys.executable).parent


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(page.read_text()) if lang == language]


def test_every_page_is_found():
    names = {p.name for p in PAGES}
    assert {"README.md", "contract.md", "checkpoints.md", "backends.md", "schemes.md", "performance.md",
            "internals.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_snippets_run(page, tmp_path, monkeypatch):
    snippets = blocks(page, "python")
    if not snippets:
        pytest.skip(f"{page.name} has no python snippets")
    for framework in sorted(set(re.findall(r"^\s*(?:import|from) (torch|jax|dask|zarr|safetensors|transformers)\b",
                                           "\n".join(snippets), re.M))):
        pytest.importorskip(framework)  # a page about a backend needs its framework
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(snippets):
        try:
            exec(compile(code, f"{page.name}[python block {i + 1}]", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"{page.name}, python block {i + 1} fails:\n{code}") from err


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "console")], ids=lambda p: p.name)
def test_console_snippets_run(page, tmp_path):
    env = {**os.environ, "PATH": f"{_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    for block in blocks(page, "console"):
        # a command continues on the next line after a trailing backslash; other lines are its output
        commands = re.findall(r"^\$ ((?:.*\\\n)*.*)$", block, re.M)
        assert commands, f"{page.name}: a console block without a `$ ` command:\n{block}"
        for command in commands:
            done = subprocess.run(["bash", "-c", command.replace("\\\n", " ")], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{page.name}: `{command}` failed:\n{done.stderr[-3000:]}"


def test_no_page_or_source_cites_what_a_reader_cannot_open():
    cited = re.compile(r"DESIGN\.md|\b[Ii]ssue[- ]#?\d+|\bissues?/\d+")
    files = [*PAGES, *(ROOT / "fastinit").glob("*.py"), *(ROOT / "tests").glob("*.py"),
             *(ROOT / "benchmarks").glob("*.py"), ROOT / "CHANGELOG.md"]
    hits = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files if f != Path(__file__)
            for n, line in enumerate(f.read_text().splitlines(), 1) if cited.search(line)]
    assert not hits, "\n".join(hits)


def test_links_between_pages_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name} -> {target}")
    assert not broken, broken


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert text.index("```bash") < 40  # the two commands come first
    install_and_run, install_and_test = blocks(ROOT / "README.md", "bash")[0].strip().splitlines()
    assert "pip install" in install_and_run and "fastinit generate" in install_and_run
    assert "pip install" in install_and_test and "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text()  # CI runs exactly that command
