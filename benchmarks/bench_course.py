"""Course wall time: execute every notebook headless, time it, compare with its stated budget.

Each ``notebooks/src/NN_name.py`` is built and executed with ``tools/nbtool.py``'s machinery
(nbclient, kernel ``python3``, one torch thread) *in memory*: the committed ``.ipynb`` files are
not rewritten. The budget is read from the notebook's "**Time budget:** about X seconds/minutes"
line (default 2 minutes, CURRICULUM.md). Notebooks run one after another (``--jobs 2`` runs two
at a time as the CI does: then the total is the wall time of the whole run, not the sum).
Target: every notebook within its budget, the course <= 25 minutes on 2 cores.

    CL_TEACH_THREADS=1 .venv/bin/python benchmarks/bench_course.py              # all notebooks
    CL_TEACH_THREADS=1 .venv/bin/python benchmarks/bench_course.py 00_welcome   # some

Writes benchmarks/results/course.json, course.csv and course.png. Takes the course's own time
(about 15-25 minutes): the lead runs it at the end. ``--write`` also writes each executed
notebook back to ``notebooks/`` (so one run re-executes the course and times it).
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbtool  # noqa: E402

DEFAULT_BUDGET_S = 120.0
COURSE_TARGET_S = 25 * 60.0
_BUDGET = re.compile(r"time budget:?\**:?[\s#]*(?:about|~|<=|under)?[\s#]*"   # "#": a wrapped line
                     r"([\d.]+)\s*(seconds?|s\b|minutes?|min)", re.IGNORECASE)


def stated_budget(stem: str) -> tuple[float, str]:
    """Seconds from the notebook's "Time budget: about X ..." line, and the line itself."""
    text = (nbtool.SRC_DIR / f"{stem}.py").read_text(encoding="utf-8")
    m = _BUDGET.search(text)
    if not m:
        return DEFAULT_BUDGET_S, "(none stated: default 2 minutes)"
    value, unit = float(m.group(1)), m.group(2).lower()
    return (value * 60 if unit.startswith("min") else value), m.group(0)


def execute(stem: str, timeout: int, write: bool = False) -> dict:
    """Build and execute one notebook in memory; wall and CPU time of the kernel process tree."""
    nb = nbtool.build(stem)
    os.environ.setdefault("CL_TEACH_THREADS", "1")
    load0, t = C.loadavg(), time.perf_counter()
    error = None
    try:
        nbtool.execute(nb, timeout)
    except Exception as e:  # noqa: BLE001 - record the failure and go on with the course
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300] if str(e).strip() else ''}"
        traceback.print_exc(limit=1)
    wall = time.perf_counter() - t
    if write and error is None:                      # --write: commit-ready executed notebook
        import nbformat
        nbformat.write(nb, nbtool.NB_DIR / f"{stem}.ipynb")
    budget, line = stated_budget(stem)
    return {"notebook": stem, "wall_s": round(wall, 1), "budget_s": budget, "budget_line": line,
            "within_budget": error is None and wall <= budget, "error": error,
            "loadavg_start": load0, "loadavg_end": C.loadavg()}


def plot(rows, total, wall_total):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.5))
    names = [r["notebook"] for r in rows][::-1]
    walls = [r["wall_s"] for r in rows][::-1]
    budgets = [r["budget_s"] for r in rows][::-1]
    colors = ["C3" if (r["error"] or not r["within_budget"]) else "C0" for r in rows][::-1]
    ax.barh(names, walls, color=colors, label="measured wall time")
    ax.scatter(budgets, names, marker="|", s=250, color="k", zorder=3, label="stated budget")
    for i, w in enumerate(walls):
        ax.text(w, i, f" {w:.0f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds (1 torch thread)")
    ax.set_title(f"Course wall time: sum {total / 60:.1f} min, run {wall_total / 60:.1f} min "
                 f"(target {COURSE_TARGET_S / 60:.0f} min)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, max(walls + budgets) * 1.2)
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="stems like 05_simclr; default: all")
    ap.add_argument("--jobs", type=int, default=1, help="notebooks at a time (CI: 2)")
    ap.add_argument("--timeout", type=int, default=900, help="per cell, seconds")
    ap.add_argument("--out", default="course")
    ap.add_argument("--write", action="store_true",
                    help="write each executed notebook back to notebooks/ (re-executes the course)")
    a = ap.parse_args(argv)
    stems = nbtool._stems(a.notebooks)
    info = C.machine()
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        rows = list(pool.map(lambda s: execute(s, a.timeout, a.write), stems))
    wall_total = time.perf_counter() - t
    total = sum(r["wall_s"] for r in rows)
    print(f"{'notebook':32s} {'wall s':>7s} {'budget s':>8s}  ok")
    for r in rows:
        ok = "ERROR " + r["error"] if r["error"] else ("yes" if r["within_budget"] else "OVER")
        print(f"{r['notebook']:32s} {r['wall_s']:7.1f} {r['budget_s']:8.0f}  {ok}")
    print(f"sum {total:.0f} s ({total / 60:.1f} min), run wall {wall_total / 60:.1f} min "
          f"with --jobs {a.jobs}; "
          f"target {COURSE_TARGET_S / 60:.0f} min")
    C.save_json(a.out, {"machine": info, "jobs": a.jobs, "threads": os.environ.get("CL_TEACH_THREADS"),
                        "rows": rows, "sum_s": total, "run_wall_s": wall_total,
                        "course_target_s": COURSE_TARGET_S,
                        "course_within_target": wall_total <= COURSE_TARGET_S})
    C.RESULTS.mkdir(exist_ok=True)
    with open(C.RESULTS / f"{a.out}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["notebook", "wall_s", "budget_s", "within_budget", "error"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in w.fieldnames})
    C.save_fig(plot(rows, total, wall_total), a.out)


if __name__ == "__main__":
    main()
