"""Import cycles among the modules of src/tquic (issue 16).

    python tools/import_graph.py            # one line per cycle; exit 1 if any
    python tools/import_graph.py --json     # the cycles as data
    python tools/import_graph.py --edges tquic.paths   # who imports what, under a prefix

Only imports that run when a module is loaded count: module-level ``import`` and
``from ... import`` statements, including those inside module-level ``try`` or
``if`` blocks, but not those under ``if TYPE_CHECKING:`` nor inside functions
(deferred imports run later, once every module is loaded).  Importing
``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``, so those are edges
too.  A cycle is a strongly connected component of more than one module; for
each, one shortest loop through it is printed.  Layers (tquic.core, tquic.paths,
...; DESIGN.md "The layers") are checked the same way: arrows must only point
down, so two layers importing each other is a cycle too, printed with the
imports that make it.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "tquic"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every .py under src/tquic."""
    out: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _load_time_imports(node.body)
            yield from _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _load_time_imports(block)
            for handler in node.handlers:
                yield from _load_time_imports(handler.body)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             known: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:  # relative import
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    yield name
    for alias in node.names:
        if f"{name}.{alias.name}" in known:  # "from pkg import submodule"
            yield f"{name}.{alias.name}"


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the tquic modules loading it runs (direct edges only)."""
    files = module_files(root)
    edges: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        for node in _load_time_imports(tree.body):
            for target in _targets(name, is_package, node, files):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # the packages' __init__ run first
                    prefix = ".".join(parts[:i])
                    # The importer's own packages were initialised before it ran:
                    # reaching them again is no new edge.
                    if prefix in files and prefix != name and not name.startswith(prefix + "."):
                        edges[name].add(prefix)
    return edges


def layer_of(module: str) -> str:
    """The layer (DESIGN.md "The layers") of a module: tquic.<first part>."""
    return ".".join(module.split(".")[:2])


def layer_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Layer -> the layers its modules import at load time."""
    out: dict[str, set[str]] = {}
    for module, targets in edges.items():
        layer = layer_of(module)
        out.setdefault(layer, set()).update(
            layer_of(t) for t in targets if layer_of(t) != layer)
    return out


def layer_edge_witnesses(edges: dict[str, set[str]], a: str, b: str) -> list[str]:
    """The module imports that make layer ``a`` depend on layer ``b``."""
    return sorted(f"{m} -> {t}" for m, ts in edges.items() if layer_of(m) == a
                  for t in ts if layer_of(t) == b)


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def shortest_loop(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest loop inside ``component`` (breadth-first from its first module)."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges[node] & members):
            if child == start:
                loop = [node]
                while loop[-1] != start:
                    loop.append(parent[loop[-1]])
                return [*reversed(loop), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return component  # pragma: no cover - a component always has a loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="List the import cycles among the modules of src/tquic "
                    "(module-level imports only; exit status 1 if there is any).")
    parser.add_argument("--json", action="store_true", help="print the cycles as JSON")
    parser.add_argument("--edges", metavar="PREFIX",
                        help="print each module under PREFIX with the tquic modules it imports")
    args = parser.parse_args(argv)
    edges = graph()
    if args.edges:
        for name in sorted(edges):
            if name.startswith(args.edges):
                print(f"{name}: {', '.join(sorted(edges[name])) or '-'}")
        return 0
    components = strongly_connected(edges)
    loops = [shortest_loop(edges, c) for c in components]
    layers = layer_graph(edges)
    layer_components = strongly_connected(layers)
    layer_loops = [shortest_loop(layers, c) for c in layer_components]
    if args.json:
        print(json.dumps({
            "module_cycles": [{"modules": c, "loop": loop}
                              for c, loop in zip(components, loops, strict=True)],
            "layer_cycles": [{"layers": c, "loop": loop,
                              "imports": {f"{a} -> {b}": layer_edge_witnesses(edges, a, b)
                                          for a, b in itertools.pairwise(loop)}}
                             for c, loop in zip(layer_components, layer_loops, strict=True)],
        }, indent=2))
    else:
        for component, loop in zip(components, loops, strict=True):
            print(f"module cycle ({len(component)} modules): {' -> '.join(loop)}")
        for component, loop in zip(layer_components, layer_loops, strict=True):
            print(f"layer cycle ({len(component)} layers): {' -> '.join(loop)}")
            for a, b in itertools.pairwise(loop):
                witnesses = layer_edge_witnesses(edges, a, b)
                more = f" (+{len(witnesses) - 3} more)" if len(witnesses) > 3 else ""
                print(f"    {a} -> {b}: {'; '.join(witnesses[:3])}{more}")
        print(f"{len(components)} module cycle(s), {len(layer_components)} layer cycle(s) "
              f"among {len(edges)} modules")
    return 1 if components or layer_components else 0

if __name__ == "__main__":
    sys.exit(main())
