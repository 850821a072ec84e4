"""Every widget of the course has a browser test here (a new widget needs one)."""
import inspect
from pathlib import Path

import cl_teach.widgets as widgets

HERE = Path(__file__).parent


def widget_builders():
    """Public functions of cl_teach.widgets (one module per explorer) that build ipywidgets.

    The rest are their pure numbers and figures.
    """
    return sorted(name for name, fn in inspect.getmembers(widgets, inspect.isfunction)
                  if not name.startswith("_") and fn.__module__.startswith(widgets.__name__ + ".")
                  and "ipywidgets" in inspect.getsource(fn))


def test_every_widget_is_driven_in_a_browser():
    tests = "\n".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_*.py")
                      if p.name != Path(__file__).name)
    missing = [name for name in widget_builders()
               if 'course_cells("' not in tests or f'"{name}"' not in tests]
    assert widget_builders(), "no widget found in cl_teach.widgets"
    assert not missing, f"add a browser test (tests/browser/test_<widget>.py) for: {missing}"


def test_every_notebook_explores_with_a_builder():
    """Each course notebook has an "## Explore" section whose widget is a cl_teach.widgets builder."""
    import re
    sources = sorted((HERE.parent.parent / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
    builders = set(widget_builders())
    missing = {}
    for src in sources:
        text = src.read_text(encoding="utf-8")
        used = set(re.findall(r"from cl_teach\.widgets import ([A-Za-z_]+)", text)) & builders
        if not used or "## Explore" not in text and src.name[:2] != "00":
            missing[src.name] = sorted(used)
    assert len(sources) >= 21, [s.name for s in sources]
    assert not missing, f"notebooks without an Explore section using a cl_teach.widgets builder: {missing}"
