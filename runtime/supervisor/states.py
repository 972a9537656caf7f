"""The process states of the state table and the events that move them (workers.md section 3).

The manager is the only writer of an entry's ``state`` (children cannot write it: it is a restricted
key), and it moves a state only through :func:`advance`, which looks the move up in
:data:`TRANSITIONS` and raises :class:`IllegalTransition` for any other. The table below is the
whole story; these are its rules:

1. An entry without a state is IDLE: registered, never started. IDLE is never written.
2. HOLD: a process registered with ``auto_start=False`` waits in NONE (until restarted by name).
3. START, the first start of a process, moves IDLE to STARTING; SPAWN, once the OS process runs,
   moves STARTING to STARTED.
4. RESTART moves every state but TERMINATED to RESTARTING: a restart, or a crashed server worker
   being replaced. Its SPAWN goes straight from RESTARTING to STARTED.
5. ACK (a server worker finished ``before_server_start``) moves STARTED to ACKED. An ack that was
   on its way still counts when a restart began meanwhile whose replacement could not start
   (RESTARTING) and when the shutdown began meanwhile (TERMINATED).
6. TAKE_OVER: a replacement started beside the current process (zero-downtime restart, reload)
   serves and becomes the current process: every state but TERMINATED becomes ACKED.
7. TERMINATE (the shutdown) moves every state to TERMINATED. Once the shutdown began, only a late
   ack (rule 5) and the exit (rule 8) move an entry: nothing restarts or takes over.
8. COMPLETE (exit code 0) and FAIL (any other code, a signal included) record the exit of the
   current process: every state that a started process can be in becomes COMPLETED or FAILED.
9. JOINED is never written (Sanic writes it while joining at shutdown; vivace's entries go from
   TERMINATED to COMPLETED or FAILED when the process has exited).

"Forward moves are free, backward moves are forced" (workers.md) is rules 4, 6, 7 and 8.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Final

from runtime.supervisor.messages import ProcessState

__all__ = ["TRANSITIONS", "Event", "IllegalTransition", "advance"]


class Event(Enum):
    """What happens to a process, as the manager sees it."""

    HOLD = "hold"
    START = "start"
    SPAWN = "spawn"
    RESTART = "restart"
    ACK = "ack"
    TAKE_OVER = "take over"
    TERMINATE = "terminate"
    COMPLETE = "complete"
    FAIL = "fail"


class IllegalTransition(RuntimeError):
    """The manager tried a move the table does not allow: a bug in the manager, never the user's."""


_ALL: Final = frozenset(ProcessState)
_STARTED_ONCE: Final = _ALL - {ProcessState.IDLE, ProcessState.NONE}
S = ProcessState


def _to(target: ProcessState, sources: Iterable[ProcessState]) -> dict[ProcessState, ProcessState]:
    return {source: target for source in sorted(sources)}


#: event -> {state before: state after}; a pair that is missing is an illegal transition.
TRANSITIONS: Final[dict[Event, dict[ProcessState, ProcessState]]] = {
    Event.HOLD: {S.IDLE: S.NONE},
    Event.START: {S.IDLE: S.STARTING},
    Event.SPAWN: {S.STARTING: S.STARTED, S.RESTARTING: S.STARTED},
    Event.RESTART: _to(S.RESTARTING, _ALL - {S.TERMINATED}),
    Event.ACK: _to(S.ACKED, (S.STARTED, S.RESTARTING, S.TERMINATED)),
    Event.TAKE_OVER: _to(S.ACKED, _ALL - {S.TERMINATED}),
    Event.TERMINATE: _to(S.TERMINATED, _ALL),
    Event.COMPLETE: _to(S.COMPLETED, _STARTED_ONCE),
    Event.FAIL: _to(S.FAILED, _STARTED_ONCE),
}


def advance(state: ProcessState, event: Event) -> ProcessState:
    """The state after ``event`` happens in ``state``; :class:`IllegalTransition` if it cannot."""
    try:
        return TRANSITIONS[event][state]
    except KeyError:
        raise IllegalTransition(
            f"a process in state {state.name} cannot {event.value} "
            f"(allowed from: {', '.join(s.name for s in TRANSITIONS[event])})"
        ) from None
