"""Fixtures for the tests in a real browser: Debian's Chromium driven by Playwright (no browser download),
and the real register served on loopback, one server per database for the whole browser suite.

Without /usr/bin/chromium these tests are skipped, except when `CI` is set: then they fail, because CI
must prove the pages work in a browser (.ci/run installs Debian's chromium package when it is missing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import server
from tests.browser.data import Register
from tests.conftest import drop_pg_database

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1100, "height": 900}
TIMEOUT_MS = 20_000  # a failing wait ends in time; passing tests never depend on it


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


# Package scope, not session: Playwright's sync API keeps an event loop marked as running while it is
# started, and the asyncio tests after this folder (tests/clients) cannot start theirs until it stops.
@pytest.fixture(scope="package")
def chromium() -> Iterator:
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    # As root (CI) Chromium refuses its sandbox; the pages are ours and served on loopback.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


@pytest.fixture(scope="package")
def served(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Register]:
    """`register serve` on a fresh database, in development mode (the development sign-in page) with
    official test identities accepted, and the log integrated quickly so proofs are there within a second."""
    tmp_path = tmp_path_factory.mktemp(f"browser-{backend}")
    database_url = server.fresh_database(backend, tmp_path)
    port = server.free_port()
    proc = server.start(database_url, tmp_path, port, REGISTER_ENV="dev", REGISTER_ACCEPT_TEST_IDENTITIES="true",
                        REGISTER_LOG_INTERVAL_SECONDS="0.2", REGISTER_CHECKPOINT_INTERVAL_SECONDS="0.5")
    try:
        yield Register(url=f"http://127.0.0.1:{port}", backend=backend, database_url=database_url, data_dir=tmp_path)
    finally:
        server.kill(proc)
        if backend == "postgres":
            drop_pg_database(database_url)


@pytest.fixture
def context(chromium, served: Register) -> Iterator:
    """A fresh browser profile (no cookies) for one test, in Swedish unless the test chooses."""
    ctx = chromium.new_context(base_url=served.url, viewport=VIEWPORT, locale="sv-SE")
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing browser test shows what the server said."""
    outcome = yield
    report = outcome.get_result()
    reg = item.funcargs.get("served") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(reg, Register):
        report.sections.append(("server log", server.server_log(reg.data_dir)))
