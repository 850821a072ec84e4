"""The student copies' derive stubs have real graders (issue 14).

In the student copy, each derive function's body is a stub (``raise NotImplementedError``) and the
cell that checks it against the package is its grader. ``tools/exercises.py``'s ``grade_derive``
runs each notebook up to its derive sections, then each stubbed function alone with the student
copy's stub and with a no-op body (``return None``), then with the teacher's body. A real grader
calls the stub (NotImplementedError from that function), fails on the no-op, and passes the
solution. The first tests show, on a small notebook of their own, that the grader test catches a
check that is empty or missing.
"""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import exercises  # noqa: E402

pytestmark = pytest.mark.notebook

TOY = '''# %% [markdown]
# # toy
# ## Derive: the mean

# %%
import numpy as np


def my_mean(x):
    """The mean of x."""
    # BEGIN SOLUTION
    return sum(x) / len(x)
    # END SOLUTION

# %%
{check}

# %% [markdown]
# ## Experiment

# %%
print("after")
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Write a one-notebook course with the given grader cell; return its stem."""
    def make(check: str) -> str:
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        (src / "01_toy.py").write_text(TOY.format(check=check), encoding="utf-8")
        monkeypatch.setattr(exercises, "SRC_DIR", src)
        return "01_toy"
    return make


def test_derive_stubs_are_found_inside_functions(toy):
    stem = toy("assert np.isclose(my_mean([1, 2, 3]), np.mean([1, 2, 3]))")
    assert exercises.derive_stubs(stem) == [{"cell": 1, "block": 0, "function": "my_mean", "section": (1, 3)}]
    student, n = exercises.strip_solutions(exercises.parse_percent(
        (exercises.SRC_DIR / f"{stem}.py").read_text())[1]["source"])
    assert n == 1 and "raise NotImplementedError" in student and "def my_mean" in student


@pytest.mark.parametrize("check,raised,noop", [
    ("assert np.isclose(my_mean([1, 2, 3]), np.mean([1, 2, 3]))", True, "TypeError"),  # a real grader
    ("my_mean([1, 2, 3])\nprint('called, result unchecked')", True, None),     # calls, checks nothing
    ("print('no check at all')", False, None),                                 # never calls it
])
def test_grade_derive_tells_a_real_grader_from_an_empty_one(toy, check, raised, noop):
    (row,) = exercises.grade_derive(toy(check), timeout=120)
    assert row["function"] == "my_mean" and row["solution_error"] is None
    assert row["raised"] is raised and row["noop_error"] == noop


def test_strip_one_block_keeps_the_others():
    src = "# BEGIN SOLUTION\na = 1\n# END SOLUTION\n# BEGIN SOLUTION\nb = 2\n# END SOLUTION"
    out, n = exercises.strip_solutions(src, only=1)
    assert n == 2 and "a = 1" in out and "b = 2" not in out and out.count("raise NotImplementedError") == 1


def test_every_notebook_with_a_derive_section_stubs_its_functions():
    for stem in exercises.stems():
        cells = exercises.parse_percent((exercises.SRC_DIR / f"{stem}.py").read_text(encoding="utf-8"))
        has_derive = any(c["cell_type"] == "markdown" and any(
            line.lower().startswith("## derive") for line in c["source"].split("\n")) for c in cells)
        if has_derive:
            assert exercises.derive_stubs(stem), (
                f"notebooks/src/{stem}.py has a Derive section but no function body between "
                f"'# BEGIN SOLUTION' / '# END SOLUTION': the student copy would ship it solved")


GRADED = [s for s in exercises.stems() if exercises.derive_stubs(s)]


def check_graders(stem, monkeypatch):
    """Every stub of ``stem`` is called by its grader, a no-op fails it, the solution passes."""
    monkeypatch.setenv("CL_TEACH_THREADS", "1")
    rows = exercises.grade_derive(stem)
    for r in rows:
        assert r["solution_error"] is None, f"{stem}: the teacher's {r['function']} fails its grader: {r}"
        assert r["raised"], f"{stem}: no cell of the derive section calls the stub of {r['function']}"
        assert r["noop_error"], f"{stem}: a no-op {r['function']} passes its grader: the check is empty"


@pytest.mark.parametrize("stem", GRADED[::2])       # the other half: test_graders_b.py (its own worker)
def test_derive_graders_catch_broken_stubs(stem, monkeypatch):
    check_graders(stem, monkeypatch)
