"""Every module of `src/hatbot` imports, and no two of them import each other, even through others.

The graph is read from the source with `ast`: an edge A -> B is an `import B` or
`from B import ...` (or `from hatbot.B import ...`, or a relative import) anywhere in A:
at module level, and inside functions and methods too. A function-level import breaks
no import at load time, but it still ties the two modules together (the `api.py` <->
`app.py` cycle of issue 18 was one), so it counts. Only imports under
`if TYPE_CHECKING:` are left out: they never run. Importing a submodule also makes an
edge to its parent packages (their `__init__` runs first).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "hatbot"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import statement of a module, those under `if TYPE_CHECKING:` left out."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append(node)

    def visit_If(self, node: ast.If) -> None:
        if not is_type_checking(node.test):
            for child in node.body:
                self.visit(child)
        for child in node.orelse:
            self.visit(child)


def import_statements(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    visitor = _Imports()
    visitor.visit(tree)
    return visitor.found


def resolve(name: str) -> str | None:
    """The hatbot module that importing `name` loads last (a module, or a package's
    `__init__`), or None outside hatbot."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in import_statements(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import name` may import a submodule `pkg.name`.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            found = resolve(name)
            if found is not None and found != module:
                targets.add(found)
    # Importing a submodule runs its parent packages' `__init__` first.
    for name in list(targets):
        parent = name.rpartition(".")[0]
        while parent:
            if parent in MODULES and parent != module and not module.startswith(parent + "."):
                targets.add(parent)
            parent = parent.rpartition(".")[0]
    return targets


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_every_module_and_the_known_edges() -> None:
    """The checker itself: it finds the package's modules and edges that are surely there."""
    graph = {module: imports_of(module) for module in MODULES}
    assert {"hatbot", "hatbot.app", "hatbot.api", "hatbot.serving"} <= set(graph)
    assert "hatbot.api" in graph["hatbot.app"]
    assert "hatbot.serving" in graph["hatbot.api"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    # A function-level import is an edge; one under `if TYPE_CHECKING:` is not.
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hatbot.app\n"
        "def f():\n    from hatbot import api\n"
    )
    assert [ast.unparse(node) for node in import_statements(tree)] == [
        "from typing import TYPE_CHECKING",
        "from hatbot import api",
    ]


def test_no_import_cycle_among_hatbot_modules() -> None:
    graph = {module: imports_of(module) for module in MODULES}
    assert cycles(graph) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)
