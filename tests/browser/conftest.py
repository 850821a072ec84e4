"""Fixtures of the browser tests (helpers in harness.py): a Voila server, Chromium, a page per test."""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    KNOWN_OFFLINE_MISSES,
    LOOPBACK,
    VoilaServer,
    WidgetPage,
    _have_browser_stack,
    write_notebook,
)


def pytest_collection_modifyitems(config, items):
    """Every test under tests/browser is a browser test, skipped when the stack is missing."""
    reason = _have_browser_stack()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def voila(tmp_path_factory):
    root, runtime = tmp_path_factory.mktemp("voila_root"), tmp_path_factory.mktemp("voila_runtime")
    server = VoilaServer(root, runtime)
    yield server
    server.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_widget(voila, browser, request):
    """``open_widget(cells)`` serves ``cells`` as a notebook and returns a ready :class:`WidgetPage`
    (the widgets and the first plot rendered). Fails on any request leaving the machine."""
    contexts, pages = [], []
    blocked: list = []

    def _open(cells: Sequence[str], wait_for: str = r".", timeout: float = 60_000,
              image: bool = True) -> WidgetPage:
        name = re.sub(r"\W+", "_", request.node.name)
        write_notebook(voila.root / f"{name}.ipynb", cells)
        ctx = browser.new_context(viewport={"width": 1100, "height": 800})
        contexts.append(ctx)
        page = ctx.new_page()

        def guard(route):
            if LOOPBACK.match(route.request.url):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()
        page.route("**/*", guard)
        wp = WidgetPage(page, blocked)
        pages.append(wp)
        # One attempt: a page that does not render fails. (Voila's executor used to stall for ever
        # after an Output-widget cell, so this loaded each page up to 5 times; the cause and its
        # fix are in tools/nbclient_wake.py, and harness.VoilaServer starts Voila through it.)
        page.goto(voila.url(name), timeout=timeout, wait_until="commit")   # Voila streams cells
        try:
            if image:
                page.locator(".jp-OutputArea-output img").first.wait_for(timeout=timeout)
            wp.wait_for_text(wait_for, timeout=timeout)
        except Exception:
            wp.screenshot(f"{name}-FAILED")
            log = voila.log_path.read_text()[-3000:]
            text = page.inner_text("body")[-2000:]
            raise AssertionError(f"widget did not render; page text:\n{text}"  # noqa: B904
                                 f"\nvoila log tail:\n{log}")
        return wp

    yield _open
    noise = [t for wp in pages for t in wp.stderr()]
    for ctx in contexts:
        ctx.close()
    assert not noise, f"the notebook printed warnings or errors to the learner: {noise}"
    unexpected = [u for u in blocked if not KNOWN_OFFLINE_MISSES.match(u)]
    assert not unexpected, f"the page tried to leave the machine: {unexpected}"
