"""Test-wide settings (root conftest: outside testpaths, so --doctest-modules never collects it)."""
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
pytest_plugins = ["nbval_grader"]      # nbval's run of a notebook also grades its derive stubs

os.environ.setdefault("CL_TEACH_THREADS", "1")
torch.set_num_threads(int(os.environ["CL_TEACH_THREADS"]))   # as the notebooks: one thread


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread for the test whatever CL_TEACH_THREADS says (claims whose numbers are
    thresholded); ``pytestmark = pytest.mark.usefixtures("one_thread")`` in a test file."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def untrained_vs_best_baseline():
    """``compare(on)``: the untrained SmallCNN (BN re-estimated) minus the better fair baseline, a
    paired Interval on Fashion-MNIST (3,000 / 1,000): what every "beats the baselines" claim must
    reject. The broken variant of the claims tests of notebooks 12 and 13."""
    def compare(on: str):
        from cl_teach import seed_everything
        from cl_teach.data import load_fashion_mnist
        from cl_teach.evaluation import baselines, best_baseline, knn_and_probe
        from cl_teach.metrics import recalibrate_batchnorm
        from cl_teach.models import SmallCNN
        train = load_fashion_mnist("train").subset(3000, seed=0)
        test = load_fashion_mnist("test").subset(1000, seed=1)
        seed_everything(0)
        _, best = best_baseline(baselines(SmallCNN, train, test), on=on)
        seed_everything(1)
        return knn_and_probe(recalibrate_batchnorm(SmallCNN(), train.x), train, test).compare(best, on=on)
    return compare


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
