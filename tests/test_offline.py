"""Offline: the package and a course notebook run with outbound network denied, and nothing
even tries to connect unless the user asks for a download.

A socket guard (written as ``sitecustomize.py`` onto ``PYTHONPATH``, so it is active in every
Python process started with that environment, Jupyter kernels included) wraps
``socket.connect``/``connect_ex``/``sendto`` and ``getaddrinfo``: loopback and Unix sockets pass
(the kernel talks to its client over 127.0.0.1), anything else is logged to a file and refused
with ``OSError``. The tests then assert that the log stays empty. A positive control shows the
guard does catch real attempts (a plain ``urllib`` request, and ``load_fashion_mnist(download=True)``
when the data is absent).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GUARD = r'''
"""Test network guard (tests/test_offline.py): deny and log every non-loopback connection."""
import os
import socket

_LOG = os.environ.get("CL_TEACH_NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback", "", None}


def _is_local(host):
    if host in _LOCAL_NAMES:
        return True
    host = str(host)
    return host.startswith("127.") or host in ("::1", "0.0.0.0", "::")


def _deny(what):
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(f"pid {os.getpid()}: {what}\n")
    raise OSError(f"network access denied by the test guard: {what}")


def _check(sock, address, op):
    if sock.family == getattr(socket, "AF_UNIX", None) or not isinstance(address, tuple):
        return
    if not _is_local(address[0]):
        _deny(f"{op} {address!r}")


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self, address):
    _check(self, address, "connect")
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    _check(self, address, "connect_ex")
    return _connect_ex(self, address)


def _guarded_sendto(self, data, *args):
    _check(self, args[-1], "sendto")
    return _sendto(self, data, *args)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        _deny(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


if _LOG:
    socket.socket.connect, socket.socket.connect_ex = _guarded_connect, _guarded_connect_ex
    socket.socket.sendto, socket.getaddrinfo = _guarded_sendto, _guarded_getaddrinfo
    socket.CL_TEACH_NETGUARD = True
'''


@pytest.fixture
def guarded_env(tmp_path, monkeypatch):
    """Environment under which every new Python process (and Jupyter kernel) runs the guard."""
    site = tmp_path / "guard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    log = tmp_path / "net.log"
    log.touch()
    pythonpath = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for k, v in {"PYTHONPATH": pythonpath, "CL_TEACH_NETGUARD_LOG": str(log),
                 "CL_TEACH_THREADS": "1"}.items():
        monkeypatch.setenv(k, v)
    return log


def _run(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT))


def test_guard_catches_real_attempts(guarded_env, tmp_path):
    r = _run("""
        import socket, urllib.request
        assert socket.CL_TEACH_NETGUARD
        for url in ("http://example.com/", "http://93.184.216.34/"):
            try:
                urllib.request.urlopen(url, timeout=2)
            except OSError as e:
                print("refused:", e)
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()     # loopback stays allowed
        c = socket.create_connection(s.getsockname(), timeout=2); c.close(); s.close()
    """)
    assert r.returncode == 0, r.stderr
    log = guarded_env.read_text()
    assert "example.com" in log and "93.184.216.34" in log, log


def test_package_runs_offline(guarded_env):
    """Import every module, load every data set, train a few steps, search an index: no connection."""
    r = _run("""
        import importlib, pkgutil, socket
        assert socket.CL_TEACH_NETGUARD
        import cl_teach
        for m in pkgutil.walk_packages(cl_teach.__path__, "cl_teach."):
            if m.name != "cl_teach.prepare":
                importlib.import_module(m.name)
        import torch
        from cl_teach import models, retrieval, train
        from cl_teach.augment import Augment
        from cl_teach.data import ViewLoader, load_fashion_mnist, load_photos, load_weibo
        from cl_teach.methods import SimCLR
        device = cl_teach.setup(seed=0)
        ds = load_fashion_mnist("train").subset(256)
        test = load_fashion_mnist("test")
        print(ds, test)
        load_photos(size=32)
        try:
            print(load_weibo("valid"))
        except FileNotFoundError as e:           # absent corpus: a clear error, no download attempt
            print("weibo absent:", str(e)[:80])
        m = SimCLR(models.SmallCNN())
        h = train.fit(m, ViewLoader(ds.x, [Augment()] * 2, batch_size=64), steps=3, progress=False)
        emb = torch.randn(100, 8)
        retrieval.EmbeddingIndex(kind="hnsw").fit(emb).search(emb[:5], k=3)
        print("ok", h)
    """)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok History" in r.stdout
    assert guarded_env.read_text() == "", "something tried to connect:\n" + guarded_env.read_text()


def test_download_only_when_asked(guarded_env, tmp_path):
    """With the data absent, ``download=True`` is the only path that goes online (and the guard
    sees it); without it the loader falls back or raises, offline."""
    r = _run(f"""
        import os, warnings
        from pathlib import Path
        os.environ["CL_TEACH_DATA"] = {str(tmp_path / 'cache')!r}
        os.environ.pop("CL_TEACH_FASHION_MNIST", None)
        from cl_teach.data import images
        images.DEBIAN_FASHION_DIR = Path({str(tmp_path / 'no-debian')!r})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = images.load_fashion_mnist("test")
        assert ds.is_fallback
        try:
            images.load_fashion_mnist("test", fallback=False)
        except FileNotFoundError:
            print("absent: FileNotFoundError")
        open(os.environ["CL_TEACH_NETGUARD_LOG"], "a").write("--- download=True below\\n")
        try:
            images.load_fashion_mnist("test", download=True, fallback=False)
        except Exception as e:
            print("download refused:", type(e).__name__)
    """)
    assert r.returncode == 0, r.stdout + r.stderr
    before, _, after = guarded_env.read_text().partition("--- download=True below\n")
    assert before == "", "the offline paths tried to connect:\n" + before
    assert after.strip(), "download=True should have tried to connect (and been refused)"


def _offline_notebook() -> tuple:
    """Notebook 00 (the tour: data, augmentations, a training run with live plots) when it exists,
    else a few cells doing the same."""
    import nbformat
    hits = sorted((ROOT / "notebooks").glob("00_*.ipynb"))
    if hits:
        nb = nbformat.read(hits[0], as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        name = hits[0].name
    else:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(s) for s in (
            "import cl_teach\nfrom IPython.display import display\ndevice = cl_teach.setup(seed=0)",
            "from cl_teach.data import load_fashion_mnist, ViewLoader\n"
            "ds = load_fashion_mnist('train').subset(512)",
            "from cl_teach import models, plotting, train\nfrom cl_teach.augment import Augment\n"
            "from cl_teach.methods import SimCLR\nh = train.fit(SimCLR(models.SmallCNN()), "
            "ViewLoader(ds.x, [Augment()] * 2, batch_size=128), steps=5, callbacks=[plotting.LivePlot()])",
            "display(plotting.show_images(ds.x[:8]))")]
        name = "generated"
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import socket\n"
        "assert getattr(socket, 'CL_TEACH_NETGUARD', False), 'the network guard is not active'"))
    return nb, name


@pytest.mark.notebook
def test_notebook_runs_offline(guarded_env, tmp_path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError
    for attempt in range(1, 4):
        nb, name = _offline_notebook()
        try:
            NotebookClient(nb, timeout=90, kernel_name="python3",
                           resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
            break
        except CellTimeoutError:
            # The stall of issue 17: notebook 00's widget cell (temperature_explorer) sometimes gets
            # its reply only when nbclient's per-cell timeout runs out (3 of 5 runs here, each
            # exactly the timeout long; once 600 s in make test). 90 s bounds that cost; a real
            # timeout error reruns the notebook.
            if attempt == 3:
                raise
    log = guarded_env.read_text()
    assert log == "", f"{name}: something tried to connect:\n{log}"
    kinds = {k for c in nb.cells if c.cell_type == "code" for o in c.outputs for k in o.get("data", {})}
    assert "image/png" in kinds, f"{name}: no figure was rendered as an image (outputs: {sorted(kinds)})"
    (tmp_path / "executed.json").write_text(json.dumps({"notebook": name}))
