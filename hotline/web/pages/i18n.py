"""The pages' two languages: message catalogs and the translator templates and scripts use.

Catalogs are JSON files under ``i18n/<language>/<area>.json`` (``common.json``, ``wallboard.json``,
``admin.json``...): a flat object of ``"dotted.key": "text"``; ``{name}`` marks a parameter.  One file per
area keeps parallel work on different pages out of each other's files; a key must be unique across the
files of a language, and every language must have exactly the same keys (tests/web/test_i18n.py checks
that, and that every key used in a template or script exists).

Templates call ``t("key", name=value)``; scripts call ``Hotline.t("key", {name: value})`` with the
catalog of the page's language embedded in the page.  A key missing at run time shows the English text,
else the key itself: a page never breaks over a missing translation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

from hotline.domain.permissions import LANGUAGES
from hotline.errors import ConfigError

CATALOG_DIR = Path(__file__).parent / "i18n"
DEFAULT_LANGUAGE = "en"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
KEY = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


def load_catalog(language: str, directory: Path = CATALOG_DIR) -> Mapping[str, str]:
    """All the messages of one language, merged from its area files; ConfigError names a bad file."""
    merged: dict[str, str] = {}
    folder = directory / language
    if not folder.is_dir():
        raise ConfigError(f"pages: no message catalog for language {language!r} ({folder})")
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"pages: {path}: not a readable UTF-8 JSON file ({exc})") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"pages: {path}: must be a JSON object of key -> text")
        for key, text in doc.items():
            if not KEY.fullmatch(key) or not isinstance(text, str):
                raise ConfigError(f"pages: {path}: {key!r} must be a dotted lowercase key with a text")
            if key in merged:
                raise ConfigError(f"pages: {path}: key {key!r} is defined twice in language {language!r}")
            merged[key] = text
    return MappingProxyType(merged)


@cache
def catalogs() -> Mapping[str, Mapping[str, str]]:
    """Every language's catalog, read once per process."""
    return MappingProxyType({lang: load_catalog(lang) for lang in LANGUAGES})


def language_of(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE


class Translator:
    """``t(key, **params)`` for one language, falling back to English, then to the key."""

    __slots__ = ("fallback", "language", "messages")

    def __init__(self, language: str) -> None:
        all_ = catalogs()
        self.language = language_of(language)
        self.messages = all_[self.language]
        self.fallback = all_[DEFAULT_LANGUAGE]

    def __call__(self, key: str, **params: object) -> str:
        text = self.messages.get(key) or self.fallback.get(key) or key
        if not params:
            return text
        return _PARAM.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), text)
