# ruff: noqa: RUF001  (Russian text: Cyrillic letters that look Latin are meant)
"""Error messages in the reader's language (pure: no I/O).

Hotline's errors are raised in English, with the values that explain them ("timeout: must be at least 0 (got
-5)").  A page in Russian sends ``Accept-Language: ru`` with its API calls; the error handlers then pass the
message through `localize`, which rewrites the phrases it knows and keeps every value (names, numbers,
lists) as it was.  What it does not know stays English: an error is never hidden, only sometimes untranslated.
Field names, resource names and values are not translated: they are what the user typed or sees in the form.

The phrase table is ordered: longer, more specific phrases first.  `LANGUAGES` are the ones with a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_RU: tuple[tuple[str, str], ...] = (
    # authentication, permissions, throttling
    (r"wrong user name or password", "неверное имя пользователя или пароль"),
    (r"your PIN is needed to log in", "для входа нужен PIN-код"),
    (r"wrong PIN", "неверный PIN-код"),
    (r"not signed in", "вход не выполнен"),
    (r"the session has expired", "сеанс истёк"),
    (
        r"CSRF token missing or wrong: send the X-CSRF-Token header of your session",
        "нет или неверен CSRF-токен: обновите страницу",
    ),
    (r"too many (?:failed )?(?:sign-in |login )?attempts", "слишком много попыток"),
    (r"try again in (\d+) s", r"повторите через \1 с"),
    (r"(\S+) lacks the permission ('[^']*')", r"у \1 нет права \2"),
    (r"(\S+) needs one of the permissions (.+)$", r"\1 нужно одно из прав: \2"),
    (r"(\S+) may not control agent (\S+)", r"\1 не может управлять оператором \2"),
    (r"(\S+) may not see agent (\S+)", r"\1 не может видеть оператора \2"),
    (r"(\S+) is not an agent", r"\1 не оператор"),
    (r"(\S+) may tag only its own calls", r"\1 может отмечать только свои звонки"),
    (r"(\S+) may place calls only from its own phone", r"\1 может звонить только со своего телефона"),
    (r"you cannot grant scopes you do not have: (.+)$", r"нельзя выдать права, которых нет у вас: \1"),
    # existence, conflicts
    (r"^(.+?) does not exist or is disabled$", r"\1 не существует или отключён"),
    (r"^(.+?) does not exist$", r"\1 не существует"),
    (r"there is no (.+)$", r"не найдено: \1"),
    (r"already exists", "уже существует"),
    (r"is still used by", "всё ещё используется:"),
    (r"is in use by", "используется:"),
    (r"agent (\S+) is not logged in", r"оператор \1 не вошёл в систему"),
    (r"is not logged in", "не вошёл в систему"),
    (r"no call (\S+) in the journal", r"звонка \1 нет в журнале"),
    (r"no call (\S+)", r"нет звонка \1"),
    (r"no route for DID (\S+)", r"нет маршрута для номера \1"),
    (r"\bnot found\b", "не найдено"),
    (r"^Not Found$", "не найдено"),  # Starlette's own 404 (no route matched)
    (r"^Method Not Allowed$", "метод не поддерживается"),  # Starlette's own 405
    (r"refused by the database:", "отклонено базой данных:"),
    # the form of a value
    (r"is not a field of (\S+) \(fields: (.*)\)", r"не поле ресурса \1 (поля: \2)"),
    (r"is part of the key of (\S+); it cannot be changed", r"входит в ключ \1; его нельзя изменить"),
    (r"is read-only", "только для чтения"),
    (r"nothing to update", "нечего изменять"),
    (r"is required", "обязательное поле"),
    (r"must not be empty", "не может быть пустым"),
    (r"must not be blank", "не может быть пустым"),
    (r"must not be only spaces", "не может состоять из одних пробелов"),
    (r"must not contain spaces", "не может содержать пробелы"),
    (r"must not contain control characters", "не может содержать управляющие символы"),
    (r"must contain only printable ASCII characters", "может содержать только печатные символы ASCII"),
    (r"must be (\d+) to (\d+) characters long", r"должно быть длиной от \1 до \2 символов"),
    (r"must be at most (\d+) characters long", r"должно быть не длиннее \1 символов"),
    (r"must be at least (\d+) characters long", r"должно быть не короче \1 символов"),
    (r"must be at most (\S+?)(?=$|[ ;,)])", r"должно быть не больше \1"),
    (r"must be at least (\S+?)(?=$|[ ;,)])", r"должно быть не меньше \1"),
    (r"must be more than (\S+?)(?=$|[ ;,)])", r"должно быть больше \1"),
    (r"must be between (\S+) and (\S+?)(?=$|[ ;,)])", r"должно быть от \1 до \2"),
    (r"must be positive", "должно быть положительным"),
    (r"must be an integer", "должно быть целым числом"),
    (r"must be a number", "должно быть числом"),
    (r"must be a string", "должно быть строкой"),
    (r"must be true or false", "должно быть true или false"),
    (r"must be a timezone-aware datetime", "должно быть датой и временем с часовым поясом"),
    (r"must be an object of fields", "должно быть объектом с полями"),
    (r"must be a list", "должно быть списком"),
    (r"must be one of (.+?) \(got", r"должно быть одним из: \1 (получено"),
    (r"must be one of (.+)$", r"должно быть одним из: \1"),
    (r"must be ", "должно быть: "),
    (r"must start with http:// or https://", "должен начинаться с http:// или https://"),
    (r"must name a host", "должен содержать имя хоста"),
    (r"unknown value\(s\) (.+?) \(known: (.*)\)", r"неизвестные значения \1 (допустимые: \2)"),
    (r"unknown pause reason (\S+) \(known: (.*)\)", r"неизвестная причина паузы \1 (допустимые: \2)"),
    (r"is not a known time zone", "— неизвестный часовой пояс"),
    (r"is not a time HH:MM", "— не время ЧЧ:ММ"),
    (r"is not a date YYYY-MM-DD", "— не дата ГГГГ-ММ-ДД"),
    (
        r"is not dialable \(digits, \* and #, optionally a leading \+\)",
        "— не номер (цифры, * и #, в начале может быть +)",
    ),
    (r"is given twice", "указан дважды"),
    (r"\(got ", "(получено "),
    (r" or a comma list of ", " или список через запятую из: "),
    (r" or a comma-separated list of ", " или список через запятую из: "),
    # request validation (FastAPI / pydantic)
    (r"Field required", "обязательное поле"),
    (r"Input should be a valid integer(?:, unable to parse string as an integer)?", "должно быть целым числом"),
    (r"Input should be a valid number(?:, unable to parse string as a number)?", "должно быть числом"),
    (r"Input should be a valid boolean", "должно быть true или false"),
    (r"Input should be a valid string", "должно быть строкой"),
    (r"Input should be a valid dictionary", "должно быть объектом"),
    (r"Input should be a valid list", "должно быть списком"),
    (r"Input should be greater than or equal to (\S+)", r"должно быть не меньше \1"),
    (r"Input should be less than or equal to (\S+)", r"должно быть не больше \1"),
    (r"Input should be (.+)$", r"допустимо: \1"),
    (r"String should have at most (\d+) characters?", r"не длиннее \1 символов"),
    (r"String should have at least (\d+) characters?", r"не короче \1 символов"),
    (r"Extra inputs are not permitted", "лишнее поле"),
    (r"invalid request", "неверный запрос"),
    # the node and the database
    (r"no node is reachable", "ни один узел недоступен"),
    (r"the database is unavailable", "база данных недоступна"),
    (r"^internal error; see Hotline's log$", "внутренняя ошибка; подробности в журнале Hotline"),
)


def _compile(table: Iterable[tuple[str, str]]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern), replacement) for pattern, replacement in table)


_TABLES: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {"ru": _compile(_RU)}
LANGUAGES = frozenset(_TABLES)


def localize(message: str, lang: str | None) -> str:
    """`message` with the phrases known in `lang` rewritten; unchanged for English or an unknown language.

    A message "field: text" keeps its field: only the text after the first ": " is rewritten when the part
    before it is a single word (a field name), so a field called "required" is never translated."""
    table = _TABLES.get(lang or "")
    if table is None or not message:
        return message
    head, sep, text = message.partition(": ")
    if not sep or " " in head:
        head, sep, text = "", "", message
    for pattern, replacement in table:
        text = pattern.sub(replacement, text)
    return head + sep + text


def preferred_language(accept_language: str | None) -> str | None:
    """The first language of an Accept-Language header that has a table (``ru-RU,ru;q=0.9`` -> ``ru``);
    None for English, an unknown language or a malformed header.  Only the order is used, not the q values:
    the pages send one language, the user's."""
    if not accept_language or len(accept_language) > 256:
        return None
    for part in accept_language.split(","):
        tag = part.split(";", 1)[0].strip().lower()
        primary = tag.split("-", 1)[0]
        if primary == "en" or tag == "*":
            return None
        if primary in _TABLES:
            return primary
    return None
