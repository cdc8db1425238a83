"""Helpers for end-to-end tests: a Hotline process, a lab Asterisk node, SIPp runs.

Everything here drives real parts: `hotline serve` runs as its own process (so tests can kill it or
freeze it with SIGSTOP), the node is a real Asterisk 22 from the lab root, phones and carriers are SIPp.
Waiting is always "poll a real condition until a deadline", never a bare sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

SIPP_DIR = Path(__file__).parent / "sipp"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns a truthy value; fail the test with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the condition may not be checkable yet (process starting)
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_exc!r})")
        time.sleep(interval)


@dataclass
class HotlineProcess:
    config_file: Path
    http_port: int
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline", "--config", str(self.config_file), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        wait_for(self.health, 30, "Hotline's /health")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=2) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def wait_nodes_connected(self, timeout: float = 30) -> None:
        wait_for(
            lambda: all(n["connected"] for n in self.health()["nodes"]) and self.health()["nodes"],
            timeout,
            "AMI connected to every node",
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)
        self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")


@dataclass
class SippResult:
    returncode: int
    messages: str
    errors: str
    stdout: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Sipp:
    """One SIPp run (one call by default). Each run binds its own address:port (lab.md trap)."""

    def __init__(
        self,
        workdir: Path,
        scenario: str,
        target: str,
        *,
        local_ip: str,
        port: int,
        keys: dict[str, str] | None = None,
        service: str | None = None,
        duration_ms: int = 1000,
        calls: int = 1,
        timeout_s: int = 30,
        uas: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.name = f"{scenario.removesuffix('.xml')}-{local_ip}-{port}-{time.monotonic_ns()}"
        self.msg_file = workdir / f"{self.name}.msg"
        self.err_file = workdir / f"{self.name}.err"
        cmd = [
            "sipp",
            "-sf",
            str(SIPP_DIR / scenario),
            "-i",
            local_ip,
            "-p",
            str(port),
            "-m",
            str(calls),
            "-d",
            str(duration_ms),
            "-timeout",
            f"{timeout_s}s",
            "-timeout_error",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.msg_file),
            "-trace_err",
            "-error_file",
            str(self.err_file),
            "-mi",
            local_ip,
            "-mp",
            str(port + 2000),
            "-recv_timeout",
            str(timeout_s * 1000),
        ]
        if service:
            cmd += ["-s", service]
        cmd += list(extra_args)
        for k, v in (keys or {}).items():
            cmd += ["-key", k, v]
        if not uas:
            cmd.append(target)
        self.cmd = cmd
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Sipp:
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        return self

    def wait(self) -> SippResult:
        assert self.proc is not None
        if self.proc.stdout is None or self.proc.stdout.closed:
            raise AssertionError(f"SIPp {self.name} was already waited for")
        try:
            out, _ = self.proc.communicate(timeout=self.timeout_s + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError(f"SIPp {self.name} hung: {out[-2000:]}") from None
        read = lambda p: p.read_text(errors="replace") if p.exists() else ""  # noqa: E731
        return SippResult(self.proc.returncode, read(self.msg_file), read(self.err_file), out)

    def run(self) -> SippResult:
        return self.start().wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def listening(self) -> bool:
        """True once SIPp has bound its UDP port (so a call to it will be received)."""
        port = self.cmd[self.cmd.index("-p") + 1]
        ip = self.cmd[self.cmd.index("-i") + 1]
        out = subprocess.run(["ss", "-Hlun", f"src {ip}:{port}"], capture_output=True, text=True, check=False).stdout
        return bool(out.strip())
