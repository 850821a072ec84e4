"""The course website (`make site`: tools/site.py) opened in Chromium, offline.

The site is built once per session, by the command `make site` runs, into a temporary folder and
served from 127.0.0.1 by ``http.server`` in a thread. Every page must open with no console error,
no failed request and no request leaving the machine (each is aborted and reported), its math
typeset, every image loaded and described by an ``alt``, as many images as its notebook has image
outputs (the widgets' static fallbacks included), and every internal link resolving (a page: GET
200; an ``#anchor``: the id exists). :func:`page_problems` checks all of that and returns what it
found; the last test shows it catching a page broken in each of those ways.
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import pytest
from harness import LOOPBACK, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index", *(p.stem for p in NOTEBOOKS)]
README_ROW = re.compile(r"^\| (\d\d) \| ([^|]+?) \|", re.M)
WIDGET_TEXT = re.compile(r"\b[VH]Box\(|Loading widget|Error displaying widget|IPY_MODEL_")
CJK = re.compile(r"[\u4e00-\u9fff]")
#: A laptop's screen: the site's column is then 1,050 px (1,026 px for an output), cl_teach/legible.py.
VIEWPORT = {"width": 1280, "height": 800}
#: A figure shown at less than this share of its width has its text shrunk under cl_teach.legible's floor.
MIN_SHOWN = 0.97
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
#: What a page shows once loaded: its images, links, ids, text, and markdown text with a `$` left.
READ_PAGE = """() => {
  const markdown = [...document.querySelectorAll('.jp-MarkdownOutput')].map(e => {
      const c = e.cloneNode(true); c.querySelectorAll('pre, code, script').forEach(x => x.remove());
      return c.textContent; });
  return {
    images: [...document.images].map(i => ({src: i.src.slice(0, 120), alt: i.getAttribute('alt'),
                                             ok: i.complete && i.naturalWidth > 0,
                                             natural: i.naturalWidth,
                                             shown: i.getBoundingClientRect().width})),
    column: document.querySelector('main').clientWidth,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    text: document.body.innerText,
    untypeset: markdown.filter(t => /\\$[^$\\s][^$]*\\$/.test(t)).map(t => t.slice(0, 120)),
  };
}"""


def wide_png(width: int = 1600) -> str:
    """A base64 PNG ``width`` px wide: a figure of 16 inches at 100 dpi, as notebook 00's once was."""
    import base64
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (width, 20), "white").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def image_outputs(path: Path) -> int:
    """Outputs of the notebook that hold an image (a figure, a widget's PNG fallback)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return sum(any(k.startswith("image/") for k in out.get("data", {}))
               for cell in nb["cells"] for out in cell.get("outputs", []))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):     # a page closed mid-request: fine
            super().handle_error(request, client_address)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "site.py"), "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"tools/site.py failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    print(run.stdout.splitlines()[-1])
    return out


@pytest.fixture(scope="session")
def served(site):
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def context(browser):
    ctx = browser.new_context(viewport=VIEWPORT)
    yield ctx
    ctx.close()


@functools.cache
def _fetch(url: str) -> tuple[int, str]:
    """(status, body) of a GET on the local server, never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def page_problems(context, url: str, images: int | None = None, math_timeout: float = 60_000) -> list[str]:
    """Open ``url`` and return everything wrong with it (an empty list for a good page): console
    errors, failed or off-machine requests, math left untypeset, broken or undescribed images, an
    image count other than ``images``, internal links or anchors that do not resolve, widget text."""
    problems: list[str] = []
    page = context.new_page()

    def guard(route):
        if LOOPBACK.match(route.request.url):
            route.continue_()
        else:
            problems.append(f"request left the machine (aborted): {route.request.url}")
            route.abort()
    page.route("**/*", guard)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: LOOPBACK.match(r.url) and problems.append(
        f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    try:
        page.goto(url, wait_until="load")
        if page.locator("script[type='text/x-mathjax-config']").count():      # the page wants MathJax
            try:
                page.wait_for_function("document.documentElement.dataset.math === 'done'",
                                       timeout=math_timeout)
            except Exception:
                problems.append("MathJax did not finish typesetting")
        seen = page.evaluate(READ_PAGE)
    finally:
        page.close()
    problems += [f"math left as TeX: {t!r}" for t in seen["untypeset"]]
    for im in seen["images"]:
        if not im["ok"]:
            problems.append(f"broken image: {im['src']}")
        elif im["shown"] < MIN_SHOWN * im["natural"] or im["shown"] > seen["column"] + 1:
            problems.append(f"figure shown at {im['shown'] / im['natural']:.0%} of its {im['natural']} px "
                            f"in a {seen['column']} px column (shrunk, its text with it, or "
                            f"overflowing): {im['src']}")
        if not (im["alt"] or "").strip() or im["alt"].startswith("No description"):
            problems.append(f"image without alt text: {im['src']}")
    if images is not None and len(seen["images"]) != images:
        problems.append(f"{len(seen['images'])} images on the page, {images} image outputs in the notebook")
    here, origin = url.split("#")[0], "/".join(url.split("/")[:3]) + "/"
    for href in dict.fromkeys(seen["links"]):
        target, _, anchor = href.partition("#")
        if not target.startswith(origin):
            continue                                        # a link off the site: not ours to resolve
        ids = seen["ids"]
        if target != here:
            status, body = _fetch(target)
            if status != 200:
                problems.append(f"broken link: {href} (HTTP {status})")
                continue
            ids = re.findall(r'\bid="([^"]*)"', body)
        if anchor and anchor not in ids and unquote(anchor) not in ids:   # a browser tries both
            problems.append(f"link to a missing anchor: {href}")
    if m := WIDGET_TEXT.search(seen["text"]):
        problems.append(f"a widget shown as text: {seen['text'][max(0, m.start() - 40):m.end() + 40]!r}")
    return problems


@pytest.mark.parametrize("name", PAGES)
def test_every_page_opens_clean(context, served, name):
    images = 0 if name == "index" else image_outputs(ROOT / "notebooks" / f"{name}.ipynb")
    assert page_problems(context, f"{served}{name}.html", images=images) == []


def test_the_landing_page_holds_the_course_table_and_the_two_commands(context, served):
    page = context.new_page()
    page.goto(f"{served}index.html", wait_until="load")
    rows = page.eval_on_selector_all("table tr", """trs => trs.map(tr => [...tr.cells].map(
        td => [td.innerText.trim(), td.querySelector('a') && td.querySelector('a').getAttribute('href')]))""")
    code = page.eval_on_selector_all("pre, code", "els => els.map(e => e.innerText)")
    text = page.inner_text("body")
    page.close()
    readme = dict(README_ROW.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    table = {r[0][0]: (r[1][0], r[1][1]) for r in rows if len(r) > 1 and re.fullmatch(r"\d\d", r[0][0])}
    expected = {p.stem[:2]: (readme.get(p.stem[:2]), f"{p.stem}.html") for p in NOTEBOOKS}
    assert table == expected                          # one row per notebook, named as README names it
    assert any(re.search(r"^make lab\b", c, re.M) for c in code)
    assert any(re.search(r"^make test\b", c, re.M) for c in code)
    assert "notebooks/00_welcome.ipynb" in text       # which notebook to open first


def test_chinese_is_drawn_with_a_cjk_font(context, served):
    """Chromium's own account of the fonts it drew a Chinese text with (DevTools protocol): a CJK
    font, not boxes. (The site's CSS names Noto Sans CJK SC first among the CJK fallbacks.)"""
    name = next((p.stem for p in NOTEBOOKS if CJK.search(p.read_text(encoding="utf-8"))), None)
    if name is None:
        pytest.skip("no notebook holds Chinese text")
    page = context.new_page()
    page.goto(f"{served}{name}.html", wait_until="load")
    found = page.evaluate("""(re) => {
        const walk = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
        for (let n; (n = walk.nextNode());) {
          if (new RegExp(re).test(n.nodeValue) && !n.parentElement.closest('script')) {
            n.parentElement.setAttribute('data-cjk', ''); return n.nodeValue.trim().slice(0, 60); } }
        return null; }""", CJK.pattern)
    assert found, f"no Chinese text on {name}.html"
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "[data-cjk]"})["nodeId"]
    fonts = [f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]]
    cdp.detach()
    page.close()
    assert any("CJK" in f for f in fonts), f"{found!r} on {name}.html was drawn with {fonts}"


def test_the_checks_catch_a_broken_page(context, site, served):
    """The landing page with one fault of each kind: ``page_problems`` must report every one."""
    faults = f"""
      <img src="missing.png" alt="a figure that is not there">
      <img src="data:image/png;base64,{PNG}">
      <img src="data:image/png;base64,{wide_png()}" alt="a figure wider than the column">
      <script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>
      <a href="nowhere.html">a page that is not there</a> <a href="#no-such-anchor">an anchor</a>
      <div class="jp-MarkdownOutput">$\\notamacro x$ and $\\frac{{1}}{{2}}$</div>
      <pre>VBox(children=(HBox(children=(FloatSlider(value=0.1),)), Output()))</pre>
      <script>console.error("a script failed")</script>
    </main>"""
    broken = site / "broken-for-the-test.html"
    broken.write_text((site / "index.html").read_text(encoding="utf-8").replace("</main>", faults, 1),
                      encoding="utf-8")
    try:
        problems = page_problems(context, f"{served}{broken.name}", images=4)
    finally:
        broken.unlink()
    expected = ["HTTP 404: " + served + "missing.png", "broken image", "image without alt text",
                "left the machine (aborted): https://cdn.jsdelivr.net",
                "broken link: " + served + "nowhere.html",
                "missing anchor", "TeX error", "a widget shown as text", "a script failed",
                "3 images on the page, 4 image outputs", "figure shown at"]
    missed = [e for e in expected if not any(e in p for p in problems)]
    assert not missed, f"not reported: {missed}; reported: {problems}"


def test_the_checks_catch_math_left_untypeset(context, site, served):
    """A notebook page whose MathJax is missing: the 404, the wait and the raw TeX are reported."""
    page = next(p for p in sorted(site.glob("[0-9][0-9]_*.html")) if "$" in p.read_text(encoding="utf-8"))
    broken = site / "no-mathjax-for-the-test.html"
    html = page.read_text(encoding="utf-8")
    broken.write_text(html.replace("_static/mathjax/MathJax.js", "_static/gone.js"), encoding="utf-8")
    try:
        problems = page_problems(context, f"{served}{broken.name}", math_timeout=2_000)
    finally:
        broken.unlink()
    for expected in ("HTTP 404: " + served + "_static/gone.js", "MathJax did not finish", "math left as TeX"):
        assert any(expected in p for p in problems), f"{expected!r} not reported: {problems}"
