"""The pages' two languages: same keys and parameters in both, every key the pages use exists, loader errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hotline.domain import agent_state
from hotline.domain.permissions import LANGUAGES
from hotline.errors import ConfigError
from hotline.web.pages import i18n
from hotline.web.pages.i18n import Translator, catalogs, load_catalog

PAGES = Path(i18n.__file__).parent
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# t("key") / t("key", ...) in templates, also as H.t / Hotline.t in scripts; t("prefix." + x) is built at run
# time and not checked here (see test_keys_built_at_run_time_exist)
USE = re.compile(r"(?<![A-Za-z0-9_$])t\(\s*[\"']([^\"']+)[\"']\s*[,)]")
# keys named in Python: pages.nav("key", ...), error keys, *_key="..." arguments
PY_USE = re.compile(r"nav\(\s*\"([^\"]+)\"|\"(error\.(?!html\")[a-z0-9_]+)\"|_key=\"([^\"]+)\"")


def used_keys() -> dict[str, set[str]]:
    """catalog key -> the files that use it literally."""
    found: dict[str, set[str]] = {}
    files = [*PAGES.glob("templates/**/*.html"), *PAGES.glob("static/**/*.js")]
    for path in files:
        for key in USE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(key, set()).add(str(path.relative_to(PAGES)))
    for path in PAGES.glob("*.py"):
        for groups in PY_USE.findall(path.read_text(encoding="utf-8")):
            for key in filter(None, groups):
                found.setdefault(key, set()).add(str(path.relative_to(PAGES)))
    return found


def test_every_language_has_the_same_keys_and_parameters() -> None:
    all_ = catalogs()
    assert set(all_) == set(LANGUAGES)
    english = all_["en"]
    assert len(english) > 100
    for lang, messages in all_.items():
        assert set(messages) - set(english) == set(), f"{lang} has keys English lacks"
        assert set(english) - set(messages) == set(), f"{lang} lacks keys"
        for key, text in messages.items():
            assert text.strip(), f"{lang}:{key} is empty"
            assert set(PARAM.findall(text)) == set(PARAM.findall(english[key])), f"{lang}:{key} parameters differ"


def test_every_key_the_pages_use_exists() -> None:
    english = catalogs()["en"]
    used = used_keys()
    assert "nav.monitor" in used and "wallboard.waiting" in used and "agent.pop_title" in used  # the scan works
    missing = {key: sorted(files) for key, files in used.items() if key not in english}
    assert missing == {}


@pytest.mark.parametrize(
    "family, values",
    [
        (
            "state",
            (
                agent_state.LOGGED_OUT,
                agent_state.AVAILABLE,
                agent_state.RINGING,
                agent_state.ON_CALL,
                agent_state.WRAP_UP,
                agent_state.PAUSED,
            ),
        ),
        ("alarm", ("ok", "amber", "red")),  # features/monitor alarm levels
        ("stream", ("connecting", "open", "reconnecting", "closed")),  # hotline.js stream states
    ],
)
def test_keys_built_at_run_time_exist(family: str, values: tuple[str, ...]) -> None:
    for lang, messages in catalogs().items():
        for value in values:
            assert f"{family}.{value}" in messages, f"{lang} lacks {family}.{value}"


def test_translator_fills_parameters_and_falls_back() -> None:
    ru = Translator("ru")
    assert ru("nav.logout") == "Выйти"
    assert ru("error.title", status=404) == "Ошибка 404"
    assert ru("error.title") == "Ошибка {status}"  # a missing parameter stays visible, never an exception
    assert ru("no.such_key") == "no.such_key"
    assert Translator("de")("nav.logout") == "Log out"  # an unknown language is English


def test_a_broken_catalog_stops_start_up_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.json").write_text('{"x.one": "One"}', encoding="utf-8")
    (tmp_path / "en" / "b.json").write_text('{"x.one": "Again"}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b\.json: key 'x\.one' is defined twice"):
        load_catalog("en", tmp_path)
    (tmp_path / "en" / "b.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b\.json: must be a JSON object"):
        load_catalog("en", tmp_path)
    (tmp_path / "en" / "b.json").write_text('{"Bad Key": "x"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="dotted lowercase key"):
        load_catalog("en", tmp_path)
    (tmp_path / "en" / "b.json").write_bytes(b"\xff{")
    with pytest.raises(ConfigError, match="not a readable UTF-8 JSON file"):
        load_catalog("en", tmp_path)
    with pytest.raises(ConfigError, match="no message catalog for language 'xx'"):
        load_catalog("xx", tmp_path)
