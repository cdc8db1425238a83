"""Hotline's settings, declared once as data.

Every setting is a field of the frozen `Settings` dataclass with a type, a default and a one-line
description (the `help` metadata).  Values are layered: defaults < TOML file < `HOTLINE_*` environment
variables < explicit overrides (the CLI).  `load_settings` validates every value and raises
`ConfigError` naming the setting; nothing half-valid gets through.  `docs/settings.md` is generated
from these declarations and a test checks that it is current.

Secrets (the realtime token, the AMI secret) are never defaults in the code: when unset they are
generated once into `<data_dir>/secrets.toml` (mode 0600) and reused.
"""

from __future__ import annotations

import dataclasses
import os
import secrets as _secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hotline.errors import ConfigError

ENV_PREFIX = "HOTLINE_"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hotline"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hotline"


def _s(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Settings:
    # --- storage
    data_dir: Path = _s(None, "Folder for Hotline's own files (SQLite database, secrets, node configs).")
    database_url: str = _s("", "SQLAlchemy URL of the database; empty means SQLite at <data_dir>/hotline.db.")
    # --- web / realtime backend
    http_host: str = _s("127.0.0.1", "Address the HTTP server (health, realtime backend) listens on.")
    http_port: int = _s(8480, "Port of the HTTP server.")
    realtime_port: int = _s(
        8481,
        "Port of the realtime backend's own listener (the nodes' res_config_curl lookups): a lean HTTP/1.1 "
        "server in a thread with its own event loop, so lookups never wait behind the web pages and streams; "
        "0 = served by the web server on http_port (about twice Hotline's CPU per lookup).",
    )
    realtime_token: str = _s(
        "", "Shared secret the Asterisk nodes send (X-Hotline-Token) to the realtime backend; generated."
    )
    realtime_allowed_addresses: tuple[str, ...] = _s(
        ("127.0.0.0/8", "::1/128"), "Networks allowed to call the realtime backend (besides the token)."
    )
    realtime_http_timeout: float = _s(
        2.0, "Total timeout in seconds Asterisk allows one realtime request (res_curl httptimeout)."
    )
    realtime_connect_timeout: float = _s(1.0, "Connect timeout in seconds for realtime requests.")
    # --- FastAGI
    agi_host: str = _s("127.0.0.1", "Address the FastAGI server listens on.")
    agi_port: int = _s(4573, "Port of the FastAGI server.")
    agi_decision_timeout: float = _s(1.0, "Seconds the router may take to decide a call before the fallback is used.")
    agi_command_timeout: float = _s(10.0, "Seconds to wait for Asterisk's reply to one AGI command.")
    agi_watchdog: int = _s(
        5, "Seconds the dialplan lets a call stay in Hotline's AGI before it takes the fallback itself."
    )
    agi_max_sessions: int = _s(2000, "Concurrent FastAGI sessions accepted before new ones are refused.")
    agi_allowed_addresses: tuple[str, ...] = _s(
        ("127.0.0.0/8", "::1/128"), "Networks the nodes connect to FastAGI from; other connections are closed at once."
    )
    fallback_dial: str = _s(
        "",
        "Dial() target used when Hotline cannot decide (down, slow, error); empty = play a message "
        "and hang up with fallback_cause.",
    )
    fallback_cause: int = _s(34, "Q.850 cause for the hang-up fallback (34 = no circuit available).")
    # --- media (prompts and music on hold)
    media_dir: Path = _s(
        None,
        "Folder of converted prompts and music (<data_dir>/media); must be shared storage when several Hotline "
        "instances run.",
    )
    media_max_upload_bytes: int = _s(52_428_800, "Largest prompt or music upload accepted, in bytes.")
    media_max_duration_s: float = _s(3600.0, "Longest prompt or music file accepted, in seconds.")
    media_convert_timeout_s: float = _s(120.0, "Seconds ffmpeg may take to convert one upload.")
    media_max_concurrent_conversions: int = _s(2, "Uploads converted at the same time.")
    media_sync_interval_s: float = _s(60.0, "Seconds between re-syncs of the nodes' media folders.")
    ffmpeg_binary: str = _s("ffmpeg", "The ffmpeg binary that converts uploads and recordings.")
    # --- events, caller lookup (CRM), webhooks
    event_ring_size: int = _s(10_000, "Recent events kept in memory so stream consumers can resume.")
    crm_url: str = _s(
        "",
        "HTTP CRM lookup URL template; {number} (required) and {did} are replaced, percent-encoded; empty = no CRM.",
    )
    crm_token: str = _s("", "Bearer token sent to the CRM; empty = none.")
    crm_timeout: float = _s(0.5, "Total seconds one CRM request may take.")
    lookup_timeout: float = _s(
        0.6, "Total seconds a caller lookup may take (database + CRM); keep below agi_decision_timeout."
    )
    crm_cache_ttl: float = _s(300.0, "Seconds a CRM answer that found the caller is reused.")
    crm_negative_ttl: float = _s(60.0, 'Seconds a CRM "not found" is reused.')
    crm_cache_size: int = _s(10_000, "Numbers kept in the CRM answer cache (LRU).")
    crm_earlier_calls: int = _s(5, "Earlier calls of the caller shown in the screen pop.")
    webhook_timeout: float = _s(10.0, "Total seconds one webhook attempt may take.")
    webhook_max_attempts: int = _s(10, "Attempts before a delivery is marked failed.")
    webhook_backoff_base: float = _s(5.0, "Seconds before the first retry; doubles per attempt, 50-100 % jitter.")
    webhook_backoff_max: float = _s(3600.0, "Longest wait between two attempts.")
    webhook_concurrency: int = _s(8, "Webhook requests in flight at most.")
    webhook_queue_size: int = _s(10_000, "Events waiting to be stored before new ones are dropped for webhooks.")
    webhook_poll_interval: float = _s(
        2.0, "Seconds between looks for due deliveries (retries, restarts, other instances)."
    )
    webhook_retention_days: float = _s(14.0, "Days delivered/failed deliveries are kept.")
    # --- recordings
    recording_storage: str = _s("local", "Where MP3 recordings are kept: 'local' (a folder) or 's3'.")
    recording_dir: str = _s("", "Folder of the local backend; empty = <data_dir>/recordings.")
    recording_s3_bucket: str = _s("", "S3 bucket; required when recording_storage is 's3'.")
    recording_s3_endpoint_url: str = _s("", "S3-compatible endpoint URL; empty = AWS.")
    recording_s3_region: str = _s("us-east-1", "Region name used in S3 request signing.")
    recording_s3_access_key: str = _s("", "S3 access key; empty = boto3's usual credential chain.")
    recording_s3_secret_key: str = _s("", "S3 secret key (never logged).")
    recording_s3_prefix: str = _s("recordings/", "Key prefix inside the bucket.")
    recording_s3_addressing_style: str = _s("path", "S3 addressing: 'path', 'virtual' or 'auto'.")
    recording_retention_days: int = _s(0, "Delete stored recordings older than this many days; 0 = keep forever.")
    recording_max_attempts: int = _s(8, "Failed conversion/upload attempts before a recording is marked failed.")
    recording_workers: int = _s(2, "Recordings converted and uploaded at once.")
    recording_retry_base: float = _s(30.0, "Seconds before the first retry; doubles each time.")
    recording_retry_max: float = _s(3600.0, "Longest wait between two retries.")
    recording_mp3_bitrate: int = _s(32, "MP3 bit rate in kbit/s.")
    recording_convert_timeout: float = _s(600.0, "Seconds ffmpeg may take per recording.")
    recording_incomplete_grace: float = _s(
        120.0, "Seconds an unfinished WAV must stay unchanged before it is salvaged."
    )
    recording_scan_interval: float = _s(600.0, "Seconds between scans of the nodes' monitor folders for orphans.")
    # --- call control
    call_originate_timeout: float = _s(
        30.0, "Seconds the agent's phone (click-to-call) or the supervisor's phone (spy) rings before Hotline gives up."
    )
    # --- agents
    agent_login_code: str = _s(
        "*11", "Feature code a phone dials to log an agent in (agent number, then PIN, each ended by #)."
    )
    agent_logoff_code: str = _s("*12", "Feature code that logs off the agent on the phone.")
    agent_pause_code: str = _s("*13", "Feature code that pauses the agent on the phone.")
    agent_unpause_code: str = _s("*14", "Feature code that ends the pause of the agent on the phone.")
    agent_pause_code_reason: str = _s(
        "", "Pause reason recorded for the pause code (empty = no reason; else a configured pause reason)."
    )
    # --- web, accounts and APIs
    public_url: str = _s(
        "",
        "Address users open in the browser (e.g. https://hotline.example.com); empty = http://<http_host>:<http_port>.",
    )
    session_ttl: float = _s(28800.0, "Seconds a web session lasts without activity (sliding).")
    session_cookie_secure: str = _s(
        "auto", "Secure flag of the session cookie: 'auto' (when public_url is https), 'always' or 'never'."
    )
    login_max_failures: int = _s(5, "Failed logins per user name within login_window before it is throttled.")
    login_max_failures_per_address: int = _s(
        30, "Failed logins from one address within login_window before it is throttled."
    )
    login_window: float = _s(300.0, "Seconds over which failed logins are counted (and the throttle lasts).")
    credential_cache_ttl: float = _s(
        30.0, "Seconds a verified API key, session or XML-RPC password is trusted before it is checked again."
    )
    audit_retention_days: int = _s(365, "Days audit log entries are kept; 0 = forever.")
    api_max_body_bytes: int = _s(1_048_576, "Largest REST or XML-RPC request body accepted, in bytes.")
    ws_max_subscribers: int = _s(1000, "Event stream (WebSocket) connections served at once.")
    ws_queue_size: int = _s(5000, "Events buffered per WebSocket client before it is disconnected as too slow.")
    # --- AMI
    ami_username: str = _s("hotline", "AMI user Hotline logs in with on every node.")
    ami_secret: str = _s("", "AMI secret for that user; generated.")
    ami_keepalive: float = _s(10.0, "Seconds between AMI Ping keep-alives.")
    ami_action_timeout: float = _s(10.0, "Seconds to wait for the response to one AMI action.")
    ami_reconnect_max: float = _s(30.0, "Longest back-off in seconds between AMI reconnect attempts.")
    # --- journal
    journal_batch_size: int = _s(500, "Events written in one transaction at most.")
    journal_flush_interval: float = _s(
        0.2, "Seconds between journal flushes; also how long AMI facts about recordings are gathered into one write."
    )
    journal_max_pending: int = _s(100_000, "Events held in memory before the oldest are refused.")
    call_idle_timeout: float = _s(
        3600.0, "Seconds after which an unfinished call without events is closed in the journal."
    )
    # --- Asterisk lab
    asterisk_mode: str = _s(
        "lab", "'lab': Asterisk 22 from a Debian sid root Hotline provisions; 'system': an installed one."
    )
    asterisk_root: Path = _s(None, "Where the lab's Asterisk root lives (cached outside the clone).")
    asterisk_binary: str = _s("/usr/sbin/asterisk", "The asterisk binary ('system' mode, or in the root).")
    debian_mirror: str = _s("", "Debian mirror for the lab root; empty = the host's first apt URIs line.")
    lab_instance: str = _s(
        "main",
        "Name of this lab (node folders live under <root>/hl/<lab_instance>/); lets a test lab run beside a demo.",
    )
    node_count: int = _s(1, "Number of lab nodes `hotline lab start` runs.")
    node_address_base: str = _s(
        "127.0.0.11", "Loopback address of the first node; the next nodes take the following ones."
    )
    sip_port: int = _s(5060, "SIP UDP port of each node.")
    ami_port: int = _s(5038, "AMI port of each node.")
    rtp_port_start: int = _s(10000, "First RTP port of the first node (each node gets 1000).")
    sip_realm: str = _s("hotline", "SIP digest realm of every phone (part of the stored HA1 hash).")
    carrier_addresses: tuple[str, ...] = _s(
        ("127.0.0.2/32",), "Networks whose unauthenticated INVITEs are treated as calls from the carrier."
    )
    carrier_contact: str = _s(
        "sip:127.0.0.2:5060", "SIP URI where calls to external numbers are sent (the carrier's address)."
    )
    event_loop: str = _s(
        "uvloop", "Event loop of the service: 'uvloop' (libuv, about 2x less CPU per FastAGI call) or 'asyncio'."
    )
    log_level: str = _s("INFO", "Python log level.")

    # ------------------------------------------------------------------ derived
    @property
    def sqlite_path(self) -> Path:
        return Path(self.data_dir) / "hotline.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def effective_realtime_port(self) -> int:
        """The port the nodes' realtime lookups go to: the listener's, or the web server's when it is 0."""
        return self.realtime_port or self.http_port

    @property
    def realtime_base_url(self) -> str:
        return f"http://{self.http_host}:{self.effective_realtime_port}/realtime"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_INT_RANGES = {
    "http_port": (1, 65535),
    "realtime_port": (0, 65535),
    "agi_port": (1, 65535),
    "sip_port": (1, 65535),
    "ami_port": (1, 65535),
    "rtp_port_start": (1024, 64000),
    "node_count": (1, 50),
    "journal_batch_size": (1, 100_000),
    "journal_max_pending": (100, 10_000_000),
    "agi_max_sessions": (1, 100_000),
    "agi_watchdog": (2, 120),
    "media_max_upload_bytes": (1024, 1_073_741_824),
    "event_ring_size": (100, 10_000_000),
    "crm_cache_size": (0, 10_000_000),
    "crm_earlier_calls": (0, 100),
    "webhook_max_attempts": (1, 1000),
    "webhook_concurrency": (1, 1000),
    "webhook_queue_size": (10, 10_000_000),
    "recording_retention_days": (0, 36500),
    "recording_max_attempts": (1, 100),
    "recording_workers": (1, 64),
    "recording_mp3_bitrate": (8, 320),
    "media_max_concurrent_conversions": (1, 64),
    "fallback_cause": (1, 127),
    "login_max_failures": (1, 1000),
    "login_max_failures_per_address": (1, 100_000),
    "audit_retention_days": (0, 36500),
    "api_max_body_bytes": (1024, 1_073_741_824),
    "ws_max_subscribers": (1, 100_000),
    "ws_queue_size": (10, 1_000_000),
}


def _coerce(name: str, typ: Any, raw: Any) -> Any:
    t = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    try:
        if t in ("int",):
            if isinstance(raw, bool):
                raise ValueError("a boolean is not an integer")
            value: Any = int(raw)
            lo, hi = _INT_RANGES.get(name, (-(2**31), 2**31))
            if not lo <= value <= hi:
                raise ValueError(f"must be between {lo} and {hi}")
            return value
        if t == "float":
            value = float(raw)
            if value <= 0:
                raise ValueError("must be positive")
            return value
        if t == "str":
            if not isinstance(raw, str):
                raise ValueError("must be a string")
            if "\n" in raw or "\r" in raw:
                raise ValueError("must be one line")
            return raw
        if t == "Path":
            return Path(str(raw)).expanduser()
        if t.startswith("tuple"):
            if isinstance(raw, str):
                raw = [p.strip() for p in raw.split(",") if p.strip()]
            if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
                raise ValueError("must be a list of strings")
            return tuple(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc} (got {raw!r})") from None
    raise ConfigError(f"setting {name}: unsupported type {t}")


def setting_fields() -> list[dataclasses.Field[Any]]:
    return list(fields(Settings))


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    create_secrets: bool = True,
) -> Settings:
    """Build the settings: defaults < file < environment < overrides; validate; fill secrets."""
    env = os.environ if environ is None else environ
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"config file {p}: unknown setting {key!r}")
            values[key] = raw
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            name = key[len(ENV_PREFIX) :].lower()
            if name not in known:
                raise ConfigError(f"environment variable {key}: unknown setting {name!r}")
            values[name] = raw
    for key, raw in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        if raw is not None:
            values[key] = raw

    coerced = {k: _coerce(k, known[k].type, v) for k, v in values.items()}
    coerced.setdefault("data_dir", _default_data_dir())
    coerced.setdefault("asterisk_root", _default_cache_dir() / "asterisk-root")
    coerced.setdefault("media_dir", Path(coerced["data_dir"]) / "media")
    settings = Settings(**coerced)
    if settings.event_loop not in ("uvloop", "asyncio"):
        raise ConfigError(f"setting event_loop: must be 'uvloop' or 'asyncio' (got {settings.event_loop!r})")
    if settings.asterisk_mode not in ("lab", "system"):
        raise ConfigError(f"setting asterisk_mode: must be 'lab' or 'system' (got {settings.asterisk_mode!r})")
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,15}", settings.lab_instance):
        raise ConfigError(f"setting lab_instance: 1-16 of a-z 0-9 _ - (got {settings.lab_instance!r})")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"setting log_level: unknown level {settings.log_level!r}")
    if settings.recording_storage not in ("local", "s3"):
        raise ConfigError(f"setting recording_storage: must be 'local' or 's3' (got {settings.recording_storage!r})")
    if settings.recording_storage == "s3" and not settings.recording_s3_bucket:
        raise ConfigError("setting recording_s3_bucket: required when recording_storage is 's3'")
    if settings.session_cookie_secure not in ("auto", "always", "never"):
        raise ConfigError(
            "setting session_cookie_secure: must be 'auto', 'always' or 'never'"
            f" (got {settings.session_cookie_secure!r})"
        )
    if settings.public_url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", settings.public_url):
        raise ConfigError(f"setting public_url: must be an http:// or https:// address (got {settings.public_url!r})")
    import ipaddress

    for name in ("realtime_allowed_addresses", "agi_allowed_addresses", "carrier_addresses"):
        for net in getattr(settings, name):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ConfigError(f"setting {name}: {net!r} is not an address or network like 10.0.0.0/24") from None
    if settings.realtime_port and settings.realtime_port in (settings.http_port, settings.agi_port):
        raise ConfigError(
            f"setting realtime_port: {settings.realtime_port} is already http_port or agi_port"
            " (use another port, or 0 to serve the realtime backend on http_port)"
        )
    if settings.lookup_timeout >= settings.agi_decision_timeout:
        raise ConfigError("setting lookup_timeout: must be below agi_decision_timeout (the call must still be routed)")
    codes = {n: getattr(settings, n) for n in ("agent_login_code", "agent_logoff_code", "agent_pause_code",
                                                "agent_unpause_code")}  # fmt: skip
    for name, code in codes.items():
        if not re.fullmatch(r"[*#0-9]{2,8}", code):
            raise ConfigError(f"setting {name}: 2-8 of 0-9 * # (got {code!r})")
    if len(set(codes.values())) != len(codes):
        raise ConfigError("settings agent_*_code: the feature codes must differ from each other")
    if create_secrets:
        settings = _with_secrets(settings)
    return settings


def _with_secrets(settings: Settings) -> Settings:
    missing = [n for n in ("realtime_token", "ami_secret") if not getattr(settings, n)]
    if not missing:
        return settings
    path = Path(settings.data_dir) / "secrets.toml"
    stored: dict[str, Any] = {}
    if path.exists():
        try:
            stored = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    changed = False
    for name in missing:
        if not isinstance(stored.get(name), str) or not stored[name]:
            stored[name] = _secrets.token_urlsafe(24)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for k, v in stored.items():
                fh.write(f'{k} = "{v}"\n')
        os.replace(tmp, path)
    return settings.replace(**{n: stored[n] for n in missing})


def settings_markdown() -> str:
    """The documentation of every setting, as written to docs/settings.md."""
    lines = [
        "# Settings",
        "",
        "Generated from `hotline/settings.py` (`hotline settings-doc`). Each setting can be given in the TOML",
        "file named by `--config` or `HOTLINE_CONFIG`, or as an environment variable `HOTLINE_<NAME>`",
        "(lists comma-separated). Later sources win: defaults < file < environment < command line.",
        "",
        "| setting | default | meaning |",
        "| --- | --- | --- |",
    ]
    for f in fields(Settings):
        default = f.default
        if f.name == "data_dir":
            default = "$XDG_DATA_HOME/hotline (~/.local/share/hotline)"
        elif f.name == "asterisk_root":
            default = "$XDG_CACHE_HOME/hotline/asterisk-root (~/.cache/hotline/asterisk-root)"
        elif isinstance(default, tuple):
            default = ", ".join(default)
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        lines.append(f"| `{f.name}` | {shown} | {f.metadata['help']} |")
    return "\n".join(lines) + "\n"
