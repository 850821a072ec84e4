"""Do the notebooks' asserted claims hold at other seeds and under another CPU kernel dispatch?

Every notebook is executed (in memory; the committed ``.ipynb`` files are not touched) at
``CL_TEACH_SEED`` = 0, 1, 2 with the machine's own kernels, and at seed 0 under
``ATEN_CPU_CAPABILITY=default`` (ATen's portable kernels: other floating-point bits, as another
CPU gives). A run keeps its claims when every cell runs: each claim is an ``assert`` in a cell.
For a failed run the first failing cell is recorded (index, first lines, the error). Each run's
``# NBVAL_CHECK_OUTPUT`` cells are also compared with the committed notebook (after the nbval
sanitizers): under the other dispatch they must be the same, or CI on another CPU goes red.

    .venv/bin/python benchmarks/claims.py                       # all notebooks, 2 at a time
    .venv/bin/python benchmarks/claims.py 04_alignment_uniformity --seeds 0 1 --jobs 1
    .venv/bin/python benchmarks/claims.py --merge               # update rows, keep the others

Writes benchmarks/results/claims.json (with the machine description). Takes about four times
the course's own time divided by --jobs (about 30 minutes at --jobs 2 on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbtool  # noqa: E402

OUT = C.RESULTS / "claims.json"


def _sanitizers():
    """The regexes of tests/nbval_sanitize.cfg (what nbval masks before comparing)."""
    import configparser
    import re
    cfg = configparser.ConfigParser(interpolation=None)      # the regexes hold "%"
    cfg.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def _checked_text(cell, subs) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif "data" in o and "text/plain" in o["data"]:
            out.append(o["data"]["text/plain"])
    text = "".join(out)
    for rx, rep in subs:
        text = rx.sub(rep, text)
    return text


def compare_checked(nb) -> dict | None:
    """The first ``# NBVAL_CHECK_OUTPUT`` cell whose output differs from the committed notebook."""
    import nbformat
    committed = nbformat.read(nbtool.NB_DIR / f"{nb.metadata['cl_teach_stem']}.ipynb", as_version=4)
    subs = _sanitizers()
    for i, (new, old) in enumerate(zip(nb.cells, committed.cells)):
        if new.cell_type == "code" and new.source.startswith("# NBVAL_CHECK_OUTPUT"):
            a, b = _checked_text(new, subs), _checked_text(old, subs)
            if a != b:
                return {"cell": i, "committed": b[-300:], "run": a[-300:]}
    return None


def worker(stem: str, timeout: int) -> dict:
    """Execute one notebook in this process's environment; report the first failing cell."""
    nb = nbtool.build(stem)
    nb.metadata["cl_teach_stem"] = stem
    t = time.perf_counter()
    error = None
    try:
        nbtool.execute(nb, timeout)
    except Exception as e:  # noqa: BLE001 - the failing cell is read from the outputs below
        error = f"{type(e).__name__}"
    first = None
    code_index = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_index += 1
        errs = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errs:
            first = {"cell": i, "code_cell": code_index,
                     "source": "\n".join(cell.source.splitlines()[:3]),
                     "error": f"{errs[0]['ename']}: {errs[0]['evalue'][:300]}"}
            break
    if error and first is None:
        first = {"cell": None, "error": error}
    diff = compare_checked(nb) if first is None else None
    return {"claims_held": first is None, "first_failure": first,
            "checked_output_same": first is None and diff is None, "first_checked_diff": diff,
            "wall_s": round(time.perf_counter() - t, 1)}


def run_one(stem: str, seed: int, dispatch: str, timeout: int) -> dict:
    env = dict(os.environ, CL_TEACH_SEED=str(seed), CL_TEACH_THREADS="1")
    env.pop("ATEN_CPU_CAPABILITY", None)
    if dispatch != "native":
        env["ATEN_CPU_CAPABILITY"] = dispatch
    r = subprocess.run([sys.executable, __file__, "--worker", stem, "--timeout", str(timeout)],
                       env=env, capture_output=True, text=True)
    try:
        row = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        row = {"claims_held": False, "wall_s": None,
               "first_failure": {"cell": None, "error": (r.stderr or r.stdout)[-500:]}}
    row = {"notebook": stem, "seed": seed, "dispatch": dispatch, **row}
    status = "held" if row["claims_held"] else f"FAILED at cell {row['first_failure']}"
    if row["claims_held"]:
        status += ", checked outputs " + ("as committed" if row.get("checked_output_same")
                                          else f"DIFFER: {row.get('first_checked_diff')}")
    print(f"{stem:30s} seed {seed} {dispatch:8s} {row['wall_s']} s  {status}", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="stems like 05_simclr; default: all")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dispatch", default="default",
                    help="ATEN_CPU_CAPABILITY of the extra run at the first seed ('' for none)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=900, help="per cell, seconds")
    ap.add_argument("--merge", action="store_true", help="keep rows of notebooks not run now")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, a.timeout)))
        return
    stems = nbtool._stems(a.notebooks)
    jobs = [(s, seed, "native") for s in stems for seed in a.seeds]
    if a.dispatch:
        jobs += [(s, a.seeds[0], a.dispatch) for s in stems]
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        rows = list(pool.map(lambda j: run_one(*j, a.timeout), jobs))
    import fcntl
    C.RESULTS.mkdir(exist_ok=True)
    with open(C.RESULTS / ".claims.lock", "w") as lock:       # several --merge runs at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = []
        if a.merge and OUT.exists():
            done = {(r["notebook"], r["seed"], r["dispatch"]) for r in rows}
            old = [r for r in json.loads(OUT.read_text())["rows"]
                   if (r["notebook"], r["seed"], r["dispatch"]) not in done]
        rows = sorted(old + rows, key=lambda r: (r["notebook"], r["dispatch"] != "native", r["seed"]))
        held = sum(r["claims_held"] for r in rows)
        same = all(r.get("checked_output_same") for r in rows if r["dispatch"] != "native")
        print(f"{held} / {len(rows)} runs kept all their claims; checked outputs under the other "
              f"dispatch {'as committed' if same else 'DIFFER'} ({(time.perf_counter() - t) / 60:.1f} min)")
        C.save_json("claims", {"machine": C.machine(), "threads": 1, "rows": rows,
                               "all_held": held == len(rows),
                               "checked_outputs_same_under_other_dispatch": same})


if __name__ == "__main__":
    main()
