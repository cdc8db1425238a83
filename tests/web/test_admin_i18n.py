"""The admin builds catalog keys at run time from the resource descriptions (labels, hints, choices, titles);
every one of them must exist in both languages, so a new resource or field cannot appear untranslated."""

from __future__ import annotations

import re

import pytest

from hotline.domain.permissions import SCOPES
from hotline.features.config.resources.catalog import RESOURCES
from hotline.web.pages.admin import sections
from hotline.web.pages.i18n import catalogs

#: fields of the users and API-key forms (static/admin.js describes them itself)
ACCOUNT_FIELDS = {
    "users": ("username", "display_name", "role", "language", "agent", "password", "enabled", "last_login_at"),
    "api_keys": ("name", "prefix", "scopes", "expires_at", "enabled", "created_by", "last_used_at"),
}
ACCOUNT_CHOICES = {"role": ("admin", "supervisor", "agent"), "language": ("en", "ru")}


def choice_key(field: str, value: str) -> str:
    return f"admin.choice.{field}.{re.sub(r'[^a-z0-9_]', '_', value.lower())}"


def needed_keys() -> set[str]:
    keys: set[str] = set()
    for res in RESOURCES:
        d = res.describe()
        keys |= {f"admin.resource.{res.name}", f"admin.one.{res.name}", f"admin.description.{res.name}"}
        for f in d["fields"]:
            keys.add(f"admin.field.{f['name']}")
            if not f["read_only"]:
                keys.add(f"admin.hint.{res.name}.{f['name']}")
            keys |= {choice_key(f["name"], c) for c in f.get("choices", ()) if c}
    for name, fields in ACCOUNT_FIELDS.items():
        keys |= {f"admin.resource.{name}", f"admin.one.{name}", f"admin.description.{name}"}
        keys |= {f"admin.field.{f}" for f in fields}
    for field, values in ACCOUNT_CHOICES.items():
        keys |= {choice_key(field, v) for v in values}
    keys |= {"admin.hint.users." + f for f in ("username", "role", "password", "agent", "enabled")}
    keys |= {"admin.scope." + re.sub(r"[^a-z0-9_]", "_", s) for s in SCOPES}
    keys |= {f"admin.bulk_done_{a}" for a in ("delete", "enable", "disable", "update")}
    for section in sections([r.name for r in RESOURCES], accounts=True):
        keys.add(section.key)
        keys |= {label for label, _, _ in section.entries}
    return keys


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_key_the_admin_builds_at_run_time_exists(language: str) -> None:
    messages = catalogs()[language]
    missing = sorted(k for k in needed_keys() if k not in messages)
    assert missing == []


def test_russian_labels_are_russian() -> None:
    en, ru = catalogs()["en"], catalogs()["ru"]
    same = [k for k in needed_keys() if k.startswith(("admin.resource.", "admin.hint.")) and en[k] == ru[k]]
    assert same == ["admin.resource.webhooks"]  # the one name Russian admins use as is
