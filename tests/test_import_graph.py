"""tools/import_graph.py: finds import cycles, and the layers below the engine
(paths, cc, crypto, wire) do not import core/ when loaded (DESIGN.md "The layers")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parent.parent / "tools" / "import_graph.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


def test_layers_below_the_engine_do_not_import_it() -> None:
    tool = _tool()
    layers = tool.layer_graph(tool.graph())
    for lower in ("tquic.paths", "tquic.cc", "tquic.crypto", "tquic.wire"):
        assert "tquic.core" not in layers[lower], (
            lower, tool.layer_edge_witnesses(tool.graph(), lower, "tquic.core"))


def test_a_planted_cycle_is_found_and_deferred_imports_are_not(tmp_path: Path) -> None:
    tool = _tool()
    pkg = tmp_path / "tquic"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from tquic.sub import b\n")
    (pkg / "sub" / "a.py").write_text("from tquic.sub.b import X\n")
    (pkg / "sub" / "b.py").write_text("from . import c\nX = 1\n")
    (pkg / "sub" / "c.py").write_text("import tquic.sub.a\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tquic import e\n"
        "def f() -> None:\n    from tquic import e\n")
    (pkg / "e.py").write_text("from tquic import d\n")
    edges = tool.graph(tmp_path)
    assert edges["tquic.d"] == set()  # TYPE_CHECKING and function-level imports
    assert tool.strongly_connected(edges) == [["tquic.sub.a", "tquic.sub.b", "tquic.sub.c"]]
    loop = tool.shortest_loop(edges, ["tquic.sub.a", "tquic.sub.b", "tquic.sub.c"])
    assert loop == ["tquic.sub.a", "tquic.sub.b", "tquic.sub.c", "tquic.sub.a"]
