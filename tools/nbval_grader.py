"""A pytest plugin: nbval's run of each executed notebook also grades its derive stubs (issue 14).

Before nbval runs the first cell of a section that holds derive functions (``exercises.find_stubs``),
this runs that section in nbval's own kernel, once per function with the student copy's stub and
once with a no-op body, and fails the cell's test when a grader does not call the stub or passes
the no-op. nbval then runs the section as the teacher wrote it, which checks that the solution
passes. So the grading costs only the sections' re-runs: the notebook's prefix is nbval's run.

The random states (``random``, NumPy, torch) are saved before the broken runs and put back after,
so the checked outputs that follow are those of the teacher's run. Loaded by the root conftest.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exercises  # noqa: E402

SAVE_RNG = ("import random as _r, numpy as _np, torch as _t\n"
            "_cl_teach_rng = (_r.getstate(), _np.random.get_state(), _t.random.get_rng_state())")
RESTORE_RNG = ("_r.setstate(_cl_teach_rng[0]); _np.random.set_state(_cl_teach_rng[1]); "
               "_t.random.set_rng_state(_cl_teach_rng[2]); del _cl_teach_rng, _r, _np, _t")


def _execute(kernel, timeout: float):
    """``execute(index, source)`` for :func:`exercises.run_section`, in nbval's kernel: run the
    source, drop its outputs, return its error message's content or None."""
    def execute(_index, source: str):
        msg_id = kernel.execute_cell_input(source, allow_stdin=False)
        kernel.await_reply(msg_id, timeout=timeout)
        error = None
        while True:
            msg = kernel.get_message(stream="iopub", timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                error = msg["content"]
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return error
    return execute


def _plan(nb_file) -> dict[int, list[dict]]:
    """nbval's code-cell number of each graded section's first code cell -> its stubs."""
    if not hasattr(nb_file, "_cl_teach_plan"):
        cells = nb_file.nb.cells
        code_num, n = {}, 0
        for i, c in enumerate(cells):
            if c["cell_type"] == "code":
                code_num[i] = n
                n += 1
        plan: dict[int, list[dict]] = {}
        for stub in exercises.find_stubs(cells):
            first = next(i for i in range(*stub["section"]) if cells[i]["cell_type"] == "code")
            plan.setdefault(code_num[first], []).append(stub)
        nb_file._cl_teach_plan = plan
    return nb_file._cl_teach_plan


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item):
    """Grade before nbval runs the section's first cell; fail that cell's test after it ran (so the
    teacher's run goes on as without grading)."""
    from nbval.plugin import IPyNbCell, NbCellError
    stubs = _plan(item.parent).get(item.cell_num) if isinstance(item, IPyNbCell) else None
    if not stubs:
        return (yield)
    kernel, cells = item.parent.kernel, item.parent.nb.cells
    execute = _execute(kernel, item.config.option.nbval_cell_timeout)
    if execute(None, SAVE_RNG) is not None:
        raise RuntimeError("could not save the random states before grading the derive stubs")
    rows = [exercises.grade_stub(execute, cells, stub) for stub in stubs]
    err = execute(None, RESTORE_RNG)
    result = yield
    problems = exercises.grade_problems(rows) + (
        [f"restoring the random states failed: {err['ename']}: {err['evalue']}"] if err else [])
    if problems:
        raise NbCellError(item.cell_num, "the derive section's graders are not real checks (the "
                          "student copy's stubs, tools/exercises.py):\n  " + "\n  ".join(problems),
                          item.cell.source)
    return result
