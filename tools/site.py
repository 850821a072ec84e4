"""Build the course's static website from the executed notebooks, offline.

    python tools/site.py [--out site/] [--jobs 2]     # `make site`; prints pages, build time, size

Every ``notebooks/NN_name.ipynb`` (the executed teacher copy) becomes ``NN_name.html`` with its
figures as PNG files beside it (``NN_name_files/``); ``index.html`` is README.md rendered (its
course table linking to the pages), so the landing page cannot drift from the README. Open
``site/index.html`` from a static server (``python -m http.server -d site -b 127.0.0.1``).

Why nbconvert and not Jupyter Book 2 (measured 2026-12-04 on the 2-core machine, under load):
Jupyter Book 2 (``jupyter-book`` 2.1.7, MyST 1.11, node 20) installs from PyPI, but
``jupyter book build --html`` stops after 7 s with ``getaddrinfo ENOTFOUND api.mystmd.org``: MyST
downloads its site theme (``book-theme``) at build time, and the theme is not an npm package that
could be installed beforehand. nbconvert is already in the notebook stack and builds offline:
``jupyter nbconvert --to html`` on the 21 notebooks took 57 s (21 MB, figures inlined as base64).
Its lab template pulls require.js, MathJax and Mermaid from a CDN and the widget manager from
unpkg, so :data:`TEMPLATE` drops all four: the page needs no JavaScript but MathJax 2.7, which is
copied from the ``jupyter-server-mathjax`` wheel (the MathJax that the classic Jupyter Notebook
served offline) and typesets only markdown cells (a ``$`` in a printout stays text). The widgets
are shown as what they were when the notebook was executed: an Explore widget as its static PNG
fallback, a progress bar as a static bar drawn from the saved widget state (:class:`StaticWidgets`;
the state cannot be rendered live without the widget manager). Every figure gets an ``alt`` text
(:class:`AltText`). The CSS falls back to Noto Sans CJK for Chinese. This build: 22 pages in 21-25 s
with 2 jobs (49 s before its template skipped bleach on the highlighted code), 18.8 MiB (PNG files
8.3, HTML 9.0, MathJax 2.7 and CSS 2.8).
"""
from __future__ import annotations

import argparse
import ast
import html
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
ROW = re.compile(r"^\| (\d\d) \| ([^|]+?) \|", re.M)          # README's course table: | 05 | SimCLR |
CJK_SANS = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei"'
CSS = f"""
body.jp-Notebook {{
  --jp-content-font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, {CJK_SANS}, sans-serif;
  --jp-ui-font-family: var(--jp-content-font-family);
  --jp-code-font-family: "DejaVu Sans Mono", Menlo, Consolas, "Noto Sans Mono CJK SC", {CJK_SANS}, monospace;
  font-family: var(--jp-content-font-family);
}}
main {{ max-width: 1100px; margin: 0 auto; padding: 0 12px; }}
.site-nav {{ display: flex; gap: 1.5em; justify-content: space-between; max-width: 1100px; margin: 0 auto;
  padding: 10px 12px; font: 14px var(--jp-ui-font-family); border-bottom: 1px solid #ddd; }}
.site-nav.bottom {{ border-top: 1px solid #ddd; border-bottom: none; }}
.site-nav a {{ color: #1a5fb4; text-decoration: none; }}
.site-note {{ max-width: 1100px; margin: 8px auto 0; padding: 0 12px; font-size: 13px; color: #555; }}
.site-progress {{ display: flex; align-items: center; gap: 8px; font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size); white-space: pre; }}
.site-progress progress {{ width: 240px; }}
.jp-RenderedMarkdown pre {{ background: var(--jp-layout-color2); padding: 8px 10px; overflow-x: auto; }}
.site-caption {{ font-size: 13px; color: #555; margin: 2px 0 8px; }}
/* MathJax's hidden MathML for screen readers: local fonts (its own CSS names web fonts it lacks) */
.MJX_Assistive_MathML, .MJX_Assistive_MathML * {{ font-family: "DejaVu Math TeX Gyre", serif !important; }}
"""
MATHJAX_CONFIG = r"""
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true,
            ignoreClass: "jp-Notebook", processClass: "jp-MarkdownOutput"},
  TeX: {noErrors: {disabled: true}, noUndefined: {disabled: true}},
  "HTML-CSS": {availableFonts: [], imageFont: null, preferredFont: null, webFont: "STIX-Web",
               linebreaks: {automatic: true},
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  messageStyle: "none", showMathMenu: false
});
MathJax.Hub.Register.MessageHook("TeX Jax - parse error",
  function (m) { console.error("MathJax: TeX error: " + m[1] + " in: " + m[2]); });
MathJax.Hub.Register.MessageHook("Math Processing Error",
  function (m) { console.error("MathJax: processing error: " + m[2]); });
MathJax.Hub.Register.MessageHook("file load error",
  function (m) { console.error("MathJax: file load error: " + m[1]); });
MathJax.Hub.Register.StartupHook("End", function () { document.documentElement.dataset.math = "done"; });
</script>
"""
#: The page template: nbconvert's lab template without its CDN scripts, plus the site's navigation,
#: its CSS, the local MathJax, and ``alt`` on every figure (set by :class:`AltText`).
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
MATHJAX_CONFIG<script src="_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"></script>
{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<link rel="icon" href="data:,"><link rel="stylesheet" href="_static/site.css">
{%- endblock html_head_css -%}
{%- macro site_nav(where) -%}
<nav class="site-nav {{ where }}">
{%- for label, href in resources.site.nav %}<a href="{{ href }}">{{ label | escape_html }}</a>{% endfor -%}
</nav>
{%- endmacro -%}
{%- block body_header -%}
{{ super() }}{{ site_nav('top') }}
{%- if resources.site.note %}<p class="site-note">{{ resources.site.note }}</p>{% endif -%}
{%- endblock body_header -%}
{%- block body_footer -%}{{ site_nav('bottom') }}{{ super() }}{%- endblock body_footer -%}
{#- lab's block without its bleach pass over Pygments' (escaped) output: a third of the build time -#}
{%- block input -%}
<div class="jp-CodeMirrorEditor jp-Editor jp-InputArea-editor" data-type="inline">
<div class="cm-editor cm-s-jupyter">{{ cell.source | highlight_code(metadata=cell.metadata) }}</div>
</div>
{%- endblock input -%}
{%- block data_png scoped -%}
{%- set alt = output | get_metadata('alt', 'image/png') | escape_html -%}
{{ super() | replace('<img ', '<img alt="' ~ alt ~ '" ', 1) }}
{%- endblock data_png -%}
""".replace("MATHJAX_CONFIG", MATHJAX_CONFIG)


def plain(markdown: str) -> str:
    """Markdown/TeX reduced to plain words for an alt text (``**$\\tau$**`` -> ``tau``)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)          # links keep their words
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)                      # \tau -> tau
    return re.sub(r"\s+", " ", re.sub(r"[`*$\\{}]", "", text)).strip()


def figure_titles(source: str) -> list[str]:
    """The literal figure titles a code cell passes, in order: ``title="..."`` / ``suptitle="..."``
    keywords and ``.set_title("...")`` / ``.suptitle("...")`` calls. [] when the cell is not Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg in ("title", "suptitle") and isinstance(kw.value, ast.Constant) \
                    and isinstance(kw.value.value, str):
                found.append((kw.value.lineno, kw.value.col_offset, kw.value.value))
        first = node.args[0] if node.args else None
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("set_title", "suptitle") \
                and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((first.lineno, first.col_offset, first.value))
    return [plain(t) for *_, t in sorted(found)]


class StaticWidgets(Preprocessor):
    """Show every widget output as what it was when the notebook ran, with no widget manager.

    An output with a static fallback (the Explore widgets' PNG) shows that; a progress bar (tqdm's
    ``HBox(HTML, FloatProgress, HTML)``) becomes a static bar drawn from the widget state saved in
    the notebook; any other widget shows its text. The saved state is then removed, so that no
    template loads the widget manager for it.
    """

    def preprocess(self, nb, resources):
        state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            outputs = []
            for out in cell.get("outputs", []):
                outputs.append(out)
                data = out.get("data", {})
                if WIDGET_VIEW not in data:
                    continue
                view = data.pop(WIDGET_VIEW)
                if "image/png" in data:                         # say what the picture is
                    caption = html.escape(data.get("text/plain", "A picture of the widget"))
                    outputs.append(nbformat.v4.new_output(
                        "display_data", {"text/html": f'<p class="site-caption">{caption}</p>'}))
                elif bar := progress_html(state, view.get("model_id")):
                    data["text/html"] = bar
            cell["outputs"] = outputs
        nb.metadata.pop("widgets", None)
        return nb, resources


def progress_html(state: dict, model_id: str | None) -> str | None:
    """A static ``<progress>`` for a saved tqdm widget (``HBox(HTML, FloatProgress, HTML)``), else None."""
    from bs4 import BeautifulSoup

    box = state.get(model_id or "", {})
    kids = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box.get("state", {}).get("children", [])]
    if box.get("model_name") != "HBoxModel" or [k.get("model_name") for k in kids] != \
            ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (k["state"] for k in kids)
    value, most = float(bar.get("value", 0)), float(bar.get("max", 100))

    def text(value: str) -> str:
        return html.escape(BeautifulSoup(value or "", "html.parser").get_text())
    return (f'<div class="site-progress"><span>{text(left.get("value"))}</span>'
            f'<progress max="{most:g}" value="{value:g}"></progress>'
            f'<span>{text(right.get("value"))}</span></div>')


class AltText(Preprocessor):
    """Give every PNG output an ``alt`` (``output.metadata["image/png"]["alt"]``, which the template
    writes): a widget's own description of its fallback picture; else the figure's literal title
    when the cell passes one per figure; else "Figure N of notebook NN: <the section's heading>"."""

    def preprocess(self, nb, resources):
        number = resources.get("metadata", {}).get("name", "")[:2]
        heading, n = nb.metadata.get("title", "the notebook"), 0
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                titles = HEADING.findall(cell.source)
                heading = plain(titles[-1]) if titles else heading
                continue
            images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            titles = figure_titles(cell.source)
            for i, out in enumerate(images):
                n += 1
                where = f"figure {n} of notebook {number}"
                described = out["data"].get("text/plain", "")
                if described and not re.fullmatch(r"<.*>", described.strip(), re.S):   # not a bare repr
                    alt = f"{plain(described)} ({where})"
                elif len(titles) == len(images):
                    alt = f"{titles[i]} ({where}, section: {heading})"
                else:
                    alt = f"{where[0].upper()}{where[1:]}: {heading}"
                out.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = alt
        return nb, resources


def exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExtractOutputPreprocessor

    exp = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"site.html.j2": TEMPLATE})],
                       template_file="site.html.j2")
    for pre in (StaticWidgets, AltText, ExtractOutputPreprocessor):
        exp.register_preprocessor(pre(), enabled=True)
    return exp


def notebooks() -> list[Path]:
    return sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))


def title_of(nb) -> str:
    first = next((c.source for c in nb.cells if c.cell_type == "markdown" and HEADING.search(c.source)), "")
    m = HEADING.search(first)
    return plain(m.group(1)) if m else "notebook"


def landing_markdown(readme: str, pages: dict[str, str]) -> str:
    """README.md with each course-table row's notebook name linked to its page (``pages``: NN -> file)."""
    def link(m):
        number, name = m.group(1), m.group(2)
        return f"| {number} | [{name}]({pages[number]}) |" if number in pages else m.group(0)
    return ROW.sub(link, readme)


def write_page(nb, stem: str, out: Path, site: dict) -> tuple[str, int]:
    """Convert one notebook into ``out/stem.html`` (+ ``stem_files/``); returns (file, images)."""
    resources = {"metadata": {"name": stem, "path": str(NB_DIR)}, "output_files_dir": f"{stem}_files",
                 "site": site}
    body, resources = exporter().from_notebook_node(nb, resources=resources)
    (out / f"{stem}.html").write_text(body, encoding="utf-8")
    for name, data in resources.get("outputs", {}).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return f"{stem}.html", len(resources.get("outputs", {}))


def _notebook_page(args) -> tuple[str, int]:
    path, out, site = args
    nb = nbformat.read(path, as_version=4)
    nb.metadata["title"] = title_of(nb)
    return write_page(nb, path.stem, out, site)


def copy_static(out: Path) -> None:
    """``_static/``: the CSS and MathJax 2.7 from the jupyter-server-mathjax wheel (HTML-CSS output,
    STIX-Web fonts; the SVG output, accessibility maps and translations are left out)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        sys.exit("tools/site.py needs MathJax: `.venv/bin/pip install jupyter-server-mathjax`")
    static = out / "_static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "site.css").write_text(CSS, encoding="utf-8")
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", static / "mathjax",
                    ignore=shutil.ignore_patterns("localization", "a11y", "SVG"), dirs_exist_ok=True)


def clear(out: Path) -> None:
    """Empty ``out`` for a new build; refuse a folder that is not empty and not a previous site."""
    if out.exists() and any(out.iterdir()):
        if not (out / "_static" / "site.css").is_file():
            sys.exit(f"{out} is not empty and holds no site (no _static/site.css): not emptying it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def page_args(paths: list[Path], titles: dict[str, str], out: Path) -> list[tuple]:
    """One ``(notebook, out, site)`` per page: its navigation (previous, home, next) and note."""
    stems, work = [p.stem for p in paths], []
    for i, p in enumerate(paths):
        nav = [("← Course home", "index.html")]
        if i:
            nav = [(f"← {titles[stems[i - 1]]}", f"{stems[i - 1]}.html"), ("Course home", "index.html")]
        if i + 1 < len(stems):
            nav.append((f"{titles[stems[i + 1]]} →", f"{stems[i + 1]}.html"))
        note = (f"The executed notebook <code>notebooks/{p.name}</code>. To run it yourself: "
                f"<code>make lab</code>, then open it (the exercise copy: "
                f"<code>notebooks/student/{p.name}</code>).")
        work.append((p, out, {"nav": nav, "note": note}))
    return work


def build(out: Path, jobs: int = 2) -> list[tuple[str, int]]:
    """Build the site into ``out``; returns ``[(page file, figures on it)]``, the landing page first."""
    clear(out)
    copy_static(out)
    paths = notebooks()
    titles = {p.stem: title_of(nbformat.read(p, as_version=4)) for p in paths}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        pages = list(pool.map(_notebook_page, page_args(paths, titles, out)))

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    landing = nbformat.v4.new_notebook()
    landing.metadata.update(title="cl-teach: the course", language_info={"name": "python"})
    links = {stem[:2]: f"{stem}.html" for stem in titles}
    landing.cells = [nbformat.v4.new_markdown_cell(landing_markdown(readme, links))]
    nav = [("cl-teach", "index.html")] + [(f"Start: {titles[p.stem]} →", f"{p.stem}.html") for p in paths[:1]]
    pages.insert(0, write_page(landing, "index", out, {"nav": nav, "note": ""}))
    return pages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (emptied first)")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks converted in parallel")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    pages = build(args.out.resolve(), jobs=args.jobs)
    seconds = time.perf_counter() - t0
    for page, images in pages:
        print(f"{page:40s} {images:3d} figures")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{len(pages)} pages in {seconds:.1f} s, {size / 2**20:.1f} MiB in {args.out}/; "
          f"open {args.out}/index.html via `python -m http.server -d {args.out} -b 127.0.0.1`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
