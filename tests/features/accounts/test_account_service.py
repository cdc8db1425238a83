"""Credentials -> Principal: sessions, API keys, passwords with throttling; the audit masks secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hotline.db.engine import create_engine_for
from hotline.db.repositories.accounts import AccountRepository
from hotline.errors import AuthenticationError, RateLimitedError, ValidationError
from hotline.features.accounts import AccountService, LoginThrottle, parse_basic
from hotline.features.accounts.service import mask_secrets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo(sqlite_url: str) -> Iterator[AccountRepository]:
    engine = create_engine_for(sqlite_url)
    yield AccountRepository(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(repo: AccountRepository, clock: Clock) -> AccountService:
    repo.add_user("admin", "admin password 1", role="admin")
    repo.add_user("sup", "supervisor pw 1", role="supervisor")
    return AccountService(
        repo,
        session_ttl=3600,
        login_max_failures=3,
        login_max_failures_per_address=10,
        login_window=60,
        credential_cache_ttl=30,
        clock=clock,
    )


async def test_login_opens_a_session_that_resolves_to_the_user(service: AccountService) -> None:
    new = await service.login("sup", "supervisor pw 1", address="10.0.0.1", user_agent="pytest")
    info = await service.session(new.token)
    assert info is not None and info.principal.name == "sup" and info.principal.role == "supervisor"
    assert info.csrf_token == new.info.csrf_token
    await service.logout(new.token)
    assert await service.session(new.token) is None


async def test_wrong_password_and_unknown_user_get_the_same_answer(service: AccountService) -> None:
    with pytest.raises(AuthenticationError) as wrong:
        await service.login("sup", "nope nope nope", address="10.0.0.1")
    with pytest.raises(AuthenticationError) as unknown:
        await service.login("ghost", "nope nope nope", address="10.0.0.1")
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"


async def test_throttle_per_user_refuses_even_the_right_password(service: AccountService, clock: Clock) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await service.login("sup", "guess guess guess", address="10.0.0.2")
    with pytest.raises(RateLimitedError) as exc:
        await service.login("sup", "supervisor pw 1", address="10.0.0.3")
    assert 0 < exc.value.retry_after <= 60
    clock.now += 61
    assert (await service.login("sup", "supervisor pw 1", address="10.0.0.3")).user.username == "sup"


def test_throttle_window_slides() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 10, clock)
    throttle.failed("k")
    clock.now += 6
    throttle.failed("k")
    assert throttle.retry_after("k") == pytest.approx(4)
    clock.now += 4.5
    assert throttle.retry_after("k") == 0
    throttle.succeeded("k")
    assert throttle.retry_after("k") == 0


async def test_api_key_is_shown_once_and_checked_by_hash(service: AccountService, repo: AccountRepository) -> None:
    admin = (await service.login("admin", "admin password 1", address="")).info.principal
    row, key = await service.create_api_key("crm", ["calls:read", "stats:read"], created_by=admin)
    assert key.startswith("hlk_" + row.prefix + "_") and key not in str(repo.list_api_keys())
    principal = await service.api_key_principal(key)
    assert principal is not None and principal.scopes == {"calls:read", "stats:read"} and principal.actor == "key:crm"
    assert await service.api_key_principal(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    repo.set_api_key_enabled("crm", False)
    service.forget_all()
    assert await service.api_key_principal(key) is None


async def test_a_key_cannot_get_more_than_its_creator(service: AccountService) -> None:
    sup = (await service.login("sup", "supervisor pw 1", address="")).info.principal
    with pytest.raises(ValidationError, match="users:admin"):
        await service.create_api_key("evil", ["users:admin"], created_by=sup)


async def test_basic_credentials_are_cached_after_one_check(service: AccountService) -> None:
    p1 = await service.password_principal("admin", "admin password 1", address="")
    p2 = await service.password_principal("admin", "admin password 1", address="")
    assert p1 == p2 and service.logins_ok == 1
    with pytest.raises(AuthenticationError):
        await service.password_principal("admin", "wrong one here", address="")


def test_parse_basic_and_masking() -> None:
    assert parse_basic("Basic YWxpY2U6cDpw") == ("alice", "p:p")
    assert (
        parse_basic("Basic !!!") is None and parse_basic("Bearer x") is None and parse_basic("Basic YWxpY2U=") is None
    )
    masked = mask_secrets({"name": "2001", "password": "s3cret", "nested": [{"pin": "1234"}], "secret": ""})
    assert masked == {"name": "2001", "password": "***", "nested": [{"pin": "***"}], "secret": ""}
