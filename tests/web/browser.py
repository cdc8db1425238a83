"""Plumbing for the browser tests: Debian's Chromium driven by Playwright's async API.

- The browser is `/usr/bin/chromium` from Debian (installed by `scripts/ensure-browser`); Playwright never
  downloads browsers of its own here.
- Every wait is bounded: contexts get a default timeout (`DEFAULT_TIMEOUT_MS`) for actions, navigations and
  `expect` assertions, so a missing element fails the test instead of hanging it.
- Console errors and uncaught page errors are problems: `ProblemLog` collects them and the fixtures fail the
  test unless it declared them expected (`browser_problems.expect(regex)`).
- A failing test leaves a screenshot and the page's HTML under `artifacts_dir()`.

Debugging switches (environment):
    HOTLINE_BROWSER_HEADED=1        show the window (needs a display, e.g. `xvfb-run` or a desktop session)
    HOTLINE_BROWSER_SLOWMO_MS=250   pause this many milliseconds after every browser action
    HOTLINE_BROWSER_ARTIFACTS=DIR   where failure screenshots go (default /tmp/hotline-browser)
    HOTLINE_BROWSER_NO_SANDBOX=1    no Chromium sandbox for an ordinary user too (a container without user
                                    namespaces); root never gets one, Chromium refuses it

This module imports Playwright only for type checking, so test folders that do not drive a browser still
collect on a machine without it.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, ConsoleMessage, Page, WebError

CHROMIUM = Path("/usr/bin/chromium")
DEFAULT_TIMEOUT_MS = 10_000
LAUNCH_TIMEOUT_MS = 30_000
HEADED_ENV = "HOTLINE_BROWSER_HEADED"
SLOWMO_ENV = "HOTLINE_BROWSER_SLOWMO_MS"
ARTIFACTS_ENV = "HOTLINE_BROWSER_ARTIFACTS"
NO_SANDBOX_ENV = "HOTLINE_BROWSER_NO_SANDBOX"
ARTIFACTS_DEFAULT = Path("/tmp/hotline-browser")
INSTALL_HINT = "run `scripts/ensure-browser` (as root) from the repository root"
# Chromium asks every origin for /favicon.ico on its own, at a moment that varies from run to run: counting
# that 404 as a page problem would make tests flaky.  A page's declared icon is a page resource and counts.
_IGNORED = (re.compile(r"^console error: Failed to load resource: .*\(\S+/favicon\.ico:\d+\)$"),)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def launch_options(environ: Mapping[str, str] | None = None, *, euid: int | None = None) -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch()`.

    Chromium refuses to start its sandbox as root, so the sandbox is switched off (`--no-sandbox`) only when
    we run as root; an ordinary user keeps it.  Playwright itself adds `--no-sandbox` unless
    `chromium_sandbox=True`, hence the explicit value either way.
    """
    env = os.environ if environ is None else environ
    uid = os.geteuid() if euid is None else euid
    options: dict[str, Any] = {
        "executable_path": str(CHROMIUM),
        "headless": not _flag(env, HEADED_ENV),
        "chromium_sandbox": uid != 0 and not _flag(env, NO_SANDBOX_ENV),
        "timeout": LAUNCH_TIMEOUT_MS,
    }
    slow_mo = env.get(SLOWMO_ENV, "").strip()
    if slow_mo:
        try:
            options["slow_mo"] = float(slow_mo)
        except ValueError:
            raise ValueError(f"{SLOWMO_ENV} must be a number of milliseconds (got {slow_mo!r})") from None
    return options


def artifacts_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(ARTIFACTS_ENV) or ARTIFACTS_DEFAULT)


def artifact_stem(nodeid: str) -> str:
    """A file name from a pytest node id: `tests/web/test_x.py::test_y[a]` -> `test_x.py--test_y-a`."""
    name = nodeid.rsplit("/", 1)[-1].replace("::", "--")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:150] or "test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ProblemLog:
    """Console errors and uncaught exceptions of every page in a browser context.

    A test that provokes an error on purpose declares it first: `browser_problems.expect(r"HTTP 404")`.
    Problems matching an expected pattern are kept (the test may assert on them) but do not fail the test.
    """

    problems: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)
    reported: int = 0

    def expect(self, pattern: str) -> None:
        """Allow problems whose text matches `pattern` (a regular expression, searched anywhere)."""
        self.expected.append(re.compile(pattern))

    def attach(self, context: BrowserContext) -> None:
        context.on("console", self._on_console)
        context.on("weberror", self._on_weberror)

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(rx.search(p) for rx in self.expected)]

    def take_unreported(self) -> list[str]:
        """Unexpected problems not yet reported by an earlier call (the call phase, then the teardown)."""
        bad = self.unexpected()
        new, self.reported = bad[self.reported :], len(bad)
        return new

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            loc = msg.location
            where = f" ({loc.get('url')}:{loc.get('lineNumber')})" if loc and loc.get("url") else ""
            text = f"console error: {msg.text}{where}"
            if not any(rx.search(text) for rx in _IGNORED):
                self.problems.append(text)

    def _on_weberror(self, err: WebError) -> None:
        page = err.page.url if err.page is not None else "?"
        self.problems.append(f"uncaught page error on {page}: {err.error.message}")


def describe_problems(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return (
        f"the browser reported {len(problems)} unexpected problem(s):\n{lines}\n"
        "(declare an intended one with browser_problems.expect(regex))"
    )


def remove_stale_artifacts(stem: str, directory: Path) -> None:
    """Forget the artifacts of this test's previous run, so the folder only shows the latest failures."""
    if directory.is_dir():
        for path in directory.iterdir():
            if path.suffix in (".png", ".html") and re.fullmatch(re.escape(stem) + r"(-\d+)?", path.stem):
                path.unlink(missing_ok=True)


def _write_artifacts(directory: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name, _ in files]
    for path, (_, data) in zip(paths, files, strict=True):
        path.write_bytes(data)
    return paths


async def save_failure_artifacts(pages: list[Page], stem: str, directory: Path) -> list[Path]:
    """Screenshot (full page) and HTML of each open page; best effort, a dead page is skipped."""
    from playwright.async_api import Error as PlaywrightError

    files: list[tuple[str, bytes]] = []
    for i, page in enumerate(pages):
        if page.is_closed():
            continue
        base = stem if i == 0 else f"{stem}-{i}"
        try:
            png = await page.screenshot(full_page=True, timeout=5_000)
            html = await page.content()
        except PlaywrightError:
            continue
        files += [(f"{base}.png", png), (f"{base}.html", html.encode())]
    return await asyncio.to_thread(_write_artifacts, directory, files)
