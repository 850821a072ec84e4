"""Browser-test helpers: Voila serves generated notebooks on 127.0.0.1, Playwright drives
Debian's Chromium (never a downloaded browser), every non-loopback request is aborted.

Each widget test builds a small notebook from the course notebook's own setup cell and widget
cell (``course_cells``), so the browser drives exactly the code the course runs, without the
training cells that would make Voila take minutes. Screenshots go to
``test-artifacts/screenshots/`` (git-ignored), one per test.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-default-apps", "--disable-extensions"]
LOOPBACK = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)[:/]")
#: Requests Voila's own page makes and that are aborted harmlessly offline: the widget manager
#: links Font Awesome's CSS from a CDN (icons only). Anything else leaving the machine fails a test.
KNOWN_OFFLINE_MISSES = re.compile(r"^https://cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@")
SETUP_FALLBACK = "import cl_teach\ndevice = cl_teach.setup(seed=0)"


def _have_browser_stack() -> str | None:
    if not os.path.exists(CHROMIUM):
        return "no chromium: `apt-get install -y chromium` (scripts/setup.sh does it as root)"
    for mod in ("voila", "playwright"):
        try:
            __import__(mod)
        except ImportError:
            return f"no {mod}: `pip install -e '.[test]'`"
    return None


# --------------------------------------------------------------------------- notebooks
def course_source(prefix: str) -> Path | None:
    """``notebooks/src/<prefix>_*.py`` (e.g. prefix "01"), or None while it is not written yet."""
    hits = sorted((ROOT / "notebooks" / "src").glob(f"{prefix}_*.py"))
    return hits[0] if hits else None


def _course_code(prefix: str) -> list[str] | None:
    """The code cells of course notebook ``prefix``, verbatim, or None while it is not written yet."""
    src = course_source(prefix)
    if src is None:
        return None
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from nbtool import parse_percent
    finally:
        sys.path.pop(0)
    return [c["source"] for c in parse_percent(src.read_text(encoding="utf-8")) if c["cell_type"] == "code"]


def course_cells(prefix: str, call: str, default_call: str, prep: Sequence[str] = ()) -> list[str]:
    """Cells of a small notebook that drives the widget exactly as course notebook ``prefix`` does.

    Takes the notebook's setup cell (the one calling ``cl_teach.setup``) and its widget cell (the
    first code cell containing ``call + "("``) verbatim; ``prep`` cells (the few inputs the widget
    needs, made with the same loaders, or taken from the notebook with :func:`course_cell`) go
    between them. While the course notebook does not exist yet, or does not call ``call``, the
    setup fallback and ``default_call`` are used.
    """
    setup, widget = SETUP_FALLBACK, default_call
    code = _course_code(prefix)
    if code is not None:
        setup = next((c for c in code if "cl_teach.setup(" in c), setup)
        widget = next((c for c in code if f"{call}(" in c), widget)
    return [setup, *prep, widget]


def course_cell(prefix: str, contains: str, through: str | None = None) -> str:
    """The first code cell of course notebook ``prefix`` containing ``contains``, verbatim.

    A test's prep cell taken from the notebook instead of retyped, so the two cannot drift apart.

    Args:
        prefix: the notebook's number, e.g. "06".
        contains: text that picks the cell (its first code cell containing it).
        through: cut the cell after its first line containing this: the lines that make an
            input, without the figure or printout the notebook draws from it next (those would
            be the page's first image). None: the whole cell.

    Returns:
        The cell's source.

    Raises:
        LookupError: when the notebook, the cell or the ``through`` line is missing.
    """
    code = _course_code(prefix)
    if code is None:
        raise LookupError(f"no course notebook notebooks/src/{prefix}_*.py")
    cell = next((c for c in code if contains in c), None)
    if cell is None:
        raise LookupError(f"no code cell of notebook {prefix} contains {contains!r}")
    if through is None:
        return cell
    lines = cell.splitlines()
    end = next((i for i, line in enumerate(lines) if through in line), None)
    if end is None:
        raise LookupError(f"notebook {prefix}'s cell with {contains!r} has no line with {through!r}")
    return "\n".join(lines[:end + 1]) + "\n"


def run_here(cells: Sequence[str]) -> dict:
    """Execute the setup and prep cells (all but the widget cell) in this process and return their
    namespace: the same inputs the served notebook builds, to compare the browser against."""
    ns: dict = {}
    for c in cells[:-1]:
        exec(c, ns)
    return ns


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VoilaServer:
    """One Voila process serving a folder; ``url(name)`` renders ``name.ipynb`` from it."""

    def __init__(self, root: Path, runtime: Path):
        self.root, self.port = root, free_port()
        env = dict(os.environ, JUPYTER_DATA_DIR=str(runtime / "data"),
                   JUPYTER_RUNTIME_DIR=str(runtime / "rt"), JUPYTER_CONFIG_DIR=str(runtime / "cfg"),
                   CL_TEACH_THREADS="1", PYTHONUNBUFFERED="1")
        self.log = open(runtime / "voila.log", "w")  # noqa: SIM115 (kept open for voila; close() closes it)
        self.proc = subprocess.Popen(
            # Voila through tools/nbclient_wake.py: its executor (nbclient's) otherwise stalls
            # after an Output-widget cell (issue 17; the cause is in that module's docstring)
            [sys.executable, str(ROOT / "tools" / "nbclient_wake.py"), "voila", str(root), "--no-browser",
             f"--port={self.port}",
             "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(root))
        self.log_path = runtime / "voila.log"
        deadline = time.monotonic() + 120                          # bounded wait on a busy machine
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited: {self.log_path.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.3)
        self.close()
        raise RuntimeError("voila did not start within 120 s")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/voila/render/{name}.ipynb"

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class WidgetPage:
    """A Playwright page on one served notebook, with helpers for ipywidgets controls."""

    def __init__(self, page, blocked: list):
        self.page, self.blocked = page, blocked

    # ---- reading
    def images(self) -> list[str]:
        """The ``src`` of every image in the output areas (matplotlib figures are base64 PNGs)."""
        return self.page.eval_on_selector_all(".jp-OutputArea-output img", "els => els.map(e => e.src)")

    def stderr(self) -> list[str]:
        """Text of every stderr / error output on the page (warnings, tracebacks): should be none."""
        return self.page.eval_on_selector_all(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
            '.jp-OutputArea-output.jp-mod-error',
            "els => els.map(e => e.textContent)")

    def labels(self) -> list[str]:
        return self.page.eval_on_selector_all(".widget-label, .widget-html-content",
                                              "els => els.map(e => e.textContent)")

    def text_matching(self, pattern: str) -> str:
        """The first widget label/HTML text matching ``pattern`` (a regex)."""
        for t in self.labels():
            if re.search(pattern, t):
                return t
        raise AssertionError(f"no widget text matches {pattern!r}; texts: {self.labels()}")

    def wait_for_text(self, pattern: str, timeout: float = 60_000) -> str:
        self.page.wait_for_function(
            "(p) => [...document.querySelectorAll('.widget-label, .widget-html-content')]"
            ".some(e => new RegExp(p).test(e.textContent))", arg=pattern, timeout=timeout)
        return self.text_matching(pattern)

    def wait_for_change(self, pattern: str, before_text: str, before_images: list[str],
                        timeout: float = 60_000) -> str:
        """Wait until the readout matching ``pattern`` differs from ``before_text`` and every
        plot image has been redrawn (pass ``[]`` for a widget without images); return the new
        readout."""
        self.page.wait_for_function(
            """([p, t, imgs]) => {
                 const texts = [...document.querySelectorAll('.widget-label, .widget-html-content')]
                     .map(e => e.textContent).filter(s => new RegExp(p).test(s));
                 const now = [...document.querySelectorAll('.jp-OutputArea-output img')].map(e => e.src);
                 const redrawn = imgs.length === 0 || (now.length > 0 && now.every(s => !imgs.includes(s)));
                 return texts.length > 0 && !texts.includes(t) && redrawn;
               }""", arg=[pattern, before_text, before_images], timeout=timeout)
        self.settle()
        return self.text_matching(pattern)

    def settle(self, quiet_s: float = 1.5, timeout_s: float = 60) -> None:
        """Wait until readouts and images stop changing for ``quiet_s`` (several key presses queue
        several redraws; a readout is set before its figure is drawn)."""
        deadline, last, since = time.monotonic() + timeout_s, None, time.monotonic()
        while time.monotonic() < deadline:
            now = (self.labels(), self.images())
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.25)
        raise AssertionError(f"the widget kept redrawing for {timeout_s} s")

    # ---- driving
    def slider(self, description: str):
        """The slider whose description label is ``description``."""
        return self.page.locator(".widget-slider").filter(
            has=self.page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*$")))

    def type_into_slider(self, description: str, value) -> None:
        """Type ``value`` into the slider's editable readout and press Enter (as a user can)."""
        readout = self.slider(description).locator(".widget-readout")
        readout.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")

    def press_on_slider(self, description: str, key: str, times: int = 1) -> None:
        """Focus the slider's handle and press ``key`` (ArrowLeft/ArrowRight/Home/End)."""
        self.slider(description).locator(".noUi-handle").first.focus()
        for _ in range(times):
            self.page.keyboard.press(key)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path




def png_src(fig) -> str:
    """The ``src`` the notebook shows for ``fig``: IPython's PNG formatter, base64, as a data URL.
    Lets a test compare the browser's image with what the package draws for the same values."""
    import base64
    import warnings

    from IPython.core.pylabtools import print_figure
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")   # emoji labels
        data = print_figure(fig, "png")
    return "data:image/png;base64," + base64.b64encode(data).decode()


def decode_png(src: str):
    """An image ``src`` (a base64 PNG data URL) as a float array (H, W, C) in [0, 1]."""
    import base64
    import io

    import numpy as np
    from PIL import Image
    data = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255


def same_pixels(src_a: str, src_b: str) -> bool:
    """Two PNG data URLs show the same picture (pixels equal; PNG metadata may differ)."""
    a, b = decode_png(src_a), decode_png(src_b)
    return a.shape == b.shape and bool((a == b).all())
