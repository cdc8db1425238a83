"""AMI (Asterisk Manager Interface) wire codec, without I/O.

Responsibility: turn the bytes Asterisk sends on a manager connection into immutable `Message` objects
(`AMIParser.feed`), and turn an action into the bytes to send (`encode_action`).  The caller owns the
socket, the login, the ActionID bookkeeping and every timeout.

Wire format (asterisk-reference.md §3.1, `main/manager.c`): a banner line `Asterisk Call Manager/11.0.0`,
then messages made of `Key: Value` lines ended by an empty line.  Asterisk writes `\\r\\n`; bare `\\n`
and mixtures are accepted too.  Keys are case-insensitive and may repeat, so a message keeps its headers
as an ordered tuple of pairs.

Invariants:
- Memory is bounded: the parser never holds more than `max_message_bytes` of an unfinished message, a
  line longer than `max_line` or a message with more than `max_headers` headers is rejected as soon as
  it is seen, even if its terminator never arrives.  Work per `feed` is linear in the new bytes plus
  the messages they complete, so even byte-by-byte feeding stays linear.
- The same stream gives the same messages (and the same errors) however it is split into `feed` calls.
- Bad input raises `AMIProtocolError` and nothing else; afterwards the parser refuses further data.
- Bytes are decoded as UTF-8 with replacement: Asterisk does not promise UTF-8 (caller names are
  copied from SIP headers), and one bad byte must not cost the connection.
- `encode_action` never emits a line Asterisk would drop or misread: no CR/LF/NUL inside a line, and
  every line fits Asterisk's 1024-byte input buffer.

Speed (a manager connection can carry thousands of events per second): no per-byte or per-line Python
loop.  The usual case, a block of complete CRLF messages, is checked by one regex scan, cut with one
`split(b"\\r\\n\\r\\n")` and decoded once per message; a message splits its text into headers only when a
caller first needs them (`name`, `get` and `action_id` read the ASCII text directly).  Anything unusual (bare LF,
extra blank lines, a bad line) takes the exact message-by-message path, which gives the same results.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar, overload

from hotline.errors import AMIProtocolError

__all__ = ["BANNER_PREFIX", "AMIParser", "Message", "encode_action"]

BANNER_PREFIX = b"Asterisk Call Manager/"

# Asterisk reads an action line into `char inbuf[1025]` and drops any line whose CRLF does not fit in
# its first 1024 bytes (manager.c get_input), so a line *including* its CRLF may be at most 1024 bytes.
MAX_ACTION_LINE = 1024
# AST_MAX_MANHEADERS in manager.c: headers past the 128th are silently ignored.
MAX_ACTION_HEADERS = 128

_T = TypeVar("_T")

# One header line of a decoded message (CRLF already folded to LF).  A key is anything but controls,
# space, DEL and ':'; one space after the colon is the separator, the rest (even more spaces) is value.
_HEADER_LINE = re.compile(r"^([^\x00-\x20\x7f:]+):[ ]?(.*)$", re.MULTILINE)
_VALID_KEY = re.compile(r"[^\x00-\x20\x7f:]+")
# The fast path's grammar: messages of `Key:value` lines, every line ended by CRLF, every message by
# one empty CRLF line (a byte-level twin of _HEADER_LINE: a non-ASCII byte never decodes to a control).
# It is unambiguous, so matching (and failing) stays linear.
_CLEAN_BLOCK = re.compile(rb"(?:(?:[^\x00-\x20\x7f:]+:[^\n]*\r\n)+\r\n)*")
# Keys we write: printable ASCII without ':' (what every Asterisk header name is).
_ACTION_KEY = re.compile(r"[!-9;-~]+")
_BAD_VALUE_CHAR = re.compile(r"[\r\n\x00]")

# The same wording whether a limit trips on a finished message or on an unfinished one.
_TOO_BIG = "AMI message exceeds {} bytes"
_TOO_LONG = "AMI line longer than {} bytes"
_TOO_MANY = "AMI message has more than {} headers"


_ABSENT = object()


@functools.lru_cache(maxsize=1024)
def _needles(key: str) -> tuple[str, str] | None:
    """What `Message.get` looks for in lower-cased text: `key:` on the first line or after a CRLF."""
    low = key.lower()
    if not _VALID_KEY.fullmatch(low):
        return None
    return low + ":", "\r\n" + low + ":"


class Message:
    """One AMI message (event or response): its headers in wire order, keys possibly repeated.

    Immutable; equality and hashing use `headers`.  A message read by `AMIParser` keeps its decoded
    text and splits it into `headers` only when first needed: `name`, `get`, `action_id`, `is_event`
    and `is_response` read the text directly, which is what routing most events needs.
    """

    __slots__ = ("_headers", "_index", "_low", "_raw")
    _headers: tuple[tuple[str, str], ...] | None
    _index: dict[str, str] | None  # lower-cased key -> first value, built on demand
    # Validated CRLF text of the header lines without the final line ending (parser fast path only),
    # and its lower-cased copy for case-insensitive lookups.
    _raw: str | None
    _low: str | None

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        _set_headers(self, tuple(headers))
        _set_index(self, None)
        _set_raw(self, None)
        _set_low(self, None)

    @classmethod
    def _from_wire(cls, raw: str) -> Message:
        msg = _new_message(cls)
        _set_raw(msg, raw)
        _set_low(msg, None)
        _set_headers(msg, None)
        _set_index(msg, None)
        return msg

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Message is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Message is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[type[Message], tuple[tuple[tuple[str, str], ...]]]:
        return (Message, (self.headers,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.headers == other.headers

    def __hash__(self) -> int:
        return hash(self.headers)

    def __repr__(self) -> str:
        return f"Message(headers={self.headers!r})"

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        headers = self._headers
        if headers is None:
            raw = self._raw
            assert raw is not None
            headers = tuple(_HEADER_LINE.findall(raw.replace("\r\n", "\n")))
            _set_headers(self, headers)
        return headers

    def _lookup(self) -> dict[str, str]:
        index = self._index
        if index is None:
            # Reversed so that the first occurrence of a repeated key wins.
            index = {k.lower(): v for k, v in reversed(self.headers)}
            _set_index(self, index)
        return index

    def _first(self) -> tuple[str, str] | None:
        """The first header, read without splitting the whole message."""
        raw = self._raw
        if raw is None:
            headers = self.headers
            return headers[0] if headers else None
        end = raw.find("\r\n")
        key, _, value = (raw if end < 0 else raw[:end]).partition(":")
        return key, value[1:] if value.startswith(" ") else value

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: _T) -> str | _T: ...

    def get(self, key: str, default: object = None) -> object:
        """Value of the first header named `key` (case-insensitive), else `default`."""
        raw = self._raw
        if raw is None or self._index is not None or not raw.isascii():
            # (lower() keeps offsets only for ASCII text)
            return self._lookup().get(key.lower(), default)
        needles = _needles(key)
        if needles is None:
            return default  # not a valid header name: no header can have it
        low = self._low
        if low is None:
            low = raw.lower()
            _set_low(self, low)
        first_line, other_line = needles
        if low.startswith(first_line):
            start = len(first_line)
        else:
            start = low.find(other_line)
            if start < 0:
                return default
            start += len(other_line)
        end = raw.find("\r\n", start)
        value = raw[start:] if end < 0 else raw[start:end]
        return value[1:] if value.startswith(" ") else value

    def getall(self, key: str) -> list[str]:
        """Values of every header named `key` (case-insensitive), in wire order."""
        key = key.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _ABSENT) is not _ABSENT

    @property
    def name(self) -> str | None:
        """The event name (`Event`) or, for a response, its status (`Response`)."""
        first = self._first()
        # Fast path: Asterisk always writes Event/Response first.
        if first is not None and first[0].lower() in ("event", "response"):
            return first[1]
        event = self.get("event")
        return event if event is not None else self.get("response")

    @property
    def is_event(self) -> bool:
        return "event" in self

    @property
    def is_response(self) -> bool:
        return "response" in self

    @property
    def action_id(self) -> str | None:
        return self.get("actionid")

    @property
    def chan_variables(self) -> dict[str, str]:
        """Channel variables from `ChanVariable: name=value` headers (first occurrence wins).

        Also accepts the Asterisk 1.8-11 form `ChanVariable(<channel>): name=value`.
        """
        return self.prefixed_chan_variables("")

    def prefixed_chan_variables(self, prefix: str) -> dict[str, str]:
        """Channel variables of a prefixed channel snapshot, e.g. `DestChanVariable` for "Dest".

        Events about two channels (DialBegin, AgentCalled, BridgeEnter...) describe the second one with
        prefixed headers (manager.c ast_manager_build_channel_state_string_prefix).
        """
        want = prefix.lower() + "chanvariable"
        out: dict[str, str] = {}
        for key, value in self.headers:
            lk = key.lower()
            if lk == want or (lk.startswith(want + "(") and lk.endswith(")")):
                name, sep, val = value.partition("=")
                if sep and name and name not in out:
                    out[name] = val
        return out

    def as_dict(self) -> dict[str, str]:
        """Headers as a dict keyed as on the wire; the first occurrence of a repeated key wins."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out


# Slot setters that bypass Message.__setattr__ (which forbids mutation from outside).
_Headers = tuple[tuple[str, str], ...]
_set_headers: Callable[[Message, _Headers | None], None] = Message.__dict__["_headers"].__set__
_set_index: Callable[[Message, dict[str, str] | None], None] = Message.__dict__["_index"].__set__
_set_raw: Callable[[Message, str | None], None] = Message.__dict__["_raw"].__set__
_set_low: Callable[[Message, str | None], None] = Message.__dict__["_low"].__set__
_new_message: Callable[[type[Message]], Message] = object.__new__


class AMIParser:
    """Incremental AMI reader: `feed(bytes)` returns the messages completed by those bytes."""

    __slots__ = (
        "_buf",
        "_counted",
        "_error",
        "_lines",
        "_max_headers",
        "_max_line",
        "_max_message",
        "_scanned",
        "_small",
        "banner",
    )

    def __init__(
        self,
        *,
        max_message_bytes: int = 65536,
        max_headers: int = 512,
        max_line: int = 8192,
        expect_banner: bool = True,
    ) -> None:
        if min(max_message_bytes, max_headers, max_line) < 1:
            raise ValueError("AMIParser limits must be positive")
        self._max_message = max_message_bytes
        self._max_headers = max_headers
        self._max_line = max_line
        # A clean CRLF message body of at most this many bytes cannot break any limit (see _check_clean).
        self._small = min(max_message_bytes - 4, max_line - 1, 4 * max_headers + 1)
        self._buf = bytearray()  # the banner or the unfinished message, nothing else
        self._scanned = 0  # no message terminator starts before this offset of _buf
        self._counted = 0  # bytes of _buf whose newlines are counted in _lines and lines length-checked
        self._lines = 0  # complete lines in _buf
        self._error: AMIProtocolError | None = None
        self.banner: str | None = None if expect_banner else ""

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished message (bounded by the limits)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise AMIProtocolError(f"AMI parser unusable after an earlier error: {self._error}")
        try:
            return self._feed(data)
        except AMIProtocolError as exc:
            self._error = exc
            self._buf = bytearray()
            raise

    def _feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        if self.banner is None and not self._read_banner():
            return []
        # Blank lines between messages belong to no message.
        skip = _blank_prefix(buf)
        if skip:
            del buf[:skip]
            self._scanned = self._counted = self._lines = 0

        # Everything up to the last message terminator ("\n\n" or "\n\r\n") is complete.
        start = self._scanned
        crlf = buf.rfind(b"\n\r\n", start)
        lf = buf.rfind(b"\n\n", start)
        cut = max(crlf + 3 if crlf >= 0 else 0, lf + 2 if lf >= 0 else 0)
        messages: list[Message] = []
        if cut:
            region = bytes(buf[:cut])
            del buf[:cut]
            self._counted = self._lines = 0
            if _CLEAN_BLOCK.fullmatch(region):
                self._split_clean(region, messages)
            else:
                self._split_exact(region, messages)

        # The unfinished tail: enforce every limit now, before its terminator arrives.  Only bytes not
        # seen by an earlier feed are scanned, so feeding byte by byte stays linear.
        size = len(buf)
        self._scanned = max(0, size - 2)
        if size > self._max_message:
            raise AMIProtocolError(_TOO_BIG.format(self._max_message))
        counted = self._counted
        line_start = buf.rfind(b"\n", 0, counted) + 1
        if size - line_start > self._max_line and _longest_line(buf[line_start:]) > self._max_line:
            raise AMIProtocolError(_TOO_LONG.format(self._max_line))
        self._lines += buf.count(b"\n", counted)
        self._counted = size
        if self._lines > self._max_headers:
            raise AMIProtocolError(_TOO_MANY.format(self._max_headers))
        return messages

    def _split_clean(self, region: bytes, out: list[Message]) -> None:
        """Fast path for a block matching _CLEAN_BLOCK (what Asterisk sends).

        Then the messages are exactly the pieces between "\\r\\n\\r\\n", sizes are exact byte counts, and
        the text is split into headers only when a caller asks for them.
        """
        pieces = region.split(b"\r\n\r\n")
        pieces.pop()  # the region ends with a terminator: the last piece is empty
        small = self._small
        from_wire = Message._from_wire
        for piece in pieces:
            if len(piece) > small:
                self._check_clean(piece)
            out.append(from_wire(piece.decode("utf-8", "replace")))

    def _check_clean(self, piece: bytes) -> None:
        # The measures of _parse: the terminator counts in the size, a CR in its line's length.
        if len(piece) + 4 > self._max_message:
            raise AMIProtocolError(_TOO_BIG.format(self._max_message))
        lines = piece.split(b"\r\n")
        if max(map(len, lines)) + 1 > self._max_line:
            raise AMIProtocolError(_TOO_LONG.format(self._max_line))
        if len(lines) > self._max_headers:
            raise AMIProtocolError(_TOO_MANY.format(self._max_headers))

    def _split_exact(self, region: bytes, out: list[Message]) -> None:
        """General path: bare LF or mixed line ends, extra blank lines, or an invalid line somewhere."""
        pos = 0
        lf = region.find(b"\n\n")
        crlf = region.find(b"\n\r\n")
        while lf != -1 or crlf != -1:
            end = lf + 2 if crlf == -1 or (lf != -1 and lf < crlf) else crlf + 3
            out.append(self._parse(region[pos:end]))
            pos = end + _blank_prefix(region, end)
            if lf != -1 and lf < pos:
                lf = region.find(b"\n\n", pos)
            if crlf != -1 and crlf < pos:
                crlf = region.find(b"\n\r\n", pos)

    def _parse(self, chunk: bytes) -> Message:
        size = len(chunk)
        if size > self._max_message:
            raise AMIProtocolError(_TOO_BIG.format(self._max_message))
        if size > self._max_line and _longest_line(chunk) > self._max_line:
            raise AMIProtocolError(_TOO_LONG.format(self._max_line))
        text = chunk.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        count = text.count("\n") - 1  # the terminator's empty line is not a header
        if count > self._max_headers:
            raise AMIProtocolError(_TOO_MANY.format(self._max_headers))
        pairs: list[tuple[str, str]] = _HEADER_LINE.findall(text)
        if len(pairs) != count:
            raise AMIProtocolError(_describe_bad_line(text))
        return Message(pairs)

    def _read_banner(self) -> bool:
        buf = self._buf
        head = bytes(buf[: len(BANNER_PREFIX)])
        if not BANNER_PREFIX.startswith(head):
            raise AMIProtocolError(f"not an AMI banner: {_preview(bytes(buf[:64]))}")
        nl = buf.find(b"\n")
        if nl == -1:
            if len(buf) > self._max_line:
                raise AMIProtocolError(f"AMI banner longer than {self._max_line} bytes")
            return False
        if nl > self._max_line:
            raise AMIProtocolError(f"AMI banner longer than {self._max_line} bytes")
        self.banner = buf[:nl].decode("utf-8", "replace").rstrip("\r")
        del buf[: nl + 1]
        return True


def _longest_line(data: bytes | bytearray) -> int:
    """Length in bytes (CR included, LF excluded) of the longest line of `data`."""
    return max(map(len, data.split(b"\n")))


def _blank_prefix(buf: bytes | bytearray, pos: int = 0) -> int:
    """Length of the run of empty lines (`\\n` or `\\r\\n`) starting at `pos`."""
    i = pos
    while True:
        if buf.startswith(b"\n", i):
            i += 1
        elif buf.startswith(b"\r\n", i):
            i += 2
        else:
            return i - pos


def _describe_bad_line(text: str) -> str:
    for number, line in enumerate(text.split("\n"), 1):
        if line and not _HEADER_LINE.fullmatch(line):
            key, sep, _ = line.partition(":")
            if not sep:
                return f"AMI header line {number} has no ':': {_preview(line)}"
            return f"AMI header line {number} has an invalid key: {_preview(key)}"
    return "AMI message is malformed"  # pragma: no cover - findall and fullmatch agree


def _preview(data: bytes | str, limit: int = 60) -> str:
    shown = data[:limit]
    return repr(shown) + ("..." if len(data) > limit else "")


def encode_action(
    action: str,
    fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    action_id: str | None = None,
) -> bytes:
    """Bytes of one AMI action: `Action`, optional `ActionID`, then `fields` in order, then a blank line.

    Raises `AMIProtocolError` naming the field for a value Asterisk would drop or misread.
    """
    items = fields.items() if isinstance(fields, Mapping) else fields
    lines = [_action_line("Action", action)]
    if not action:
        raise AMIProtocolError("AMI action name is empty")
    if action_id is not None:
        lines.append(_action_line("ActionID", action_id))
    for key, value in items:
        lower = key.lower()
        if lower == "action" or (lower == "actionid" and action_id is not None):
            raise AMIProtocolError(f"AMI field {key!r} given twice (it is set by encode_action)")
        lines.append(_action_line(key, value))
    if len(lines) > MAX_ACTION_HEADERS:
        raise AMIProtocolError(
            f"AMI action {action!r} has {len(lines)} headers; Asterisk ignores all past {MAX_ACTION_HEADERS}"
        )
    lines.append(b"\r\n")
    return b"".join(lines)


def _action_line(key: str, value: str) -> bytes:
    if not isinstance(key, str) or not _ACTION_KEY.fullmatch(key):
        raise AMIProtocolError(f"invalid AMI field name {key!r}")
    if not isinstance(value, str):
        raise AMIProtocolError(f"AMI field {key!r}: value must be a str, not {type(value).__name__}")
    bad = _BAD_VALUE_CHAR.search(value)
    if bad is not None:
        raise AMIProtocolError(f"AMI field {key!r}: value contains {bad.group()!r}")
    try:
        line = f"{key}: {value}\r\n".encode()
    except UnicodeEncodeError as exc:
        raise AMIProtocolError(f"AMI field {key!r}: value is not encodable as UTF-8") from exc
    if len(line) > MAX_ACTION_LINE:
        raise AMIProtocolError(
            f"AMI field {key!r}: line is {len(line)} bytes; Asterisk drops lines over {MAX_ACTION_LINE}"
        )
    return line
