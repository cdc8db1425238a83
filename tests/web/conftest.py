"""Fixtures for Hotline's web pages: an in-process Hotline and a real browser (tests/web/browser.py).

    browser           one headless Debian Chromium for the whole session (Playwright, async API)
    browser_context   a fresh context per test (no shared cookies/storage), default timeout 10 s
    page              a page in that context
    browser_problems  console errors and uncaught page errors; unexpected ones fail the test
    hotline_web       a Hotline started in this process on free ports, SQLite in tmp_path, no Asterisk node

Event loops: Playwright's connection belongs to the loop that started it, so the session-wide browser lives
in pytest-asyncio's session loop, and every async test in this folder that uses `browser`, `browser_context`,
`page` or `hotline_web` is moved to that loop (pytest_collection_modifyitems below).  An async fixture such a
test uses alongside must be declared `@pytest_asyncio.fixture(loop_scope="session")` too; with the default
function loop it would run in a loop that is idle while the test runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from .browser import (
    CHROMIUM,
    DEFAULT_TIMEOUT_MS,
    INSTALL_HINT,
    ProblemLog,
    artifact_stem,
    artifacts_dir,
    describe_problems,
    free_port,
    launch_options,
    remove_stale_artifacts,
    save_failure_artifacts,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

    from hotline.app import Hotline
    from hotline.settings import Settings

_HERE = Path(__file__).parent
_SESSION_LOOP_FIXTURES = frozenset({"browser", "browser_context", "page", "hotline_web"})
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if not item.path.is_relative_to(_HERE) or not pytest_asyncio.is_async_test(item):
            continue
        if _SESSION_LOOP_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            continue
        marker = item.get_closest_marker("asyncio")
        if marker is None or not (marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")):
            item.add_marker(session_loop, append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test that passed but made the browser report unexpected errors (checked again at teardown)."""
    result = yield
    log = getattr(item, "funcargs", {}).get("browser_problems")
    if isinstance(log, ProblemLog):
        bad = log.take_unreported()
        if bad:
            pytest.fail(describe_problems(bad), pytrace=False)
    return result


# -------------------------------------------------------------------------------------------- browser
@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing -> {INSTALL_HINT}", pytrace=False)
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError:
        pytest.fail(f"the playwright package is missing from this Python -> {INSTALL_HINT}", pytrace=False)
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(**launch_options())
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
def browser_problems() -> ProblemLog:
    return ProblemLog()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(
    browser: Browser, browser_problems: ProblemLog, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    browser_problems.attach(context)
    stem = artifact_stem(request.node.nodeid)
    remove_stale_artifacts(stem, artifacts_dir())
    try:
        yield context
        # one round trip per page: console events the page sent before it are delivered by now
        for p in context.pages:
            if not p.is_closed():
                await p.evaluate("0")
        late = browser_problems.take_unreported()
        report = request.node.stash.get(_CALL_REPORT, None)
        call_failed = report is not None and report.failed
        if late or call_failed:
            saved = await save_failure_artifacts(list(context.pages), stem, artifacts_dir())
            if report is not None:
                # shown with the failure in pytest's summary
                if saved:
                    report.sections.append(("browser artifacts", "\n".join(str(p) for p in saved)))
                if late and call_failed:
                    report.sections.append(("browser problems", describe_problems(late)))
            if late and not call_failed:
                pytest.fail(f"{describe_problems(late)}\nartifacts: {', '.join(map(str, saved))}", pytrace=False)
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser_context: BrowserContext) -> Page:
    return await browser_context.new_page()


# -------------------------------------------------------------------------------------------- Hotline
@dataclass(frozen=True)
class WebHotline:
    hotline: Hotline
    settings: Settings
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest_asyncio.fixture(loop_scope="session")
async def hotline_web(tmp_path: Path) -> AsyncIterator[WebHotline]:
    """Hotline in this process with its HTTP server on a free port; no lab node is configured."""
    from hotline.app import Hotline
    from hotline.settings import load_settings

    settings = load_settings(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "asterisk_root": tmp_path / "no-asterisk-root",
            "http_port": free_port(),
            "agi_port": free_port(),
            "realtime_port": free_port(),
        },
    )
    hotline = Hotline(settings)
    await hotline.start()
    try:
        yield WebHotline(hotline, settings, f"http://{settings.http_host}:{settings.http_port}")
    finally:
        await hotline.stop()
