"""The shape of the package (docs/design.md, "Architecture"), held by the source itself: no import cycles, each
layer imports only the layers below it, only tdgc.local imports moto, and no function outgrows a screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tdgc

PACKAGE = Path(tdgc.__file__).parent
ENTRY_POINTS = {
    "tdgc.cli",
    "tdgc.lambda_handler",
    "tdgc.job",
    "tdgc.airflow_operator",
    "tdgc.package",
    "tdgc.permissions",
    "tdgc.__main__",
}
# What each layer may import from tdgc, besides itself and the foundation modules (model, errors, policy, ...).
MAY_IMPORT = {
    "tdgc.aws": set(),
    "tdgc.report": {"tdgc.aws"},
    "tdgc.reuse": {"tdgc.aws"},
    "tdgc.collect": {"tdgc.aws", "tdgc.report", "tdgc.reuse"},
    "tdgc.local": {"tdgc.aws", "tdgc.report", "tdgc.reuse", "tdgc.collect"},
}
ENTRY_PACKAGES = ("tdgc.cli.",)  # an entry point's own modules are entry points too


def _entry_points(names: set[str]) -> set[str]:
    return {n for n in names if n in ENTRY_POINTS or n.startswith(ENTRY_PACKAGES)}


FOUNDATION = {"tdgc", "tdgc.model", "tdgc.errors", "tdgc.durations", "tdgc.policy", "tdgc.logs", "tdgc.signals"}
LONGEST_FUNCTION = 60


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    """Every module an import statement names (`from tdgc import x` names tdgc.x when x is a module)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
    return found


def _tdgc_imports(name: str) -> set[str]:
    return {m for m in _imports(MODULES[name]) if m in MODULES and m != name}


def _layer(name: str) -> str | None:
    return next((layer for layer in MAY_IMPORT if name == layer or name.startswith(layer + ".")), None)


def test_the_import_graph_has_no_cycles() -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(_tdgc_imports(name)):
            visit(imported, [*path, name])
        done.add(name)

    for name in MODULES:
        visit(name, [])
    assert done == set(MODULES)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _layer(n)))
def test_a_layer_imports_only_the_layers_below_it_and_never_an_entry_point(name: str) -> None:
    layer = _layer(name)
    assert layer is not None
    allowed = {layer, *MAY_IMPORT[layer]}
    wrong = sorted(m for m in _tdgc_imports(name) if m not in FOUNDATION and _layer(m) not in allowed)
    assert wrong == [], f"{name} ({layer}) imports {wrong}"
    assert not _entry_points(_tdgc_imports(name))


def test_the_foundation_imports_no_layer_but_aws_constants() -> None:
    for name in FOUNDATION - {"tdgc"}:
        assert {_layer(m) for m in _tdgc_imports(name)} <= {None, "tdgc.aws"}, name
        assert not _entry_points(_tdgc_imports(name)), name


def test_only_tdgc_local_imports_moto() -> None:
    """The Lambda zip leaves tdgc/local out (tdgc.package), so nothing else may need moto."""
    users = sorted(n for n, tree in MODULES.items() if any(m.split(".")[0] == "moto" for m in _imports(tree)))
    assert users and all(n.startswith("tdgc.local") for n in users), users


def test_no_function_is_longer_than_a_screen() -> None:
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert long == []
