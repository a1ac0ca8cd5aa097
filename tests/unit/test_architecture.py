"""The architecture's rules that the import-linter contract cannot see.

- No import cycle among the package's modules, counting every import that runs: function-local
  ones too. Exempt: `if TYPE_CHECKING:` imports (never run) and the package root's lazy
  `__getattr__` (it keeps `import service.schemas`, which the client SDK shares, light).
- The request context carries telemetry only: who is calling, at which priority and on which
  adapter travel as arguments (`service/caller.py`, `EngineRequest`), and no code outside
  `http/` and `telemetry/` reads identity from the context.
- docs/architecture.md names every package under `service/`.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.telemetry.context import RequestContext

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "service"
IDENTITY = frozenset({"key_id", "key_name", "admin", "priority", "adapter", "caller", "owner"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, wherever it is."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (n for child in node.orelse for n in _imports(child, module))
            continue
        lazy_root = (
            module == "service" and isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        )
        if lazy_root:
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node, module)


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> set[str]:
    """The package's modules an import statement loads by name: `from pkg import mod` loads
    `pkg.mod`, `from mod import name` loads `mod` (a parent package's implicit import is not
    counted: every submodule would be in a cycle with a package that re-exports it)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            keep = len(parts) - node.level + (MODULES[module].name == "__init__.py")
            base = ".".join([*parts[:keep], base] if base else parts[:keep])
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names
        ]
    return {name for name in names if name in MODULES and name != module}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in _imports(tree, module):
            edges |= _targets(node, module)
        graph[module] = edges
    return graph


class _Tarjan:
    """Strongly connected components of a directed graph."""

    def __init__(self, graph: dict[str, set[str]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.components: list[list[str]] = []

    def visit(self, node: str) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        for nxt in self.graph.get(node, ()):
            if nxt not in self.index:
                self.visit(nxt)
                self.low[node] = min(self.low[node], self.low[nxt])
            elif nxt in self.on_stack:
                self.low[node] = min(self.low[node], self.index[nxt])
        if self.low[node] == self.index[node]:
            self.components.append(self.pop_to(node))

    def pop_to(self, node: str) -> list[str]:
        component = []
        while True:
            top = self.stack.pop()
            self.on_stack.discard(top)
            component.append(top)
            if top == node:
                return sorted(component)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module."""
    tarjan = _Tarjan(graph)
    for node in sorted(graph):
        if node not in tarjan.index:
            tarjan.visit(node)
    return [component for component in tarjan.components if len(component) > 1]


def test_no_module_imports_itself_around_a_cycle() -> None:
    graph = import_graph()
    assert graph["service.services.openai.responses.events"]  # the walk sees imports at all
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_local_imports_are_walked() -> None:
    graph = import_graph()
    # create_app's engine factory imports the fake engine only when it is asked for.
    assert "service.engine.fake" in graph["service.app"]


def test_the_request_context_carries_no_identity() -> None:
    fields = {f.name for f in dataclasses.fields(RequestContext)}
    assert fields & IDENTITY == set()


def _context_reads(source: str) -> set[str]:
    """Attributes read off the request context in one module: off `context.current()`, off a
    local function that returns it, or off a name bound to either."""
    tree = ast.parse(source)
    getters = {"current"}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(r, ast.Return) and r.value is not None and _calls(r.value, getters)
            for r in ast.walk(node)
        ):
            getters.add(node.name)
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if _calls(value, getters):
            bound |= {t.id for t in targets if isinstance(t, ast.Name)}
    reads = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            _calls(node.value, getters)
            or (isinstance(node.value, ast.Name) and node.value.id in bound)
        ):
            reads.add(node.attr)
    return reads


def _calls(node: ast.AST, names: set[str]) -> bool:
    """Whether the expression calls one of `names` (as `name()` or `x.name()`)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in names:
                return True
    return False


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] not in ("http", "telemetry")
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_identity_is_read_from_the_context_outside_http_and_telemetry(path: Path) -> None:
    assert _context_reads(path.read_text(encoding="utf-8")) & IDENTITY == set()


def test_the_context_reader_sees_reads() -> None:
    source = """
def _context():
    return context.current() or RequestContext("", 0.0)

def run():
    ctx = _context()
    other = context.current()
    return ctx.priority, other.key_id, context.current().adapter
"""
    assert _context_reads(source) == {"priority", "key_id", "adapter"}
    real = (PACKAGE / "services" / "core" / "generation.py").read_text(encoding="utf-8")
    assert "engine_requests" in _context_reads(real)


def test_the_architecture_page_names_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(str(p.parent.relative_to(ROOT)) for p in PACKAGE.rglob("__init__.py"))
    missing = [p for p in packages if p.removeprefix("service/") + "/" not in page]
    assert missing == []
