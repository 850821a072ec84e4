"""The course as a student without root and without the Debian packages gets it (issue 17, item 4).

Run as root on a machine of the course's kind (it needs a user and a mount namespace); it changes
nothing outside ``--home``:

    python tools/no_debian.py                    # set-up, then every notebook; writes the report
    python tools/no_debian.py --stems 00_welcome 15_clip --skip-setup

1. A user (``clstudent``) gets a clone of this repository's HEAD in its home, with ``../shared``
   beside it (the Weibo corpus is the course's, not Debian's).
2. In a private mount namespace, every folder of :data:`HIDDEN` is covered by an empty one and
   ``/var/lib/dpkg/status`` by a copy without those packages, so the packages are absent to
   dpkg, to matplotlib's font scan and to the loaders alike; then the user, with Debian's own
   ``/usr/bin/python3`` (not root's pyenv) and a clean environment, runs ``scripts/setup.sh``.
3. Every notebook is executed there (nbclient, as ``tools/nbtool.py`` does, not written back); for
   each: did it finish, the error if not, its wall time, the fallback notices it printed, and how
   many ``NBVAL_CHECK_OUTPUT`` cells printed other text than the committed notebook (its numbers
   changed).

The report goes to ``benchmarks/results/no_debian.json`` and a table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The Debian packages scripts/setup.sh installs, and the folders that hold their files.
HIDDEN = {"dataset-fashion-mnist": ["/usr/share/datasets/fashion-mnist"],
          "fonts-noto-cjk": ["/usr/share/fonts/opentype/noto"],
          "fonts-noto-color-emoji": ["/usr/share/fonts/truetype/noto"],
          "openclipart-png": ["/usr/share/openclipart"],
          "chromium": ["/usr/lib/chromium", "/usr/bin/chromium"]}
NOTICE = re.compile(r"FALLBACK|FALLING BACK|GENERATED|fallback|no CJK font|not found", re.I)


def _filtered_dpkg_status(path: Path) -> None:
    """/var/lib/dpkg/status without the stanzas of the packages in :data:`HIDDEN`."""
    stanzas = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    keep = [s for s in stanzas if not any(s.startswith(f"Package: {p}\n") for p in HIDDEN)]
    path.write_text("\n\n".join(keep))


def as_student(user: str, home: Path, command: str, scratch: Path) -> int:
    """Run ``command`` (bash) as ``user`` in ``home``, the packages of :data:`HIDDEN` hidden."""
    empty = scratch / "empty"
    empty.mkdir(exist_ok=True)
    (scratch / "empty-file").write_text("")
    status = scratch / "dpkg-status"
    _filtered_dpkg_status(status)
    mounts = []
    for paths in HIDDEN.values():
        for p in paths:
            if Path(p).is_dir():
                mounts.append(f"mount --bind {empty} {p}")
            elif Path(p).exists():
                mounts.append(f"mount --bind {scratch / 'empty-file'} {p}")
    mounts.append(f"mount --bind {status} /var/lib/dpkg/status")
    env = {"HOME": str(home), "USER": user, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})  # the machine's index
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    inner = (" && ".join(mounts) + f" && cd {shlex.quote(str(home))} && exec setpriv --reuid={user} "
             f"--regid={user} --init-groups env -i {env_args} bash -c {shlex.quote(command)}")
    return subprocess.call(["unshare", "-m", "--propagation", "private", "bash", "-c", inner])


def execute(stem: str, timeout: int) -> dict:
    """Execute one notebook (inside the student's set-up); what it printed, not written back."""
    import nbformat
    from nbclient.exceptions import CellExecutionError
    sys.path.insert(0, str(ROOT / "tools"))
    import nbtool
    committed = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    nb = nbtool.build(stem)
    t, error = time.perf_counter(), None
    try:
        nbtool.execute(nb, timeout)
    except CellExecutionError as e:
        error = str(e).strip().splitlines()[-1][:300]
    except Exception as e:  # noqa: BLE001 - a timeout or a dead kernel is a result too
        error = f"{type(e).__name__}: {e}"[:300]
    wall = time.perf_counter() - t

    def text(cell):
        return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                       for o in cell.get("outputs", []) if o.get("name") != "stderr")

    notices, unreproduced, changed = [], [], 0
    for cell, old in zip(nb.cells, committed.cells, strict=True):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            for line in (o.get("text", "") or "").splitlines():
                line = line.strip()
                if line.startswith("!! NOT REPRODUCED"):
                    unreproduced.append(line.split("): ", 1)[-1][:200])
                elif NOTICE.search(line) and line[:160] not in notices:
                    notices.append(line[:160])
        if "NBVAL_CHECK_OUTPUT" in cell.source and text(cell) != text(old):
            changed += 1
    return {"stem": stem, "ok": error is None, "error": error, "seconds": round(wall, 1),
            "notices": sorted(notices, key=lambda n: not n.startswith("!!"))[:8],
            "not_reproduced": unreproduced, "checked_cells_changed": changed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--user", default="clstudent")
    ap.add_argument("--home", type=Path, default=Path("/home/clstudent"))
    ap.add_argument("--stems", nargs="*", help="notebooks to run (default: all; none: the set-up only)")
    ap.add_argument("--skip-setup", action="store_true", help="reuse the clone and its venv")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "no_debian.json")
    ap.add_argument("--execute", metavar="STEM", help=argparse.SUPPRESS)   # the inner step
    args = ap.parse_args(argv)
    if args.execute:
        print(json.dumps(execute(args.execute, args.timeout)))
        return 0
    if os.geteuid() != 0:
        ap.error("run as root: it creates the user and hides the packages in a mount namespace")
    user, home = args.user, args.home
    if subprocess.call(["id", user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        subprocess.check_call(["useradd", "--create-home", "--home-dir", str(home), user])
    clone = home / "cl-teach"
    report = {"user": user, "hidden": HIDDEN, "commit": subprocess.check_output(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], text=True).strip()}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.chmod(scratch, 0o755)
        if not args.skip_setup:
            subprocess.call(["rm", "-rf", str(clone)])
            subprocess.check_call(["git", "clone", "-q", str(ROOT), str(clone)])
            subprocess.check_call(["chown", "-R", f"{user}:{user}", str(clone)])
            shared = home / "shared"
            if not shared.exists():
                shared.symlink_to(ROOT.parent / "shared")
            t = time.perf_counter()
            rc = as_student(user, home, "cd cl-teach && PYTHON=/usr/bin/python3 bash scripts/setup.sh "
                            "> setup.log 2>&1; rc=$?; cat setup.log; exit $rc", scratch)
            report["setup"] = {"rc": rc, "seconds": round(time.perf_counter() - t),
                               "log": (clone / "setup.log").read_text()[-4000:]}
            print(f"set-up: rc {rc} in {report['setup']['seconds']} s", flush=True)
            if rc:
                args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
                return rc
        if args.skip_setup:                       # the clone gets this repository's HEAD
            subprocess.check_call(["git", "-c", "safe.directory=*", "-C", str(clone), "fetch", "-q",
                                   str(ROOT), "HEAD"])
            subprocess.check_call(["git", "-c", "safe.directory=*", "-C", str(clone), "reset", "-q",
                                   "--hard", "FETCH_HEAD"])
            subprocess.check_call(["chown", "-R", f"{user}:{user}", str(clone)])
        every = sorted(p.stem for p in (ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
        stems = every if args.stems is None else args.stems
        report["notebooks"] = []
        for stem in stems:
            out, err = home / f"{stem}.json", home / f"{stem}.stderr"   # the student's to write
            as_student(user, home, f"cd cl-teach && .venv/bin/python tools/no_debian.py --execute {stem} "
                       f"--timeout {args.timeout} > {out} 2> {err}", scratch)
            try:
                row = json.loads(out.read_text().strip().splitlines()[-1])
            except (OSError, IndexError, json.JSONDecodeError):
                row = {"stem": stem, "ok": False,
                       "error": err.read_text()[-300:] if err.exists() else "no output"}
            report["notebooks"].append(row)
            print(f"{stem}: {'ok' if row['ok'] else 'FAILED'} {row.get('seconds', '-')} s, "
                  f"{row.get('checked_cells_changed', '-')} checked cells changed, "
                  f"{len(row.get('not_reproduced', []))} claims not reproduced; "
                  f"{row.get('error') or ''} {row.get('notices', [])[:1]}", flush=True)
    if args.out.exists() and (args.stems is not None or args.skip_setup):   # a partial run: merged
        old = json.loads(args.out.read_text())
        rows = {r["stem"]: r for r in old.get("notebooks", [])}
        rows.update({r["stem"]: r for r in report["notebooks"]})
        report = {**old, **report, "notebooks": [rows[k] for k in sorted(rows)]}
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0 if all(r["ok"] for r in report["notebooks"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
