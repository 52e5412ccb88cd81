"""The package's modules import one way: no module reaches, through any chain of imports,
back to itself.

Read from the source with `ast`, so an import counts wherever it is written: at the top,
inside a function, or under ``if TYPE_CHECKING:`` (a type a module names is still a
dependency). ``from .x import y`` imports module ``stanbhm.x``, or ``stanbhm.x.y`` when
``y`` is a submodule; importing ``stanbhm.a.b`` counts as importing that module alone,
not its package ``stanbhm.a``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stanbhm"


def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: its dotted name -> (file, whether it is a package)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, package)
    return out


def imported(name: str, package: bool, node: ast.Import | ast.ImportFrom,
             known: dict[str, tuple[Path, bool]]) -> list[str]:
    """The package's modules one import statement of module `name` names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = name.split(".") if package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    out = []
    for alias in node.names:
        submodule = f"{prefix}.{alias.name}"
        out.append(submodule if submodule in known else prefix)
    return out


def graph() -> dict[str, set[str]]:
    """Each module -> the package's modules it imports."""
    known = modules()
    edges = {}
    for name, (path, package) in known.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(imported(name, package, node, known))
        edges[name] = {m for m in found if m in known and m != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    """Relative, function-level and TYPE_CHECKING imports all count."""
    edges = graph()
    assert "stanbhm.plan" in edges["stanbhm.planner"]  # top level, relative
    assert "stanbhm.passes.base" in edges["stanbhm.passes.absorb"]  # `from .base import`
    assert "stanbhm.summary" in edges["stanbhm.results"]  # inside a method
    assert "stanbhm.plan" in edges["stanbhm.passes.base"]  # the Plan type


def test_cycles_are_found() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    edges = graph()
    found = cycles(edges)
    lines = []
    for component in found:
        lines.append(f"{len(component)} modules import each other:")
        lines += [f"  {m} -> {', '.join(sorted(edges[m] & set(component)))}"
                  for m in component]
    assert not found, "\n".join(lines)


def test_no_module_imports_another_modules_private_names() -> None:
    """A name with a leading underscore is its module's own: prediction once reached into
    `spec` for `_predictor` and `_trials`, which `spec` was free to change under it."""
    reached = []
    for name, (path, _) in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or
                                                     (node.module or "").startswith("stanbhm")):
                reached += [f"{name}: {node.module}.{alias.name}" for alias in node.names
                            if alias.name.startswith("_") and alias.name != "__version__"]
    assert reached == []
