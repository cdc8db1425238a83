"""Music-on-hold classes, customers and webhooks as resources, written through their feature repositories
(MediaRepository, CustomerRepository, WebhookRepository) inside the catalogue's `WriteScope`.

A webhook's secret is generated unless given and returned once, by `create` (as `hotline webhook add`
prints it); rows never carry it.  Customers are written in the scope too, so, like every catalogue write,
they bump config_version (CustomerRepository alone does not).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hotline.db import tables as t
from hotline.db.repositories import _flag, _text
from hotline.db.repositories.crm import _data, _email
from hotline.db.repositories.crm import _phone as _customer_phone
from hotline.db.repositories.media import _class_name
from hotline.db.repositories.webhooks import URL_MAX, _secret, parse_event_filter, validate_webhook_url
from hotline.errors import ValidationError
from hotline.features.config.resources.core import created_at, pick, update_row, updated_at
from hotline.features.config.resources.scope import WriteScope
from hotline.features.config.resources.spec import Field, Key, Resource

# ------------------------------------------------------------------------------ music-on-hold classes


def _moh_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.media.add_moh_class(data["name"], **pick(data, "random"))
    return (data["name"],), {}


def _moh_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    scope.media.set_moh_class_random(key[0], changes["random"])


def _moh_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.media.delete_moh_class(key[0])  # ConflictError while a queue uses it; its files go with it


_F, _C = t.media_files, t.moh_classes
MOH_CLASSES = Resource(
    name="moh_classes",
    title="music class",
    description="Music-on-hold classes; their files are uploaded through the media feature (docs/media.md).",
    table=t.moh_classes,
    key_fields=("name",),
    fields=(
        Field(
            "name",
            "str",
            "class name (not 'default'; unique ignoring case, as Asterisk compares them)",
            check=lambda f, v: _class_name(v),
            required=True,
            immutable=True,
            max_length=64,
        ),
        Field("random", "bool", "play the files in random order", check=_flag, default=False),
        Field("files", "int", "music files in the class"),
        created_at(),
    ),
    column_exprs={
        "name": _C.c.name,
        "random": _C.c.random,
        "files": sa.select(sa.func.count())
        .where(_F.c.kind == "moh", _F.c.moh_class == _C.c.name)
        .correlate(_C)
        .scalar_subquery(),
        "created_at": _C.c.created_at,
    },
    create=_moh_create,
    update=_moh_update,
    delete=_moh_delete,
    search=("name",),
)


# --------------------------------------------------------------------------------------- customers
def _customer_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    customer = scope.customers.add(data["name"], data["phone"], **pick(data, "email", "external_id", "data"))
    return (customer.id,), {}


def _customer_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    scope.customers.update(key[0], **changes)


def _customer_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.customers.delete(key[0])


def _check_data(f: str, v: object) -> object:
    _data(v)  # validated here; the repository stores it as JSON
    return v


CUSTOMERS = Resource(
    name="customers",
    title="customer",
    description="Customer records: callers are looked up by phone number and shown in the screen pop.",
    table=t.customers,
    key_fields=("id",),
    fields=(
        Field("id", "int", "customer id"),
        Field(
            "name",
            "str",
            "customer name",
            check=lambda f, v: _text(f, v, 255, required=True),
            required=True,
            max_length=255,
        ),
        Field(
            "phone",
            "str",
            "phone number, stored normalised (digits, optional leading '+')",
            check=lambda f, v: _customer_phone(v),
            required=True,
            max_length=64,
        ),
        Field("email", "str", "e-mail address or empty", check=lambda f, v: _email(v), default="", max_length=255),
        Field(
            "external_id",
            "str",
            "the id in another system",
            check=lambda f, v: _text(f, v, 128),
            default="",
            max_length=128,
        ),
        Field(
            "data",
            "object",
            "more fields shown in the screen pop (an object of strings)",
            check=_check_data,
            default={},
        ),
        created_at(),
        updated_at(),
    ),
    create=_customer_create,
    update=_customer_update,
    delete=_customer_delete,
    search=("name", "phone", "email", "external_id"),
    sort=("name", "id"),
)


# ---------------------------------------------------------------------------------------- webhooks
def _webhook_secret(f: str, v: object) -> str | None:
    return None if v is None else _secret(v)  # None: generated on create (WebhookRepository.add)


def _webhook_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    created = scope.webhooks.add(data["url"], **pick(data, "events", "secret", "enabled"))
    return (created.webhook.id,), {"secret": created.secret}


def _webhook_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    if "secret" in changes and changes["secret"] is None:
        raise ValidationError("secret", "must be given to change it (16 to 128 printable ASCII characters)")
    update_row(scope, t.webhooks, "id", key[0], changes, "")


def _webhook_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.webhooks.delete(key[0])  # and its delivery log


WEBHOOKS = Resource(
    name="webhooks",
    title="webhook",
    description="Where events are POSTed, signed with the webhook's secret (docs/webhooks.md).",
    table=t.webhooks,
    key_fields=("id",),
    fields=(
        Field("id", "int", "webhook id"),
        Field(
            "url",
            "str",
            "http(s) URL, no credentials or fragment",
            check=lambda f, v: validate_webhook_url(v),
            required=True,
            max_length=URL_MAX,
        ),
        Field(
            "events",
            "str",
            "'*' or a comma list of event names and prefixes like 'agent.*'",
            check=lambda f, v: ",".join(parse_event_filter(v)),
            default="*",
            max_length=1024,
        ),
        Field(
            "secret",
            "str",
            "HMAC key, 16 to 128 printable ASCII characters; generated when not given and returned once by create",
            check=_webhook_secret,
            write_only=True,
            nullable=True,
            max_length=128,
        ),
        Field("enabled", "bool", "a disabled webhook gets no deliveries", check=_flag, default=True),
        created_at(),
    ),
    create=_webhook_create,
    update=_webhook_update,
    delete=_webhook_delete,
    search=("url", "events"),
    sort=("id",),
)
