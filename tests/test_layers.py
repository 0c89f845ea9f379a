"""The house's import rules, checked on the source: no import cycles (function-level imports
included), and imports point down -- front doors (api, cli, jobs) -> services ->
outbox / cache / models / db, with nothing below importing anything above."""

from __future__ import annotations

import ast
import pathlib

import eduflow

PACKAGE = pathlib.Path(eduflow.__file__).parent

# Lower layers may not import these (prefix match on the module name).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "eduflow.services": ("eduflow.api", "eduflow.cli", "eduflow.jobs"),
    "eduflow.outbox": ("eduflow.api", "eduflow.cli", "eduflow.jobs", "eduflow.services"),
    "eduflow.cache": ("eduflow.api", "eduflow.cli", "eduflow.jobs", "eduflow.services"),
    "eduflow.models": ("eduflow.api", "eduflow.cli", "eduflow.jobs", "eduflow.services"),
    "eduflow.metrics": ("eduflow.",),
}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the EduFlow modules it imports anywhere in its body."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                target = resolve(name) if name.startswith("eduflow") else None
                # A package's own __init__ is not an edge of its submodules.
                if target and target != module and not module.startswith(target + "."):
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_there_is_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    graph = import_graph()
    graph["eduflow.cache.stores"].add("eduflow.cache.health")  # health imports stores
    assert any({"eduflow.cache.health", "eduflow.cache.stores"} <= set(c) for c in cycles(graph))


def test_imports_point_down() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for layer, above in FORBIDDEN.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if target.startswith(above) and target != module
    ]
    assert upward == []


def test_no_module_is_over_about_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 420
    }
    assert long == {}
