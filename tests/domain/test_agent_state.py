"""The agent state machine table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotline.domain import agent_state as st
from hotline.domain.agent_state import AgentStatus, IllegalTransition, next_state

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_a_working_day() -> None:
    s = AgentStatus.logged_out(7, T0)
    path = []
    for i, event in enumerate(["login", "ring", "connect", "complete", "wrapup_end", "ring", "ring_no_answer",
                               "pause", "unpause", "logoff"]):  # fmt: skip
        s = s.moved(event, T0 + timedelta(minutes=i), **({"pause_reason": "lunch"} if event == "pause" else {}))
        path.append(s.state)
    assert path == [
        st.AVAILABLE, st.RINGING, st.ON_CALL, st.WRAP_UP, st.AVAILABLE, st.RINGING, st.AVAILABLE,
        st.PAUSED, st.AVAILABLE, st.LOGGED_OUT,
    ]  # fmt: skip


def test_state_since_moves_only_on_change_and_pause_reason_is_kept_only_while_paused() -> None:
    s = AgentStatus.logged_out(1, T0).moved("login", T0)
    ringing = s.moved("ring", T0 + timedelta(seconds=5))
    again = ringing.moved("ring", T0 + timedelta(seconds=9))  # ringall: a second queue rings too
    assert again.state_since == ringing.state_since == T0 + timedelta(seconds=5)
    paused = again.moved("pause", T0 + timedelta(seconds=20), pause_reason="lunch")
    assert paused.pause_reason == "lunch"
    other = paused.moved("pause", T0 + timedelta(seconds=30), pause_reason="training")
    assert other.state_since == T0 + timedelta(seconds=30)  # a new reason restarts the clock
    assert other.moved("unpause", T0 + timedelta(seconds=40)).pause_reason == ""


def test_paused_agents_stay_paused_through_direct_calls() -> None:
    assert next_state(st.PAUSED, "ring") == st.PAUSED
    assert next_state(st.PAUSED, "connect") == st.PAUSED
    assert next_state(st.PAUSED, "complete") == st.PAUSED


@pytest.mark.parametrize(
    ("state", "event"),
    [(st.LOGGED_OUT, "ring"), (st.LOGGED_OUT, "pause"), (st.LOGGED_OUT, "logoff"), (st.ON_CALL, "wrapup_end"),
     (st.AVAILABLE, "pause_expired"), (st.ON_CALL, "unpause")],
)  # fmt: skip
def test_illegal_transitions_are_named_errors(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition, match=f"{event!r} does not apply in state {state!r}"):
        next_state(state, event)


def test_every_pair_in_the_table_uses_known_states_and_events() -> None:
    states = {st.LOGGED_OUT, st.AVAILABLE, st.RINGING, st.ON_CALL, st.WRAP_UP, st.PAUSED}
    for (state, event), target in st.TRANSITIONS.items():
        assert state in states and target in states and event in st.EVENTS
