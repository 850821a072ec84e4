"""Exercises: every notebook has one, and the student copies are in sync with the sources."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import exercises  # noqa: E402


def test_student_copies_in_sync():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "exercises.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("stem", exercises.stems())
def test_notebook_has_an_exercise_with_a_solution(stem):
    assert exercises.count_solutions(stem) >= 1, (
        f"notebooks/src/{stem}.py has no exercise: put a solution between '# BEGIN SOLUTION' and "
        f"'# END SOLUTION' lines")


@pytest.mark.parametrize("stem", exercises.stems())
def test_notebook_has_three_checked_exercises(stem):
    """Issue 14: >= 3 exercises, each with a check the student copy keeps (a graded stub) or a
    folded worked answer."""
    c = exercises.census(stem)
    assert c["items"] >= 3, f"{stem}: {c['items']} numbered exercises under '## Exercises', expected >= 3"
    assert c["stubs"] + c["answers"] >= c["items"], (
        f"{stem}: {c['items']} exercises but {c['stubs']} graded stubs and {c['answers']} worked "
        "answers: give each exercise a checked stub or a folded '**Answer.**'")


def test_census_counts_what_it_says(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "99_x.py").write_text(
        "# %% [markdown]\n# ## Exercises\n# 1. One.\n# 2. Two.\n\n"
        "# %%\ndef f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n\n\n"
        "# %%\nassert f(1) == 1\n\n"
        "# %% [markdown]\n# <!-- BEGIN SOLUTION -->\n# **Answer.** Two.\n# <!-- END SOLUTION -->\n\n"
        "# %% [markdown]\n# ## Summary\n# 3. Not an exercise.\n", encoding="utf-8")
    monkeypatch.setattr(exercises, "SRC_DIR", src)
    assert exercises.census("99_x") == {"items": 2, "stubs": 1, "answers": 1, "asserts": 1}


@pytest.mark.parametrize("stem", exercises.stems())
def test_student_copy_has_no_solution_and_no_output(stem):
    path = exercises.STUDENT_DIR / f"{stem}.ipynb"
    if not path.exists():
        pytest.skip("reported by test_student_copies_in_sync")
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "BEGIN SOLUTION" not in text.replace("`# BEGIN SOLUTION`", "")
    placeholders = (len(re.findall(r"# YOUR CODE HERE\n\s*raise NotImplementedError", text))
                    + text.count(exercises.ANSWER_OPEN))
    assert placeholders >= exercises.count_solutions(stem)
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None
    # One cell per cell of the source, plus the "student copy" note.
    cells = exercises.parse_percent((exercises.SRC_DIR / f"{stem}.py").read_text(encoding="utf-8"))
    assert len(nb["cells"]) == len(cells) + 1


def test_strip_keeps_indentation_and_code_around():
    src = "x = 1\nfor i in range(3):\n    # BEGIN SOLUTION\n    x += i\n    # END SOLUTION\nprint(x)"
    out, n = exercises.strip_solutions(src)
    assert n == 1
    assert out == "x = 1\nfor i in range(3):\n    # YOUR CODE HERE\n    raise NotImplementedError\nprint(x)"
    compile(out, "<student>", "exec")


def test_strip_markdown_answer():
    out, n = exercises.strip_solutions("Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->",
                                       markdown=True)
    assert (out, n) == (f"Why?\n{exercises.ANSWER_OPEN}\n\nBecause.\n\n{exercises.ANSWER_CLOSE}", 1)


@pytest.mark.parametrize("src,msg", [("# BEGIN SOLUTION\nx = 1", "never closed"),
                                     ("x = 1\n# END SOLUTION", "without"),
                                     ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside")])
def test_unbalanced_markers_are_refused(src, msg):
    with pytest.raises(ValueError, match=msg):
        exercises.strip_solutions(src)


def test_check_fails_when_out_of_sync(tmp_path, monkeypatch):
    src, student = tmp_path / "src", tmp_path / "student"
    src.mkdir()
    student.mkdir()
    (src / "99_demo.py").write_text("# %%\nx = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n")
    monkeypatch.setattr(exercises, "SRC_DIR", src)
    monkeypatch.setattr(exercises, "STUDENT_DIR", student)
    monkeypatch.setattr(exercises, "ROOT", tmp_path)
    assert exercises.check() == 1                                    # missing copy
    exercises.write_all()
    assert exercises.check() == 0
    assert "y = 2" not in (student / "99_demo.ipynb").read_text()
    (src / "99_demo.py").write_text("# %%\nx = 10\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n")
    assert exercises.check() == 1                                    # source changed
