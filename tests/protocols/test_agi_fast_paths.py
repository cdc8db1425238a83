"""FastAGI codec fast paths: `receive_reply` and `send_command`'s unchecked route give exactly what the
general path gives, and hand everything else to it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import AGIProtocolError
from hotline.protocols.agi import NEED_DATA, AGIConnection, AGIEnvironment, AGIReply, AGIState, HangupNotice

FUZZ = settings(max_examples=300, deadline=None, database=None)
COMMON = [
    f"200 result={result}{end}".encode() for result in ("-1", "0", "1") for end in ("\n", "\r\n")
]  # fmt: skip


def ready() -> AGIConnection:
    conn = AGIConnection()
    conn.receive_data(b"agi_network: yes\nagi_network_script: inbound\n\n")
    assert isinstance(conn.next_event(), AGIEnvironment)
    return conn


def general_path(segment: bytes) -> object:
    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(segment)
    return conn.next_event()


# -- receive_reply ------------------------------------------------------------------------------------


@pytest.mark.parametrize("segment", COMMON)
def test_common_reply_is_what_the_general_path_returns(segment: bytes) -> None:
    conn = ready()
    conn.send_command("SET VARIABLE", "A", "1")
    reply = conn.receive_reply(segment)
    assert reply == general_path(segment) and isinstance(reply, AGIReply)
    assert conn.state is AGIState.IDLE and conn.buffered == 0
    assert conn.send_command("NOOP") == b"NOOP\n"  # the connection goes on


@pytest.mark.parametrize(
    "segment",
    [
        b"200 result=1 (value)\n",  # GET VARIABLE with a value: parsed by the general path
        b"200 result=1\n200 result=1\n",  # two lines: the second is not a reply to anything
        b"HANGUP\n200 result=1\n",
        b"200 result=1",  # no newline yet
        b"100 result=0 Trying...\n",
        b"510 Invalid or unknown command\n",
        b"",
    ],
)
def test_anything_else_is_left_to_the_general_path(segment: bytes) -> None:
    conn = ready()
    conn.send_command("NOOP")
    assert conn.receive_reply(segment) is None
    assert conn.state is AGIState.AWAIT_REPLY and conn.buffered == 0  # nothing consumed


def test_no_fast_reply_without_a_pending_command_or_with_buffered_bytes() -> None:
    conn = ready()
    assert conn.receive_reply(b"200 result=1\n") is None  # idle: the general path raises the error
    conn.receive_data(b"200 result=1\n")
    with pytest.raises(AGIProtocolError, match="no command is pending"):
        conn.next_event()

    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(b"HANG")  # a partial line is buffered: the segment continues it
    assert conn.receive_reply(b"200 result=1\n") is None
    conn.receive_data(b"UP\n200 result=1\n")
    assert conn.next_event() == HangupNotice()
    assert conn.next_event() == AGIReply(200, "1", None, None, "200 result=1")
    assert conn.next_event() is NEED_DATA


def test_no_fast_reply_after_the_end_of_the_stream_or_an_error() -> None:
    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(b"")
    assert conn.receive_reply(b"200 result=1\n") is None
    with pytest.raises(AGIProtocolError, match="after the end of the stream"):
        conn.receive_data(b"200 result=1\n")
    assert conn.receive_reply(b"200 result=1\n") is None  # closed, unusable


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_other_bytes_like_types_take_the_general_path(kind: type) -> None:
    conn = ready()
    conn.send_command("NOOP")
    segment = kind(b"200 result=1\n")
    assert conn.receive_reply(segment) is None
    conn.receive_data(segment)
    assert conn.next_event() == AGIReply(200, "1", None, None, "200 result=1")


# -- send_command -------------------------------------------------------------------------------------


def reference_line(command: str, args: list[str]) -> bytes:
    """The quoting rule, written independently of the codec: each argument in quotes, `\\` and `"` escaped."""
    quoted = ['"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in args]
    return (" ".join([command, *quoted]) + "\n").encode()


@FUZZ
@given(
    command=st.sampled_from(["EXEC", "SET VARIABLE", "GET VARIABLE", "VERBOSE", "ANSWER"]),
    args=st.lists(st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(['"', "\\", '" "']), max_size=5),
)
def test_send_command_is_the_quoting_rule_or_names_the_bad_argument(command: str, args: list[str]) -> None:
    conn = ready()
    bad = [n for n, a in enumerate(args, 1) if "\r" in a or "\n" in a or "\x00" in a]
    if bad:
        with pytest.raises(AGIProtocolError, match=f"argument {bad[0]} contains"):
            conn.send_command(command, *args)
        assert conn.state is AGIState.IDLE
    else:
        assert conn.send_command(command, *args) == reference_line(command, args)
        assert conn.state is AGIState.AWAIT_REPLY


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("A", 1), "argument 2 must be a str, not int"),
        ((b"A",), "argument 1 must be a str, not bytes"),
        ((None, "x"), "argument 1 must be a str, not NoneType"),
    ],
)
def test_send_command_names_an_argument_that_is_not_a_str(args: tuple[object, ...], error: str) -> None:
    conn = ready()
    with pytest.raises(AGIProtocolError, match=error):
        conn.send_command("SET VARIABLE", *args)  # type: ignore[arg-type]
    assert conn.state is AGIState.IDLE


@pytest.mark.parametrize("command", [None, 7, b"NOOP", ["NOOP"]])
def test_send_command_refuses_a_command_that_is_not_a_str(command: object) -> None:
    conn = ready()
    with pytest.raises(AGIProtocolError, match="invalid AGI command"):
        conn.send_command(command)  # type: ignore[arg-type]


def test_command_words_count_towards_the_limit_on_every_path() -> None:
    conn = ready()
    assert conn.send_command("DATABASE PUT", *(["x"] * 125)).count(b'"x"') == 125  # 2 + 125 = 127 words
    conn.receive_data(b"200 result=1\n")
    conn.next_event()
    with pytest.raises(AGIProtocolError, match="more than 127 words"):
        conn.send_command("DATABASE PUT", *(["x"] * 126))
