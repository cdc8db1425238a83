"""A webhook receiver on a real HTTP server (127.0.0.1) that checks signatures with the code printed in
docs/webhooks.md, can fail the first N deliveries or hold them, and records what it got."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hotline.db.engine import create_engine_for
from hotline.db.repositories.webhooks import WebhookRepository
from hotline.features.events import EventBus
from hotline.features.webhooks import WebhookService
from tests.features.events.support import serve

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def _documented_verify() -> Callable[..., bool]:
    """The `verify` function of docs/webhooks.md ("Verifying a delivery"), taken from the page itself:
    the receiver checks deliveries exactly as the documentation tells receivers to."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Verifying a delivery") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n\n")]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    assert namespace["TOLERANCE_S"] == 300
    return verify


verify = _documented_verify()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str = ""
    secrets: dict[str, str] = field(default_factory=dict)  # path name -> secret
    fail_first: dict[str, int] = field(default_factory=dict)  # path name -> deliveries to refuse with 503
    redirect: dict[str, str] = field(default_factory=dict)  # path name -> path name it answers 302 to
    got: list[Received] = field(default_factory=list)  # verified deliveries, in arrival order
    rejected: int = 0
    gate: asyncio.Event | None = None
    active: int = 0
    max_active: int = 0

    def url(self, name: str) -> str:
        return f"{self.base}/hook/{name}"

    def for_hook(self, name: str) -> list[Received]:
        return [r for r in self.got if r.path == name]

    def hold(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate

    async def hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        if not verify(self.secrets.get(name, ""), request.headers, body, time.time()):
            self.rejected += 1
            return Response("bad signature", 401)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            self.got.append(Received(name, dict(request.headers), body, time.monotonic()))
            if name in self.redirect:
                return Response("moved", 302, headers={"Location": self.url(self.redirect[name])})
            if self.fail_first.get(name, 0) > 0:
                self.fail_first[name] -= 1
                return Response("maintenance", 503)
            return Response(status_code=204)
        finally:
            self.active -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook/{name}", rec.hook, methods=["POST"])])
    async with serve(app) as base:
        rec.base = base
        try:
            yield rec
        finally:
            if rec.gate is not None:
                rec.gate.set()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine_for(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = create_engine_for(sqlite_url)
    try:
        yield eng
    finally:
        eng.dispose()


@contextlib.asynccontextmanager
async def running(service: WebhookService, *, grace: float = 2.0) -> AsyncIterator[WebhookService]:
    """Start the service and its background task as the app does; stop both at the end."""
    await service.start()
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        await service.stop(grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_service(engine: Engine, bus: EventBus | None = None, **kw: Any) -> WebhookService:
    options: dict[str, Any] = {"backoff_base": 0.02, "backoff_max": 0.2, "poll_interval": 0.05, **kw}
    return WebhookService(WebhookRepository(engine), bus or EventBus(), **options)
