"""The REST API over a real HTTP server: authentication, CSRF, scopes, audit, field-named errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from hotline.db.repositories.accounts import AccountRepository
from hotline.domain.permissions import ROLES, Principal
from tests.web.conftest import WebHotline

ADMIN_PW = "admin password 1"


@pytest_asyncio.fixture(loop_scope="session")
async def api(hotline_web: WebHotline) -> AsyncIterator[tuple[WebHotline, httpx.AsyncClient]]:
    h = hotline_web.hotline
    repo = AccountRepository(h.engine)
    await asyncio.to_thread(repo.add_user, "admin", ADMIN_PW, role="admin")
    await asyncio.to_thread(repo.add_user, "sup", "supervisor pw 1", role="supervisor")
    await asyncio.to_thread(h.config_repo.add_agent, "7001", "Alice")
    await asyncio.to_thread(h.config_repo.add_agent, "7002", "Boris")
    await h.config.reload()
    await asyncio.to_thread(repo.add_user, "alice", "agent password 1", role="agent", agent="7001")
    async with httpx.AsyncClient(base_url=hotline_web.base_url, timeout=10) as client:
        yield hotline_web, client


async def _login(client: httpx.AsyncClient, user: str, pw: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"username": user, "password": pw})
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    return token


async def test_everything_but_health_needs_credentials(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    assert (await client.get("/health")).status_code == 200
    r = await client.get("/api/v1/agents/status")
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    r = await client.get("/api/v1/users", headers={"Authorization": "Bearer hlk_nope_nope"})
    assert r.status_code == 401


async def test_login_errors_do_not_tell_which_part_was_wrong(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    wrong = await client.post("/api/v1/auth/login", json={"username": "admin", "password": "nope nope"})
    unknown = await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    missing = await client.post("/api/v1/auth/login", json={"username": "admin"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "body.password"


async def test_session_writes_need_the_csrf_token(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    csrf = await _login(client, "admin", ADMIN_PW)
    body = {"username": "carol", "password": "carol password", "role": "supervisor"}
    r = await client.post("/api/v1/users", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = await client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["role"] == "supervisor"
    me = (await client.get("/api/v1/auth/me")).json()
    assert me["name"] == "admin" and "users:admin" in me["scopes"]
    await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_every_change_is_audited_with_secrets_masked(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    csrf = await _login(client, "admin", ADMIN_PW)
    h = {"X-CSRF-Token": csrf}
    assert (
        await client.patch("/api/v1/users/sup", json={"language": "ru", "password": "a brand new pw"}, headers=h)
    ).status_code == 200
    entries = (await client.get("/api/v1/audit", params={"resource": "user", "key": "sup"})).json()["items"]
    assert entries[0]["actor"] == "user:admin" and entries[0]["action"] == "update"
    assert entries[0]["before"]["language"] == "en" and entries[0]["after"]["language"] == "ru"
    assert "a brand new pw" not in str(entries)
    bad = await client.post(
        "/api/v1/users", json={"username": "x", "password": "long enough 1", "role": "root"}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "body.role"


async def test_api_key_scopes_limit_what_a_system_may_do(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    web, client = api
    creator = Principal(kind="user", name="t", scopes=ROLES["admin"], role="admin")
    _, key = await web.hotline.accounts.create_api_key("wallboard", ["stats:read"], created_by=creator)
    h = {"Authorization": f"Bearer {key}"}
    r = await client.get("/api/v1/queues/status", headers=h)
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get("/api/v1/users", headers=h)
    assert r.status_code == 403 and "users:admin" in r.json()["error"]["message"]
    r = await client.post("/api/v1/agents/7001/pause", json={"reason": ""}, headers={"X-API-Key": key})
    assert r.status_code == 403


async def test_basic_credentials_work_for_scripts(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    r = await client.get("/api/v1/agents/status", auth=("sup", "supervisor pw 1"))
    assert r.status_code == 200 and {a["agent"] for a in r.json()["items"]} == {"7001", "7002"}
    r = await client.get("/api/v1/agents/status", auth=("sup", "wrong password"))
    assert r.status_code == 401


async def test_an_agent_sees_only_itself(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    await _login(client, "alice", "agent password 1")
    r = await client.get("/api/v1/agents/status")
    assert [a["agent"] for a in r.json()["items"]] == ["7001"]
    assert (await client.get("/api/v1/agents/7002/status")).status_code == 403
    assert (await client.get("/api/v1/users")).status_code == 403
    assert (await client.get("/api/v1/agents/7001/stats/today")).json()["answered"] == 0


async def test_openapi_document_lists_the_resources(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    assert (await client.get("/openapi.json")).status_code == 401
    doc = (await client.get("/openapi.json", auth=("admin", ADMIN_PW))).json()
    paths = doc["paths"]
    for path in ("/api/v1/auth/login", "/api/v1/users", "/api/v1/calls/{call_id}", "/api/v1/queues/status",
                 "/api/v1/agents/{number}/pause", "/api/v1/calls/originate"):  # fmt: skip
        assert path in paths
    assert {"HTTPBearer", "APIKeyHeader", "HTTPBasic", "APIKeyCookie"} <= set(doc["components"]["securitySchemes"])


async def test_tag_on_an_unknown_call_names_the_field(api: tuple[WebHotline, httpx.AsyncClient]) -> None:
    _, client = api
    csrf = await _login(client, "admin", ADMIN_PW)
    r = await client.put(
        "/api/v1/calls/nope/tags", json={"name": "discount_id", "value": "D-1"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "call_id"
    r = await client.put(
        "/api/v1/calls/nope/tags", json={"name": "Bad Name", "value": "1"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.name"


@pytest.mark.parametrize(
    "path", ["/api/v1/calls?limit=0", "/api/v1/calls?since=yesterday", "/api/v1/calls?status=bogus"]
)
async def test_bad_query_parameters_name_the_parameter(api: tuple[WebHotline, httpx.AsyncClient], path: str) -> None:
    _, client = api
    r = await client.get(path, auth=("admin", ADMIN_PW))
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("query.")
