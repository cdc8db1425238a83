"""A routing decision travels to the dialplan as one MSet() argument list (config_render.mset_arguments).

The parser below follows Asterisk 22's main/app.c `__ast_app_separate_args`, which MSet
(main/pbx_variables.c `pbx_builtin_setvar_multiple`) applies twice: on `,` for the pairs, then on `=` for
each pair (name, then the rest verbatim). The e2e tests run the same values through a real node."""

from __future__ import annotations

import pytest

from hotline.asterisk.config_render import DECISION_VARS, mset_arguments, render_node
from hotline.asterisk.lab import node_specs
from hotline.settings import load_settings


def _separate(buf: str, delim: str, max_args: int) -> list[str]:
    """__ast_app_separate_args with remove_chars=1."""
    args: list[str] = []
    i, paren, bracket, quote = 0, 0, 0, False
    while i < len(buf) and len(args) < max_args - 1:
        cur = []
        while i < len(buf):
            c = buf[i]
            if c == "(":
                paren += 1
            elif c == ")" and paren:
                paren -= 1
            elif c == "[":
                bracket += 1
            elif c == "]" and bracket:
                bracket -= 1
            elif c == '"' and delim != '"':
                quote = not quote
                i += 1
                continue
            elif c == "\\":
                i += 1  # the backslash goes, the next character is literal
                if i < len(buf):
                    cur.append(buf[i])
                i += 1
                continue
            elif c == delim and not paren and not quote and not bracket:
                i += 1
                break
            cur.append(c)
            i += 1
        args.append("".join(cur))
    if i < len(buf) or (buf and buf.endswith(delim) and len(args) < max_args):
        args.append(buf[i:])
    return args


def _mset(arguments: str) -> dict[str, str]:
    out = {}
    for pair in _separate(arguments, ",", 99):
        name, value = _separate(pair, "=", 2)
        out[name] = value
    return out


@pytest.mark.parametrize(
    "value",
    ["", "support", "PJSIP/+74951234567@carrier", 'Ivan, "Vanya" (VIP) [gold] a\\b =x', "a,b,,c", "((", "]]", "\\"],
)
def test_values_reach_the_channel_as_they_were(value: str) -> None:
    pairs = [("__HOTLINE_CALL_ID", "01a2-x"), ("CALLERID(name)", value), ("HOTLINE_QUEUE_TIMEOUT", "")]
    assert _mset(mset_arguments(pairs)) == {**dict(pairs), DECISION_VARS: ""}


def test_the_variable_is_cleared_once_applied_so_a_later_hop_starts_clean() -> None:
    assert mset_arguments([]) == f"{DECISION_VARS}="
    assert mset_arguments([("HOTLINE_IVR_ASK", "a&b")]).endswith(f",{DECISION_VARS}=")


@pytest.mark.parametrize("name", ["", "A,B", "A=B", "CALLERID(name", "X Y", "1ABC"])
def test_a_name_that_would_break_the_list_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a channel variable"):
        mset_arguments([(name, "v")])


def test_the_dialplan_applies_the_variables_after_every_routing_agi(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path})
    conf = render_node(settings, node_specs(settings, 1)[0], "/x")["extensions.conf"]
    routing_agis = [line for line in conf.splitlines() if "AGI(agi://" in line and "?node=" in line]
    applied = conf.count(f"MSet(${{{DECISION_VARS}}})")
    codes = sum(1 for line in routing_agis if any(f"/{c}?" in line for c in ("login", "logoff", "pause", "unpause")))
    assert applied == len(routing_agis) - codes  # feature codes set HOTLINE_PROMPT themselves
