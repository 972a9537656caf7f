"""What the manager does when a child exits: pure decisions on plain values (workers.md 4, 8).

The manager describes an exit as an :class:`Exit` and performs the decision that
:meth:`ExitPolicy.exited` returns; for a crash it reports the worker's last output, then asks
:meth:`ExitPolicy.crashed` whether to start a replacement. No I/O here, no clock: the caller passes
``now``.

Rules:

1. During the shutdown every exit is expected: :class:`Ignore`. So is the exit of a process that is
   no longer the current one of its name (an old process that was replaced) and of a server
   worker (or the reloader) the manager stopped itself.
2. A server worker that exits unasked before its ack while the server starts up:
   :class:`BootFailed`; the whole server stops with exit code 1 (workers.md 4). A worker that acked
   has started, even when the manager has not yet resumed from waiting for the acks: its death is a
   crash (rule 4).
3. A server worker started by a restart that exits before its ack: :class:`GiveUp` (``"restart"``).
   The same code would fail again: no respawn loop, one clear line.
4. Any other exit of a server worker, or of the reloader (killed by the OOM killer, say: saves
   would no longer reload, silently), is a crash: :class:`Heal`. The manager reports it, then
   :meth:`ExitPolicy.crashed` counts it: the ``crash_limit``-th crash of a name within
   ``crash_window`` seconds is :class:`GiveUp` (``"crashes"``, the worker is left FAILED); before
   that :class:`HealAfter` a back-off of 0.1 s doubling per crash in the window, at most 10 s.
5. The exit of a current custom process, whatever its code and whoever stopped it:
   :class:`Forget` (the manager removes it from the table when it was registered with
   ``tracked=False`` and no replica of it is left).
"""

from __future__ import annotations

from collections import deque
from typing import Literal, NamedTuple

from runtime.supervisor.messages import ProcessKind

__all__ = [
    "BootFailed",
    "Crash",
    "Exit",
    "ExitPolicy",
    "Forget",
    "GiveUp",
    "Heal",
    "HealAfter",
    "Ignore",
    "Outcome",
    "short_reason",
]


def short_reason(reason: str) -> str:
    """The exception type of ``"SyntaxError: invalid syntax (...)"``-style reasons (the traceback
    itself was printed by the process that failed: never twice)."""
    head, sep, _ = reason.partition(":")
    return head if sep and head.isidentifier() else reason


class Exit(NamedTuple):
    """One child's exit, as plain values (a NamedTuple: a frozen dataclass costs ~0.4 ms of
    start-up to build)."""

    name: str
    kind: ProcessKind
    reason: str  # the child's own one-line summary, or "exit code N"
    current: bool = True  # still the current process of ``name``
    expected: bool = False  # the manager asked it to stop
    acked: bool = False  # it finished before_server_start
    restarted: bool = False  # started by a restart (not the start-up, not a heal)
    booting: bool = False  # the server is starting up (the manager waits for the acks)
    stopping: bool = False  # the server is shutting down


class Ignore(NamedTuple):
    """Nothing to do."""


class BootFailed(NamedTuple):
    """The start-up failed: stop everything, exit code 1."""

    reason: str


class GiveUp(NamedTuple):
    """Leave the worker FAILED: its start after a restart failed, or it crashes in a loop."""

    why: Literal["restart", "crashes"]
    crashes: int = 0


class Heal(NamedTuple):
    """A crash: report it, then ask :meth:`ExitPolicy.crashed`."""


class HealAfter(NamedTuple):
    """Start a replacement after ``delay`` seconds."""

    delay: float


class Forget(NamedTuple):
    """A custom process ended: drop it if it is untracked."""


Outcome = Ignore | BootFailed | GiveUp | Heal | Forget
Crash = HealAfter | GiveUp


class ExitPolicy:
    """The rules above, with the crash history of each name (the only state it keeps)."""

    def __init__(self, crash_limit: int = 5, crash_window: float = 60.0) -> None:
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        self._crashes: dict[str, deque[float]] = {}

    def exited(self, exit: Exit) -> Outcome:
        if exit.stopping or not exit.current:
            return Ignore()
        if exit.kind == "custom":
            return Forget()
        if exit.kind not in ("server", "reloader") or exit.expected:
            return Ignore()
        if exit.kind == "reloader":
            return Heal()
        if exit.booting and not exit.acked:
            return BootFailed(f"{exit.name} failed to start: {exit.reason}")
        if exit.restarted and not exit.acked:
            return GiveUp("restart")
        return Heal()

    def crashed(self, name: str, now: float) -> Crash:
        """Count a crash of ``name`` at ``now`` (monotonic seconds)."""
        crashes = self._crashes.setdefault(name, deque())
        while crashes and now - crashes[0] > self.crash_window:
            crashes.popleft()
        crashes.append(now)
        if len(crashes) >= self.crash_limit:
            return GiveUp("crashes", len(crashes))
        return HealAfter(min(0.1 * 2 ** (len(crashes) - 1), 10.0))
