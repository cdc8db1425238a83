"""FastAGI codec: environment, replies, HANGUP, quoting, limits, and the "parse or raise" fuzz invariant."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import AGIProtocolError, ProtocolError
from hotline.protocols.agi import (
    CONNECTION_CLOSED,
    NEED_DATA,
    AGIConnection,
    AGIEnvironment,
    AGIEvent,
    AGIReply,
    AGIState,
    ConnectionClosed,
    HangupNotice,
    parse_reply_line,
)

FUZZ = settings(max_examples=300, deadline=None, database=None)

# The environment block of a FastAGI call as res_agi.c writes it (asterisk-reference.md §2.2).
ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: route?queue=support&lang=fr%20FR&x=1+1\n"
    b"agi_request: agi://127.0.0.1:4573/route?queue=support&lang=fr%20FR&x=1+1\n"
    b"agi_channel: PJSIP/carrier-00000001\n"
    b"agi_language: fr\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: node1-1764000000.12\n"
    b"agi_version: 22.10.1\n"
    b"agi_callerid: 0612345678\n"
    b"agi_calleridname: J\xc3\xa9r\xc3\xb4me Dupont\n"
    b"agi_callingpres: 0\n"
    b"agi_callingani2: 0\n"
    b"agi_callington: 0\n"
    b"agi_callingtns: 0\n"
    b"agi_dnid: 0148000000\n"
    b"agi_rdnis: unknown\n"
    b"agi_context: from-carrier\n"
    b"agi_extension: 0148000000\n"
    b"agi_priority: 2\n"
    b"agi_enhanced: 0.0\n"
    b"agi_accountcode: \n"
    b"agi_threadid: 140241397393088\n"
    b"agi_arg_1: support\n"
    b"agi_arg_2: with spaces, and commas\n"
    b"agi_arg_3: \n"
    b"\n"
)


def state_of(conn: AGIConnection) -> AGIState:
    """The state, read through a call so that mypy does not narrow it across events."""
    return conn.state


def events_of(conn: AGIConnection) -> list[AGIEvent]:
    out: list[AGIEvent] = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def ready() -> AGIConnection:
    conn = AGIConnection()
    conn.receive_data(ENV)
    assert isinstance(conn.next_event(), AGIEnvironment)
    return conn


def run_session(data: bytes, chunk: int | None, commands: int) -> list[AGIEvent]:
    """Feed `data` (`chunk` bytes at a time) sending a command whenever the connection is idle."""
    conn = AGIConnection()
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    out: list[AGIEvent] = []
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            if conn.state is AGIState.IDLE and commands:
                conn.send_command("NOOP")
                commands -= 1
            event = conn.next_event()
            if event is NEED_DATA:
                break
            out.append(event)
    return out


# -- environment -----------------------------------------------------------------------------------------


def test_environment_block() -> None:
    conn = AGIConnection()
    assert conn.state is AGIState.ENV
    conn.receive_data(ENV)
    env = conn.next_event()
    assert isinstance(env, AGIEnvironment)
    assert state_of(conn) is AGIState.IDLE
    assert env.request == "agi://127.0.0.1:4573/route?queue=support&lang=fr%20FR&x=1+1"
    assert env.network_script == "route?queue=support&lang=fr%20FR&x=1+1"
    assert env.script == "route"
    assert env.query == {"queue": "support", "lang": "fr FR", "x": "1+1"}
    assert env.channel == "PJSIP/carrier-00000001"
    assert env.uniqueid == "node1-1764000000.12"
    assert env.callerid == "0612345678"
    assert env.calleridname == "Jérôme Dupont"
    assert env.dnid == "0148000000"
    assert env.extension == "0148000000"
    assert env.context == "from-carrier"
    assert env.language == "fr"
    assert env.type == "PJSIP"
    assert env.args == ("support", "with spaces, and commas", "")
    assert env.variables["accountcode"] == ""
    assert env.variables["network"] == "yes"
    assert conn.next_event() is NEED_DATA
    assert conn.buffered == 0


def test_environment_whole_bytewise_crlf_and_trailing_bytes_agree() -> None:
    expected = run_session(ENV, None, 0)
    assert len(expected) == 1
    assert run_session(ENV, 1, 0) == expected
    assert run_session(ENV.replace(b"\n", b"\r\n"), None, 0) == expected
    assert run_session(ENV.replace(b"\n", b"\r\n"), 1, 0) == expected
    conn = AGIConnection()
    conn.receive_data(ENV + b"HANG")
    assert conn.next_event() == expected[0]
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"UP\n")
    assert conn.next_event() == HangupNotice()


def test_environment_without_args_and_query() -> None:
    conn = AGIConnection()
    conn.receive_data(b"agi_network: yes\nagi_network_script: hangup-handler\nagi_request: agi://h/x\n\n")
    env = conn.next_event()
    assert isinstance(env, AGIEnvironment)
    assert env.args == ()
    assert env.script == "hangup-handler"
    assert env.query == {}
    assert env.dnid == ""


@pytest.mark.parametrize(
    ("block", "error"),
    [
        (
            b"agi_network: yes\nagi_channel PJSIP/x\n\n",
            "malformed AGI environment line: 'agi_channel PJSIP/x'",
        ),
        (b"agi_network: yes\nchannel: PJSIP/x\n\n", "malformed AGI environment line: 'channel: PJSIP/x'"),
        (b"agi_network:yes\n\n", "malformed AGI environment line"),
        (b"HANGUP\n\n", "malformed AGI environment line: 'HANGUP'"),
        (b"agi_a: 1\nagi_a: 2\n\n", "agi_a given twice"),
        (b"agi_\x00: 1\n\n", "malformed AGI environment line"),
    ],
)
def test_malformed_environment(block: bytes, error: str) -> None:
    for chunk in (None, 1):
        with pytest.raises(AGIProtocolError) as info:
            run_session(block, chunk, 0)
        assert error in str(info.value)


def test_environment_limits() -> None:
    many = b"".join(b"agi_v%d: x\n" % i for i in range(600)) + b"\n"
    for chunk in (None, 7):
        with pytest.raises(AGIProtocolError, match="more than 512 variables"):
            run_session(many, chunk, 0)
    conn = AGIConnection(max_env_vars=10)
    with pytest.raises(AGIProtocolError, match="more than 10 variables"):
        for i in range(100):
            conn.receive_data(b"agi_v%d: x\n" % i)
            assert conn.next_event() is NEED_DATA
            assert conn.buffered < 200


def test_ten_megabyte_line_without_newline() -> None:
    conn = AGIConnection()
    conn.receive_data(b"agi_network: yes\nagi_request: ")
    with pytest.raises(AGIProtocolError, match="AGI line longer than 8192 bytes"):
        conn.receive_data(b"x" * 10_000_000)
    assert conn.buffered == 0
    with pytest.raises(AGIProtocolError, match="unusable after an earlier error"):
        conn.next_event()


def test_long_line_is_caught_before_its_newline_even_byte_by_byte() -> None:
    conn = AGIConnection(max_line=100)
    conn.receive_data(ENV)
    assert isinstance(conn.next_event(), AGIEnvironment)
    conn.send_command("GET VARIABLE", "X")
    conn.receive_data(b"200 result=1 (")
    with pytest.raises(AGIProtocolError, match="AGI line longer than 100 bytes"):
        for _ in range(1000):
            conn.receive_data(b"v")
            assert conn.next_event() is NEED_DATA
            assert conn.buffered <= 100
    assert conn.buffered == 0
    undrained = ready()
    undrained.send_command("NOOP")
    with pytest.raises(AGIProtocolError, match="longer than 8192"):
        undrained.receive_data(b"200 result=1 (" + b"v" * 9000)


def test_complete_overlong_line_is_refused() -> None:
    conn = AGIConnection(max_line=64)
    conn.receive_data(b"agi_network: yes\n\n")
    conn.next_event()
    conn.send_command("NOOP")
    with pytest.raises(AGIProtocolError, match="longer than 64"):
        conn.receive_data(b"200 result=1 (" + b"v" * 60 + b")\n")
        conn.next_event()


# -- one FastAGI session recorded from a real Asterisk 22 (scripts/record-fixtures) ------------------------

FIXTURES = Path(__file__).parents[1] / "fixtures" / "agi"
FROM_ASTERISK = (FIXTURES / "inbound_from_asterisk.bin").read_bytes()
FROM_HOTLINE = (FIXTURES / "inbound_from_hotline.bin").read_bytes()


def replay_recorded(chunk: int | None) -> tuple[list[AGIEvent], bytes]:
    """Replay the session: send the recorded commands (re-encoded by us) whenever the connection is idle."""
    # Command words are bare, every argument is quoted: split at the first quote.
    commands = [line.partition('"') for line in FROM_HOTLINE.decode().splitlines()]
    conn = AGIConnection()
    sent = b""
    events: list[AGIEvent] = []
    pieces = (
        [FROM_ASTERISK]
        if chunk is None
        else [FROM_ASTERISK[i : i + chunk] for i in range(0, len(FROM_ASTERISK), chunk)]
    )
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            if conn.state is AGIState.IDLE and commands:
                verb, quote, rest = commands.pop(0)
                sent += conn.send_command(verb.strip(), *parse_args(quote + rest))
            event = conn.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
    return events, sent


def test_recorded_session_three_ways() -> None:
    events, sent = replay_recorded(None)
    assert sent == FROM_HOTLINE  # our quoting is byte for byte what the live server sent
    env = events[0]
    assert isinstance(env, AGIEnvironment)
    assert env.script == "inbound"
    assert env.query == {"node": "node1"}
    assert env.channel.startswith("PJSIP/carrier-")
    assert env.uniqueid.startswith("node1-")
    assert env.variables["version"].startswith("22.")
    replies = events[1:]
    assert all(isinstance(r, AGIReply) for r in replies)
    assert len(replies) == FROM_HOTLINE.count(b"\n")
    assert env.args == ("",)  # ${HOTLINE_CALL_ID} of a new call: empty, so no GET VARIABLE is needed
    assert all(r.result == "1" for r in replies if isinstance(r, AGIReply))  # every SET VARIABLE succeeded
    for chunk in (1, 2, 7, 100):
        assert replay_recorded(chunk) == (events, sent)


# -- replies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos"),
    [
        ("200 result=1 (value)", 200, "1", "value", None),
        (
            "200 result=1 (a value (with) parens) and spaces)",
            200,
            "1",
            "a value (with) parens) and spaces",
            None,
        ),
        ("200 result=0", 200, "0", None, None),
        ("200 result=-1", 200, "-1", None, None),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=0 endpos=160000", 200, "0", None, 160000),
        ("200 result=49 (dtmf) endpos=8000", 200, "49", "dtmf", 8000),
        ("200 result=0 (hangup) endpos=0", 200, "0", "hangup", 0),
        ("200 result=1 (x) endpos=5 (y)", 200, "1", "x) endpos=5 (y", None),
        (
            '200 result=1 (speech) endpos=1200 results=1 score0=912 text0="a)b" grammar0=g',
            200,
            "1",
            "speech",
            1200,
        ),
        ("200 result=0 Gosub complete", 200, "0", None, None),
        ("200 result=0 (hangup) trailing words", 200, "0", "hangup", None),
        ("200 result=1 ()", 200, "1", "", None),
        ("100 result=0 Trying...", 100, "0", None, None),
        ("510 Invalid or unknown command", 510, None, None, None),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, None, None, None),
        ("520 Invalid command syntax.  Proper usage not available.", 520, None, None, None),
    ],
)
def test_parse_reply_line(line: str, code: int, result: str | None, data: str | None, endpos: int | None) -> None:
    reply = parse_reply_line(line)
    assert (reply.code, reply.result, reply.data, reply.endpos, reply.raw) == (
        code,
        result,
        data,
        endpos,
        line,
    )
    assert reply.ok is (code == 200)
    assert reply.usage is None


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("", "unparseable"),
        ("HANGUP", "unparseable"),
        ("20 result=1", "unparseable"),
        ("2000 result=1", "unparseable"),
        ("٢٠٠ result=1", "unparseable"),
        ("200", "without result="),
        ("200 Success", "without result="),
        ("200 result=1 (unclosed", "unclosed"),
        ("200 result=1 endpos=abc", "malformed endpos"),
        ("520-Invalid command syntax.  Proper usage follows:", "unparseable"),
    ],
)
def test_parse_reply_line_rejects(line: str, error: str) -> None:
    with pytest.raises(AGIProtocolError, match=error):
        parse_reply_line(line)


REPLIES = (
    b"200 result=1 (PJSIP/alice-00000002)\n"
    b"100 result=0 Trying...\n"
    b"200 result=0 Gosub complete\n"
    b"HANGUP\n"
    b"511 Command Not Permitted on a dead channel or intercept routine\n"
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: SET VARIABLE <variablename> <value>\n"
    b"\tSets a variable to the current channel.\n"
    b"\n"
    b"520 End of proper usage.\n"
    b"HANGUP\n"
    b"510 Invalid or unknown command\n"
)


def test_a_session_whole_bytewise_and_in_odd_chunks() -> None:
    data = ENV + REPLIES
    expected = run_session(data, None, 5)
    assert [type(e).__name__ for e in expected] == [
        "AGIEnvironment",
        "AGIReply",
        "AGIReply",
        "HangupNotice",
        "AGIReply",
        "AGIReply",
        "HangupNotice",
        "AGIReply",
    ]
    replies = [e for e in expected if isinstance(e, AGIReply)]
    assert [r.code for r in replies] == [200, 200, 511, 520, 510]
    assert replies[0].data == "PJSIP/alice-00000002"
    assert replies[1].raw == "200 result=0 Gosub complete"
    usage = replies[3]
    assert usage.usage == " Usage: SET VARIABLE <variablename> <value>\n\tSets a variable to the current channel.\n"
    assert usage.raw.startswith("520-Invalid command syntax.") and usage.raw.endswith("520 End of proper usage.")
    assert usage.result is None and not usage.ok
    for chunk in (1, 2, 3, 7, 64):
        assert run_session(data, chunk, 5) == expected
    assert run_session(data.replace(b"\n", b"\r\n"), 5, 5) == expected


def test_hangup_while_a_reply_is_awaited_does_not_end_the_wait() -> None:
    conn = ready()
    conn.send_command("EXEC", "Dial", "PJSIP/alice,30")
    conn.receive_data(b"HANGUP\n200 result=0\nHANG")
    assert conn.next_event() == HangupNotice()
    assert conn.state is AGIState.AWAIT_REPLY
    with pytest.raises(AGIProtocolError, match="a reply is still awaited"):
        conn.send_command("NOOP")
    reply = conn.next_event()
    assert isinstance(reply, AGIReply) and reply.result == "0"
    assert state_of(conn) is AGIState.IDLE
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"UP\n")
    assert conn.next_event() == HangupNotice()
    assert state_of(conn) is AGIState.IDLE


def test_invalid_utf8_is_replaced() -> None:
    conn = AGIConnection()
    conn.receive_data(b"agi_network: yes\nagi_calleridname: caf\xe9\n\n")
    env = conn.next_event()
    assert isinstance(env, AGIEnvironment)
    assert env.calleridname == "caf\ufffd"
    conn.send_command("GET VARIABLE", "CALLERID(name)")
    conn.receive_data(b"200 result=1 (\xff\xfe)\n")
    reply = conn.next_event()
    assert isinstance(reply, AGIReply) and reply.data == "\ufffd\ufffd"


def test_reply_without_a_command_is_a_protocol_error() -> None:
    conn = ready()
    conn.receive_data(b"200 result=1\n")
    with pytest.raises(AGIProtocolError, match="no command is pending"):
        conn.next_event()


def test_unparseable_reply_poisons_the_connection() -> None:
    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(b"OK then\n")
    with pytest.raises(AGIProtocolError, match="unparseable AGI reply line: 'OK then'"):
        conn.next_event()
    assert conn.state is AGIState.CLOSED
    for call in (conn.next_event, lambda: conn.receive_data(b"x"), lambda: conn.send_command("NOOP")):
        with pytest.raises(AGIProtocolError, match="unusable after an earlier error"):
            call()


def test_usage_block_is_bounded() -> None:
    conn = AGIConnection(max_usage_lines=5)
    conn.receive_data(ENV)
    conn.next_event()
    conn.send_command("SET VARIABLE", "a")
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\n" + b"usage\n" * 10)
    with pytest.raises(AGIProtocolError, match="longer than 5 lines"):
        conn.next_event()


def test_end_of_stream() -> None:
    conn = ready()
    conn.send_command("NOOP")
    conn.receive_data(b"HANGUP\n")
    conn.receive_data(b"")
    assert events_of(conn) == [HangupNotice(), ConnectionClosed()]
    assert conn.state is AGIState.CLOSED
    assert conn.next_event() is CONNECTION_CLOSED
    conn.receive_data(b"")
    with pytest.raises(AGIProtocolError, match="after the end of the stream"):
        conn.receive_data(b"200 result=0\n")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"agi_network: yes\nagi_chan", "middle of a line"),
        (ENV + b"200 result=", "middle of a line"),
    ],
)
def test_end_of_stream_inside_a_line(data: bytes, error: str) -> None:
    conn = AGIConnection()
    conn.receive_data(data)
    conn.receive_data(b"")
    with pytest.raises(AGIProtocolError, match=error):
        events_of(conn)
        conn.send_command("NOOP")
        events_of(conn)


def test_end_of_stream_inside_a_usage_block() -> None:
    conn = ready()
    conn.send_command("SET VARIABLE")
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\n Usage: ...\n")
    conn.receive_data(b"")
    with pytest.raises(AGIProtocolError, match="520 usage block"):
        conn.next_event()


def test_closed_before_the_environment() -> None:
    conn = AGIConnection()
    conn.receive_data(b"")
    assert conn.next_event() is CONNECTION_CLOSED


# -- commands --------------------------------------------------------------------------------------------


def test_send_command_quotes_every_argument() -> None:
    conn = ready()
    assert conn.send_command("SET VARIABLE", "HOTLINE_ACTION", 'queue "support" \\ now') == (
        b'SET VARIABLE "HOTLINE_ACTION" "queue \\"support\\" \\\\ now"\n'
    )
    conn.receive_data(b"200 result=1\n")
    conn.next_event()
    assert conn.send_command("ANSWER") == b"ANSWER\n"
    conn.receive_data(b"200 result=0\n")
    conn.next_event()
    assert conn.send_command("EXEC", "Playback", "") == b'EXEC "Playback" ""\n'
    conn.receive_data(b"200 result=0\n")
    conn.next_event()
    assert conn.send_command("VERBOSE", "Jérôme\tTab", "1") == 'VERBOSE "Jérôme\tTab" "1"\n'.encode()


def test_send_command_refuses_out_of_state() -> None:
    conn = AGIConnection()
    with pytest.raises(AGIProtocolError, match="before the environment"):
        conn.send_command("NOOP")
    conn.receive_data(ENV)
    conn.next_event()
    conn.send_command("NOOP")
    with pytest.raises(AGIProtocolError, match="one command at a time"):
        conn.send_command("NOOP")
    conn.receive_data(b"")
    events_of(conn)
    with pytest.raises(AGIProtocolError, match="not allowed while closed"):
        conn.send_command("NOOP")


@pytest.mark.parametrize(
    ("command", "args", "error"),
    [
        ("SET VARIABLE", ("A", "line1\nHANGUP"), "argument 2 contains '\\n'"),
        ("SET VARIABLE", ("A\r", "v"), "argument 1 contains '\\r'"),
        ("EXEC", ("Dial", "a\x00b"), "argument 2 contains '\\x00'"),
        ("EXEC\nHANGUP", (), "invalid AGI command"),
        ("SET  VARIABLE", (), "invalid AGI command"),
        ("", (), "invalid AGI command"),
        ('EXEC "Dial"', (), "invalid AGI command"),
        ("VERBOSE", ("\udcff",), "not encodable"),
        ("VERBOSE", ("x" * 8200,), "exceeds 8191"),
        ("VERBOSE", ("x",) * 127, "more than 127 words"),
    ],
)
def test_send_command_rejects(command: str, args: tuple[str, ...], error: str) -> None:
    conn = ready()
    with pytest.raises(AGIProtocolError) as info:
        conn.send_command(command, *args)
    assert error in str(info.value)
    assert conn.state is AGIState.IDLE  # a refused command leaves the connection usable
    conn.send_command("NOOP")


def test_command_line_limit_counts_the_newline() -> None:
    conn = AGIConnection(max_line=2048)  # Asterisk 22.0-22.5
    conn.receive_data(ENV)
    conn.next_event()
    overhead = len(b'VERBOSE ""\n')
    with pytest.raises(AGIProtocolError):
        conn.send_command("VERBOSE", "x" * (2048 - overhead))
    assert len(conn.send_command("VERBOSE", "x" * (2047 - overhead))) == 2047


def parse_args(line: str) -> list[str]:
    """A line-for-line port of res_agi.c parse_args (the reader of our command lines)."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            escaped = False
            continue
        if char in " \t" and not quoted and not escaped:
            whitespace = True
            if cur is not None:
                argv[-1] = "".join(cur)
                cur = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        cur.append(char)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


@FUZZ
@given(
    command=st.sampled_from(["EXEC", "SET VARIABLE", "GET VARIABLE", "VERBOSE", "DATABASE PUT"]),
    args=st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=30),
        max_size=5,
    ),
)
def test_quoted_arguments_survive_asterisk_parse_args(command: str, args: list[str]) -> None:
    conn = ready()
    line = conn.send_command(command, *args)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_args(line[:-1].decode()) == [*command.split(" "), *args]


def test_parse_args_port_matches_known_asterisk_behaviour() -> None:
    assert parse_args('EXEC Dial "PJSIP/a,30" \\"x') == ["EXEC", "Dial", "PJSIP/a,30", '"x']
    assert parse_args('VERBOSE ""') == ["VERBOSE", ""]


# -- fuzz ------------------------------------------------------------------------------------------------

reply_alphabet = st.sampled_from(
    [
        b"\n",
        b"\r\n",
        b"200 result=",
        b"1",
        b"-1",
        b" (",
        b")",
        b" endpos=",
        b"HANGUP",
        b"100 ",
        b"520-",
        b"520 ",
        b"510 ",
        b"x",
        b"\xff",
    ]
)


@FUZZ
@given(
    pieces=st.lists(reply_alphabet | st.binary(max_size=8), max_size=40),
    chunk=st.integers(min_value=1, max_value=50),
    eof=st.booleans(),
)
def test_fuzz_parse_or_raise_and_chunking_never_changes_the_outcome(pieces: list[bytes], chunk: int, eof: bool) -> None:
    data = ENV + b"".join(pieces)

    def outcome(size: int | None) -> list[AGIEvent] | str:
        try:
            events = run_session(data, size, 1000)
            if eof:
                conn = AGIConnection()
                conn.receive_data(data)
                conn.receive_data(b"")
                while not isinstance(conn.next_event(), ConnectionClosed):
                    if conn.state is AGIState.IDLE:
                        conn.send_command("NOOP")
            return events
        except ProtocolError as exc:
            assert isinstance(exc, AGIProtocolError)
            return "error"

    whole = outcome(None)
    assert outcome(chunk) == whole
    assert outcome(1) == whole


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes_from_the_first_byte(data: bytes) -> None:
    conn = AGIConnection(max_line=64, max_env_vars=8)
    try:
        conn.receive_data(data)
        for _ in range(100):
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if conn.state is AGIState.IDLE:
                conn.send_command("NOOP")
    except ProtocolError as exc:
        assert isinstance(exc, AGIProtocolError)
    assert conn.buffered <= len(data)


@FUZZ
@given(
    st.text(alphabet=st.characters(blacklist_characters=" \r\n", blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from([b"\n", b"\r\n"]),
)
def test_fast_reply_path_builds_what_parse_reply_line_builds(result: str, ending: bytes) -> None:
    conn = AGIConnection()
    conn.receive_data(b"agi_network: yes\n\n")
    assert isinstance(conn.next_event(), AGIEnvironment)
    conn.send_command("NOOP")
    line = "200 result=" + result
    conn.receive_data(line.encode() + ending)
    assert conn.next_event() == parse_reply_line(line)
    assert conn.state is AGIState.IDLE and conn.buffered == 0
