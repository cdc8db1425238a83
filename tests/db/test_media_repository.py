"""MediaRepository round trips on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.media import MediaFile, MediaRepository
from hotline.errors import ConflictError, NotFoundError, ValidationError

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def media(engine: Engine) -> MediaRepository:
    return MediaRepository(engine)


def add_prompt(media: MediaRepository, name: str = "welcome", sha: str = SHA_A, **kw: object) -> MediaFile:
    return media.add_file("prompt", name, sha256=sha, duration_s=1.5, size=12_044, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ classes


def test_moh_class_round_trip(media: MediaRepository, config: ConfigRepository) -> None:
    before = config.version()
    cls = media.add_moh_class("sales", random=True)
    assert (cls.name, cls.random) == ("sales", True)
    assert cls.created_at.tzinfo is UTC
    assert abs(cls.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert config.version() == before + 1
    assert media.list_moh_classes() == [cls]
    assert media.get_moh_class("sales") == cls
    assert media.get_moh_class("nope") is None
    changed = media.set_moh_class_random("sales", False)
    assert changed.random is False and changed.id == cls.id
    assert config.version() == before + 2


def test_moh_class_names_conflict_ignoring_case(media: MediaRepository, config: ConfigRepository) -> None:
    media.add_moh_class("Sales")
    version = config.version()
    with pytest.raises(ConflictError, match="'Sales' already exists"):
        media.add_moh_class("sales")
    assert config.version() == version  # the failed write's bump was rolled back


@pytest.mark.parametrize("name", ["default", "Default", "", ".hidden", "a b", "x" * 65, "a/b", "é", 7])
def test_bad_moh_class_names(media: MediaRepository, name: object) -> None:
    with pytest.raises(ValidationError) as info:
        media.add_moh_class(name)  # type: ignore[arg-type]
    assert info.value.field == "name"
    assert media.list_moh_classes() == []


def test_random_must_be_a_flag(media: MediaRepository) -> None:
    with pytest.raises(ValidationError, match="random"):
        media.add_moh_class("sales", random="yes")  # type: ignore[arg-type]


def test_unknown_class_is_not_found(media: MediaRepository) -> None:
    with pytest.raises(NotFoundError):
        media.set_moh_class_random("nope", True)
    with pytest.raises(NotFoundError):
        media.delete_moh_class("nope")
    with pytest.raises(NotFoundError, match="music class 'nope'"):
        media.add_file("moh", "song", moh_class="nope", sha256=SHA_A, duration_s=3.0, size=100)


def test_delete_class_deletes_its_files(media: MediaRepository) -> None:
    media.add_moh_class("sales")
    media.add_moh_class("support")
    media.add_file("moh", "one", moh_class="sales", sha256=SHA_A, duration_s=3.0, size=100)
    media.add_file("moh", "two", moh_class="sales", sha256=SHA_B, duration_s=3.0, size=100)
    kept = media.add_file("moh", "one", moh_class="support", sha256=SHA_A, duration_s=3.0, size=100)
    prompt = add_prompt(media)
    assert media.delete_moh_class("sales") == 2
    assert [c.name for c in media.list_moh_classes()] == ["support"]
    assert media.list_files() == [kept, prompt]


def test_class_used_by_a_queue_cannot_be_deleted(media: MediaRepository, config: ConfigRepository) -> None:
    media.add_moh_class("sales")
    config.add_queue("q-sales", musicclass="SALES")  # Asterisk matches class names ignoring case
    with pytest.raises(ConflictError, match="q-sales"):
        media.delete_moh_class("sales")
    assert [c.name for c in media.list_moh_classes()] == ["sales"]


# ------------------------------------------------------------------------------------------ files


def test_prompt_round_trip(media: MediaRepository, config: ConfigRepository) -> None:
    before = config.version()
    f = add_prompt(media, original_name="Accueil été.mp3")
    assert (f.kind, f.name, f.moh_class, f.original_name) == ("prompt", "welcome", "", "Accueil été.mp3")
    assert (f.sha256, f.duration_s, f.size) == (SHA_A, 1.5, 12_044)
    assert isinstance(f.size, int) and isinstance(f.duration_s, float)
    assert f.created_at.tzinfo is UTC
    assert config.version() == before + 1
    assert media.get_file("prompt", "welcome") == f
    assert media.list_files("prompt") == [f]
    assert media.list_files("moh") == []


def test_duplicate_file_conflicts_unless_replaced(media: MediaRepository, config: ConfigRepository) -> None:
    first = add_prompt(media)
    version = config.version()
    with pytest.raises(ConflictError, match="prompt 'welcome' already exists"):
        add_prompt(media, sha=SHA_B)
    assert config.version() == version
    assert media.get_file("prompt", "welcome") == first
    second = add_prompt(media, sha=SHA_B, replace=True)
    assert (second.id, second.sha256) == (first.id, SHA_B)
    assert media.list_files() == [second]


def test_same_name_in_different_owners(media: MediaRepository) -> None:
    media.add_moh_class("sales")
    media.add_moh_class("support")
    a = add_prompt(media, "intro")
    b = media.add_file("moh", "intro", moh_class="sales", sha256=SHA_A, duration_s=2.0, size=10)
    c = media.add_file("moh", "intro", moh_class="support", sha256=SHA_B, duration_s=2.0, size=10)
    assert media.list_files() == [b, c, a]  # ordered by kind, class, name
    assert media.list_files("moh", "support") == [c]


def test_file_names_are_case_sensitive(media: MediaRepository) -> None:
    add_prompt(media, "Hello")
    add_prompt(media, "hello")
    assert {f.name for f in media.list_files()} == {"Hello", "hello"}


def test_delete_file(media: MediaRepository, config: ConfigRepository) -> None:
    media.add_moh_class("sales")
    media.add_file("moh", "song", moh_class="sales", sha256=SHA_A, duration_s=2.0, size=10)
    add_prompt(media)
    version = config.version()
    media.delete_file("moh", "song", "sales")
    assert config.version() == version + 1
    media.delete_file("prompt", "welcome")
    assert media.list_files() == []
    with pytest.raises(NotFoundError, match="prompt 'welcome'"):
        media.delete_file("prompt", "welcome")
    with pytest.raises(NotFoundError, match="music file 'song' of class 'sales'"):
        media.delete_file("moh", "song", "sales")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "video"}, "kind"),
        ({"name": ".dot"}, "name"),
        ({"name": "a b"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"moh_class": "sales"}, "moh_class"),  # a prompt has no class
        ({"original_name": "x" * 256}, "original_name"),
        ({"original_name": "a\nb"}, "original_name"),
        ({"sha256": "A" * 64}, "sha256"),
        ({"sha256": "a" * 63}, "sha256"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"duration_s": True}, "duration_s"),
        ({"size": 0}, "size"),
        ({"size": 2**31}, "size"),
        ({"replace": "no"}, "replace"),
    ],
)
def test_bad_file_values(
    media: MediaRepository, config: ConfigRepository, kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {
        "kind": "prompt",
        "name": "welcome",
        "moh_class": "",
        "original_name": "",
        "sha256": SHA_A,
        "duration_s": 1.0,
        "size": 10,
        "replace": False,
    }
    values.update(kwargs)
    version = config.version()
    kind, name = values.pop("kind"), values.pop("name")
    with pytest.raises(ValidationError) as info:
        media.add_file(kind, name, **values)  # type: ignore[arg-type]
    assert info.value.field == field
    assert media.list_files() == []
    assert config.version() == version


def test_load_state_is_everything(media: MediaRepository) -> None:
    media.add_moh_class("zeta", random=True)
    media.add_moh_class("alpha")
    f1 = media.add_file("moh", "song", moh_class="zeta", sha256=SHA_A, duration_s=2.0, size=10)
    f2 = add_prompt(media)
    state = media.load_state()
    assert [c.name for c in state.classes] == ["alpha", "zeta"]
    assert state.files == (f1, f2)
