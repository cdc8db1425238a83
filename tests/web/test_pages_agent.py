"""The agent page and the live monitor in a real browser, on an in-process Hotline (no Asterisk node)."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, expect

from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.db.repositories.crm import CustomerRepository

from .browser import ProblemLog
from .conftest import WebHotline
from .test_pages_framework import add_user, sign_in

PIN = "4321"


async def call_center(web: WebHotline) -> None:
    """Queue support, phone 2001, agent 1001 (Alice) serving support, pause reason lunch, user alice."""
    hl = web.hotline
    await hl.config.write(hl.config_repo.add_queue, "support")
    await hl.config.write(hl.config_repo.add_phone, "2001", "phone-password-1", realm=web.settings.sip_realm)
    await hl.config.write(hl.config_repo.add_agent, "1001", "Alice", pin=PIN)
    callcenter = CallCenterRepository(hl.engine)
    await hl.config.write(callcenter.set_agent_queue, "1001", "support")
    await hl.config.write(callcenter.add_pause_reason, "lunch")
    add_user(web, "alice", "agent", agent="1001")


async def test_agent_logs_in_pauses_and_sees_the_screen_pop(
    hotline_web: WebHotline, page: Page, browser_problems: ProblemLog
) -> None:
    await call_center(hotline_web)
    await asyncio.to_thread(
        CustomerRepository(hotline_web.hotline.engine).add,
        "Ivan Petrov",
        "+35550001",
        email="ivan@example.com",
        external_id="C-77",
        data={"tier": "gold"},
    )
    await sign_in(page, hotline_web, "alice")
    await expect(page).to_have_url(hotline_web.url("/agent"))
    state = page.locator('[data-testid="agent-state"]')
    await expect(state).to_have_attribute("data-state", "logged_out")

    # log in on a phone with the PIN; a wrong PIN is refused with the reason shown
    browser_problems.expect(r"401")
    form = page.locator('[data-testid="agent-login-form"]')
    await form.locator('[name="phone"]').fill("2001")
    await form.locator('[name="pin"]').fill("9999")
    await page.locator('[data-testid="agent-login"]').click()
    await expect(page.locator("#hotline-flash")).to_contain_text("wrong agent number or PIN")
    await form.locator('[name="pin"]').fill(PIN)
    await page.locator('[data-testid="agent-login"]').click()
    await expect(state).to_have_attribute("data-state", "available")
    await expect(page.locator('[data-testid="agent-phone"]')).to_have_text("on phone 2001")

    await page.locator('[data-testid="pause-reason"]').select_option("lunch")
    await page.locator('[data-testid="agent-pause"]').click()
    await expect(state).to_have_attribute("data-state", "paused")
    await expect(state).to_have_text("paused · lunch")
    await page.locator('[data-testid="agent-available"]').click()
    await expect(state).to_have_attribute("data-state", "available")
    await expect(page.locator('[data-testid="stream-state"]')).to_have_attribute("data-state", "open")

    # the phone rings: the screen pop shows the caller, the customer record and the CRM-less lookup
    await hotline_web.hotline.caller_lookup.screen_pop(
        call_id="call-1", number="+35550001", agent="1001", queue="support"
    )
    pop = page.locator('[data-testid="screen-pop"]')
    await expect(pop).to_be_visible()
    await expect(pop.locator('[data-field="caller-number"]')).to_have_text("+35550001")
    await expect(pop.locator('[data-field="customer-name"]')).to_have_text("Ivan Petrov")
    await expect(pop.locator('[data-field="customer-id"]')).to_have_text("C-77")
    await expect(pop.locator('[data-testid="pop-customer"]')).to_contain_text("gold")
    await expect(page.locator('[data-testid="current-call"]')).to_have_text("call-1")

    # a pop for another agent is not shown here
    await hotline_web.hotline.caller_lookup.screen_pop(call_id="call-2", number="+35550002", agent="1002")
    await page.locator('[data-testid="screen-pop-close"]').click()
    await hotline_web.hotline.caller_lookup.screen_pop(call_id="call-3", number="+35550003", agent="1001")
    await expect(pop.locator('[data-field="call-id"]')).to_have_text("call-3")

    # tagging a call that is not this agent's (no journal record here) is refused, with the reason shown
    browser_problems.expect(r"403")
    tag = page.locator('[data-testid="tag-form"]')
    await tag.locator('[name="value"]').fill("D-100")
    await page.locator('[data-testid="tag-submit"]').click()
    await expect(page.locator("#hotline-flash")).to_contain_text("may tag only its own calls")

    # click-to-call with a bad number names the field
    browser_problems.expect(r"422")
    dial = page.locator('[data-testid="dial-form"]')
    await dial.locator('[name="number"]').fill("12ab")
    await page.locator('[data-testid="dial-submit"]').click()
    await expect(page.locator("#hotline-flash")).to_contain_text("Number:")
    await expect(dial.locator('[name="number"]')).to_have_attribute("aria-invalid", "true")


async def test_monitor_lists_agents_and_controls_them(hotline_web: WebHotline, page: Page) -> None:
    await call_center(hotline_web)
    await hotline_web.hotline.agents.login("1001", None, "2001", actor="test", check_pin=False)
    add_user(hotline_web, "sue", "supervisor")
    await sign_in(page, hotline_web, "sue")
    await expect(page).to_have_url(hotline_web.url("/monitor"))

    row = page.locator('[data-testid="agents"] tr[data-agent="1001"]')
    await expect(row.locator('[data-field="name"]')).to_have_text("Alice")
    await expect(row.locator('[data-field="state"] .badge')).to_have_attribute("data-state", "available")
    await expect(page.locator('[data-testid="queues"] tr[data-queue="support"] [data-field="available"]')).to_have_text(
        "1"
    )
    await expect(page.locator('[data-testid="stream-state"]')).to_have_attribute("data-state", "open")

    # a change made elsewhere (the agent's own phone, the CLI) arrives as an event
    await hotline_web.hotline.agents.pause("1001", "lunch", actor="test")
    await expect(row.locator('[data-field="state"] .badge')).to_have_attribute("data-state", "paused")
    await expect(row.locator('[data-field="reason"]')).to_have_text("lunch")
    await expect(page.locator('[data-testid="queues"] tr[data-queue="support"] [data-field="paused"]')).to_have_text(
        "1"
    )

    await row.locator('[data-action="unpause"]').click()
    await expect(row.locator('[data-field="state"] .badge')).to_have_attribute("data-state", "available")

    await row.locator('[data-action="pause"]').click()
    await page.locator('[data-testid="ask-dialog"] select[name="reason"]').select_option("lunch")
    await page.locator('[data-testid="ask-ok"]').click()
    await expect(row.locator('[data-field="reason"]')).to_have_text("lunch")

    await row.locator('[data-action="logoff"]').click()
    await page.locator('[data-testid="ask-ok"]').click()
    await expect(row.locator('[data-field="state"] .badge')).to_have_attribute("data-state", "logged_out")
    assert hotline_web.hotline.agents.status(1).state == "logged_out"

    # a supervisor opens the agent's page read-only
    await page.goto(hotline_web.url("/agent?agent=1001"))
    await expect(page.locator('[data-testid="read-only"]')).to_be_visible()
    await expect(page.locator('[data-testid="agent-state"]')).to_have_attribute("data-state", "logged_out")
    await expect(page.locator('[data-testid="agent-pause"]')).to_have_count(0)
    await expect(page).to_have_title(re.compile("My desk"))
