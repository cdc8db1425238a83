"""Settings: declared once, layered (defaults < file < environment < overrides), validated, documented."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from hotline.errors import ConfigError
from hotline.settings import Settings, load_settings, setting_fields, settings_markdown

DOC = Path(__file__).parents[1] / "docs" / "settings.md"


def test_docs_settings_md_is_current() -> None:
    assert DOC.read_text() == settings_markdown(), "run: hotline settings-doc > docs/settings.md"


def test_every_setting_has_a_description() -> None:
    for f in setting_fields():
        assert len(f.metadata.get("help", "")) > 15, f.name


def test_layering(tmp_path: Path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\nhttp_port = 9000\nagi_port = 9001\n')
    s = load_settings(
        cfg,
        environ={"HOTLINE_AGI_PORT": "9002", "HOTLINE_CARRIER_ADDRESSES": "10.0.0.0/8, 10.1.0.0/16"},
        overrides={"sip_realm": "acme"},
    )
    assert (s.http_port, s.agi_port, s.sip_realm) == (9000, 9002, "acme")
    assert s.carrier_addresses == ("10.0.0.0/8", "10.1.0.0/16")
    assert s.effective_database_url == f"sqlite:///{tmp_path}/hotline.db"


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    a = load_settings(environ={}, overrides={"data_dir": tmp_path})
    b = load_settings(environ={}, overrides={"data_dir": tmp_path})
    assert a.realtime_token and a.ami_secret and a.realtime_token != a.ami_secret
    assert (a.realtime_token, a.ami_secret) == (b.realtime_token, b.ami_secret)
    mode = stat.S_IMODE((tmp_path / "secrets.toml").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("http_port = 70000\n", {}, "setting http_port: must be between 1 and 65535"),
        ("htp_port = 1\n", {}, "unknown setting 'htp_port'"),
        ("http_port = [\n", {}, "not valid TOML"),
        ("", {"HOTLINE_AGI_PORT": "many"}, "setting agi_port"),
        ("", {"HOTLINE_NOPE": "1"}, "HOTLINE_NOPE: unknown setting"),
        ('asterisk_mode = "docker"\n', {}, "asterisk_mode: must be 'lab' or 'system'"),
        ('lab_instance = "../etc"\n', {}, "lab_instance"),
        ('sip_realm = "a\\nb"\n', {}, "must be one line"),
        ("agi_decision_timeout = -1\n", {}, "must be positive"),
        ("http_port = true\n", {}, "a boolean is not an integer"),
        ('agent_login_code = "*1a"\n', {}, "agent_login_code: 2-8 of 0-9 * #"),
        ('agent_logoff_code = "*11"\n', {}, "feature codes must differ"),
        ('recording_storage = "ftp"\n', {}, "recording_storage: must be 'local' or 's3'"),
        ('recording_storage = "s3"\n', {}, "recording_s3_bucket: required"),
        ("lookup_timeout = 2.0\n", {}, "lookup_timeout: must be below agi_decision_timeout"),
        ("recording_workers = 0\n", {}, "recording_workers: must be between 1 and 64"),
        ("realtime_port = 8480\n", {}, "realtime_port: 8480 is already http_port or agi_port"),
        ("agi_port = 9100\nrealtime_port = 9100\n", {}, "realtime_port: 9100 is already http_port or agi_port"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, content: str, env: dict[str, str], message: str) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n' + content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(cfg, environ=env)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings(environ={}, overrides={"data_dir": tmp_path})
    with pytest.raises(AttributeError):
        s.http_port = 1  # type: ignore[misc]
    assert isinstance(s, Settings)
