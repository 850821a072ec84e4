"""tools/site.py's parts on small notebooks: widgets shown as their static fallback, alt texts,
the landing page's links, a page without CDN scripts (the whole site: tests/browser/test_site.py)."""
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("course_site", ROOT / "tools" / "site.py")
site = importlib.util.module_from_spec(_spec)
sys.modules["course_site"] = site
_spec.loader.exec_module(site)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
VIEW = site.WIDGET_VIEW


def widget_output(model_id, **data):
    return nbformat.v4.new_output("display_data", {VIEW: {"version_major": 2, "version_minor": 0,
                                                          "model_id": model_id}, **data})


def tqdm_state(box="box"):
    """The widget state tqdm leaves: HBox(HTML, FloatProgress, HTML)."""
    def m(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}
    state = {"a": m("HTMLModel", value="SimCLR:\u2007100%"),
             "b": m("FloatProgressModel", value=150.0, max=150.0),
             "c": m("HTMLModel", value="\u2007150/150\u2007[00:12&lt;00:00]"),
             box: m("HBoxModel", children=["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"])}
    return {site.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}


def notebook(*cells, widgets=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    if widgets:
        nb.metadata["widgets"] = widgets
    return nb


def code(source, *outputs):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = list(outputs)
    return cell


def test_an_explore_widget_shows_its_png_fallback_with_its_description():
    out = widget_output("w1", **{"image/png": PNG, "text/plain": "An interactive explorer; tau = 0.1"})
    nb, _ = site.StaticWidgets().preprocess(notebook(code("explorer()", out), widgets=tqdm_state()), {})
    data = [o["data"] for o in nb.cells[0].outputs]
    assert VIEW not in data[0] and data[0]["image/png"] == PNG       # the fallback, not "VBox(...)"
    assert "tau = 0.1" in data[1]["text/html"] and "site-caption" in data[1]["text/html"]
    assert "widgets" not in nb.metadata                                # no widget manager is loaded


def test_a_progress_bar_is_drawn_from_the_saved_state():
    bar = widget_output("box", **{"text/plain": "SimCLR:   0%|          | 0/150"})    # the repr: 0%
    nb, _ = site.StaticWidgets().preprocess(notebook(code("fit()", bar), widgets=tqdm_state()), {})
    shown = nb.cells[0].outputs[0]["data"]["text/html"]
    assert '<progress max="150" value="150">' in shown
    assert "SimCLR:\u2007100%" in shown and "[00:12&lt;00:00]" in shown


def test_a_widget_without_state_or_picture_keeps_its_text():
    gone = widget_output("gone", **{"text/plain": "t"})
    nb, _ = site.StaticWidgets().preprocess(notebook(code("w", gone)), {})
    assert nb.cells[0].outputs[0]["data"] == {"text/plain": "t"}


def test_alt_texts_name_the_widget_the_title_or_the_section():
    def shown(text="<Figure size 640x480 with 1 Axes>"):
        return nbformat.v4.new_output("display_data", {"image/png": PNG, "text/plain": text})
    nb = notebook(nbformat.v4.new_markdown_cell("# 05 · SimCLR\n\n## Diagnose: is $h$ **any** good?"),
                  code('display(plot(x, title="kNN accuracy per class"))', shown()),
                  code("display(a); display(b)", shown(), shown()),
                  code("explorer()", shown("An explorer: k = 3")),
                  code("Image(path)", shown("<IPython.core.display.Image object>")))
    nb, _ = site.AltText().preprocess(nb, {"metadata": {"name": "05_simclr"}})
    alts = [o.metadata["image/png"]["alt"] for c in nb.cells[1:] for o in c.outputs]
    assert alts == ["kNN accuracy per class (figure 1 of notebook 05, section: Diagnose: is h any good?)",
                    "Figure 2 of notebook 05: Diagnose: is h any good?",
                    "Figure 3 of notebook 05: Diagnose: is h any good?",
                    "An explorer: k = 3 (figure 4 of notebook 05)",
                    "Figure 5 of notebook 05: Diagnose: is h any good?"]


def test_figure_titles_are_literal_titles_in_source_order():
    src = 'fig = plot(x, title="first")\nax.set_title("second")\nfig.suptitle(f"{n} skipped")\n%time x'
    assert site.figure_titles(src) == []                                # not Python (a magic)
    assert site.figure_titles(src.rsplit("\n", 1)[0]) == ["first", "second"]


def test_the_landing_page_links_each_course_row_to_its_page():
    readme = "| # | notebook |\n|---|---|\n| 00 | welcome | x |\n| 07 | MoCo | y |\n| 99 | gone | z |\n"
    md = site.landing_markdown(readme, {"00": "00_welcome.html", "07": "07_moco.html"})
    assert "| 00 | [welcome](00_welcome.html) | x |" in md and "| 07 | [MoCo](07_moco.html) | y |" in md
    assert "| 99 | gone | z |" in md                                   # no page: left as it is


def test_a_page_has_alt_texts_and_no_cdn_script(tmp_path):
    figure = nbformat.v4.new_output("display_data", {"image/png": PNG, "text/plain": "<F>"})
    nb = notebook(nbformat.v4.new_markdown_cell("# 01 · Title\n\n$\\tau$"), code("print(1)", figure))
    page, figures = site.write_page(nb, "01_t", tmp_path, {"nav": [("Home", "index.html")], "note": ""})
    html = (tmp_path / page).read_text(encoding="utf-8")
    assert figures == 1 and (tmp_path / "01_t_files").is_dir()
    assert re.findall(r'<(?:script|link)[^>]*(?:src|href)="(?:https?:)?//', html) == []
    assert 'src="_static/mathjax/MathJax.js' in html and "Noto Sans CJK" in site.CSS
    assert re.findall(r'<img alt="([^"]*)"', html) == ["Figure 1 of notebook 01: 01 · Title"]


def test_a_folder_that_is_not_a_site_is_never_emptied(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not emptying"):
        site.clear(tmp_path)
    assert (tmp_path / "notes.txt").exists()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "site.css").write_text("")
    site.clear(tmp_path)                                                # a previous build: emptied
    assert list(tmp_path.iterdir()) == []
