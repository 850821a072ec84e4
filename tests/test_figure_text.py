"""Figures stay readable where students see them (issue 17, item 5): cl_teach/legible.py's rules.

No source sets a text below :data:`MIN_FONT_PT` or a figure wider than :data:`COLUMN_INCHES`; no
rc size resolves below the floor; every figure the executed notebooks show fits the site's column
(else the browser shrinks it, text included); the package's own figures meet the floor when drawn.
Each check is shown catching a broken case. (The site's column is measured in Chromium by
tests/browser/test_site.py, which also fails a page whose figures are drawn shrunk.)
"""
from __future__ import annotations

import ast
import base64
import json
import struct
from pathlib import Path

import matplotlib
import pytest
import torch

from cl_teach import plotting  # noqa: F401  - its rc settings are the course's
from cl_teach.legible import COLUMN_INCHES, MIN_FONT_PT, smallest_text_pt

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("cl_teach/**/*.py"), *ROOT.glob("notebooks/src/*.py")])
NAMED_SMALL = {"xx-small", "x-small", "small"}          # 5.8, 6.9 and 8.3 pt at font.size 10
SIZE_KEYWORDS = {"fontsize", "labelsize", "size"}       # size=: only in text calls, see below
TEXT_CALLS = {"text", "annotate", "set_title", "suptitle", "set_xlabel", "set_ylabel", "legend",
              "set_xticks", "set_yticks", "set_xticklabels", "set_yticklabels", "tick_params", "title"}
#: The widest PNG shown at >= 97% of its width in the site's 1,026 px column.
MAX_PNG_PX = round(1026 / 0.97)


def too_small_or_wide(source: str) -> list[str]:
    """``line: what`` for each constant text size under the floor and each constant figure width
    over the column in a Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        for kw in node.keywords:
            v = kw.value
            sized = kw.arg in SIZE_KEYWORDS and (kw.arg != "size" or name in TEXT_CALLS)
            number = isinstance(v, ast.Constant) and type(v.value) in (int, float)
            if sized and isinstance(v, ast.Constant) and (
                    (number and v.value < MIN_FONT_PT) or v.value in NAMED_SMALL):
                found.append(f"{node.lineno}: {name}({kw.arg}={v.value!r})")
            if kw.arg == "figsize" and isinstance(v, ast.Tuple) and isinstance(v.elts[0], ast.Constant) \
                    and v.elts[0].value > COLUMN_INCHES:
                found.append(f"{node.lineno}: {name}(figsize=({v.elts[0].value}, ...))")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_sets_small_text_or_a_wide_figure(path):
    assert too_small_or_wide(path.read_text(encoding="utf-8")) == []


def test_the_scan_catches_small_text_and_wide_figures():
    bad = ("ax.legend(fontsize=7)\nax.tick_params(labelsize='x-small')\nfig = Figure(figsize=(16, 11))\n"
           "ax.text(0, 0, 's', size=6)\n")
    good = "ax.legend(fontsize=9)\nfig = Figure(figsize=(10, 3))\nAugment(size=14)\nax.set_title('t')\n"
    assert len(too_small_or_wide(bad)) == 4
    assert too_small_or_wide(good) == []


def rc_too_small(rc) -> list[str]:
    """The rc font sizes (``*size`` keys naming a text size) that resolve below the floor."""
    from matplotlib.font_manager import FontProperties
    keys = [k for k in rc if k.endswith(("fontsize", "labelsize", "titlesize")) or k == "font.size"]
    with matplotlib.rc_context({k: rc[k] for k in keys}):
        return [k for k in keys if FontProperties(size=matplotlib.rcParams[k]).get_size_in_points()
                < MIN_FONT_PT]


def test_rc_sizes_meet_the_floor():
    assert rc_too_small(matplotlib.rcParams) == []
    assert rc_too_small({**matplotlib.rcParams, "legend.fontsize": "x-small"}) == ["legend.fontsize"]


def png_widths(path: Path) -> list[tuple[int, int]]:
    """(cell index, width in px) of every PNG output of a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            if "image/png" in o.get("data", {}):
                head = base64.b64decode(o["data"]["image/png"][:64])
                out.append((i, struct.unpack(">I", head[16:20])[0]))
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: p.stem)
def test_executed_figures_fit_the_column(path):
    wide = [(i, w) for i, w in png_widths(path) if w > MAX_PNG_PX]
    assert not wide, f"(cell, px) wider than {MAX_PNG_PX} px: shrunk on the site, text and all: {wide}"


def test_the_width_check_catches_a_wide_figure(tmp_path):
    import io

    from matplotlib.figure import Figure
    buf = io.BytesIO()
    Figure(figsize=(16, 2)).savefig(buf, format="png", dpi=100)
    nb = {"cells": [{"outputs": [{"data": {"image/png": base64.b64encode(buf.getvalue()).decode()}}]}]}
    (tmp_path / "wide.ipynb").write_text(json.dumps(nb))
    assert png_widths(tmp_path / "wide.ipynb") == [(0, 1600)]


def _package_figures():
    from cl_teach.lineage import family_tree
    from cl_teach.train import History
    h = History()
    for s in range(5):
        h.log(s, loss=1.0 / (s + 1), knn=0.1 * s)
    m = {f"step {s}": torch.eye(8) for s in range(5)}
    yield "family_tree", family_tree()
    yield "plot_history", plotting.plot_history(h, keys=("loss", "knn"), reference={"knn": 0.3})
    yield "show_images", plotting.show_images(torch.rand(12, 1, 8, 8), nrow=12,
                                              titles=[str(i) for i in range(12)])
    yield "plot_matrices", plotting.plot_matrices(m, title="five matrices")


@pytest.mark.parametrize("name,fig", list(_package_figures()), ids=lambda v: v if isinstance(v, str) else "")
def test_package_figures_meet_the_floor_and_the_column(name, fig):
    assert smallest_text_pt(fig) >= MIN_FONT_PT
    assert fig.get_size_inches()[0] <= COLUMN_INCHES + 1e-9


def test_the_floor_check_catches_small_text():
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    ax.plot([0, 1], label="x")
    ax.legend(fontsize=7)
    fig = ax.figure
    assert smallest_text_pt(fig) == 7
