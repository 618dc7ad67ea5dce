"""The package's shape: no import cycles, layering between sub-packages, small modules.

How the import graph is built (an ``ast`` walk over ``inpaintbench/``, nothing is imported):

* Nodes are modules (``inpaintbench/x/__init__.py`` is ``inpaintbench.x``). An edge ``a -> b`` means
  ``a`` executes an import of ``b``: ``import b``, ``from b import name`` (edge to ``b``) or
  ``from pkg import sub`` where ``pkg.sub`` is a module (edge to ``pkg.sub`` only). Parent packages
  that Python imports implicitly are not edges: otherwise every re-exporting ``__init__`` would
  close a cycle with each of its children, which tells nothing about the code's layering.
* Module-level AND function-level imports both count, for cycles and for the layering rules. A
  function-level import only defers a cycle to call time: the two modules still need each other,
  and the lazy import is exactly how cycles have hidden in this code so far. (Checking only
  module-level imports would pass today with fewer exceptions but would not find the analysis/
  and models/ <-> train/ cycles the issue names.)
* Imports under ``if TYPE_CHECKING:`` do not count: they never run, and annotations do not make a
  runtime dependency. ``importlib.import_module`` with a computed name is invisible to the walk.

Module length: a module over :data:`MAX_LINES` lines must say why in its docstring, on a line that
starts with ``Lines:`` (for example ``Lines: about 520, one table of constants that reads best whole.``).

The allow-lists below are known violations outside the house-keeping change that added this test;
each names its owner issue. The tests also fail when an entry is no longer needed, so the lists can
only shrink.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "inpaintbench"
MAX_LINES = 450
REASON = re.compile(r"^\s*Lines:\s*\S", re.MULTILINE)

# Edges removed before looking for cycles. Each one closes a cycle today.
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {
}

# Sub-packages that must not depend on the layers above them.
LOWER = ("inpaintbench.models", "inpaintbench.metrics")
UPPER = ("inpaintbench.train", "inpaintbench.analysis", "inpaintbench.cli")
ALLOWED_LAYER_EDGES: dict[tuple[str, str], str] = {}

# Modules over MAX_LINES without a stated reason, path relative to inpaintbench/.
ALLOWED_LONG: dict[str, str] = {
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, except under ``if TYPE_CHECKING:``."""
    out: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _resolve(target: str, mods: dict[str, Path]) -> str | None:
    """The deepest package module that ``target`` names (``a.b.func`` -> ``a.b``)."""
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


@lru_cache(maxsize=1)
def import_graph() -> dict[str, frozenset[str]]:
    mods = _modules()
    graph: dict[str, frozenset[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in mods]
            targets.update(subs)
            if len(subs) < len(node.names):
                targets.add(module)
        resolved = {_resolve(t, mods) for t in targets if t == "inpaintbench" or t.startswith("inpaintbench.")}
        graph[name] = frozenset(r for r in resolved if r and r != name)
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return found


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_module_and_function_level_imports() -> None:
    g = import_graph()
    assert "inpaintbench.errors" in g["inpaintbench.weights"]  # module level
    assert "inpaintbench.analysis.plots" in g["inpaintbench.analysis.report"]  # inside build_report
    assert "inpaintbench.train.loop" not in g["inpaintbench.train.records"]  # under TYPE_CHECKING only


def test_cycle_finder_finds_a_planted_cycle() -> None:
    planted = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert cycles(planted) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_import_cycles() -> None:
    g = import_graph()
    pruned = {a: frozenset(b for b in bs if (a, b) not in ALLOWED_CYCLE_EDGES) for a, bs in g.items()}
    found = cycles(pruned)
    assert not found, "import cycles (module- and function-level imports):\n" + "\n".join(
        "  " + " <-> ".join(c) + ":  " + ", ".join(f"{a} -> {b}" for a in c for b in sorted(g[a]) if b in c)
        for c in found
    )


def test_allowed_cycle_edges_still_exist_and_still_close_a_cycle() -> None:
    g = import_graph()
    stale = [e for e in ALLOWED_CYCLE_EDGES if e[1] not in g.get(e[0], ())]
    assert not stale, f"remove from ALLOWED_CYCLE_EDGES (edge gone): {stale}"
    in_cycle = {m for c in cycles(g) for m in c}
    needless = [e for e in ALLOWED_CYCLE_EDGES if not (e[0] in in_cycle and e[1] in in_cycle)]
    assert not needless, f"remove from ALLOWED_CYCLE_EDGES (no longer part of a cycle): {needless}"


def test_models_and_metrics_do_not_import_train_analysis_or_cli() -> None:
    g = import_graph()
    bad = sorted(
        (a, b)
        for a, bs in g.items()
        if _in(a, LOWER)
        for b in bs
        if _in(b, UPPER) and (a, b) not in ALLOWED_LAYER_EDGES
    )
    assert not bad, f"lower layers importing upper ones: {bad}"
    stale = [e for e in ALLOWED_LAYER_EDGES if e[1] not in g.get(e[0], ())]
    assert not stale, f"remove from ALLOWED_LAYER_EDGES: {stale}"


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def test_modules_are_short_or_say_why() -> None:
    too_long = []
    for path in _modules().values():
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and rel not in ALLOWED_LONG and not REASON.search(_docstring(path)):
            too_long.append(f"{rel} ({n} lines)")
    assert not too_long, f"over {MAX_LINES} lines without a 'Lines: <reason>' docstring line: {too_long}"


def test_allowed_long_modules_are_still_long() -> None:
    stale = []
    for rel in ALLOWED_LONG:
        path = ROOT / rel
        if not path.is_file() or len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES:
            stale.append(rel)
    assert not stale, f"remove from ALLOWED_LONG: {stale}"


def test_architecture_doc_lists_every_module_and_only_real_ones() -> None:
    """docs/ARCHITECTURE.md's package map stays true as modules come and go."""
    doc = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text()
    listed = set(re.findall(r"`(inpaintbench/[\w/]+\.py)`", doc))
    actual = {p.relative_to(ROOT.parent).as_posix() for p in ROOT.rglob("*.py")}
    assert not actual - listed, f"add to docs/ARCHITECTURE.md: {sorted(actual - listed)}"
    assert not listed - actual, f"remove from docs/ARCHITECTURE.md: {sorted(listed - actual)}"
