"""FastAGI wire codec, without I/O: a sans-I/O state machine for one AGI connection.

Responsibility: read what Asterisk sends on a FastAGI connection (the `agi_*` environment block, command
replies, the unsolicited `HANGUP` line) as typed events, and encode commands to send.  The caller owns
the socket, the timeouts and what the call should do (asterisk-reference.md §2, `res/res_agi.c`).

Protocol, as Asterisk speaks it:
- On connect Asterisk sends `agi_<name>: <value>` lines ended by an empty line, then waits.
- The server sends one command line at a time (`\\n`-terminated); Asterisk answers `200 result=...`,
  possibly after an interim `100 result=0 Trying...`, or `510`/`511`, or a multi-line `520-` usage block
  closed by a `520 ` line.
- `HANGUP` arrives unsolicited whenever the channel hangs up, also between a command and its reply;
  the real reply still follows.

Invariants:
- The state machine is the table `_TRANSITIONS`; anything else raises `AGIProtocolError` naming the state.
- Memory is bounded: no line may exceed `max_line` bytes (checked before its newline arrives), the
  environment holds at most `max_env_vars` lines, a usage block at most `max_usage_lines`.
- Events are the same however the bytes are split between `receive_data` calls.
- Bad input raises `AGIProtocolError` and nothing else; after that the connection is unusable.
- Received bytes are decoded as UTF-8 with replacement; sent commands never contain CR, LF or NUL.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NoReturn
from urllib.parse import unquote

from hotline.errors import AGIProtocolError

__all__ = [
    "CONNECTION_CLOSED",
    "NEED_DATA",
    "AGIConnection",
    "AGIEnvironment",
    "AGIEvent",
    "AGIReply",
    "AGIState",
    "ConnectionClosed",
    "HangupNotice",
    "NeedData",
    "parse_reply_line",
]

# res_agi.c parse_args: at most MAX_ARGS - 1 = 127 words, the rest is dropped with a warning.
MAX_WORDS = 127


@dataclass(frozen=True)
class AGIEnvironment:
    """The `agi_*` block Asterisk sends first.  Keys have no `agi_` prefix ("channel", "arg_1")."""

    variables: Mapping[str, str]

    def _var(self, name: str) -> str:
        return self.variables.get(name, "")

    @property
    def request(self) -> str:
        return self._var("request")

    @property
    def network_script(self) -> str:
        return self._var("network_script")

    @property
    def channel(self) -> str:
        return self._var("channel")

    @property
    def uniqueid(self) -> str:
        return self._var("uniqueid")

    @property
    def callerid(self) -> str:
        return self._var("callerid")

    @property
    def calleridname(self) -> str:
        return self._var("calleridname")

    @property
    def dnid(self) -> str:
        return self._var("dnid")

    @property
    def extension(self) -> str:
        return self._var("extension")

    @property
    def context(self) -> str:
        return self._var("context")

    @property
    def language(self) -> str:
        return self._var("language")

    @property
    def type(self) -> str:
        return self._var("type")

    @property
    def args(self) -> tuple[str, ...]:
        """`agi_arg_1` .. `agi_arg_N`: the extra arguments of AGI(), in order."""
        out: list[str] = []
        variables = self.variables
        while (value := variables.get(f"arg_{len(out) + 1}")) is not None:
            out.append(value)
        return tuple(out)

    @property
    def script(self) -> str:
        """The script path of `agi://host/<script>?<query>` (network_script before `?`)."""
        return self.network_script.partition("?")[0]

    @property
    def query(self) -> dict[str, str]:
        """The `?a=1&b=2` part of the AGI URL, %-decoded (`+` stays `+`); the first of a repeated key wins."""
        out: dict[str, str] = {}
        for part in self.network_script.partition("?")[2].split("&"):
            if part:
                key, _, value = part.partition("=")
                out.setdefault(unquote(key), unquote(value))
        return out


@dataclass(frozen=True)
class AGIReply:
    """A final reply to a command.  `raw` is the reply line (the whole block for a 520 usage reply)."""

    code: int
    result: str | None
    data: str | None
    endpos: int | None
    raw: str
    usage: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclass(frozen=True)
class HangupNotice:
    """Asterisk's unsolicited `HANGUP` line: the channel hung up (a pending reply still follows)."""


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed the connection (`receive_data(b"")`) and every buffered event was read."""


class NeedData:
    """Sentinel type of `NEED_DATA`: no complete event is buffered yet."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
HANGUP: Final = HangupNotice()
CONNECTION_CLOSED: Final = ConnectionClosed()

AGIEvent = AGIEnvironment | AGIReply | HangupNotice | ConnectionClosed | NeedData


class AGIState(enum.Enum):
    ENV = "waiting for the environment"
    IDLE = "idle"
    AWAIT_REPLY = "waiting for a reply"
    CLOSED = "closed"

    # Members compare by identity; the C hash avoids Enum's Python-level __hash__ on the hot path.
    __hash__ = object.__hash__


class _Input(enum.Enum):
    ENVIRONMENT = "the environment"
    COMMAND = "a command"
    REPLY = "a reply"
    HANGUP = "a HANGUP notice"
    EOF = "the end of the stream"

    __hash__ = object.__hash__


_TRANSITIONS: Final[dict[tuple[AGIState, _Input], AGIState]] = {
    (AGIState.ENV, _Input.ENVIRONMENT): AGIState.IDLE,
    (AGIState.IDLE, _Input.COMMAND): AGIState.AWAIT_REPLY,
    (AGIState.AWAIT_REPLY, _Input.REPLY): AGIState.IDLE,
    (AGIState.IDLE, _Input.HANGUP): AGIState.IDLE,
    (AGIState.AWAIT_REPLY, _Input.HANGUP): AGIState.AWAIT_REPLY,
    (AGIState.ENV, _Input.EOF): AGIState.CLOSED,
    (AGIState.IDLE, _Input.EOF): AGIState.CLOSED,
    (AGIState.AWAIT_REPLY, _Input.EOF): AGIState.CLOSED,
    (AGIState.CLOSED, _Input.EOF): AGIState.CLOSED,
}

_ENV_LINE = re.compile(r"^agi_([A-Za-z0-9_.-]+): (.*)$", re.MULTILINE)
_COMMAND = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_FORBIDDEN = re.compile(r"[\r\n\x00]")


_UNSAFE_ARGS = re.compile(r"[\r\n\x00\\]")


@functools.lru_cache(maxsize=256)
def _command_words(command: str) -> int:
    """Words in a valid command name, 0 for an invalid one.  Names are few and repeat on every call:
    each is validated once."""
    return command.count(" ") + 1 if _COMMAND.fullmatch(command) is not None else 0


_ENDPOS = re.compile(r"endpos=(-?\d+)(?= |\Z)")
# "(data) endpos=N": the data runs to the last ") endpos=N" that ends the line, or that is followed by
# SPEECH RECOGNIZE's " results=..." (res_agi.c handle_speechrecognize).
_DATA_ENDPOS = re.compile(r"(.*)\) endpos=(-?\d+)(?: results=.*)?\Z", re.DOTALL)


# The replies to nearly every command (SET VARIABLE, an unset GET VARIABLE, ANSWER...), parsed once:
# `AGIConnection.receive_reply` returns these shared frozen objects for a matching segment.
_COMMON_REPLIES: Final[Mapping[bytes, AGIReply]] = MappingProxyType(
    {
        f"200 result={result}{end}".encode(): AGIReply(200, result, None, None, f"200 result={result}")
        for result in ("-1", "0", "1")
        for end in ("\n", "\r\n")
    }
)


def parse_reply_line(line: str) -> AGIReply:
    """Parse one single-line reply (`200 result=1 (value) endpos=0`, `510 ...`, `100 ...`).

    Raises `AGIProtocolError` for a line that is not a reply.  A `520-` block start is refused: it
    spans several lines and is assembled by `AGIConnection`.
    """
    head = line[:3]
    if len(head) != 3 or not head.isascii() or not head.isdigit() or line[3:4] not in ("", " "):
        raise AGIProtocolError(f"unparseable AGI reply line: {line[:80]!r}")
    code = int(head)
    rest = line[4:]
    if not rest.startswith("result="):
        if code == 200:
            raise AGIProtocolError(f"AGI 200 reply without result=: {line[:80]!r}")
        return AGIReply(code, None, None, None, line)
    tail = rest[7:]
    space = tail.find(" ")
    if space < 0:
        return AGIReply(code, tail, None, None, line)
    result, after = tail[:space], tail[space + 1 :]
    data: str | None = None
    endpos: int | None = None
    if after.startswith("("):
        inner = after[1:]
        match = _DATA_ENDPOS.match(inner) if ") endpos=" in inner else None
        if match is not None:
            data, endpos = match.group(1), int(match.group(2))
        elif inner.endswith(")"):
            data = inner[:-1]
        else:
            # "(hangup) trailing text": the data runs to the last ')'.
            close = inner.rfind(")")
            if close < 0:
                raise AGIProtocolError(f"AGI reply with an unclosed '(': {line[:80]!r}")
            data = inner[:close]
    elif after.startswith("endpos="):
        match = _ENDPOS.match(after)
        if match is None:
            raise AGIProtocolError(f"AGI reply with a malformed endpos: {line[:80]!r}")
        endpos = int(match.group(1))
    # Anything else after the result is free text ("Trying...", "Gosub complete"), kept in raw.
    return AGIReply(code, result, data, endpos, line)


class AGIConnection:
    """One FastAGI connection, seen from the server side.

    `receive_data(bytes)` adds bytes (b"" = the peer closed); `next_event()` returns the next
    `AGIEnvironment`, `AGIReply`, `HangupNotice` or `ConnectionClosed`, or `NEED_DATA`.
    `send_command(command, *args)` returns the bytes to write for one command.
    """

    __slots__ = (
        "_buf",
        "_counted",
        "_env_lines",
        "_eof",
        "_error",
        "_max_env_vars",
        "_max_line",
        "_max_usage_lines",
        "_scanned",
        "_usage",
        "state",
    )

    def __init__(self, *, max_line: int = 8192, max_env_vars: int = 512, max_usage_lines: int = 256) -> None:
        if min(max_line, max_env_vars, max_usage_lines) < 1:
            raise ValueError("AGIConnection limits must be positive")
        self._max_line = max_line
        self._max_env_vars = max_env_vars
        self._max_usage_lines = max_usage_lines
        self.state = AGIState.ENV
        self._buf = bytearray()
        self._scanned = 0  # no newline (ENV: no block terminator) starts before this offset
        self._counted = 0  # ENV: bytes whose newlines are counted in _env_lines
        self._env_lines = 0
        self._usage: list[str] | None = None  # lines of a 520 block being read
        self._eof = False
        self._error: AGIProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events (bounded by the limits)."""
        return len(self._buf)

    def _transition(self, event: _Input) -> None:
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            raise AGIProtocolError(f"AGI: {event.value} is not allowed while {self.state.value}")
        self.state = new

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the socket; `b""` means the peer closed the connection."""
        if self._error is not None:
            raise AGIProtocolError(f"AGI connection unusable after an earlier error: {self._error}")
        if self._eof:
            if data:
                self._fail(AGIProtocolError("AGI data received after the end of the stream"))
            return
        if not data:
            self._eof = True
            return
        buf = self._buf
        buf += data
        # Bound memory even if the caller does not drain events: the unfinished last line may not
        # outgrow max_line (next_event applies the same rule, so the outcome does not depend on timing).
        size = len(buf)
        if size > self._max_line and size - buf.rfind(b"\n", size - self._max_line - 1) - 1 > self._max_line:
            self._fail(AGIProtocolError(f"AGI line longer than {self._max_line} bytes"))

    def next_event(self) -> AGIEvent:
        if self._error is not None:
            raise AGIProtocolError(f"AGI connection unusable after an earlier error: {self._error}")
        try:
            return self._next_event()
        except AGIProtocolError as exc:
            self._fail(exc)

    def _fail(self, exc: AGIProtocolError) -> NoReturn:
        self._error = exc
        self.state = AGIState.CLOSED
        self._buf = bytearray()
        raise exc

    def send_command(self, command: str, *args: str) -> bytes:
        """Bytes of one command line; every argument is quoted so Asterisk reads it as one word.

        Asterisk's parse_args splits on spaces and tabs, groups `"..."` and lets `\\` escape the next
        character, so wrapping each argument in quotes and escaping `"` and `\\` is always safe.
        """
        # Fast path, the usual case: a valid command name (validated once, then cached) and arguments that
        # need no escaping, checked with a few C calls over the joined arguments.  Anything else, every
        # error included, takes `_encode_checked`, which finds the precise reason.
        if (
            self.state is AGIState.IDLE
            and command.__class__ is str
            and 0 < _command_words(command) <= MAX_WORDS - len(args)
        ):
            try:
                joined = '" "'.join(args)
                line = (f'{command} "{joined}"\n' if args else f"{command}\n").encode()
            except (TypeError, UnicodeEncodeError):
                pass  # an argument that is not a str, or not encodable
            else:
                # res_agi reads a command with fgets() into a buffer of AGI_BUF_LEN bytes (8192 since
                # 22.6, 2048 before): the line and its newline must fit with the terminating NUL.
                if len(line) < self._max_line and (
                    not args or (_UNSAFE_ARGS.search(joined) is None and joined.count('"') == 2 * len(args) - 2)
                ):
                    self.state = AGIState.AWAIT_REPLY  # the table's (IDLE, COMMAND) transition
                    return line
        return self._encode_checked(command, args)

    def _encode_checked(self, command: str, args: tuple[str, ...]) -> bytes:
        """`send_command` step by step, raising `AGIProtocolError` with the precise reason."""
        if self._error is not None:
            raise AGIProtocolError(f"AGI connection unusable after an earlier error: {self._error}")
        if self.state is AGIState.ENV:
            raise AGIProtocolError("AGI: cannot send a command before the environment was received")
        if self.state is AGIState.AWAIT_REPLY:
            raise AGIProtocolError("AGI: a reply is still awaited; send one command at a time")
        if not isinstance(command, str) or not _command_words(command):
            raise AGIProtocolError(f"invalid AGI command {command!r} (words of letters separated by spaces)")
        if command.count(" ") + 1 + len(args) > MAX_WORDS:
            raise AGIProtocolError(f"AGI command {command!r} has more than {MAX_WORDS} words")
        parts = [command]
        for number, arg in enumerate(args, 1):
            if not isinstance(arg, str):
                raise AGIProtocolError(f"AGI {command} argument {number} must be a str, not {type(arg).__name__}")
            if "\n" in arg or "\r" in arg or "\x00" in arg:
                bad = _FORBIDDEN.search(arg)
                raise AGIProtocolError(f"AGI {command} argument {number} contains {bad.group() if bad else ''!r}")
            if '"' in arg or "\\" in arg:
                arg = arg.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{arg}"')
        try:
            line = (" ".join(parts) + "\n").encode()
        except UnicodeEncodeError as exc:
            raise AGIProtocolError(f"AGI {command}: an argument is not encodable as UTF-8") from exc
        # res_agi reads a command with fgets() into a buffer of AGI_BUF_LEN bytes (8192 since 22.6,
        # 2048 before): the line and its newline must fit with the terminating NUL.
        if len(line) >= self._max_line:
            raise AGIProtocolError(f"AGI {command}: command line of {len(line)} bytes exceeds {self._max_line - 1}")
        self._transition(_Input.COMMAND)
        return line

    def receive_reply(self, data: bytes) -> AGIReply | None:
        """Fast path for the usual read: while a command is pending and nothing is buffered, a segment
        that is exactly one common final reply line (`200 result=1`, `200 result=0`, `200 result=-1`) is
        consumed and its reply returned, as `receive_data(data)` + `next_event()` would return it.
        Anything else returns None and consumes nothing: then use `receive_data` and `next_event`."""
        if self.state is AGIState.AWAIT_REPLY and not self._buf and self._usage is None and not self._eof:
            reply = _COMMON_REPLIES.get(data) if data.__class__ is bytes else None
            if reply is not None:
                self.state = AGIState.IDLE  # the table's (AWAIT_REPLY, REPLY) transition
                return reply
        return None

    # -- reading ------------------------------------------------------------------------------------

    def _next_event(self) -> AGIEvent:
        if self.state is AGIState.AWAIT_REPLY and self._usage is None and self._buf.startswith(b"200 result="):
            # Fast path for the reply to nearly every command: one "200 result=N" line, nothing after N.
            # It builds exactly what the general path below builds for that line.
            buf = self._buf
            nl = buf.find(b"\n", 11)
            if 0 < nl <= self._max_line and buf.find(b" ", 11, nl) < 0:
                end = nl - 1 if buf[nl - 1] == 13 else nl  # 13 = "\r"
                text = buf[:end].decode("utf-8", "replace")
                del buf[: nl + 1]
                self._scanned = 0
                self.state = AGIState.IDLE  # the table's (AWAIT_REPLY, REPLY) transition
                return AGIReply(200, text[11:], None, None, text)
        if self.state is AGIState.CLOSED:
            return CONNECTION_CLOSED
        if self.state is AGIState.ENV:
            env = self._read_environment()
            if env is not None:
                self._transition(_Input.ENVIRONMENT)
                return env
            return self._at_end()
        while True:
            line = self._read_line()
            if line is None:
                return self._at_end()
            usage = self._usage
            if usage is not None:
                usage.append(line)
                if line.startswith("520 "):
                    self._usage = None
                    self._transition(_Input.REPLY)
                    return AGIReply(520, None, None, None, "\n".join(usage), "\n".join(usage[1:-1]))
                if len(usage) > self._max_usage_lines:
                    raise AGIProtocolError(f"AGI 520 usage text longer than {self._max_usage_lines} lines")
                continue
            if line == "HANGUP":
                self._transition(_Input.HANGUP)
                return HANGUP
            if self.state is not AGIState.AWAIT_REPLY:
                raise AGIProtocolError(f"AGI: unexpected line while no command is pending: {line[:80]!r}")
            if line.startswith("520-"):
                self._usage = [line]
                continue
            reply = parse_reply_line(line)
            if reply.code == 100:
                continue  # interim "100 result=0 Trying...": the final reply follows
            self._transition(_Input.REPLY)
            return reply

    def _at_end(self) -> NeedData | ConnectionClosed:
        if not self._eof:
            return NEED_DATA
        if self._buf:
            raise AGIProtocolError("AGI connection closed in the middle of a line")
        if self._usage is not None:
            raise AGIProtocolError("AGI connection closed in the middle of a 520 usage block")
        self._transition(_Input.EOF)
        return CONNECTION_CLOSED

    def _read_line(self) -> str | None:
        buf = self._buf
        nl = buf.find(b"\n", self._scanned)
        if nl < 0:
            self._scanned = len(buf)
            if len(buf) > self._max_line:
                raise AGIProtocolError(f"AGI line longer than {self._max_line} bytes")
            return None
        if nl > self._max_line:
            raise AGIProtocolError(f"AGI line longer than {self._max_line} bytes")
        raw = buf[:nl]
        del buf[: nl + 1]
        self._scanned = 0
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw.decode("utf-8", "replace")

    def _read_environment(self) -> AGIEnvironment | None:
        buf = self._buf
        if buf.startswith(b"\n"):
            end = 1
        elif buf.startswith(b"\r\n"):
            end = 2
        else:
            start = self._scanned
            lf = buf.find(b"\n\n", start)
            # the block ends at the first terminator: a "\n\r\n" only counts if it starts before lf
            crlf = buf.find(b"\n\r\n", start, lf + 2 if lf >= 0 else len(buf))
            if lf < 0 and crlf < 0:
                self._check_partial_environment()
                return None
            end = lf + 2 if crlf < 0 else crlf + 3
        block = buf[:end]
        del buf[:end]
        self._scanned = self._counted = self._env_lines = 0
        if end > self._max_line and max(map(len, block.split(b"\n"))) > self._max_line:
            raise AGIProtocolError(f"AGI line longer than {self._max_line} bytes")
        text = block.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        count = text.count("\n") - 1
        if count > self._max_env_vars:
            raise AGIProtocolError(f"AGI environment has more than {self._max_env_vars} variables")
        pairs: list[tuple[str, str]] = _ENV_LINE.findall(text)
        if len(pairs) != count:
            for line in text.split("\n"):
                if line and not _ENV_LINE.fullmatch(line):
                    raise AGIProtocolError(f"malformed AGI environment line: {line[:80]!r}")
        variables = dict(pairs)
        if len(variables) != len(pairs):
            seen: set[str] = set()
            for name, _ in pairs:
                if name in seen:
                    raise AGIProtocolError(f"AGI environment variable agi_{name} given twice")
                seen.add(name)
        return AGIEnvironment(MappingProxyType(variables))

    def _check_partial_environment(self) -> None:
        buf = self._buf
        size = len(buf)
        counted = self._counted
        line_start = buf.rfind(b"\n", 0, counted) + 1
        if size - line_start > self._max_line and max(map(len, buf[line_start:].split(b"\n"))) > self._max_line:
            raise AGIProtocolError(f"AGI line longer than {self._max_line} bytes")
        self._env_lines += buf.count(b"\n", counted)
        self._counted = size
        self._scanned = max(0, size - 2)
        if self._env_lines > self._max_env_vars:
            raise AGIProtocolError(f"AGI environment has more than {self._max_env_vars} variables")
