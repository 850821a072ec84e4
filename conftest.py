"""Test-wide settings (root conftest: outside testpaths, so --doctest-modules never collects it)."""
import os

import pytest
import torch

os.environ.setdefault("CL_TEACH_THREADS", "1")
torch.set_num_threads(int(os.environ["CL_TEACH_THREADS"]))   # as the notebooks: one thread


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# --- the suite's own time, per part --------------------------------------------------------------
def suite_part(nodeid: str) -> str:
    """Which part of the suite a test belongs to: "notebooks", "browser" or "units".

    Units include the doctests of ``cl_teach/`` and the claims tests that train small models.
    """
    path = nodeid.split("::", 1)[0]
    if path.startswith("notebooks/") and path.endswith(".ipynb"):
        return "notebooks"
    if path.startswith("tests/browser/"):
        return "browser"
    return "units"


def pytest_terminal_summary(terminalreporter):
    """Print the summed test time of each part (setup + call + teardown, over all workers)."""
    totals, counts = {}, {}
    for reports in terminalreporter.stats.values():
        for r in reports:
            if not hasattr(r, "nodeid") or not hasattr(r, "duration") or not r.nodeid:
                continue
            part = suite_part(r.nodeid)
            totals[part] = totals.get(part, 0.0) + r.duration
            if r.when == "call":
                counts[part] = counts.get(part, 0) + 1
    if totals:
        terminalreporter.section("time per part (summed over workers)")
        for part in ("units", "notebooks", "browser"):
            if part in totals:
                terminalreporter.write_line(f"{part:10s} {counts.get(part, 0):5d} tests  "
                                            f"{totals[part] / 60:6.1f} min")
