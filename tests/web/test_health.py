"""/health tells a monitor whether the realtime listener (the nodes' configuration source) is serving."""

from __future__ import annotations

import asyncio

import httpx

from .conftest import WebHotline


async def test_health_names_the_realtime_listener_and_answers_503_without_it(hotline_web: WebHotline) -> None:
    async with httpx.AsyncClient() as client:
        ok = await client.get(hotline_web.url("/health"))
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        listener = ok.json()["realtime"]["listener"]
        assert listener == {"port": hotline_web.settings.realtime_port, "running": True, "served_on": "realtime_port"}
        # a lookup on that port is answered by the listener, not by the web server
        lookup = await client.post(
            f"http://127.0.0.1:{listener['port']}/realtime/ps_endpoints/single",
            content=b"id=nobody",
            headers={"X-Hotline-Token": hotline_web.settings.realtime_token},
        )
        assert lookup.status_code == 200 and lookup.text == ""

        hotline = hotline_web.hotline
        loop, thread = hotline._realtime_loop, hotline._realtime_thread  # the listener stops (as if it died)
        assert loop is not None and thread is not None
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)

        down = await client.get(hotline_web.url("/health"))
        assert down.status_code == 503
        assert down.json()["status"] == "degraded: the realtime listener is not running"
        assert down.json()["realtime"]["listener"]["running"] is False
