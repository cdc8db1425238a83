# ruff: noqa: RUF001  (Russian text: Cyrillic letters that look Latin are meant)
"""Error messages in the reader's language: the pure phrase table, and the API answering in Russian when asked."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hotline.db.repositories.accounts import AccountRepository
from hotline.web.error_text import localize, preferred_language
from tests.web.conftest import WebHotline


@pytest.mark.parametrize(
    ("message", "russian"),
    [
        ("timeout: must be at least 0", "timeout: должно быть не меньше 0"),
        ("name: must be at most 128 characters long", "name: должно быть не длиннее 128 символов"),
        (
            "role: must be one of admin, supervisor, agent (got 'boss')",
            "role: должно быть одним из: admin, supervisor, agent (получено 'boss')",
        ),
        ("name: is required", "name: обязательное поле"),
        ("queue 'sales' does not exist", "queue 'sales' не существует"),
        ("wrong user name or password", "неверное имя пользователя или пароль"),
        ("user:ada lacks the permission 'config:write'", "у user:ada нет права 'config:write'"),
        (
            "body.timeout: Input should be a valid integer, unable to parse string as an integer",
            "body.timeout: должно быть целым числом",
        ),
        ("agent 7001 is not logged in", "оператор 7001 не вошёл в систему"),
    ],
)
def test_known_phrases_are_translated_and_values_kept(message: str, russian: str) -> None:
    assert localize(message, "ru") == russian


def test_english_unknown_languages_and_unknown_phrases_stay_as_they_are() -> None:
    assert localize("timeout: must be at least 0", None) == "timeout: must be at least 0"
    assert localize("timeout: must be at least 0", "de") == "timeout: must be at least 0"
    assert localize("the moon is made of cheese", "ru") == "the moon is made of cheese"


def test_a_field_name_is_never_translated() -> None:
    # the part before ": " is a field name when it is one word; "required" here is a field, not a phrase
    assert localize("required: is required", "ru") == "required: обязательное поле"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("ru", "ru"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("en-US,en;q=0.9,ru;q=0.8", None),
        ("de-DE,ru;q=0.5", "ru"),
        ("*", None),
        ("", None),
        (None, None),
        ("ru" * 200, None),  # oversized: ignored
    ],
)
def test_the_first_known_language_of_accept_language_wins(header: str | None, lang: str | None) -> None:
    assert preferred_language(header) == lang


async def test_the_api_answers_errors_in_the_language_asked_for(hotline_web: WebHotline) -> None:
    await asyncio.to_thread(AccountRepository(hotline_web.hotline.engine).add_user, "ru-admin", "admin password 1",
                            role="admin", language="ru")  # fmt: skip
    async with httpx.AsyncClient(base_url=hotline_web.base_url, timeout=10) as client:
        ru = {"Accept-Language": "ru"}
        wrong = await client.post("/api/v1/auth/login", json={"username": "ru-admin", "password": "nope nope"},
                                  headers=ru)  # fmt: skip
        assert wrong.status_code == 401
        assert wrong.json()["error"]["message"] == "неверное имя пользователя или пароль"
        english = await client.post("/api/v1/auth/login", json={"username": "ru-admin", "password": "nope nope"})
        assert english.json()["error"]["message"] == "wrong user name or password"  # machines get English

        r = await client.post("/api/v1/auth/login", json={"username": "ru-admin", "password": "admin password 1"})
        headers = {"X-CSRF-Token": r.json()["csrf_token"], **ru}
        bad = await client.post("/api/v1/config/queues", json={"name": "q-ru", "timeout": -5}, headers=headers)
        assert bad.status_code == 422
        assert bad.json()["error"] == {"code": "validation_error", "field": "timeout",
                                       "message": "timeout: должно быть от 0 до 2147483647 (получено -5)"}  # fmt: skip
        typed = await client.get("/api/v1/config/queues?limit=lots", headers=ru)
        assert typed.status_code == 422 and "должно быть целым числом" in typed.json()["error"]["message"]
        # what no route answers: the framework's own 404 and 405, in the same shape and language
        nowhere = await client.get("/api/v1/no-such-thing", headers=ru)
        assert nowhere.status_code == 404
        assert nowhere.json()["error"] == {"code": "not_found", "message": "не найдено"}
        method = await client.put("/api/v1/auth/login", json={}, headers=headers)
        assert method.status_code == 405
        assert method.json()["error"] == {"code": "method_not_allowed", "message": "метод не поддерживается"}
        english = await client.get("/api/v1/no-such-thing")
        assert english.json()["error"] == {"code": "not_found", "message": "Not Found"}
