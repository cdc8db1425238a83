"""The `hotline` command.

Every subcommand loads the settings (defaults < --config file < HOTLINE_* environment < flags), does one
thing and exits 0, or prints one clear error line and exits 2 (bad input or configuration) or 1 (a
failure of the system).  Never a traceback for a HotlineError.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from hotline.errors import ConfigError, HotlineError, LabError, NotFoundError, ValidationError
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
            lambda h: print(f"Hotline running: http://{settings.http_host}:{settings.http_port}/health", flush=True),
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
    elif args.queue_cmd == "list":
        snap = repo.load_snapshot()
        for q in snap.queues:
            members = ", ".join(m.interface for m in snap.members_by_queue.get(q.name, ()))
            print(f"{q.name}\t{q.strategy}\t{members}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    repo = _config_repo(_settings(args))
    if args.route_cmd == "add":
        repo.add_route(args.did, args.dest_type, args.dest_value or "", hangup_cause=args.cause)
        print(f"DID {args.did} -> {args.dest_type} {args.dest_value or ''}")
    elif args.route_cmd == "delete":
        repo.delete_route(args.did)
        print(f"route {args.did} deleted")
    elif args.route_cmd == "list":
        for r in repo.load_snapshot().did_routes:
            print(f"{r.did}\t{r.dest_type}\t{r.dest_value}")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    repo = _config_repo(_settings(args))
    a = repo.add_agent(args.number, args.name, group=args.group, pin=args.pin, phone=args.phone)
    print(f"agent {a.number} ({a.name}) added")
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


def seed_demo(settings: Settings) -> list[tuple[str, str]]:
    """Idempotent demo data: 3 phones, 2 agents, a queue with two members, DID 5000 -> queue support.

    Phone passwords are random; they are kept (mode 0600) in <data_dir>/demo-credentials.txt so the
    demo can print them again; the database holds only digests.
    """
    repo = _config_repo(settings)
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
            creds[name] = pw
    if "sales" not in {g.name for g in snap.agent_groups}:
        repo.add_agent_group("sales", "Demo group")
    if "1001" not in snap.agent_by_number:
        repo.add_agent("1001", "Alice Demo", group="sales", phone="2001")
    if "1002" not in snap.agent_by_number:
        repo.add_agent("1002", "Boris Demo", group="sales", phone="2002")
    if "support" not in snap.queue_by_name:
        repo.add_queue("support", strategy="rrmemory", timeout=15)
        repo.add_queue_member("support", "PJSIP/2001", membername="1001")
        repo.add_queue_member("support", "PJSIP/2002", membername="1002")
    if "5000" not in snap.route_by_did:
        repo.add_route("5000", "queue", "support", description="Demo support line")
    if "5001" not in snap.route_by_did:
        repo.add_route("5001", "phone", "2003", description="Demo direct line")
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
        print(f"web:        http://{settings.http_host}:{settings.http_port}/health")
        print(f"Asterisk:   {len(nodes)} node(s); SIP on {node.address}:{node.sip_port} (realm {settings.sip_realm})")
        for name, pw in creds:
            print(f"phone {name}: user {name} password {pw}")
        print("DID 5000 -> queue 'support' (phones 2001, 2002); DID 5001 -> phone 2003")
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
    p = argparse.ArgumentParser(prog="hotline", description="Hotline call-center platform")
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
    qs.add_parser("list")
    q.set_defaults(func=cmd_queue)

    r = sub.add_parser("route", help="DID routes")
    rs = r.add_subparsers(dest="route_cmd", required=True)
    ra = rs.add_parser("add")
    ra.add_argument("did")
    ra.add_argument("dest_type", choices=["queue", "agent", "phone", "external", "hangup"])
    ra.add_argument("dest_value", nargs="?")
    ra.add_argument("--cause", type=int)
    rs.add_parser("delete").add_argument("did")
    rs.add_parser("list")
    r.set_defaults(func=cmd_route)

    ag = sub.add_parser("agent", help="add an agent")
    ag.add_argument("number")
    ag.add_argument("name")
    ag.add_argument("--group")
    ag.add_argument("--pin")
    ag.add_argument("--phone")
    ag.set_defaults(func=cmd_agent)

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
    except (ConfigError, ValidationError, NotFoundError) as exc:
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
