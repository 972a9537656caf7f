"""The process-state transition table (runtime/supervisor/states.py), with plain values."""

from __future__ import annotations

import pytest

from runtime.supervisor.messages import ProcessState as S
from runtime.supervisor.states import TRANSITIONS, Event, IllegalTransition, advance


def test_a_first_start_goes_idle_starting_started_acked() -> None:
    state = S.IDLE
    for event, expected in [
        (Event.START, S.STARTING),
        (Event.SPAWN, S.STARTED),
        (Event.ACK, S.ACKED),
        (Event.COMPLETE, S.COMPLETED),
    ]:
        state = advance(state, event)
        assert state is expected


def test_a_restart_spawns_straight_from_restarting() -> None:
    assert advance(S.ACKED, Event.RESTART) is S.RESTARTING
    assert advance(S.RESTARTING, Event.SPAWN) is S.STARTED


def test_held_processes_wait_in_none_until_restarted() -> None:
    assert advance(S.IDLE, Event.HOLD) is S.NONE
    assert advance(S.NONE, Event.RESTART) is S.RESTARTING
    with pytest.raises(IllegalTransition, match="NONE cannot start"):
        advance(S.NONE, Event.START)


@pytest.mark.parametrize("state", [s for s in S if s is not S.TERMINATED])
def test_restart_and_take_over_from_every_state_but_terminated(state: S) -> None:
    assert advance(state, Event.RESTART) is S.RESTARTING
    assert advance(state, Event.TAKE_OVER) is S.ACKED


def test_after_terminate_only_a_late_ack_and_the_exit_move_the_state() -> None:
    assert advance(S.ACKED, Event.TERMINATE) is S.TERMINATED
    assert advance(S.TERMINATED, Event.ACK) is S.ACKED
    assert advance(S.TERMINATED, Event.FAIL) is S.FAILED
    assert advance(S.TERMINATED, Event.COMPLETE) is S.COMPLETED
    for event in (Event.RESTART, Event.TAKE_OVER, Event.START, Event.SPAWN, Event.HOLD):
        with pytest.raises(IllegalTransition):
            advance(S.TERMINATED, event)


def test_an_exit_needs_a_started_process() -> None:
    for state in (S.IDLE, S.NONE):
        with pytest.raises(IllegalTransition, match="cannot fail"):
            advance(state, Event.FAIL)
    assert advance(S.STARTING, Event.FAIL) is S.FAILED  # its replacement could not start


def test_acks_and_spawns_only_from_their_states() -> None:
    with pytest.raises(IllegalTransition, match="allowed from: RESTARTING, STARTED, TERMINATED"):
        advance(S.ACKED, Event.ACK)
    with pytest.raises(IllegalTransition):
        advance(S.ACKED, Event.SPAWN)


def test_joined_is_never_entered_and_every_event_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Event)
    assert all(S.JOINED not in row.values() for row in TRANSITIONS.values())
    assert all(S.IDLE not in row.values() for row in TRANSITIONS.values())
