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


TOY_NB = TOY + """
# %%
# NBVAL_CHECK_OUTPUT
print(round(float(np.random.rand()), 6))
"""


def nbval_toy(tmp_path, checks: dict[str, str]) -> dict[str, str]:
    """Execute one toy notebook per grader cell (name -> check), then run pytest + nbval with the
    grading plugin on them, as the suite does; return each notebook's outcome per cell."""
    import subprocess
    import xml.etree.ElementTree as ET

    import nbformat
    from nbclient import NotebookClient
    for name, check in checks.items():
        cells = exercises.parse_percent(TOY_NB.format(check=check))
        seeded = nbformat.v4.new_code_cell("import numpy as np\nnp.random.seed(0)")   # before the section
        nb = nbformat.v4.new_notebook(cells=[seeded] + [
            nbformat.v4.new_markdown_cell(c["source"]) if c["cell_type"] == "markdown"
            else nbformat.v4.new_code_cell(c["source"]) for c in cells])
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT / "tools")}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbval_grader",
                    "--nbval-lax", "--nbval-current-env", "--junitxml", str(tmp_path / "r.xml"),
                    *[f"{n}.ipynb" for n in checks]], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    out = {}
    for case in ET.parse(tmp_path / "r.xml").getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        name = case.get("classname").removesuffix(".ipynb")
        out.setdefault(name, []).append("failed" if failed else "passed")
    return out


def test_nbval_run_grades_the_stubs_and_keeps_the_checked_outputs(tmp_path):
    """In the suite's own path (nbval + tools/nbval_grader.py): the real grader's notebook passes
    every cell, the last one a checked random draw after the section, which shows that the broken
    runs (their grader draws too) left the random state as they found it; an unchecked call and a
    missing call fail the section's first cell, and the teacher's run goes on unchanged."""
    got = nbval_toy(tmp_path, {
        "real": "assert np.isclose(my_mean(np.random.rand(3)), 0.5, atol=0.5)",
        "unchecked": "my_mean(np.random.rand(3))",
        "missing": "np.random.rand(3)",
    })
    assert got["real"] == ["passed"] * 5, got
    assert got["unchecked"] == got["missing"] == ["passed", "failed", "passed", "passed", "passed"], got


def test_every_graded_notebook_is_run_by_nbval():
    """The grading rides on nbval: each notebook with derive stubs has its executed copy, whose
    cells are those of its source (so the stubs found in the .ipynb are the source's)."""
    import nbformat
    for stem in exercises.stems():
        stubs = exercises.derive_stubs(stem)
        if not stubs:
            continue
        nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
        assert [(s["function"], s["section"]) for s in exercises.find_stubs(nb.cells)] == [
            (s["function"], s["section"]) for s in stubs], f"notebooks/{stem}.ipynb is stale"
