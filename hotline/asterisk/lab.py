"""The Asterisk lab: provision an Asterisk 22 root, run 1..N nodes on loopback, report their status.

Debian 12 has no Asterisk package, Debian sid has Asterisk 22 LTS; installing sid packages into the host
would replace its C library.  So (lab.md) the lab builds a separate sid root with debootstrap, cached
outside the clone (settings.asterisk_root), and runs each node in it with chroot, which shares the host's
network: every node's SIP/AMI ports are plain loopback ports.  With `asterisk_mode = "system"` an Asterisk
the user installed is run directly instead.

Each node gets a private configuration directory rendered by `config_render` (asterisk.conf with its own
directories, started with `asterisk -C <abs path> -f`), so nodes run side by side on 127.0.0.11,
127.0.0.12, ...  Everything here is idempotent: provisioning is skipped when the root is ready, starting a
running node is a no-op, stopping a stopped node too.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hotline.asterisk.config_render import NodeSpec, render_node
from hotline.errors import LabError
from hotline.settings import Settings

log = logging.getLogger(__name__)

PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm")
READY_MARKER = ".hotline-ready"
# Node processes started by this process, kept so they are reaped (no zombies, no ResourceWarning).
_children: dict[int, subprocess.Popen[bytes]] = {}
# Inside the chroot the node folders live here; kept short because the CLI socket path is cut at 107 bytes.
CHROOT_NODES = "/hl"


def debian_mirror(settings: Settings) -> str:
    """The mirror to debootstrap from: the setting, else the host's first apt `URIs:` line."""
    if settings.debian_mirror:
        return settings.debian_mirror
    for src in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if not src.exists():
            continue
        for line in src.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                return line.split()[1]
            if line.startswith("deb ") and "security" not in line:
                parts = [p for p in line.split() if not p.startswith("[")]
                return parts[1]
    raise LabError("no Debian mirror: set debian_mirror or configure apt sources")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], *, timeout: float = 1800) -> None:
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(cmd[:3])}... did not finish in {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise LabError(f"{' '.join(cmd[:3])}... failed ({proc.returncode}):\n" + "\n".join(tail))


def apt_install(*packages: str) -> None:
    """Install Debian packages on the host if any is missing (idempotent)."""
    missing = []
    for pkg in packages:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False)
        if "install ok installed" not in q.stdout:
            missing.append(pkg)
    if not missing:
        return
    if os.geteuid() != 0:
        raise LabError(f"Debian packages {', '.join(missing)} are missing and installing them needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.info("installing %s", " ".join(missing))
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise LabError(f"apt-get install {' '.join(missing)} failed: {proc.stderr.strip()[-800:]}")


def root_ready(settings: Settings) -> bool:
    if settings.asterisk_mode == "system":
        return Path(settings.asterisk_binary).exists()
    return (Path(settings.asterisk_root) / READY_MARKER).exists()


def provision(settings: Settings) -> Path:
    """Make sure Asterisk 22 is available; return the root ('/' in system mode)."""
    if settings.asterisk_mode == "system":
        if not Path(settings.asterisk_binary).exists():
            raise LabError(f"asterisk_mode=system but {settings.asterisk_binary} does not exist")
        return Path("/")
    root = Path(settings.asterisk_root)
    with _lock(root.parent / (root.name + ".lock")):
        if (root / READY_MARKER).exists():
            return root
        if os.geteuid() != 0:
            raise LabError("building the Asterisk root needs root (debootstrap and chroot)")
        apt_install("debootstrap")
        partial = root.parent / (root.name + ".partial")
        if partial.exists() and not (partial / "usr/sbin/asterisk").exists():
            shutil.rmtree(partial)
        if not (partial / "usr/sbin/asterisk").exists():
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(PACKAGES),
                    "sid",
                    str(partial),
                    debian_mirror(settings),
                ]
            )
        _post_process(partial)
        version = asterisk_version_in(partial)
        if not version.startswith("Asterisk 22"):
            raise LabError(f"the root holds {version!r}, not Asterisk 22")
        (partial / READY_MARKER).write_text(version + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        partial.rename(root)
        log.info("Asterisk root ready at %s (%s)", root, version)
        return root


def _post_process(root: Path) -> None:
    # lab.md: the packaged files belong to the root's `asterisk` user, whose uid is someone else on the
    # host; Asterisk runs as root here and must own them.
    for sub in ("etc/asterisk", "var/lib/asterisk", "var/log/asterisk", "var/spool/asterisk"):
        p = root / sub
        if p.exists():
            _run(["chown", "-R", "root:root", str(p)])
    (root / "var/run/asterisk").mkdir(parents=True, exist_ok=True)
    (root / CHROOT_NODES.lstrip("/")).mkdir(parents=True, exist_ok=True)


def asterisk_version_in(root: Path) -> str:
    cmd = ["chroot", str(root), "/usr/sbin/asterisk", "-V"] if root != Path("/") else ["asterisk", "-V"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    return proc.stdout.strip()


# ---------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class LabNode:
    """Where one node's files live, seen from the host and from Asterisk (inside the chroot)."""

    spec: NodeSpec
    host_dir: Path  # the node folder as the host sees it
    ast_dir: str  # the same folder as Asterisk sees it (inside the chroot)
    root: Path  # the chroot ('/' in system mode)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def conf(self) -> str:
        return f"{self.ast_dir}/etc/asterisk.conf"

    @property
    def pidfile(self) -> Path:
        return self.host_dir / "hotline-node.pid"

    @property
    def console_log(self) -> Path:
        return self.host_dir / "log" / "console.log"

    def _cmd(self, *args: str) -> list[str]:
        binary = "/usr/sbin/asterisk"
        if self.root == Path("/"):
            return [binary, "-C", self.conf, *args]
        return ["chroot", str(self.root), binary, "-C", self.conf, *args]

    def cli(self, command: str, *, timeout: float = 15) -> str:
        """Run one CLI command on the running node (asterisk -rx)."""
        try:
            proc = subprocess.run(
                self._cmd("-rx", command), capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"node {self.name}: CLI {command!r} timed out") from exc
        if proc.returncode != 0:
            raise LabError(f"node {self.name}: CLI {command!r} failed: {proc.stderr.strip() or proc.stdout}")
        return proc.stdout

    def pid(self) -> int | None:
        """The running node's pid, or None. A pid from the file counts only if that process is this
        node's Asterisk (after a reboot the number may belong to anything)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None
        if self.conf.encode() not in cmdline:
            return None
        return pid


def node_specs(settings: Settings, count: int | None = None) -> list[NodeSpec]:
    n = count or settings.node_count
    base = ipaddress.IPv4Address(settings.node_address_base)
    return [
        NodeSpec(
            name=f"node{i + 1}",
            address=str(base + i),
            sip_port=settings.sip_port,
            ami_port=settings.ami_port,
            rtp_start=settings.rtp_port_start + 1000 * i,
            rtp_end=settings.rtp_port_start + 1000 * i + 999,
        )
        for i in range(n)
    ]


def lab_node(settings: Settings, spec: NodeSpec) -> LabNode:
    if settings.asterisk_mode == "system":
        host_dir = Path(settings.data_dir) / "nodes" / settings.lab_instance / spec.name
        return LabNode(spec, host_dir, str(host_dir.resolve()), Path("/"))
    root = Path(settings.asterisk_root)
    rel = f"{CHROOT_NODES}/{settings.lab_instance}/{spec.name}"
    return LabNode(spec, root / rel.lstrip("/"), rel, root)


def write_node_config(settings: Settings, node: LabNode) -> None:
    """Render the node's private configuration into its folder (atomically per file)."""
    files = render_node(settings, node.spec, node.ast_dir)
    for sub in ("etc", "run", "log", "spool", "lib", "monitor"):
        (node.host_dir / sub).mkdir(parents=True, exist_ok=True)
    # manager.conf holds the AMI secret, res_curl.conf the realtime token: only the owner may read them
    os.chmod(node.host_dir / "etc", 0o700)
    for name, text in files.items():
        target = node.host_dir / "etc" / name
        tmp = target.with_name(name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)


def start_node(settings: Settings, node: LabNode, *, boot_timeout: float = 60) -> int:
    """Start the node if it is not running; wait until it is fully booted; return its pid."""
    provision(settings)
    pid = node.pid()
    if pid is not None:
        return pid
    write_node_config(settings, node)
    sock = node.host_dir / "run" / "asterisk.ctl"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    node.console_log.parent.mkdir(parents=True, exist_ok=True)
    with open(node.console_log, "ab") as out:
        proc = subprocess.Popen(
            node._cmd("-f", "-n"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    node.pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + boot_timeout
    while True:
        if proc.poll() is not None:
            raise LabError(
                f"node {node.name} exited with {proc.returncode} while starting; see {node.console_log}:\n"
                + _tail(node.console_log)
            )
        if sock.exists():
            try:
                out_text = node.cli("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
            except LabError:
                out_text = ""
            if "fully booted" in out_text.lower():
                return proc.pid
        if time.monotonic() > deadline:
            stop_node(node)
            raise LabError(f"node {node.name} did not boot in {boot_timeout:.0f} s; see {node.console_log}")
        time.sleep(0.1)  # polling a child process for readiness; there is no event to wait on


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def stop_node(node: LabNode, *, timeout: float = 20) -> bool:
    """Stop the node (core stop now, then SIGTERM, then SIGKILL). True if it was running."""
    pid = node.pid()
    if pid is None:
        node.pidfile.unlink(missing_ok=True)
        return False
    with contextlib.suppress(LabError):
        node.cli("core stop now", timeout=5)
    deadline = time.monotonic() + timeout
    sent_term = False
    while _alive(pid):
        if time.monotonic() > deadline - timeout / 2 and not sent_term:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            sent_term = True
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    node.pidfile.unlink(missing_ok=True)
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)
    return True


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie that is not our child still answers kill(0); look at its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    address: str
    running: bool
    pid: int | None
    detail: str


def node_status(node: LabNode) -> NodeStatus:
    pid = node.pid()
    detail = ""
    if pid is not None:
        try:
            detail = node.cli("core show calls", timeout=5).strip().replace("\n", "; ")
        except LabError as exc:
            detail = str(exc)
    return NodeStatus(node.name, node.spec.address, pid is not None, pid, detail)


def install_sipp() -> str:
    apt_install("sip-tester")
    return shutil.which("sipp") or "/usr/bin/sipp"
