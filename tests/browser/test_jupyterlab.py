"""Notebook 01 as a student runs it: JupyterLab on 127.0.0.1, Run All through the UI, the explorer moved.

JupyterLab opens a copy of the executed teacher notebook with its outputs cleared; Run All (the Run
menu) must give every code cell an execution count and back the outputs the teacher copy has, with
no error or stderr output; the temperature explorer's tau slider, moved with the keyboard, must
change its readout and redraw its figure; and no notification toast may cover the output. The news
pop-up is switched off by the course's settings, ``jupyter/lab-overrides.json``, which
``scripts/setup.sh`` copies to ``<venv>/share/jupyter/lab/settings/overrides.json``, where the
venv's JupyterLab reads its defaults: the course server is started as ``make lab`` starts it,
without pointing at any settings. A second server, given an empty settings folder, shows the pop-up
(the test that proves the first check can fail). Each server gets its own config, data and runtime
folders, so no user setting of this machine decides either result.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from harness import LOOPBACK, ROOT, WidgetPage, free_port

NOTEBOOK = ROOT / "notebooks" / "01_infonce_temperature.ipynb"
SHIPPED = ROOT / "jupyter" / "lab-overrides.json"
INSTALLED = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"
TOAST = ".jp-toastContainer .Toastify__toast"
#: Loopback requests that make the JupyterLab server itself fetch from the internet (the news feed,
#: PyPI's latest version): aborted in the browser too, and the course's settings must not make them.
GOES_ONLINE = re.compile(r"/lab/api/(news|update)\b")
READOUT = re.compile(r"tau = .*loss = ")

# The notebook panel JupyterLab shows, its code cells and its kernel (``window.jupyterapp`` is there
# because of --LabApp.expose_app_in_browser).
JS_PANEL = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (!kernel || !w.content || !w.content.model) return null;
  const cells = [...w.content.model.cells].filter(c => c.type === 'code').map(c => {
    const outs = [];
    for (let i = 0; i < c.outputs.length; i++) outs.push(c.outputs.get(i).type);
    return {count: c.executionCount, outputs: outs};
  });
  return {kernel: kernel.status, ready: w.context.isReady, cells: cells};
}"""
# The explorer's readout and the src of its figures, read from the cell that shows the readout.
JS_EXPLORER = """() => {
  const cell = [...document.querySelectorAll('.jp-CodeCell')].find(c =>
      [...c.querySelectorAll('.widget-label')].some(l => /tau = .*loss = /.test(l.textContent)));
  if (!cell) return null;
  const readout = [...cell.querySelectorAll('.widget-label')].map(l => l.textContent)
      .find(t => /tau = .*loss = /.test(t));
  return {readout: readout, images: [...cell.querySelectorAll('.jp-OutputArea-output img')].map(i => i.src)};
}"""


def teacher_code_cells() -> list:
    """The code cells of the executed teacher notebook, outputs included."""
    import nbformat
    return [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]


def show(locator, tries: int = 10) -> None:
    """Scroll the notebook until ``locator``'s top is near the top of the window (cells above it
    render while it scrolls and move it, hence the loop)."""
    for _ in range(tries):
        locator.evaluate("e => e.scrollIntoView({block: 'start'})")
        locator.page.wait_for_timeout(300)
        box = locator.bounding_box()
        if box and 0 <= box["y"] < 200:
            return
    raise AssertionError(f"could not scroll {locator} into view: {locator.bounding_box()}")


class JupyterLab:
    """``jupyter lab`` on a free 127.0.0.1 port serving ``root``, with its own config, data and runtime
    folders under ``runtime``; ``app_settings_dir`` None: the venv's (where setup.sh puts the course's
    settings), as ``make lab`` runs it."""

    def __init__(self, root: Path, runtime: Path, app_settings_dir: Path | None = None):
        self.root, self.port, self.log_path = root, free_port(), runtime / "jupyterlab.log"
        env = {k: v for k, v in os.environ.items()
               if k not in ("JUPYTERLAB_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR")}
        env.update(JUPYTER_CONFIG_DIR=str(runtime / "cfg"), JUPYTER_DATA_DIR=str(runtime / "data"),
                   JUPYTER_RUNTIME_DIR=str(runtime / "rt"), CL_TEACH_THREADS="1", PYTHONUNBUFFERED="1")
        args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
                "--IdentityProvider.token=", "--LabApp.expose_app_in_browser=True"]
        if os.getuid() == 0:
            args.append("--allow-root")
        if app_settings_dir is not None:
            args.append(f"--LabApp.app_settings_dir={app_settings_dir}")
        self.log = open(self.log_path, "w")  # noqa: SIM115 (kept open for the server; close() closes it)
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(root))

    def wait_until_up(self, timeout_s: float = 120) -> JupyterLab:
        deadline = time.monotonic() + timeout_s                   # bounded wait on a busy machine
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5):
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer within {timeout_s} s: "
                           f"{self.log_path.read_text()[-2000:]}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url(path), timeout=30) as r:
            return json.load(r)

    def close(self) -> None:
        """Stop the server; it shuts its kernels down on SIGTERM."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    """The course's JupyterLab with a clear copy of notebook 01, and one without the course's settings.

    Both start at once (10-15 s until both answer on 2 busy cores)."""
    import nbformat
    root = tmp_path_factory.mktemp("lab_root")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)                  # the widget state saved with the outputs
    nbformat.write(nb, root / NOTEBOOK.name)
    bare_settings = tmp_path_factory.mktemp("lab_bare_settings")  # empty: JupyterLab's own defaults
    servers = {"course": JupyterLab(root, tmp_path_factory.mktemp("lab_runtime")),
               "bare": JupyterLab(tmp_path_factory.mktemp("lab_bare_root"),
                                  tmp_path_factory.mktemp("lab_bare_runtime"), bare_settings)}
    try:
        for server in servers.values():
            server.wait_until_up()
        yield servers
    finally:
        for server in servers.values():
            server.close()


@pytest.fixture
def lab_page(browser):
    """``lab_page(server, path)`` opens ``path`` of ``server`` in a fresh Chromium page (viewport of a
    laptop) and returns a :class:`WidgetPage`; every request leaving 127.0.0.1 is aborted and fails
    the test, as does one that would make the server go online."""
    contexts, blocked, online = [], [], []

    def _open(server: JupyterLab, path: str) -> WidgetPage:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        page = ctx.new_page()

        def guard(route):
            url = route.request.url
            if not LOOPBACK.match(url):
                blocked.append(url)
                route.abort()
            elif GOES_ONLINE.search(url):
                online.append(url)
                route.abort()
            else:
                route.continue_()
        page.route("**/*", guard)
        page.goto(server.url(path), timeout=120_000)
        return WidgetPage(page, blocked)

    yield _open
    for ctx in contexts:
        # Stop the kernels the page started (the server's SIGTERM would too), then the page.
        with contextlib.suppress(Exception):
            ctx.pages[0].evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
        ctx.close()
    assert not blocked, f"the page tried to leave the machine: {blocked}"
    assert not online, f"the page asked the JupyterLab server to go online: {online}"


def test_course_settings_are_installed(labs):
    """setup.sh put the shipped file where the venv's JupyterLab reads it, and the server applies it."""
    assert INSTALLED.is_file(), f"{INSTALLED} missing: run `bash scripts/setup.sh`"
    assert json.loads(INSTALLED.read_text()) == json.loads(SHIPPED.read_text()), \
        f"{INSTALLED} differs from {SHIPPED}: run `bash scripts/setup.sh`"
    notification = json.loads(SHIPPED.read_text())[NOTIFICATION]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}, notification
    for name, fetch_news in (("course", "false"), ("bare", "none")):
        schema = labs[name].get_json(f"lab/api/settings/{NOTIFICATION}")["schema"]["properties"]
        assert schema["fetchNews"]["default"] == fetch_news, (name, schema["fetchNews"])
        assert schema["checkForUpdates"]["default"] is (name == "bare"), (name, schema["checkForUpdates"])


def test_news_popup_shows_without_course_settings(labs, lab_page):
    """JupyterLab's own defaults ask about the news in a toast that stays until answered (bottom
    right, over the output): what the course's settings switch off, so the check of the course's
    page can fail."""
    page = lab_page(labs["bare"], "lab")
    toast = page.page.locator(TOAST)
    toast.first.wait_for(state="visible", timeout=120_000)
    assert "Jupyter news" in toast.first.inner_text()
    page.screenshot("jupyterlab_without_course_settings")


def test_notebook_01_runs_in_jupyterlab(labs, lab_page):
    page = lab_page(labs["course"], f"lab/tree/{NOTEBOOK.name}")
    p = page.page
    p.wait_for_function(f"() => {{ const s = ({JS_PANEL})(); return s && s.ready && s.kernel === 'idle'; }}",
                        timeout=120_000)
    before = p.evaluate(JS_PANEL)["cells"]
    assert all(c["count"] is None and not c["outputs"] for c in before), "the copy should start clear"

    # Run > Run All Cells, as a student does.
    p.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    p.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells")).click()
    p.wait_for_function(
        f"""() => {{ const s = ({JS_PANEL})();
              return s.cells.some(c => c.outputs.includes('error'))
                  || (s.kernel === 'idle' && s.cells.every(c => c.count !== null)); }}""",
        timeout=240_000, polling=500)
    cells = p.evaluate(JS_PANEL)["cells"]
    errors = [i for i, c in enumerate(cells) if "error" in c["outputs"]]
    assert not errors, f"code cells {errors} raised: {page.stderr()}"
    assert all(c["count"] is not None for c in cells), cells
    teacher = [bool(c.outputs) for c in teacher_code_cells()]
    assert [bool(c["outputs"]) for c in cells] == teacher, "Run All should bring back the teacher's outputs"
    assert not page.stderr(), f"the notebook printed warnings or errors to the learner: {page.stderr()}"

    # The explorer rendered in its cell: readout and figure.
    p.wait_for_function(f"() => {{ const e = ({JS_EXPLORER})(); return e && e.images.length > 0; }}",
                        timeout=60_000)
    start = p.evaluate(JS_EXPLORER)
    show(p.locator(".jp-CodeCell").filter(has=p.locator(".widget-label", has_text=READOUT)))
    assert not p.locator(TOAST).count(), f"a toast covers the output: {p.locator(TOAST).all_inner_texts()}"
    page.screenshot("jupyterlab_01_run_all")

    # Lower tau with the keyboard: 5 steps of 0.1 in log10 -> tau / 10^0.5; readout and figure change.
    tau = float(re.search(r"tau = ([\d.e+-]+)", start["readout"]).group(1))
    page.press_on_slider("tau", "ArrowLeft", times=5)
    p.wait_for_function(
        f"""([tau, imgs]) => {{ const e = ({JS_EXPLORER})();
              const m = e && e.readout.match(/tau = ([\\d.e+-]+)/);
              return m && parseFloat(m[1]) < tau / 3 && e.images.length > 0
                  && e.images.every(s => !imgs.includes(s)); }}""",
        arg=[tau, start["images"]], timeout=60_000)
    page.settle()
    moved = p.evaluate(JS_EXPLORER)
    assert moved["readout"] != start["readout"] and moved["images"] != start["images"]
    assert not page.stderr(), f"moving the slider printed to the learner: {page.stderr()}"
    assert not p.locator(TOAST).count(), f"a toast covers the output: {p.locator(TOAST).all_inner_texts()}"
    page.screenshot("jupyterlab_01_slider_moved")
