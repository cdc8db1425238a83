"""The pages against a real Asterisk 22 node with SIPp calls (issue 4, item 11), in headless Chromium:
- the wallboard turns red when SIPp callers pile up in a queue, and back when they give up;
- the agent page pops the caller's customer record when a SIPp call rings the agent's phone;
- an edit in the web admin changes what the node does on the next call (no reload).

The lab runs as instance "e2eweb" on 127.0.0.54 with its own Hotline process and SQLite database (the
e2e lab builder of tests/e2e); the carrier is SIPp on 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.accounts import AccountRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.db.repositories.crm import CustomerRepository
from hotline.settings import Settings
from tests.e2e import scenarios
from tests.e2e.conftest import CARRIER_IP, Lab, _lab
from tests.e2e.harness import Sipp, wait_for

pytestmark = pytest.mark.asterisk

ADDRESS = "127.0.0.54"
PHONES = {"2401": "web-desk-one-secret", "2402": "web-desk-two-secret"}
WEB_PW = "web user password 1"
CUSTOMER_NUMBER = "74951112233"
MOVED = "sip:moved@127.0.0.9:5090"


def _seed(config: ConfigRepository, settings: Settings) -> None:
    cc = CallCenterRepository(config._engine)
    for name, pw in PHONES.items():
        config.add_phone(name, pw, realm=settings.sip_realm, callerid=f'"Desk {name}" <{name}>')
    config.add_agent("1001", "Alice", pin="4321")
    config.add_queue("web-sales", strategy="ringall", timeout=15, retry=1)
    cc.set_agent_queue("1001", "web-sales")
    # nobody serves web-wait: callers wait in it; the tile is amber at 1 caller and red at 2
    config.add_queue("web-wait", alarm_waiting_amber=1, alarm_waiting_red=2, alarm_wait_amber_s=0, alarm_wait_red_s=0)
    config.add_route("5400", "hangup", hangup_cause=21)
    config.add_route("5401", "queue", "web-wait")
    config.add_route("5402", "queue", "web-sales")
    CustomerRepository(config._engine).add("Ivan Petrov", CUSTOMER_NUMBER, email="ivan@example.com")
    accounts = AccountRepository(config._engine)
    accounts.add_user("admin", WEB_PW, role="admin")
    accounts.add_user("alice", WEB_PW, role="agent", agent="1001")


@pytest.fixture(scope="module")
def web_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("e2e-web")
    yield from _lab(work, "", instance="e2eweb", address=ADDRESS, seed=_seed)


def _base(lab: Lab) -> str:
    return f"http://{lab.settings.http_host}:{lab.settings.http_port}"


async def _login(page: Page, lab: Lab, user: str, path: str, *, live: bool = True) -> None:
    await page.goto(f"{_base(lab)}/login?next={path}")
    await page.fill("#login-username", user)
    await page.fill("#login-password", WEB_PW)
    await page.click("#login-submit")
    await page.wait_for_url(f"{_base(lab)}{path}")
    if live:  # the page follows the event stream: wait until it is subscribed
        await expect(page.locator("[data-testid=stream-state]")).to_have_attribute("data-state", "open")


def _caller() -> str:
    return f"7{random.randrange(10**9, 10**10)}"


def _carrier(lab: Lab, did: str, port: int, scenario: Path, caller: str, timeout_s: int = 30) -> Sipp:
    return Sipp(lab.workdir, str(scenario), lab.sip_target, local_ip=CARRIER_IP, port=port, service=did,
                keys={"user": caller, "caller": caller}, timeout_s=timeout_s)  # fmt: skip


async def test_wallboard_turns_red_when_sipp_callers_pile_up(web_lab: Lab, page: Page) -> None:
    await _login(page, web_lab, "admin", "/wallboard")
    tile = page.locator("[data-queue=web-wait]")
    await expect(tile).to_have_attribute("data-alarm", "ok")
    give_up = scenarios.cancelling_caller(web_lab.workdir, 6000, name="give-up")
    callers = [_carrier(web_lab, "5401", 5801 + i, give_up, _caller()).start() for i in range(2)]
    try:
        await expect(tile.locator("[data-field=waiting]")).to_have_text("2", timeout=15000)
        await expect(tile).to_have_attribute("data-alarm", "red")
        results = await asyncio.gather(*(asyncio.to_thread(c.wait) for c in callers))
        assert all(r.ok for r in results), [r.stdout[-1500:] for r in results]
        await expect(tile.locator("[data-field=waiting]")).to_have_text("0", timeout=10000)
        await expect(tile).to_have_attribute("data-alarm", "ok")
        abandon = tile.locator("[data-field=abandon_rate]")
        await expect(abandon).to_contain_text("100")  # both gave up: 100 % abandoned today
    finally:
        for c in callers:
            c.kill()


async def test_screen_pop_appears_when_a_sipp_call_rings_the_agent(web_lab: Lab, page: Page) -> None:
    lab = web_lab
    reg = Sipp(lab.workdir, "register.xml", lab.sip_target, local_ip="127.0.0.1", port=5811,
               keys={"user": "2401", "expires": "300"}, timeout_s=10,
               extra_args=("-au", "2401", "-ap", PHONES["2401"]))  # fmt: skip
    assert (await asyncio.to_thread(reg.run)).ok
    async with httpx.AsyncClient(base_url=_base(lab), auth=("admin", WEB_PW), timeout=10) as api:
        r = await api.post("/api/v1/agents/1001/login", json={"phone": "2401"})
        assert r.status_code == 200, r.text
        await _login(page, lab, "alice", "/agent")
        await expect(page.locator("[data-testid=agent-state]")).to_have_attribute("data-state", "available")
        desk = Sipp(lab.workdir, str(scenarios.answering_party(lab.workdir, name="web-desk")), "",
                    local_ip="127.0.0.1", port=5811, timeout_s=30, uas=True).start()  # fmt: skip
        await asyncio.to_thread(wait_for, desk.listening, 5, "the desk phone to listen")
        scenario = scenarios.waiting_caller(lab.workdir, name="web-customer")
        caller = _carrier(lab, "5402", 5812, scenario, CUSTOMER_NUMBER).start()
        try:
            pop = page.locator("[data-testid=screen-pop]")
            await expect(pop.locator("[data-field=customer-name]")).to_have_text("Ivan Petrov", timeout=15000)
            await expect(pop.locator("[data-field=caller-number]")).to_contain_text(CUSTOMER_NUMBER)
            call_id = (await pop.locator("[data-field=call-id]").inner_text()).strip()
            assert call_id
            # the call is answered by the desk; the supervisor ends it
            await expect(page.locator("[data-testid=agent-state]")).to_have_attribute("data-state", "on_call")
            r = await api.post(f"/api/v1/calls/{call_id}/hangup", json={})
            assert r.status_code == 200, r.text
            results = await asyncio.gather(asyncio.to_thread(caller.wait), asyncio.to_thread(desk.wait))
            assert all(res.ok for res in results), [res.stdout[-1500:] for res in results]
        finally:
            caller.kill()
            desk.kill()
            await api.post("/api/v1/agents/1001/logoff")


async def test_an_admin_edit_changes_what_asterisk_does_on_the_next_call(web_lab: Lab, page: Page) -> None:
    lab = web_lab
    refused = scenarios.refused_call(lab.workdir, phone=False, code=403, name="web-refused")
    before = await asyncio.to_thread(_carrier(lab, "5400", 5821, refused, _caller()).run)
    assert before.ok, before.stdout[-1500:] + before.messages[-1500:]  # cause 21 -> 403 Forbidden
    await _login(page, lab, "admin", "/admin", live=False)
    await page.goto(f"{_base(lab)}/admin/config/did_routes/edit?key=5400")
    await page.select_option("#admin-field-dest_type", "redirect")
    await page.fill("#admin-field-dest_value", MOVED)
    await page.fill("#admin-field-hangup_cause", "")  # only hang-up routes have a cause (the form says so)
    await page.click("#admin-save")
    await expect(page.locator("#hotline-flash")).to_contain_text("Saved.")
    redirected = scenarios.redirected_call(lab.workdir, MOVED.replace(".", "[.]"), name="web-moved")
    after = await asyncio.to_thread(_carrier(lab, "5400", 5822, redirected, _caller()).run)
    assert after.ok, after.stdout[-1500:] + after.messages[-1500:]
    assert "SIP/2.0 302 Moved Temporarily" in after.messages and MOVED in after.messages
    # the change is in the audit log with who made it
    async with httpx.AsyncClient(base_url=_base(lab), auth=("admin", WEB_PW), timeout=10) as api:
        entries = (await api.get("/api/v1/audit", params={"resource": "did_routes", "key": "5400"})).json()["items"]
    assert entries[0]["actor"] == "user:admin" and entries[0]["after"]["dest_type"] == "redirect"
