"""The `hotline` command.

Every subcommand loads the settings (defaults < --config file < HOTLINE_* environment < flags), does one
thing and exits 0, or prints one clear error line and exits 2 (bad input or configuration) or 1 (a
failure of the system).  Never a traceback for a HotlineError.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from hotline.domain.config import CALL_TYPES, DEST_TYPES, GROUP_ACTIONS, RECORDING_POLICIES
from hotline.errors import (
    ConfigError,
    ConflictError,
    HotlineError,
    LabError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from hotline.features.calls.cli import add_call_parser
from hotline.settings import Settings, load_settings, settings_markdown


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return load_settings(args.config, overrides=overrides)


def _engine(settings: Settings) -> Any:
    from hotline.db.engine import create_engine_for
    from hotline.db.migrate import upgrade

    engine = create_engine_for(settings.effective_database_url)
    upgrade(engine)
    return engine


def _config_repo(settings: Settings) -> Any:
    from hotline.db.repositories import ConfigRepository

    return ConfigRepository(_engine(settings))


# ---------------------------------------------------------------------------------------------- commands
def cmd_serve(args: argparse.Namespace) -> int:
    from hotline.app import run as app_run
    from hotline.app import run_forever

    settings = _settings(args)
    app_run(
        settings,
        run_forever(
            settings,
            lambda h: print(f"Hotline running: {settings.effective_public_url}/", flush=True),
        ),
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _engine(settings)
    print(f"database at revision head ({_redact(settings.effective_database_url)})")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register_lab_nodes(settings: Settings, count: int) -> list[Any]:
    from hotline.asterisk import lab

    repo = _config_repo(settings)
    nodes = [lab.lab_node(settings, spec) for spec in lab.node_specs(settings, count)]
    for n in nodes:
        repo.upsert_node(n.spec.name, n.spec.address, n.spec.sip_port, n.spec.ami_port)
    return nodes


def cmd_lab(args: argparse.Namespace) -> int:
    from hotline.asterisk import lab

    settings = _settings(args)
    count = args.nodes or settings.node_count
    if args.lab_cmd == "provision":
        root = lab.provision(settings)
        print(f"Asterisk ready: {lab.asterisk_version_in(root)} in {root}")
    elif args.lab_cmd == "start":
        for node in register_lab_nodes(settings, count):
            pid = lab.start_node(settings, node)
            spec = node.spec
            print(f"{node.name} running (pid {pid}) SIP {spec.address}:{spec.sip_port} AMI :{spec.ami_port}")
    elif args.lab_cmd == "stop":
        for spec in lab.node_specs(settings, count):
            node = lab.lab_node(settings, spec)
            print(f"{node.name}: {'stopped' if lab.stop_node(node) else 'was not running'}")
    elif args.lab_cmd == "status":
        for spec in lab.node_specs(settings, count):
            st = lab.node_status(lab.lab_node(settings, spec))
            print(f"{st.name} {st.address} {'running pid ' + str(st.pid) if st.running else 'stopped'} {st.detail}")
    elif args.lab_cmd == "render":
        for spec in lab.node_specs(settings, count):
            node = lab.lab_node(settings, spec)
            lab.write_node_config(settings, node)
            print(f"{node.name}: configuration written to {node.host_dir / 'etc'}")
    elif args.lab_cmd == "sipp":
        print(f"sipp at {lab.install_sipp()}")
    elif args.lab_cmd == "cli":
        node = lab.lab_node(settings, lab.node_specs(settings, count)[args.node - 1])
        print(node.cli(" ".join(args.command)), end="")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.generate:
        pw = secrets.token_urlsafe(12)
        print(f"generated password: {pw}")
        return pw
    return getpass.getpass("SIP password: ")


def cmd_phone(args: argparse.Namespace) -> int:
    settings = _settings(args)
    repo = _config_repo(settings)
    if args.phone_cmd == "add":
        p = repo.add_phone(args.name, _password(args), realm=settings.sip_realm, callerid=args.callerid or "")
        print(f"phone {p.name} added")
    elif args.phone_cmd == "passwd":
        repo.set_phone_password(args.name, _password(args), realm=settings.sip_realm)
        print(f"password of phone {args.name} changed; effective on its next REGISTER")
    elif args.phone_cmd == "delete":
        repo.delete_phone(args.name)
        print(f"phone {args.name} deleted")
    elif args.phone_cmd == "list":
        for p in repo.load_snapshot().phones:
            print(f"{p.name}\t{p.callerid}\t{'enabled' if p.enabled else 'disabled'}")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    repo = _config_repo(_settings(args))
    if args.queue_cmd == "add":
        opts = {"strategy": args.strategy}
        if args.max_wait:
            opts["max_wait"] = args.max_wait
        q = repo.add_queue(args.name, **opts)
        print(f"queue {q.name} added ({q.strategy})")
    elif args.queue_cmd == "member":
        m = repo.add_queue_member(args.queue, args.interface, membername=args.name or "", penalty=args.penalty)
        print(f"{m.interface} is a member of {args.queue} (uniqueid {m.uniqueid})")
    elif args.queue_cmd == "set":
        options: dict[str, object] = {}
        for item in args.options:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValidationError(item, "must be OPTION=VALUE, e.g. wrapuptime=10")
            options[key] = _option_value(value)
        q = repo.update_queue(args.name, **options)
        print(f"queue {q.name} changed: " + ", ".join(f"{k}={getattr(q, k)}" for k in options))
    elif args.queue_cmd == "list":
        snap = repo.load_snapshot()
        for q in snap.queues:
            members = ", ".join(m.interface for m in snap.members_by_queue.get(q.name, ()))
            print(f"{q.name}\t{q.strategy}\t{members}")
    return 0


def _option_value(text: str) -> object:
    """Command-line option values: integers become int, true/false become bool, 'none' becomes None."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        return text


def cmd_route(args: argparse.Namespace) -> int:
    repo = _config_repo(_settings(args))
    if args.route_cmd == "add":
        repo.add_route(args.did, args.dest_type, args.dest_value or "", hangup_cause=args.cause,
                       message=args.message or "")  # fmt: skip
        print(f"DID {args.did} -> {args.dest_type} {args.dest_value or ''}")
    elif args.route_cmd == "delete":
        repo.delete_route(args.did)
        print(f"route {args.did} deleted")
    elif args.route_cmd == "list":
        for r in repo.load_snapshot().did_routes:
            print(f"{r.did}\t{r.dest_type}\t{r.dest_value}")
    return 0


def _cc_repo(settings: Settings) -> Any:
    from hotline.db.repositories.callcenter import CallCenterRepository

    return CallCenterRepository(_engine(settings))


def _dest(text: str | None, field: str) -> tuple[str, str]:
    """'queue:support' -> ('queue', 'support'); 'hangup' -> ('hangup', '')."""
    if not text:
        return "", ""
    kind, _, value = text.partition(":")
    if not kind:
        raise ValidationError(field, "must be TYPE or TYPE:VALUE, e.g. queue:support or redirect:sip:1@host")
    return kind, value


def _agents_run(settings: Settings, action: Any) -> Any:
    """Run one AgentService command in this process; the running service adopts it on its next
    configuration check (every login, logoff and pause bumps the configuration version) and tells the
    nodes (QueuePause)."""
    import asyncio

    from hotline.db.repositories import ConfigRepository
    from hotline.db.repositories.agents import AgentStateRepository
    from hotline.features.agents.service import AgentService

    engine = _engine(settings)
    config = ConfigRepository(engine)

    async def main() -> Any:
        holder = [await asyncio.to_thread(config.load_snapshot)]
        svc = AgentService(AgentStateRepository(engine), lambda: holder[0])
        await svc.start()
        result = await action(svc, holder[0])
        await svc.flush()
        return result

    try:
        return asyncio.run(main())
    finally:
        engine.dispose()


def cmd_agent(args: argparse.Namespace) -> int:
    settings = _settings(args)
    sub = args.agent_cmd
    if sub == "add":
        a = _config_repo(settings).add_agent(args.number, args.name, group=args.group, pin=args.pin, phone=args.phone)
        print(f"agent {a.number} ({a.name}) added")
    elif sub == "queue":
        if args.remove:
            _cc_repo(settings).remove_agent_queue(args.number, args.queue)
            print(f"agent {args.number} no longer serves {args.queue}")
        else:
            _cc_repo(settings).set_agent_queue(args.number, args.queue, args.penalty)
            print(f"agent {args.number} serves {args.queue} with penalty {args.penalty}")
    elif sub in ("login", "logoff", "pause", "unpause"):
        actor = f"cli {getpass.getuser()}"

        async def act(svc: Any, snap: Any) -> Any:
            if sub == "login":
                return await svc.login(args.number, None, args.phone, actor=actor, check_pin=False)
            if sub == "logoff":
                return await svc.logoff(args.number, actor=actor, reason=args.reason or "")
            if sub == "pause":
                return await svc.pause(args.number, args.reason or "", actor=actor)
            return await svc.unpause(args.number, actor=actor)

        st = _agents_run(settings, act)
        print(f"agent {args.number}: {st.state}" + (f" ({st.pause_reason})" if st.pause_reason else "")
              + (f" on phone {st.phone}" if st.phone else ""))  # fmt: skip
    elif sub == "status":

        async def show(svc: Any, snap: Any) -> list[str]:
            out = []
            for a in snap.agents:
                s = svc.status(a.id)
                out.append(
                    f"{a.number}\t{a.name}\t{s.state}\t{s.pause_reason or '-'}\t{s.phone or '-'}\t"
                    f"since {s.state_since:%Y-%m-%d %H:%M:%S}\tmissed {s.missed_in_row}/{s.missed_total}"
                )
            return out  # fmt: skip

        for line in _agents_run(settings, show):
            print(line)
    return 0


def cmd_group(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.group_cmd == "add":
        _config_repo(settings).add_agent_group(args.name, args.description or "")
        print(f"agent group {args.name} added")
        return 0
    fields: dict[str, object] = {}
    for key in ("max_missed_in_row", "allowed_call_types", "allowed_actions", "recording"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    for key in ("daily_call_quota", "daily_minute_quota"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = None if value < 0 else value
    g = _cc_repo(settings).update_agent_group(args.name, **fields)
    quota = f"quota {g.daily_call_quota} calls, {g.daily_minute_quota} min/day"
    print(f"group {g.name}: call types {g.allowed_call_types}; actions {g.allowed_actions}; {quota}; "
          f"auto-pause after {g.max_missed_in_row}")  # fmt: skip
    return 0


def cmd_pause_reason(args: argparse.Namespace) -> int:
    if args.reason_cmd == "list":
        for r in _config_repo(_settings(args)).load_snapshot().pause_reasons:
            limit = f"max {r.max_duration_s // 60} min" if r.max_duration_s else "no limit"
            print(f"{r.name}\t{'paid' if r.paid else 'unpaid'}\t{limit}")
        return 0
    minutes = args.max_minutes
    _cc_repo(_settings(args)).add_pause_reason(
        args.name, paid=args.paid, max_duration_s=minutes * 60 if minutes else None
    )
    print(f"pause reason {args.name!r} added ({'paid' if args.paid else 'unpaid'})")
    return 0


def cmd_ivr(args: argparse.Namespace) -> int:
    repo = _cc_repo(_settings(args))
    if args.ivr_cmd == "add":
        fail_type, fail_value = _dest(args.fail, "fail")
        repo.add_ivr(args.name, args.prompt, timeout_s=args.timeout, max_attempts=args.attempts,
                     fail_type=fail_type, fail_value=fail_value)  # fmt: skip
        print(f"IVR menu {args.name} added")
    else:
        kind, value = _dest(args.destination, "destination")
        repo.set_ivr_option(args.menu, args.digit, kind, value)
        print(f"IVR {args.menu}: {args.digit} -> {kind} {value}")
    return 0


def cmd_time(args: argparse.Namespace) -> int:
    repo = _cc_repo(_settings(args))
    if args.time_cmd == "add":
        ot, ov = _dest(args.open, "open")
        ct, cv = _dest(args.closed, "closed")
        repo.add_time_condition(args.name, args.hours, open_type=ot, open_value=ov, closed_type=ct, closed_value=cv,
                                timezone=args.tz)  # fmt: skip
        print(f"time condition {args.name} added")
    elif args.time_cmd == "hours":
        repo.update_time_condition(args.name, hours=args.hours, timezone=args.tz)
        print(f"time condition {args.name} changed")
    elif args.time_cmd == "holiday":
        from datetime import date

        try:
            day = date.fromisoformat(args.day)
        except ValueError as exc:
            raise ValidationError("day", f"{args.day!r} is not a date YYYY-MM-DD") from exc
        if args.delete:
            repo.delete_holiday(day)
            print(f"{day} is no longer a holiday")
        else:
            repo.add_holiday(day, args.holiday_name or "")
            print(f"{day} is a holiday")
    return 0


def cmd_media(args: argparse.Namespace) -> int:
    """Uploads from the command line: converted here, copied to the nodes by the running service, which
    notices the configuration change (docs/media.md)."""
    import asyncio

    from hotline.db.repositories.media import MediaRepository
    from hotline.features.media import MediaService

    settings = _settings(args)
    engine = _engine(settings)
    media = MediaService(MediaRepository(engine), Path(settings.media_dir), lambda: {},
                         ffmpeg=settings.ffmpeg_binary, max_upload_bytes=settings.media_max_upload_bytes,
                         max_duration_s=settings.media_max_duration_s)  # fmt: skip

    def data() -> bytes:
        path = Path(args.file)
        if not path.is_file():
            raise ValidationError("file", f"{args.file} is not a readable file")
        if path.stat().st_size > settings.media_max_upload_bytes:
            raise ValidationError("file", f"larger than {settings.media_max_upload_bytes} bytes")
        return path.read_bytes()

    async def main() -> str:
        await media.start()
        if args.media_cmd == "prompt":
            f = await media.add_prompt(args.name, data(), Path(args.file).name, replace=args.replace)
            return f"prompt {f.name} stored ({f.duration_s:.1f} s); use it by its name in IVR menus and routes"
        if args.media_cmd == "moh-class":
            await media.add_moh_class(args.name, random=args.random)
            return f"music class {args.name} added"
        if args.media_cmd == "moh":
            f = await media.add_moh_file(args.moh_class, args.name, data(), Path(args.file).name, replace=args.replace)
            return f"music {args.moh_class}/{f.name} stored ({f.duration_s:.1f} s)"
        lines = [f"prompt\t{p.name}\t{p.duration_s:.1f} s" for p in await media.list_prompts()]
        lines += [f"moh\t{m.moh_class}/{m.name}\t{m.duration_s:.1f} s" for m in await media.list_moh_files()]
        return "\n".join(lines) or "no media"

    try:
        print(asyncio.run(main()))
    finally:
        engine.dispose()
    return 0


def cmd_recordings(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from hotline.db.repositories.recordings import RecordingRepository

    repo = RecordingRepository(_engine(_settings(args)))
    if args.rec_cmd == "retry":
        now = datetime.now(UTC)
        if args.id:
            r = repo.retry(args.id, now=now)
            print(f"recording {r.id} of call {r.call_id}: {r.state}, retried now")
        else:
            print(f"{repo.retry_failed(now=now)} failed recording(s) retried")
        return 0
    rows = repo.for_call(args.call_id) if args.call_id else repo.recent(state=args.state, limit=args.limit)
    for r in rows:
        size = f"{r.size} B" if r.size is not None else "-"
        print(f"{r.id}\t{r.call_id}\t{r.state}\tattempts {r.attempts}\t{r.storage_key or '-'}\t{size}\t"
              f"{r.last_error or ''}")  # fmt: skip
    return 0


def cmd_webhook(args: argparse.Namespace) -> int:
    from hotline.db.repositories.webhooks import WebhookRepository

    repo = WebhookRepository(_engine(_settings(args)))
    if args.webhook_cmd == "add":
        secret = sys.stdin.readline().strip() if args.secret_stdin else None
        created = repo.add(args.url, events=args.events, secret=secret)
        print(f"webhook {created.webhook.id} -> {created.webhook.url} ({created.webhook.events})")
        print(f"signing secret (shown once): {created.secret}")
    elif args.webhook_cmd == "delete":
        repo.delete(args.id)
        print(f"webhook {args.id} deleted")
    elif args.webhook_cmd == "list":
        for w in repo.list():
            print(f"{w.id}\t{w.url}\t{w.events}\t{'enabled' if w.enabled else 'disabled'}")
    elif args.webhook_cmd == "deliveries":
        for d in repo.list_deliveries(args.id, limit=args.limit):
            print(f"{d.id}\t{d.event}\t{d.state}\tattempts {d.attempts}\tstatus {d.last_status}\t{d.last_error or ''}")
    return 0


def cmd_customer(args: argparse.Namespace) -> int:
    from hotline.db.repositories.crm import CustomerRepository

    repo = CustomerRepository(_engine(_settings(args)))
    if args.customer_cmd == "add":
        data = dict(_key_value(item) for item in args.field or ())
        c = repo.add(args.name, args.phone, email=args.email or "", external_id=args.external_id or "", data=data)
        print(f"customer {c.id} {c.name} ({c.phone})")
    else:
        for c in repo.find_by_phone(args.phone):
            print(f"{c.id}\t{c.name}\t{c.phone}\t{c.email}\t{c.external_id}")
    return 0


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValidationError("data", f"{item!r} must be KEY=VALUE")
    return key, value


def cmd_limits(args: argparse.Namespace) -> int:
    repo = _cc_repo(_settings(args))
    if args.limits_cmd == "calltype":
        repo.add_call_type_rule(args.pattern, args.call_type, position=args.position)
        print(f"numbers matching {args.pattern} are {args.call_type}")
    else:
        kind, value = _dest(args.destination, "destination")
        repo.add_service_number(args.number, args.kind, kind, value, args.description or "")
        print(f"{args.kind} number {args.number} -> {kind} {value}")
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    from hotline.db.repositories import CallRepository

    repo = CallRepository(_engine(_settings(args)))
    if args.call_id:
        rec = repo.get_call(args.call_id)
        if rec is None:
            raise NotFoundError(f"no call {args.call_id}")
        print(f"call {rec.call_id} node={rec.node} from={rec.caller_num} did={rec.did} status={rec.status}")
        print(
            f"  start={rec.started_at} answer={rec.answered_at} end={rec.ended_at} queue={rec.queue_name} "
            f"wait={rec.queue_wait_s} agent={rec.agent_number} hangup_by={rec.hangup_by} cause={rec.hangup_cause}"
        )
        for ev in repo.events_for(args.call_id):
            extra = " ".join(f"{k}={v}" for k, v in list(ev.data.items())[:6])
            print(f"  {ev.seq:4d} {ev.ts.isoformat()} {ev.source:7s} {ev.event:20s} {ev.channel or ''} {extra}")
    else:
        for rec in repo.recent_calls(limit=args.limit):
            print(
                f"{rec.call_id} {rec.started_at:%Y-%m-%d %H:%M:%S} {rec.caller_num or '-':>14} -> {rec.did or '-':<10} "
                f"{rec.status:10s} hangup_by={rec.hangup_by}"
            )
    return 0


def _secret_arg(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from stdin (--password-stdin) or a generated one (printed once)."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n"), False
    return secrets.token_urlsafe(12), True


def cmd_user(args: argparse.Namespace) -> int:
    from hotline.db.repositories.accounts import AccountRepository

    repo = AccountRepository(_engine(_settings(args)))
    if args.user_cmd == "add":
        pw, generated = _secret_arg(args)
        u = repo.add_user(args.name, pw, role=args.role, agent=args.agent, display_name=args.display_name or "",
                          language=args.language)  # fmt: skip
        print(f"user {u.username} added ({u.role})" + (f"; password: {pw}" if generated else ""))
    elif args.user_cmd == "passwd":
        pw, generated = _secret_arg(args)
        repo.update_user(args.name, password=pw)
        print(f"password of {args.name} changed" + (f": {pw}" if generated else "") + "; their sessions ended")
    elif args.user_cmd == "delete":
        repo.delete_user(args.name)
        print(f"user {args.name} deleted")
    elif args.user_cmd == "enable":
        repo.update_user(args.name, enabled=not args.off)
        print(f"user {args.name} {'disabled' if args.off else 'enabled'}")
    else:
        for u in repo.list_users(limit=1000)[0]:
            state = "enabled" if u.enabled else "disabled"
            print(f"{u.username}\t{u.role}\t{u.agent_number or '-'}\t{u.language}\t{state}")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from hotline.db.repositories.accounts import AccountRepository
    from hotline.domain.permissions import ROLES, Principal
    from hotline.features.accounts import AccountService

    settings = _settings(args)
    repo = AccountRepository(_engine(settings))
    if args.key_cmd == "add":
        service = AccountService(repo, session_ttl=1, login_max_failures=1, login_max_failures_per_address=1,
                                 login_window=1, credential_cache_ttl=1)  # fmt: skip
        operator = Principal(kind="user", name="cli", scopes=ROLES["admin"], role="admin")
        row, key = asyncio.run(service.create_api_key(args.name, args.scope, created_by=operator))
        print(f"API key {row.name} ({' '.join(sorted(row.scopes))}); shown once, keep it safe:\n{key}")
    elif args.key_cmd == "revoke":
        repo.delete_api_key(args.name)
        print(f"API key {args.name} revoked")
    else:
        for k in repo.list_api_keys():
            used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never used"
            print(f"{k.name}\thlk_{k.prefix}_...\t{' '.join(sorted(k.scopes))}\t{used}")
    return 0


def seed_demo(settings: Settings) -> list[tuple[str, str]]:
    """Idempotent demo data: a small call center.

    3 desk phones; agents Alice (1001) and Boris (1002) who log in on any desk with *11 and their PIN and
    then serve queue 'support'; a 'sales' group limited to local and mobile calls; pause reasons; an IVR
    on DID 5002 (1 = support, 2 = a SIP 302 to the carrier); business hours on DID 5003 (open -> support,
    closed -> the IVR); number classification and the emergency number 112.
    Phone passwords and PINs are random; they are kept (mode 0600) in <data_dir>/demo-credentials.txt so
    the demo can print them again; the database holds only digests and argon2id hashes.
    """
    from hotline.db.repositories.callcenter import CallCenterRepository

    repo = _config_repo(settings)
    cc = CallCenterRepository(repo._engine)
    cred_file = Path(settings.data_dir) / "demo-credentials.txt"
    creds: dict[str, str] = {}
    if cred_file.exists():
        for line in cred_file.read_text().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                creds[k.strip()] = v.strip()
    snap = repo.load_snapshot()
    for name in ("2001", "2002", "2003"):
        if name not in snap.phone_by_name:
            pw = secrets.token_urlsafe(9)
            repo.add_phone(name, pw, realm=settings.sip_realm, callerid=f'"Desk {name}" <{name}>')
            creds[f"phone {name}"] = pw
    if "sales" not in {g.name for g in snap.agent_groups}:
        repo.add_agent_group("sales", "Demo group")
        cc.update_agent_group("sales", allowed_call_types="local,mobile", max_missed_in_row=3)
    if "support" not in snap.queue_by_name:
        repo.add_queue("support", strategy="rrmemory", timeout=15, wrapuptime=5, announce_position="yes")
    for number, name in (("1001", "Alice Demo"), ("1002", "Boris Demo")):
        if number not in snap.agent_by_number:
            pin = f"{secrets.randbelow(10**4):04d}"
            repo.add_agent(number, name, group="sales", pin=pin)
            cc.set_agent_queue(number, "support")
            creds[f"agent {number} PIN"] = pin
    for reason, paid in (("lunch", False), ("training", True)):
        if reason not in snap.pause_reason_by_name:
            cc.add_pause_reason(reason, paid=paid, max_duration_s=3600)
    if "main" not in snap.ivr_by_name:
        cc.add_ivr("main", "queue-thankyou", fail_type="queue", fail_value="support")
        cc.set_ivr_option("main", "1", "queue", "support")
        cc.set_ivr_option("main", "2", "redirect", settings.carrier_contact)
    if "office" not in snap.time_by_name:
        cc.add_time_condition("office", "mon-fri 09:00-18:00", open_type="queue", open_value="support",
                              closed_type="ivr", closed_value="main")  # fmt: skip
    if not snap.call_type_rules:
        for position, (pattern, kind) in enumerate(
            (("_8800X.", "premium"), ("_9XXXXXXXXX", "mobile"), ("_[2-7]XXXXXX", "local"), ("+", "international"))
        ):
            cc.add_call_type_rule(pattern, kind, position=position)
    if "112" not in snap.service_by_number:
        cc.add_service_number("112", "emergency", "external", "112")
    for did, kind, value, description in (
        ("5000", "queue", "support", "Demo support line"),
        ("5001", "phone", "2003", "Demo direct line"),
        ("5002", "ivr", "main", "Demo menu"),
        ("5003", "time", "office", "Demo business hours"),
    ):
        if did not in snap.route_by_did:
            repo.add_route(did, kind, value, description=description)
    from hotline.db.repositories.accounts import AccountRepository

    accounts = AccountRepository(repo._engine)
    existing = {u.username for u in accounts.list_users(limit=1000)[0]}
    for username, role, agent, display in (
        ("admin", "admin", None, "Demo admin"),
        ("super", "supervisor", None, "Demo supervisor"),
        ("alice", "agent", "1001", "Alice Demo"),
        ("boris", "agent", "1002", "Boris Demo"),
    ):
        if username not in existing:
            pw = secrets.token_urlsafe(9)
            accounts.add_user(username, pw, role=role, agent=agent, display_name=display)
            creds[f"web user {username} ({role})"] = pw
    cred_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(cred_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"{k}: {v}\n" for k, v in sorted(creds.items()))
    return sorted(creds.items())


def cmd_demo(args: argparse.Namespace) -> int:
    from hotline.app import run as app_run
    from hotline.app import run_forever
    from hotline.asterisk import lab

    settings = _settings(args)
    print("setting up the database and demo data...", flush=True)
    creds = seed_demo(settings)
    print("provisioning Asterisk 22 (first run: a few minutes)...", flush=True)
    lab.provision(settings)
    nodes = register_lab_nodes(settings, settings.node_count)

    def started(h: Any) -> None:
        for node in nodes:
            lab.start_node(settings, node)
        node = nodes[0].spec
        print("\n=== Hotline demo call center is running ===")
        print(f"web:        {settings.effective_public_url}/  (wallboard /wallboard, monitor /monitor, agent /agent)")
        print(
            f"APIs:       REST {settings.effective_public_url}/api/docs, XML-RPC {settings.effective_public_url}/RPC2"
        )
        print(f"Asterisk:   {len(nodes)} node(s); SIP on {node.address}:{node.sip_port} (realm {settings.sip_realm})")
        print(f"realtime:   the nodes read phones and queues from {settings.realtime_base_url}")
        for key, secret in creds:
            if key.startswith("phone "):
                name = key.split()[1]
                print(f"phone {name}: user {name} password {secret}")
            else:
                print(f"{key}: {secret}")
        print("agents log in on any desk: dial *11, then the agent number and #, then the PIN and #")
        print("DID 5000 -> queue 'support'; 5001 -> phone 2003; 5002 -> IVR; 5003 -> business hours")
        print(f"carrier calls from {', '.join(settings.carrier_addresses)}; Ctrl-C stops everything", flush=True)

    try:
        app_run(settings, run_forever(settings, started))
    finally:
        for node in nodes:
            lab.stop_node(node)
    return 0


def cmd_settings_doc(args: argparse.Namespace) -> int:
    sys.stdout.write(settings_markdown())
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline", description="Hotline call-center platform", allow_abbrev=False)
    p.add_argument("--config", help="TOML settings file (also HOTLINE_CONFIG)")
    p.add_argument("--data-dir", help="override data_dir")
    p.add_argument("--database-url", help="override database_url")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("serve", help="run Hotline (HTTP, realtime, FastAGI, AMI, journal)").set_defaults(func=cmd_serve)
    sub.add_parser("demo", help="one-machine demo call center: data, Asterisk node, Hotline").set_defaults(
        func=cmd_demo
    )
    db = sub.add_parser("db", help="database").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    lb = sub.add_parser("lab", help="the Asterisk lab")
    lb.add_argument("--nodes", type=int, help="number of nodes (default: setting node_count)")
    lsub = lb.add_subparsers(dest="lab_cmd", required=True)
    for name in ("provision", "start", "stop", "status", "render", "sipp"):
        lsub.add_parser(name)
    cli = lsub.add_parser("cli", help="run an Asterisk CLI command on a node")
    cli.add_argument("--node", type=int, default=1)
    cli.add_argument("command", nargs="+")
    lb.set_defaults(func=cmd_lab)

    ph = sub.add_parser("phone", help="phones (PJSIP endpoints)")
    phs = ph.add_subparsers(dest="phone_cmd", required=True)
    for name in ("add", "passwd"):
        x = phs.add_parser(name)
        x.add_argument("name")
        x.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        x.add_argument("--generate", action="store_true", help="generate and print a password")
        if name == "add":
            x.add_argument("--callerid")
    phs.add_parser("delete").add_argument("name")
    phs.add_parser("list")
    ph.set_defaults(func=cmd_phone)

    q = sub.add_parser("queue", help="queues")
    qs = q.add_subparsers(dest="queue_cmd", required=True)
    qa = qs.add_parser("add")
    qa.add_argument("name")
    qa.add_argument("--strategy", default="ringall")
    qa.add_argument("--max-wait", type=int)
    qm = qs.add_parser("member")
    qm.add_argument("queue")
    qm.add_argument("interface", help="e.g. PJSIP/2001")
    qm.add_argument("--name")
    qm.add_argument("--penalty", type=int, default=0)
    qset = qs.add_parser("set", help="change options: wrapuptime=10 overflow_type=queue overflow_value=sales ...")
    qset.add_argument("name")
    qset.add_argument("options", nargs="+", metavar="OPTION=VALUE")
    qs.add_parser("list")
    q.set_defaults(func=cmd_queue)

    r = sub.add_parser("route", help="DID routes")
    rs = r.add_subparsers(dest="route_cmd", required=True)
    ra = rs.add_parser("add")
    ra.add_argument("did")
    ra.add_argument("dest_type", choices=list(DEST_TYPES))
    ra.add_argument("dest_value", nargs="?")
    ra.add_argument("--cause", type=int)
    ra.add_argument("--message", help="prompt played before a hangup destination")
    rs.add_parser("delete").add_argument("did")
    rs.add_parser("list")
    r.set_defaults(func=cmd_route)

    ag = sub.add_parser("agent", help="agents: add, queues they serve, login/logoff/pause, status")
    ags = ag.add_subparsers(dest="agent_cmd", required=True)
    aa = ags.add_parser("add")
    aa.add_argument("number")
    aa.add_argument("name")
    aa.add_argument("--group")
    aa.add_argument("--pin", help="4-12 digits, for login from a phone (stored argon2id-hashed)")
    aa.add_argument("--phone")
    aq = ags.add_parser("queue", help="the agent serves QUEUE with a penalty (skill); --remove to stop")
    aq.add_argument("number")
    aq.add_argument("queue")
    aq.add_argument("--penalty", type=int, default=0)
    aq.add_argument("--remove", action="store_true")
    al = ags.add_parser("login", help="log the agent in on a phone (as a supervisor: no PIN)")
    al.add_argument("number")
    al.add_argument("--phone", required=True)
    for name in ("logoff", "pause", "unpause"):
        x = ags.add_parser(name)
        x.add_argument("number")
        if name != "unpause":
            x.add_argument("--reason")
    ags.add_parser("status")
    ag.set_defaults(func=cmd_agent)

    us = sub.add_parser("user", help="web and API users (roles admin, supervisor, agent)")
    uss = us.add_subparsers(dest="user_cmd", required=True)
    ua = uss.add_parser("add", help="add a user; the password is generated and printed unless --password-stdin")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=("admin", "supervisor", "agent"))
    ua.add_argument("--agent", help="the agent number an agent user acts for")
    ua.add_argument("--display-name")
    ua.add_argument("--language", default="en", choices=("en", "ru"))
    ua.add_argument("--password-stdin", action="store_true")
    up = uss.add_parser("passwd", help="set a new password (generated unless --password-stdin)")
    up.add_argument("name")
    up.add_argument("--password-stdin", action="store_true")
    uss.add_parser("delete").add_argument("name")
    ue = uss.add_parser("enable", help="enable a user (--off: disable)")
    ue.add_argument("name")
    ue.add_argument("--off", action="store_true")
    uss.add_parser("list")
    us.set_defaults(func=cmd_user)

    ak = sub.add_parser("apikey", help="API keys of other systems")
    aks = ak.add_subparsers(dest="key_cmd", required=True)
    aka = aks.add_parser("add", help="create a key (printed once)")
    aka.add_argument("name")
    aka.add_argument("--scope", action="append", required=True, help="repeat: calls:read, stats:read, ...")
    aks.add_parser("revoke").add_argument("name")
    aks.add_parser("list")
    ak.set_defaults(func=cmd_apikey)

    gr = sub.add_parser("group", help="agent groups and their limits")
    grs = gr.add_subparsers(dest="group_cmd", required=True)
    ga = grs.add_parser("add")
    ga.add_argument("name")
    ga.add_argument("--description")
    gs = grs.add_parser("set")
    gs.add_argument("name")
    gs.add_argument("--max-missed-in-row", type=int, help="auto-pause after N missed calls in a row (0 = never)")
    gs.add_argument("--allowed-call-types", help="comma list of " + ",".join(CALL_TYPES))
    gs.add_argument("--allowed-actions", help="comma list of " + ",".join(GROUP_ACTIONS))
    gs.add_argument("--daily-call-quota", type=int, help="calls per agent and day (-1 = none)")
    gs.add_argument("--daily-minute-quota", type=int, help="minutes per agent and day (-1 = none)")
    gs.add_argument("--recording", choices=list(RECORDING_POLICIES))
    gr.set_defaults(func=cmd_group)

    pr = sub.add_parser("pause-reason", help="pause reasons")
    prs = pr.add_subparsers(dest="reason_cmd", required=True)
    pra = prs.add_parser("add")
    pra.add_argument("name")
    pra.add_argument("--paid", action="store_true")
    pra.add_argument("--max-minutes", type=int, help="the pause ends by itself after this long")
    prs.add_parser("list")
    pr.set_defaults(func=cmd_pause_reason)

    iv = sub.add_parser("ivr", help="IVR menus")
    ivs = iv.add_subparsers(dest="ivr_cmd", required=True)
    ia = ivs.add_parser("add")
    ia.add_argument("name")
    ia.add_argument("--prompt", required=True, help="a sound name or an uploaded prompt")
    ia.add_argument("--timeout", type=int, default=5, help="seconds to wait for a digit")
    ia.add_argument("--attempts", type=int, default=3)
    ia.add_argument("--fail", help="TYPE:VALUE after the last failed attempt (default: hang up)")
    io = ivs.add_parser("option")
    io.add_argument("menu")
    io.add_argument("digit")
    io.add_argument("destination", help="TYPE:VALUE, e.g. queue:support, ivr:billing, redirect:sip:1@host")
    iv.set_defaults(func=cmd_ivr)

    tc = sub.add_parser("time", help="time conditions (business hours) and holidays")
    tcs = tc.add_subparsers(dest="time_cmd", required=True)
    ta = tcs.add_parser("add")
    ta.add_argument("name")
    ta.add_argument("--hours", required=True, help="e.g. 'mon-fri 09:00-18:00; sat 10:00-14:00'")
    ta.add_argument("--open", required=True, help="TYPE:VALUE while open")
    ta.add_argument("--closed", required=True, help="TYPE:VALUE while closed")
    ta.add_argument("--tz", default="UTC")
    th = tcs.add_parser("hours")
    th.add_argument("name")
    th.add_argument("--hours")
    th.add_argument("--tz")
    hd = tcs.add_parser("holiday")
    hd.add_argument("day", help="YYYY-MM-DD")
    hd.add_argument("holiday_name", nargs="?")
    hd.add_argument("--delete", action="store_true")
    tc.set_defaults(func=cmd_time)

    md = sub.add_parser("media", help="upload prompts and music on hold (WAV or MP3, converted for Asterisk)")
    mds = md.add_subparsers(dest="media_cmd", required=True)
    mp = mds.add_parser("prompt")
    mp.add_argument("name")
    mp.add_argument("file")
    mp.add_argument("--replace", action="store_true")
    mc = mds.add_parser("moh-class")
    mc.add_argument("name")
    mc.add_argument("--random", action="store_true")
    mm = mds.add_parser("moh")
    mm.add_argument("moh_class")
    mm.add_argument("name")
    mm.add_argument("file")
    mm.add_argument("--replace", action="store_true")
    mds.add_parser("list")
    md.set_defaults(func=cmd_media)

    rc = sub.add_parser("recordings", help="call recordings: state, storage key, retry")
    rcs = rc.add_subparsers(dest="rec_cmd", required=True)
    rl = rcs.add_parser("list")
    rl.add_argument("--call-id")
    rl.add_argument("--state", choices=["recording", "pending", "stored", "failed", "deleted"])
    rl.add_argument("--limit", type=int, default=50)
    rr = rcs.add_parser("retry", help="retry one recording (ID) or every failed one")
    rr.add_argument("id", type=int, nargs="?")
    rc.set_defaults(func=cmd_recordings)

    wh = sub.add_parser("webhook", help="signed HTTP callbacks for call and agent events")
    whs = wh.add_subparsers(dest="webhook_cmd", required=True)
    wa = whs.add_parser("add")
    wa.add_argument("url")
    wa.add_argument("--events", default="*", help="comma list of event names or prefixes: agent.*,call.ended")
    wa.add_argument("--secret-stdin", action="store_true", help="read the signing secret from stdin")
    whd = whs.add_parser("delete")
    whd.add_argument("id", type=int)
    whs.add_parser("list")
    wdl = whs.add_parser("deliveries")
    wdl.add_argument("id", type=int)
    wdl.add_argument("--limit", type=int, default=50)
    wh.set_defaults(func=cmd_webhook)

    cu = sub.add_parser("customer", help="customer records for caller lookup and screen pops")
    cus = cu.add_subparsers(dest="customer_cmd", required=True)
    ca = cus.add_parser("add")
    ca.add_argument("name")
    ca.add_argument("phone")
    ca.add_argument("--email")
    ca.add_argument("--external-id")
    ca.add_argument("--field", nargs="*", metavar="KEY=VALUE", help="fields shown in the screen pop")
    cus.add_parser("find").add_argument("phone")
    cu.set_defaults(func=cmd_customer)

    add_call_parser(sub)
    lm = sub.add_parser("limits", help="number classification and numbers open to every phone")
    lms = lm.add_subparsers(dest="limits_cmd", required=True)
    lc = lms.add_parser("calltype", help="numbers matching PATTERN are of CALL_TYPE")
    lc.add_argument("pattern", help="Asterisk-style (_8800X.) or a plain prefix")
    lc.add_argument("call_type", choices=list(CALL_TYPES))
    lc.add_argument("--position", type=int, default=100, help="lower positions are tried first")
    ls = lms.add_parser("service", help="a help or emergency number any phone may dial")
    ls.add_argument("number")
    ls.add_argument("kind", choices=["help", "emergency"])
    ls.add_argument("destination", help="TYPE:VALUE, e.g. external:112 or queue:helpdesk")
    ls.add_argument("--description")
    lm.set_defaults(func=cmd_limits)

    c = sub.add_parser("calls", help="recent calls, or one call's full trace")
    c.add_argument("call_id", nargs="?")
    c.add_argument("--limit", type=int, default=30)
    c.set_defaults(func=cmd_calls)

    sub.add_parser("settings-doc", help="print docs/settings.md").set_defaults(func=cmd_settings_doc)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else os.environ.get("HOTLINE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter is not news
    try:
        return int(args.func(args))
    except (ConfigError, ValidationError, NotFoundError, ConflictError, PermissionDeniedError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"hotline: lab: {exc}", file=sys.stderr)
        return 1
    except HotlineError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
