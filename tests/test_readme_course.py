"""README's course table is the course: one row per notebook, in order, with its stated budget."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_course", ROOT / "benchmarks" / "bench_course.py")
bench_course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_course)
BUDGET = bench_course._BUDGET          # the one parser of "Time budget: about X minutes"
ROW = re.compile(r"^\| (\d\d) \| ([^|]+) \|[^|]+\| ([\d.]+) min \|", re.M)


def stated(text):
    m = BUDGET.search(text)
    assert m, "no '**Time budget:** about X minutes' line"
    return float(m.group(1)) * (60 if m.group(2).lower().startswith("min") else 1)


def table_problems(readme: str, sources: dict) -> list[str]:
    rows = {n: (name.strip(), float(b) * 60) for n, name, b in ROW.findall(readme)}
    out = [f"notebook {n} has no row in README's course table" for n in sources if n not in rows]
    out += [f"README's row {n} has no notebook" for n in rows if n not in sources]
    out += [f"notebook {n}: README says {rows[n][1]:.0f} s, the notebook {stated(t):.0f} s"
            for n, t in sources.items() if n in rows and abs(rows[n][1] - stated(t)) > 1]
    order = [m.group(1) for m in ROW.finditer(readme)]
    if order != sorted(order):
        out.append(f"README's rows are not in course order: {order}")
    return out


def _sources():
    src = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
    return {p.name[:2]: p.read_text(encoding="utf-8") for p in src}


def test_readme_table_matches_the_notebooks():
    assert table_problems((ROOT / "README.md").read_text(encoding="utf-8"), _sources()) == []


def test_a_missing_row_or_a_wrong_budget_is_caught():
    readme, src = (ROOT / "README.md").read_text(encoding="utf-8"), _sources()
    first = ROW.search(readme)
    assert table_problems(readme.replace(first.group(0), ""), src)                 # row removed
    wrong = first.group(0).replace(f"| {first.group(3)} min |", "| 9.5 min |")
    assert table_problems(readme.replace(first.group(0), wrong), src)              # budget differs
    assert table_problems(readme, {**src, "99": "**Time budget:** about 1 minute"})  # new notebook
