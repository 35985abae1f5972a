"""The public API is static, typed and documented: ``__all__`` of every public module, the API
reference in docs/api/ and the tables there agree; every public function is annotated; no stubs
that could drift; no names made at run time with ``globals()``."""

import dataclasses
import importlib
import inspect
import re

import pytest
from conftest import ROOT

MODULES = ["fastinit", "fastinit.initializers", "fastinit.conventions", "fastinit.spec", "fastinit.checkpoint",
           "fastinit.diagnostics", "fastinit.torch", "fastinit.jax", "fastinit.dask", "fastinit.transformers",
           "fastinit.recipes"]
API = ROOT / "docs" / "api"
_DIRECTIVE = re.compile(r"^::: (fastinit[\w.]*)$", re.M)
_ROW = re.compile(r"^\| `(\w+)` \| (.*) \|$", re.M)


def _page(module: str) -> str:
    return (API / f"{module.rpartition('.')[2] if '.' in module else module}.md").read_text()


def _public(module: str) -> list[tuple[str, object]]:
    mod = pytest.importorskip(module)  # the backends need their framework
    return [(name, getattr(mod, name)) for name in mod.__all__]


def test_every_public_module_has_a_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for module in MODULES:
        page = f"api/{module.rpartition('.')[2] if '.' in module else module}.md"
        assert page in nav and (ROOT / "docs" / page).exists(), page


@pytest.mark.parametrize("module", MODULES)
def test_all_and_api_reference_agree(module):
    """Each public name has a ``:::`` entry or a table row on its module's page, and the page
    documents nothing that is not public."""
    text = _page(module)
    documented = set(_DIRECTIVE.findall(text)) - {module}
    in_tables = {f"{module}.{name}" for name, _ in _ROW.findall(text)}
    public = {f"{module}.{name}" for name, obj in _public(module) if not inspect.ismodule(obj)}
    assert documented.isdisjoint(in_tables)
    assert documented | in_tables == public
    for _, obj in _public(module):  # a public submodule has its own page
        if inspect.ismodule(obj):
            assert obj.__name__ in MODULES


def _rows(module: str) -> dict[str, str]:
    return dict(_ROW.findall(_page(module)))


def test_factory_tables_state_each_factory_distribution():
    from fastinit.conventions import TABLE

    aliases = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
               "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal"}
    for module in ("fastinit.jax", "fastinit.initializers"):
        rows = _rows(module)
        assert rows and all(TABLE["jax"][aliases.get(n, n)].describe == text for n, text in rows.items()), module
    assert _rows("fastinit.dask") == {n: f"`fastinit.{n}_`" for n in _rows("fastinit.dask")}


def test_dask_has_a_constructor_for_every_registered_scheme():
    fid = pytest.importorskip("fastinit.dask")
    from fastinit._registry import SCHEMES

    assert set(SCHEMES) <= set(fid.__all__)
    assert {f"{n}_" for n in SCHEMES} <= set(importlib.import_module("fastinit").__all__)


def test_schemes_page_table_is_the_conventions_table():
    from fastinit.conventions import TABLE

    text = (ROOT / "docs" / "schemes.md").read_text()
    rows = re.findall(r"^\| (torch|keras|jax|flax) \| `(\w+)` \| `([^`]+)` \| (.*) \|$", text, re.M)
    assert {(f, s) for f, s, _, _ in rows} == {(f, s) for f in TABLE for s in TABLE[f]}
    for framework, scheme, call, describe in rows:
        convention = TABLE[framework][scheme]
        assert describe == convention.describe, (framework, scheme)
        assert call.startswith(convention.function.__name__ + "("), (framework, scheme)


def _functions():
    for module in MODULES:
        try:
            public = [(name, getattr(importlib.import_module(module), name))
                      for name in importlib.import_module(module).__all__]
        except ImportError:
            continue  # a backend without its framework: its tests skip
        for name, obj in public:
            if inspect.isclass(obj):
                fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and not attr.startswith("_") and attr not in fields:
                        yield f"{module}.{name}.{attr}", member
            elif inspect.isfunction(obj):
                yield f"{module}.{name}", obj


@pytest.mark.parametrize("qualname, function", list(_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_function_is_annotated(qualname, function):
    signature = inspect.signature(function)
    missing = [p for p in signature.parameters if p not in ("self", "cls")
               and signature.parameters[p].annotation is inspect.Parameter.empty]
    assert not missing, f"{qualname}: parameters without annotations: {missing}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{qualname}: no return annotation"


def test_names_are_static_and_types_inline():
    package = ROOT / "fastinit"
    assert (package / "py.typed").exists()
    assert not list(package.glob("*.pyi")), "stubs would have to be kept in step with the code: annotate inline"
    for source in package.glob("*.py"):
        assert "globals()" not in source.read_text(), f"{source.name} makes names at run time"


def test_version_has_one_source():
    import fastinit
    from fastinit._version import __version__

    assert fastinit.__version__ == __version__
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fastinit._version.__version__"}
