"""The layers import one way: effort.v1 < features < training < service < bench, with no cycles.

Read from the source with `ast`, so a violation fails here before anything runs.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"effort": 0, "features": 1, "training": 2, "service": 3, "bench": 4}
FOLDERS = {"effort": ROOT / "proto" / "effort", "features": ROOT / "features",
           "training": ROOT / "training", "service": ROOT / "service", "bench": ROOT / "bench"}
# bench scripts import some modules inside functions on purpose: they measure start-up and memory.
LAZY_IMPORTS_ALLOWED = {"bench"}


def _modules() -> Iterator[tuple[str, str, Path]]:
    """(layer, dotted module name, path) of every hand-written module."""
    for layer, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            if "_pb2" in path.name:
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if layer == "bench":
                yield layer, f"bench.{'.'.join(parts)}", path
            else:
                name = ".".join((layer, *parts))
                yield layer, name.removesuffix(".__init__"), path


def _project_imports(tree: ast.Module) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level) for every import of a project package."""
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in LAYERS:
                yield name, id(node) in top_level


MODULES = list(_modules())


@pytest.mark.parametrize(("layer", "module", "path"), MODULES, ids=[m[1] for m in MODULES])
def test_imports_point_down_and_sit_at_the_top(layer: str, module: str, path: Path) -> None:
    for imported, at_top in _project_imports(ast.parse(path.read_text())):
        target = imported.split(".")[0]
        assert LAYERS[target] <= LAYERS[layer], f"{module} imports {imported}: a higher layer"
        if layer not in LAZY_IMPORTS_ALLOWED:
            assert at_top, f"{module} imports {imported} inside a function or block"


def test_no_import_cycles() -> None:
    names = {module for _, module, _ in MODULES}
    graph: dict[str, set[str]] = {}
    for _, module, path in MODULES:
        graph[module] = set()
        for imported, _ in _project_imports(ast.parse(path.read_text())):
            # `from a.b import c` may name module a.b.c or an attribute of a.b.
            candidates = [imported, imported.rsplit(".", 1)[0]]
            graph[module] |= {c for c in candidates if c in names and c != module}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, f"import cycle: {' -> '.join([*visiting, module])}"
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_feast_repository_holds_only_definitions_and_yaml() -> None:
    files = {p.name for p in (ROOT / "features" / "feast_repo").iterdir()
             if p.name not in ("data", "__pycache__")}
    assert files == {"__init__.py", "definitions.py", "feature_store.yaml",
                     "feature_store.redis.yaml"}
