"""Build, execute and check the course notebooks.

Each notebook has one source, ``notebooks/src/NN_name.py``, in the "percent" format
(``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines start with ``# ``).
``notebooks/NN_name.ipynb`` is built from it and committed executed (nbval needs the outputs).

    python tools/nbtool.py build  [NAMES...]   # .py -> .ipynb (no outputs)
    python tools/nbtool.py run    [NAMES...]   # build, execute in place, print wall times, and
                                               # regenerate the student copies (tools/exercises.py)
    python tools/nbtool.py check               # every .ipynb matches its source (CI runs this)
    python tools/nbtool.py retext [NAMES...]   # copy the source's text into the executed notebook,
                                               # outputs kept, when only markdown or comment lines
                                               # changed (refuses a change of code or NBVAL markers)

NAMES are stems like ``01_infonce_temperature``; none means all.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"


def parse_percent(text: str) -> list[dict]:
    """Split a percent-format script into ``[{"cell_type", "source"}]``.

    jupytext's reader (the format's reference implementation, the one JupyterLab uses to open the
    sources as notebooks): on every course source it gives the cells the hand-written parser it
    replaces gave.
    """
    import jupytext
    return [{"cell_type": c.cell_type, "source": c.source}
            for c in jupytext.reads(text, fmt="py:percent").cells]


def build(stem: str):
    import nbformat
    cells = parse_percent((SRC_DIR / f"{stem}.py").read_text(encoding="utf-8"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(cells):
        new = nbformat.v4.new_markdown_cell if c["cell_type"] == "markdown" else nbformat.v4.new_code_cell
        cell = new(c["source"])
        cell["id"] = f"c{i:02d}"
        nb.cells.append(cell)
    return nb


def execute(nb, timeout: int = 900):
    """Execute a built notebook in place as the course runs it (kernel python3, cwd notebooks/).

    Raises what nbclient raises (e.g. CellExecutionError); the outputs up to there stay in ``nb``.
    """
    from nbclient import NotebookClient
    from nbclient_wake import install
    install()                     # the Output-widget stall (issue 17): see tools/nbclient_wake.py
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(NB_DIR)}}).execute()
    return nb


def run(stem: str, timeout: int = 900) -> float:
    import nbformat
    nb = build(stem)
    env_threads = os.environ.setdefault("CL_TEACH_THREADS", "1")
    t = time.perf_counter()
    execute(nb, timeout)
    wall = time.perf_counter() - t
    nbformat.write(nb, NB_DIR / f"{stem}.ipynb")
    print(f"{stem}: {wall:.1f} s (threads={env_threads})", flush=True)
    return wall


def check() -> int:
    """Every notebook's cells equal its source's, and every source has its notebook."""
    bad = []
    stems = sorted(p.stem for p in SRC_DIR.glob("[0-9][0-9]_*.py"))
    for stem in stems:
        ipynb = NB_DIR / f"{stem}.ipynb"
        if not ipynb.exists():
            bad.append(f"{ipynb} missing: run `python tools/nbtool.py run {stem}`")
            continue
        have = [(c["cell_type"], "".join(c["source"])) for c in json.loads(ipynb.read_text())["cells"]]
        want = [(c["cell_type"], c["source"]) for c in parse_percent((SRC_DIR / f"{stem}.py").read_text())]
        if have != want:
            bad.append(f"{ipynb} differs from notebooks/src/{stem}.py: rebuild with "
                       f"`python tools/nbtool.py run {stem}`")
        elif not any(c.get("outputs") for c in json.loads(ipynb.read_text())["cells"]
                     if c["cell_type"] == "code"):
            bad.append(f"{ipynb} has no outputs: execute it")
    for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"):
        if p.stem not in stems:
            bad.append(f"{p} has no source notebooks/src/{p.stem}.py")
    print("\n".join(bad) or f"{len(stems)} notebooks in sync with their sources")
    return 1 if bad else 0


def _code_only(source: str):
    """What can change what a code cell computes or how nbval checks it: its syntax tree (comments
    and layout dropped) and its NBVAL marker lines; the non-comment lines where it does not parse."""
    import ast
    markers = [line.strip() for line in source.split("\n") if line.strip().startswith("# NBVAL")]
    try:
        return ast.dump(ast.parse(source)), markers
    except SyntaxError:                                          # e.g. an IPython magic
        return [line.rstrip() for line in source.split("\n")
                if line.strip() and not line.strip().startswith("#")], markers


def retext(stem: str) -> bool:
    """Give ``notebooks/<stem>.ipynb`` its source's text when only markdown or comments differ.

    Returns whether the notebook changed. Raises ValueError (naming the cell) when the cells
    differ in number, kind, code or NBVAL markers: that notebook must be re-executed (``run``).
    """
    import nbformat
    path = NB_DIR / f"{stem}.ipynb"
    nb = nbformat.read(path, as_version=4)
    want = parse_percent((SRC_DIR / f"{stem}.py").read_text(encoding="utf-8"))
    if [c.cell_type for c in nb.cells] != [c["cell_type"] for c in want]:
        raise ValueError(f"{path}: the cells differ in number or kind from notebooks/src/{stem}.py; "
                         f"re-execute it with `python tools/nbtool.py run {stem}`")
    changed = False
    for i, (cell, new) in enumerate(zip(nb.cells, want, strict=True)):
        if cell.source == new["source"]:
            continue
        if cell.cell_type == "code" and _code_only(cell.source) != _code_only(new["source"]):
            raise ValueError(f"{path}, cell {i}: its code or NBVAL markers changed, not only comments; "
                             f"re-execute it with `python tools/nbtool.py run {stem}`")
        cell.source, changed = new["source"], True
    if changed:
        nbformat.write(nb, path)
    return changed


def _stems(args):
    return args or sorted(p.stem for p in SRC_DIR.glob("[0-9][0-9]_*.py"))


if __name__ == "__main__":
    cmd, *names = sys.argv[1:] or ["check"]
    if cmd == "build":
        import nbformat
        for s in _stems(names):
            nbformat.write(build(s), NB_DIR / f"{s}.ipynb")
    elif cmd == "run":
        total = sum(run(s) for s in _stems(names))
        print(f"total: {total:.1f} s")
        # Keep the student copies (solutions stripped) in step with the sources.
        import subprocess
        subprocess.run([sys.executable, str(ROOT / "tools" / "exercises.py")], check=True)
    elif cmd == "check":
        sys.exit(check())
    elif cmd == "retext":
        for s in _stems(names):
            print(f"{s}: {'text updated, outputs kept' if retext(s) else 'unchanged'}")
        import subprocess
        subprocess.run([sys.executable, str(ROOT / "tools" / "exercises.py")], check=True)
    else:
        sys.exit(__doc__)
