"""The project's import graph: no circle among its modules, imports point one way.

Every ``import`` statement of every module of ``cosim``, ``learners`` and ``radio_models`` counts,
also those inside functions and under ``TYPE_CHECKING``: a circle closed by a lazy import still
ties two modules into one (neither can be read, tested or replaced without the other). A module
imports the modules it names: ``from cosim.channel import Channel`` imports the package
``cosim.channel`` (its ``__init__``), ``from cosim.sim import seeding`` the module
``cosim.sim.seeding``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cosim", "learners", "radio_models")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` (at ``path``) imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_scan_sees_lazy_and_relative_imports():
    graph = import_graph()
    # a relative import, an import inside a function, a module named in a from-import
    assert "cosim.channel.framing" in graph["cosim.channel.csma"]
    assert "cosim.cli.sweep" in graph["cosim.cli.main"]  # lazy: inside _parser()
    assert "cosim.sim.seeding" in graph["cosim.sim.engine"]  # from cosim.sim import seeding
    assert "cosim.channel" in graph["cosim.sim.v2v"]  # from cosim.channel import Channel: the package
    # the circle detector finds a circle when there is one
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_among_the_project_modules():
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_imports_point_one_way():
    """cosim -> learners and cosim -> radio_models, never back; learners and radio_models do not
    import each other."""
    graph = import_graph()
    for name, targets in graph.items():
        top = name.split(".")[0]
        allowed = {"cosim": set(PACKAGES), "learners": {"learners"}, "radio_models": {"radio_models"}}[top]
        wrong = sorted(t for t in targets if t.split(".")[0] not in allowed)
        assert not wrong, f"{name} imports {wrong}"
