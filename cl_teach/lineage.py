"""The family tree of contrastive and self-supervised methods, as data and as one figure.

Each :class:`Method` says when it appeared (first arXiv or conference version), which family it
belongs to, what it changed over its parents, and where the course teaches it. The figure
(:func:`family_tree`) draws one lane per family against time, with an arrow from each parent.
Source 003 of the course shows the lineage of the negative-based image methods; the other
families and the metric-learning ancestors are added here.
"""
from __future__ import annotations

import textwrap
from typing import NamedTuple

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch


class Method(NamedTuple):
    """One method of the tree."""

    name: str
    year: float            # year + (month - 1) / 12 of the first public version
    family: str
    changed: str           # what it changed over its parents, in a few words
    parents: tuple = ()
    notebook: str = ""     # two-digit number of the course notebook that teaches it ("" = none)
    col: int = 0           # column of the drawing (COLUMNS: a period of time)
    row: float = 0.0       # offset inside its family's lane, to keep boxes apart


FAMILIES = ("metric learning", "negatives", "clustering", "no negatives", "redundancy reduction",
            "text and image-text")
LINEAGE = (
    Method("Contrastive loss", 2006.4, "metric learning", "pairs + a margin", (), "02", 0, 0),
    Method("Triplet / FaceNet", 2015.2, "metric learning", "anchor, pos, neg; hard mining",
           ("Contrastive loss",), "02", 1, 0.5),
    Method("N-pair", 2016.9, "metric learning", "N-1 negatives at once",
           ("Triplet / FaceNet",), "02", 1, -0.5),
    Method("SupCon", 2020.3, "metric learning", "labels choose the positives",
           ("N-pair", "SimCLR"), "02", 3, 0),
    Method("InstDisc", 2018.4, "negatives", "each image its own class; memory bank", (), "", 2, 0.5),
    Method("CPC / InfoNCE", 2018.5, "negatives", "InfoNCE: (N+1)-way classification",
           ("N-pair",), "01", 2, -0.5),
    Method("MoCo", 2019.9, "negatives", "queue + momentum key encoder",
           ("InstDisc", "CPC / InfoNCE"), "07", 3, 0.5),
    Method("SimCLR", 2020.1, "negatives", "in-batch negatives, projector, strong augmentation",
           ("CPC / InfoNCE",), "05", 3, -0.5),
    Method("MoCo v2", 2020.2, "negatives", "+ SimCLR's projector and augmentations",
           ("MoCo", "SimCLR"), "07", 4, 0.5),
    Method("Debiased CL", 2020.5, "negatives", "corrects the negatives for same-class draws",
           ("SimCLR",), "10", 4, -0.5),
    Method("MoCo v3", 2021.3, "negatives", "ViT, no queue; frozen patch projection",
           ("MoCo v2",), "07", 5, 0),
    Method("DeepCluster", 2018.6, "clustering", "offline k-means -> pseudo-labels", (), "08", 2, 0),
    Method("SwAV", 2020.5, "clustering", "online balanced codes (Sinkhorn), multi-crop",
           ("DeepCluster",), "08", 4, 0),
    Method("DINO", 2021.3, "clustering", "self-distillation, centering + sharpening",
           ("SwAV", "BYOL"), "12", 5, 0),
    Method("DINOv2", 2023.3, "clustering", "+ KoLeo, iBOT, Sinkhorn centering", ("DINO",), "12", 7, 0),
    Method("BYOL", 2020.5, "no negatives", "predictor + EMA target", ("MoCo",), "09", 4, 0.5),
    Method("SimSiam", 2020.9, "no negatives", "stop-gradient, no EMA", ("BYOL",), "09", 4, -0.5),
    Method("Barlow Twins", 2021.2, "redundancy reduction", "cross-correlation -> identity", (), "11", 5, 0.5),
    Method("VICReg", 2021.4, "redundancy reduction", "variance + invariance + covariance",
           ("Barlow Twins",), "", 6, -0.5),
    Method("CLIP", 2021.1, "text and image-text", "image-text InfoNCE, learned temperature",
           ("SimCLR",), "15", 5, 0.5),
    Method("WenLan", 2021.2, "text and image-text", "CLIP with MoCo queues", ("CLIP", "MoCo"), "16", 5, -0.5),
    Method("SimCSE", 2021.3, "text and image-text", "dropout as the augmentation", ("SimCLR",), "14", 6, 0.5),
    Method("CD-TOM, W-CLIP", 2021.5, "text and image-text", "Weibo: posts, hashtags, pictures",
           ("SimCSE", "CLIP"), "17", 6, -0.5),
)

COLUMNS = ("2006", "2015-16", "2018", "late 2019 -\nearly 2020", "mid 2020", "early 2021",
           "mid 2021", "2023")
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")   # Okabe-Ito


def family_tree(methods=LINEAGE) -> Figure:
    """The tree: one lane per family, one column per period, an arrow from each parent.

    Each box says what the method changed and which course notebook teaches it.

    Example:
        >>> fig = family_tree()
        >>> len(fig.axes[0].texts) >= len(LINEAGE)
        True
    """
    lane = {f: len(FAMILIES) - 1 - i for i, f in enumerate(FAMILIES)}
    pos = {m.name: (2.2 * m.col, 3.4 * lane[m.family] + 1.5 * m.row) for m in methods}
    colour = dict(zip(FAMILIES, COLOURS, strict=True))
    fig = Figure(figsize=(10.2, 14), layout="constrained")   # the site's column: 1,026 px
    ax = fig.add_subplot()
    for m in methods:
        for p in m.parents:
            ax.add_patch(FancyArrowPatch(pos[p], pos[m.name], arrowstyle="-|>", mutation_scale=11,
                                         color="0.6", lw=0.9, zorder=1, shrinkA=26, shrinkB=30,
                                         connectionstyle="arc3,rad=0.06"))
    for m in methods:
        taught = f"notebook {m.notebook}" if m.notebook else "not taught here"
        text = "\n".join([textwrap.fill(f"{m.name} ({int(m.year)})", 14), textwrap.fill(m.changed, 14),
                          f"[{taught}]".replace("notebook ", "nb ")])
        ax.text(*pos[m.name], text, ha="center", va="center", fontsize=9, zorder=2, linespacing=1.1,
                bbox=dict(boxstyle="round,pad=0.25", fc="white", ec=colour[m.family], lw=1.6))
    for f, i in lane.items():
        ax.text(-1.75, 3.4 * i, f.replace(" ", "\n", 1) if len(f) > 14 else f, ha="center", va="center",
                rotation=90, linespacing=1.0,
                fontsize=10, color=colour[f], fontweight="bold")
    ax.set_xticks([2.2 * c for c in range(len(COLUMNS))], COLUMNS, fontsize=9)
    ax.set_xlim(-2.1, 2.2 * (len(COLUMNS) - 1) + 1.0)
    ax.set_ylim(-1.7, 3.4 * len(FAMILIES) - 1.7)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("when the method first appeared (arXiv or conference)")
    ax.set_title("The family tree of contrastive and self-supervised methods\n(an arrow from each parent)")
    return fig
