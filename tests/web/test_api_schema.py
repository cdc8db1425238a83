"""Property-based tests of the REST API generated from its own OpenAPI document (schemathesis).

Hotline runs as its own process (SQLite, no Asterisk node) so the generated requests, which are
synchronous, never block the server's event loop.  Every operation is called with generated valid and
invalid inputs under an admin API key; the property: no 500 (no traceback ever reaches a client), every
error has Hotline's JSON error shape, and the responses match the documented schema where one exists.
Node-dependent actions answer 503 (no node) or 404, which is correct here.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case

from hotline.domain.permissions import SCOPES

ALL_SCOPES = sorted(SCOPES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hotline(config: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "hotline", "--config", str(config), *args],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    work = tmp_path_factory.mktemp("api-schema")
    port = _free_port()
    config = work / "hotline.toml"
    config.write_text(f'data_dir = "{work / "data"}"\nhttp_port = {port}\nagi_port = {_free_port()}\n'
                      f'realtime_port = {_free_port()}\nlab_instance = "schema"\nlog_level = "WARNING"\n')  # fmt: skip
    _hotline(config, "db", "upgrade")
    scopes = [a for s in ALL_SCOPES for a in ("--scope", s)]
    key = _hotline(config, "apikey", "add", "fuzz", *scopes).strip().splitlines()[-1]
    log_file = (work / "hotline.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "hotline", "--config", str(config), "serve"],
                            stdout=subprocess.DEVNULL, stderr=log_file)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("Hotline did not start: " + (work / "hotline.log").read_text()[-2000:])
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        # a little data so reads and updates find something
        httpx.post(base + "/api/v1/config/queues", json={"name": "fuzz-q"}, headers=headers, timeout=10)
        yield base, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()
        log = (work / "hotline.log").read_text()
        assert "Traceback" not in log or "unexpected error" not in log, log[-4000:]


@schemathesis.check
def hotline_error_shape(ctx: object, response: schemathesis.Response, case: Case) -> None:
    """No 500, and every error carries {"error": {"code", "message"}}."""
    assert response.status_code != 500, f"500 from {case.method} {case.formatted_path}: {response.text[:500]}"
    if response.status_code >= 400 and response.status_code != 405:
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(
                f"{response.status_code} without a JSON body from {case.method} {case.formatted_path}: "
                f"{response.text[:300]!r}"
            ) from None
        assert isinstance(body, dict) and {"code", "message"} <= set(body.get("error", {})), response.text[:500]


def test_rest_api_never_fails_with_a_server_error(api_server: tuple[str, str]) -> None:
    base, key = api_server
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(base + "/openapi.json", timeout=10).status_code == 401  # the document needs credentials
    schema = schemathesis.openapi.from_dict(httpx.get(base + "/openapi.json", headers=headers, timeout=10).json())
    schema.config.update(base_url=base)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def call(case: Case) -> None:
            # skip only what would end the fuzzer's own access: deleting or disabling its key
            own_key = (case.path_parameters or {}).get("name") == "fuzz"
            if case.path.startswith("/api/v1/api-keys/{name}") and case.method in ("DELETE", "PATCH") and own_key:
                return
            case.call_and_validate(headers=headers, checks=[hotline_error_shape], timeout=15)

        try:
            call()
        except Exception as exc:  # collect every operation's first failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    assert operations > 40, f"only {operations} operations in the OpenAPI document"
    assert not failures, "\n\n".join(failures)
