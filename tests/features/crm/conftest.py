"""A fake CRM on a real HTTP server (127.0.0.1), which tests can make slow, failing or talk garbage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository
from hotline.db.repositories.crm import CustomerRepository
from tests.features.events.support import serve


@dataclass
class CrmRequest:
    number: str
    did: str | None
    raw_query: str
    authorization: str | None


@dataclass
class FakeCrm:
    """Answers GET /lookup?number=...; `answers[number]` = (status, body) or a callable streaming body."""

    url: str = ""
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    streamed: dict[str, int] = field(default_factory=dict)  # number -> chunked body of that many bytes
    stalled: set[str] = field(default_factory=set)  # numbers answered 404 whose body never ends
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends the stalled bodies
    requests: list[CrmRequest] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)  # the client address of each request
    gate: asyncio.Event | None = None  # when set (closed), every request waits until it opens
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, number: str, body: object, status: int = 200) -> None:
        self.answers[number] = (status, json.dumps(body).encode())

    def hold(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate

    async def lookup(self, request: Request) -> Response:
        number = request.query_params.get("number", "")
        self.requests.append(
            CrmRequest(number, request.query_params.get("did"), request.url.query, request.headers.get("authorization"))
        )
        if request.client is not None:
            self.connections.append((request.client.host, request.client.port))
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if number in self.stalled:

            async def stalled() -> AsyncIterator[bytes]:
                yield b"not "
                await self.release.wait()

            return StreamingResponse(stalled(), status_code=404, media_type="text/plain")
        if number in self.streamed:
            size = self.streamed[number]

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(size // 1024):
                    yield b" " * 1024

            return StreamingResponse(chunks(), media_type="application/json")
        status, body = self.answers.get(number, (404, b""))
        return Response(body, status, media_type="application/json")


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    app = Starlette(routes=[Route("/lookup", fake.lookup)])
    async with serve(app) as base:
        fake.url = f"{base}/lookup?number={{number}}"
        try:
            yield fake
        finally:
            if fake.gate is not None:
                fake.gate.set()  # let held requests finish before the server stops
            fake.release.set()


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


@pytest.fixture
def customers(sqlite_engine: Engine) -> CustomerRepository:
    return CustomerRepository(sqlite_engine)


@pytest.fixture
def call_repo(sqlite_engine: Engine) -> CallRepository:
    return CallRepository(sqlite_engine)
