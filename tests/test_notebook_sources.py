"""Every committed notebook is built from its source in notebooks/src and carries outputs."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_notebooks_match_sources():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "nbtool.py"), "check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
