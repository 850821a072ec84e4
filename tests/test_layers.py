"""The package's architecture, checked: no import cycle, every import points down the layers,
no module over 300 lines, losses only in ``losses/``.

The layers are the ones CONTRIBUTING.md describes; the test reads every ``import`` of every module
(also those inside functions), so a lazy import cannot hide a cycle.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "cl_teach"

#: bottom to top; a module may import its own layer or any layer below.
LAYERS = [
    ("core", ["_validate", "_notebook", "config", "distributed", "fallback", "__init__"]),
    ("data", ["augment", "data"]),
    ("models", ["models"]),
    ("losses", ["losses"]),
    ("methods", ["methods"]),
    ("evaluation", ["metrics", "intervals", "evaluation", "retrieval", "ranking"]),
    ("train", ["train"]),                     # its callbacks measure (CollapseMonitor, EvalCallback)
    ("view", ["fonts", "palette", "legible", "plotting", "lineage", "widgets"]),
    ("apps", ["apps"]),
    ("tools", ["prepare"]),
]
LEVEL = {top: i for i, (_, tops) in enumerate(LAYERS) for top in tops}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known) -> set:
    """The cl_teach modules ``name`` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:                             # from a package import a name
                t = t.rpartition(".")[0]
            if t.startswith("cl_teach") and t != name:
                out.add(t)
    return out


def layer(name: str) -> int:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LEVEL:
        raise AssertionError(f"cl_teach.{top} belongs to no layer: add it to LAYERS (and to "
                             f"CONTRIBUTING.md) or move it into one")
    return LEVEL[top]


def graph():
    mods = modules()
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def find_cycle(g):
    """One import cycle of g as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_import_points_down_the_layers():
    bad = [f"{n} (layer {LAYERS[layer(n)][0]}) imports {m} (layer {LAYERS[layer(m)][0]})"
           for n, ms in graph().items() for m in sorted(ms) if layer(m) > layer(n)]
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_module_over_300_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert all(v <= 300 for v in long.values()), {n: v for n, v in long.items() if v > 300}


def test_losses_live_only_in_losses():
    """A function whose name ends in _loss or _nce is a loss: it belongs in cl_teach/losses/."""
    strays = [f"{n}.{f.name}" for n, p in modules().items() if not n.startswith("cl_teach.losses")
              for f in ast.walk(ast.parse(p.read_text()))
              if isinstance(f, ast.FunctionDef) and f.name.endswith(("_loss", "_nce"))
              and not f.name.startswith("_")]
    assert not strays, f"losses outside cl_teach/losses/: {strays}"


# --- the checks can fail -----------------------------------------------------------------------

def test_find_cycle_finds_a_cycle_and_a_clean_graph():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_an_upward_import_is_caught():
    """config importing plotting (the cycle this test was written against) breaks the layer rule."""
    assert layer("cl_teach.plotting") > layer("cl_teach.config")
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer("cl_teach.weibo_models")


def test_imports_inside_functions_are_seen(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from .plotting import show\n")
    known = {"cl_teach.plotting", "cl_teach.config"}
    assert imports_of("cl_teach.config", p, known) == {"cl_teach.plotting"}
