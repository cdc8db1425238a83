"""The page framework in a real browser: sign-in, role home pages, the language switch, guards and headers."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from hotline.db.repositories.accounts import AccountRepository

from .browser import ProblemLog
from .conftest import WebHotline

PASSWORD = "correct horse battery"


def add_user(web: WebHotline, username: str, role: str, *, agent: str | None = None, language: str = "en") -> None:
    AccountRepository(web.hotline.engine).add_user(username, PASSWORD, role=role, agent=agent, language=language)


async def sign_in(page: Page, web: WebHotline, username: str, path: str = "/") -> None:
    await page.goto(web.url(path))
    await page.locator("#login-username").fill(username)
    await page.locator("#login-password").fill(PASSWORD)
    await page.locator("#login-submit").click()


async def test_sign_in_goes_to_the_page_asked_for_and_wrong_password_says_so(
    hotline_web: WebHotline, page: Page, browser_problems: ProblemLog
) -> None:
    add_user(hotline_web, "sue", "supervisor")
    browser_problems.expect(r"401")  # the browser logs the refused login request

    await page.goto(hotline_web.url("/wallboard"))
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fwallboard$"))
    await page.locator("#login-username").fill("sue")
    await page.locator("#login-password").fill("not the password")
    await page.locator("#login-submit").click()
    await expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    await expect(page).to_have_url(re.compile(r"/login"))

    await page.locator("#login-password").fill(PASSWORD)
    await page.locator("#login-submit").click()
    await expect(page).to_have_url(hotline_web.url("/wallboard"))
    await expect(page.locator('[data-testid="user-name"]')).to_have_text("sue")


async def test_home_page_by_role(hotline_web: WebHotline, page: Page) -> None:
    add_user(hotline_web, "sue", "supervisor")
    await sign_in(page, hotline_web, "sue")
    await expect(page).to_have_url(hotline_web.url("/monitor"))
    await expect(page.locator('[data-nav="/wallboard"]')).to_be_visible()
    await expect(page.locator('[data-nav="/agent"]')).to_have_count(0)

    await page.locator('[data-testid="logout"]').click()
    await expect(page).to_have_url(hotline_web.url("/login"))
    await page.goto(hotline_web.url("/monitor"))
    await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_language_switch_to_russian(hotline_web: WebHotline, page: Page) -> None:
    add_user(hotline_web, "sue", "supervisor")
    await sign_in(page, hotline_web, "sue", "/wallboard")
    await expect(page.locator('[data-nav="/monitor"]')).to_have_text("Live monitor")

    await page.locator("#language-switch").select_option("ru")
    await expect(page.locator('[data-nav="/monitor"]')).to_have_text("Монитор")
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await page.reload()  # the choice is the user's setting, not the page's
    await expect(page.locator('[data-testid="logout"]')).to_have_text("Выйти")


async def test_pages_send_security_headers_and_a_favicon(hotline_web: WebHotline) -> None:
    async with httpx.AsyncClient(base_url=hotline_web.base_url) as client:
        login = await client.get("/login")
        icon = await client.get("/favicon.ico")
        monitor = await client.get("/monitor")
    assert login.status_code == 200
    csp = login.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["referrer-policy"] == "same-origin"
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert monitor.status_code == 303 and monitor.headers["location"] == "/login?next=%2Fmonitor"


async def test_an_agent_may_not_open_the_monitor_and_bad_input_gets_an_error_page(
    hotline_web: WebHotline, page: Page, browser_problems: ProblemLog
) -> None:
    await hotline_web.hotline.config.write(hotline_web.hotline.config_repo.add_agent, "1001", "Alice")
    add_user(hotline_web, "alice", "agent", agent="1001")
    browser_problems.expect(r"status of (403|404|422)")  # the browser logs the error pages' statuses
    await sign_in(page, hotline_web, "alice", "/monitor")
    await expect(page.locator('[data-testid="error-text"]')).to_have_text(
        "You do not have permission to open this page."
    )
    await page.goto(hotline_web.url("/agent?agent=abc"))
    await expect(page.locator('[data-testid="error-detail"]')).to_contain_text("agent: must be an agent number")
    await page.goto(hotline_web.url("/agent?agent=1002"))
    await expect(page.locator('[data-testid="error-detail"]')).to_contain_text("may not see agent 1002")


def test_the_next_target_after_login_stays_on_this_site() -> None:
    from hotline.web.pages.framework import safe_next

    assert safe_next("/monitor?x=1") == "/monitor?x=1"
    for bad in ("//evil.example/", "/\\evil.example", "https://evil.example/", "monitor", "", None, "/a\nb", "/" * 600):
        assert safe_next(bad) == "/"
