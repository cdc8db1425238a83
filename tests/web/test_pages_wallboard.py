"""The wallboard in a real browser, fed the way Asterisk feeds it: AMI queue events into the MonitorService."""

from __future__ import annotations

from playwright.async_api import Page, expect

from hotline.protocols.ami import Message
from hotline.web.ws import EventStream

from .conftest import WebHotline
from .test_pages_framework import add_user, sign_in


def caller_joins(web: WebHotline, queue: str, uniqueid: str) -> None:
    msg = Message(
        [("Event", "QueueCallerJoin"), ("Queue", queue), ("Uniqueid", uniqueid), ("CallerIDNum", "+35550001")]
    )
    web.hotline.monitor.on_ami("lab", msg)


def caller_leaves(web: WebHotline, queue: str, uniqueid: str) -> None:
    msg = Message([("Event", "QueueCallerAbandon"), ("Queue", queue), ("Uniqueid", uniqueid)])
    web.hotline.monitor.on_ami("lab", msg)


def drop_event_streams(web: WebHotline) -> int:
    """Close every /ws/events connection from the server side (as a restart of a proxy would)."""
    streams = [r.app for r in web.hotline.web.routes if isinstance(getattr(r, "app", None), EventStream)]
    clients = [c for s in streams for c in tuple(s._listeners)]
    for client in clients:
        client.close(1012, "test drops the stream")
    return len(clients)


async def open_wallboard(page: Page, web: WebHotline) -> None:
    await web.hotline.config.write(web.hotline.config_repo.add_queue, "support")
    add_user(web, "sue", "supervisor")
    await sign_in(page, web, "sue", "/wallboard")
    await expect(page.locator('[data-testid="stream-state"]')).to_have_attribute("data-state", "open")


async def test_tile_turns_red_and_beeps(hotline_web: WebHotline, page: Page) -> None:
    await open_wallboard(page, hotline_web)
    tile = page.locator('[data-queue="support"]')
    await expect(tile.locator('[data-field="waiting"]')).to_have_text("0")
    await expect(tile).to_have_attribute("data-alarm", "ok")

    for i in range(3):  # default thresholds: 3 waiting = amber, 6 = red
        caller_joins(hotline_web, "support", f"u{i}")
    await expect(tile).to_have_attribute("data-alarm", "amber")
    await expect(tile.locator('[data-field="waiting"]')).to_have_text("3")
    for i in range(3, 6):
        caller_joins(hotline_web, "support", f"u{i}")
    await expect(tile).to_have_attribute("data-alarm", "red")
    await expect(tile.locator('[data-field="waiting"]')).to_have_text("6")
    assert await page.evaluate("window.hotlineWallboard.beeps") == 1
    last = await page.evaluate("window.hotlineLastEventAt.support")
    assert last["renderedAt"] >= last["receivedAt"] > 0

    # the longest wait ticks in the page between events
    await expect(tile.locator('[data-field="longest_wait_s"]')).not_to_have_text("0:00")

    for i in range(6):
        caller_leaves(hotline_web, "support", f"u{i}")
    await expect(tile).to_have_attribute("data-alarm", "ok")
    await expect(tile.locator('[data-field="abandon_rate"]')).to_have_text("100%")


async def test_wallboard_reconnects_after_the_server_drops_the_stream(hotline_web: WebHotline, page: Page) -> None:
    await open_wallboard(page, hotline_web)
    tile = page.locator('[data-queue="support"]')
    assert drop_event_streams(hotline_web) == 1
    await expect(page.locator('[data-testid="stream-state"]')).to_have_attribute("data-state", "reconnecting")
    # an event published while the page is away arrives with the resume (replayed from the position)
    caller_joins(hotline_web, "support", "while-away")
    await expect(tile.locator('[data-field="waiting"]')).to_have_text("1")
    await expect(page.locator('[data-testid="stream-state"]')).to_have_attribute("data-state", "open")
    assert await page.evaluate("window.hotlineWallboard.stream.connects") == 2

    # a stream the server does not know (Hotline restarted) -> reset -> the page reloads its tiles via REST
    await page.evaluate("window.hotlineWallboard.stream.stream = 'another-stream'")
    drop_event_streams(hotline_web)
    await expect(page.locator("#wb-tiles")).to_have_attribute("data-resyncs", "1")
    caller_joins(hotline_web, "support", "after-reset")
    await expect(tile.locator('[data-field="waiting"]')).to_have_text("2")


async def test_a_long_run_of_events_does_not_grow_the_page(hotline_web: WebHotline, page: Page) -> None:
    await open_wallboard(page, hotline_web)
    tile = page.locator('[data-queue="support"]')
    count = "document.getElementsByTagName('*').length"
    before = await page.evaluate(count)
    for i in range(300):
        caller_joins(hotline_web, "support", f"c{i}")
        caller_leaves(hotline_web, "support", f"c{i}")
    caller_joins(hotline_web, "support", "last")
    await expect(tile.locator('[data-field="waiting"]')).to_have_text("1")
    await expect(tile).to_have_attribute("data-position", str(hotline_web.hotline.bus.position))
    assert await page.evaluate(count) == before
