"""The family tree of notebook 00 is consistent: parents exist and come first, each method sits in
its family's lane and a column no earlier than its parents', and every notebook it names exists."""
import io
from pathlib import Path

import pytest

from cl_teach.lineage import COLUMNS, FAMILIES, LINEAGE, Method, family_tree


def overlapping_boxes(methods) -> list[tuple[str, str]]:
    """Pairs of method boxes whose drawn rectangles intersect (measured on the rendered figure)."""
    fig = family_tree(methods)
    fig.savefig(io.BytesIO(), format="png")                  # lays the boxes out
    boxes = [(t.get_text().split(" (")[0], t.get_bbox_patch().get_window_extent())
             for t in fig.axes[0].texts if t.get_bbox_patch() is not None]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]

SRC = Path(__file__).resolve().parent.parent / "notebooks" / "src"


def problems(methods) -> list[str]:
    by_name, out = {m.name: m for m in methods}, []
    notebooks = {p.name[:2] for p in SRC.glob("[0-9][0-9]_*.py")}
    for m in methods:
        if m.family not in FAMILIES:
            out.append(f"{m.name}: unknown family {m.family!r}")
        if not 0 <= m.col < len(COLUMNS):
            out.append(f"{m.name}: column {m.col} outside the {len(COLUMNS)} columns")
        if m.notebook and m.notebook not in notebooks:
            out.append(f"{m.name}: notebook {m.notebook} does not exist")
        for p in m.parents:
            if p not in by_name:
                out.append(f"{m.name}: parent {p!r} is not in the tree")
            elif by_name[p].year > m.year or by_name[p].col > m.col:
                out.append(f"{m.name} ({m.year}) comes before its parent {p} ({by_name[p].year})")
    spots = [(m.family, m.col, m.row) for m in methods]
    out += [f"two boxes at {s}" for s in {s for s in spots if spots.count(s) > 1}]
    return out


def test_the_tree_is_consistent_and_draws():
    assert problems(LINEAGE) == []
    assert len(family_tree().axes[0].texts) == len(LINEAGE) + len(FAMILIES)


@pytest.mark.parametrize("broken", [
    lambda m: m._replace(year=2030.0) if m.name == "SimCLR" else m,          # parent after child
    lambda m: m._replace(parents=("MoCo v9",)) if m.name == "BYOL" else m,   # unknown parent
    lambda m: m._replace(notebook="99") if m.name == "SwAV" else m,          # no such notebook
    lambda m: m._replace(col=3, row=0.5) if m.name == "SimCLR" else m,       # drawn on top of MoCo
])
def test_a_broken_tree_is_caught(broken):
    assert problems([broken(m) for m in LINEAGE])


def test_no_two_boxes_overlap_on_the_figure():
    assert overlapping_boxes(LINEAGE) == []


def test_a_box_squeezed_between_two_is_caught():
    """Same family and column, but half a lane from each neighbour: a distinct spot, drawn on top."""
    squeezed = [m._replace(row=0.0) if m.name == "Debiased CL" else m for m in LINEAGE]
    assert not problems(squeezed)                            # the spot check alone misses it
    assert overlapping_boxes(squeezed)


def test_methods_taught_by_the_course_name_their_notebook():
    taught = {m.name for m in LINEAGE if m.notebook}
    assert {"SimCLR", "MoCo", "SwAV", "BYOL", "Barlow Twins", "DINO", "CLIP", "DeepCluster"} <= taught
    assert isinstance(LINEAGE[0], Method)
