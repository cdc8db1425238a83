"""The browser chain works end to end: Debian Chromium, driven by Playwright, loads a page from a Hotline
started in this process.  If this fails, every other browser test would fail for the same reason."""

from __future__ import annotations

import json

from playwright.async_api import Page

from .browser import ProblemLog
from .conftest import WebHotline


async def test_health_page_in_the_browser(page: Page, hotline_web: WebHotline) -> None:
    response = await page.goto(hotline_web.url("/health"))

    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(await page.locator("body").inner_text())
    assert body["status"] == "ok"
    assert body["nodes"] == []


async def test_console_errors_are_collected(page: Page, hotline_web: WebHotline, browser_problems: ProblemLog) -> None:
    """A page error fails a test unless declared; here it is declared, and it is recorded."""
    browser_problems.expect(r"boom from the smoke test")
    await page.goto(hotline_web.url("/health"))
    await page.evaluate("console.error('boom from the smoke test')")
    await page.evaluate("0")  # the console event has reached Python once this round trip returns

    assert any("boom from the smoke test" in p for p in browser_problems.problems)
    assert browser_problems.unexpected() == []
