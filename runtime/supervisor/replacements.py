"""Start-first replacements: the candidates started beside the processes they replace, and the
callers waiting for a reload (workers.md 6.3, reload.md, console.md 5).

Rules:

1. A name has at most one candidate. A candidate is not the current process of its name: it is
   neither in the manager's ``procs`` nor in the state table until it takes over.
2. A candidate's ``generation`` is its reload attempt (:class:`ReloadCoordinator` numbers them) or
   ``None`` for a zero-downtime restart.
3. A restart's candidate that serves takes over on its own (:class:`TakeOver`); a reload's counts as
   acked for its attempt (:class:`Acked`), and the coordinator says when the attempt commits. During
   the shutdown nothing takes over.
4. A candidate that exits or misses the ack limit before it serves is removed; the manager reports
   a failed start (never a crash) unless the shutdown or the manager itself stopped it.
5. Callers of ``reload()`` wait on futures, resolved together: with the processes that took over
   (:meth:`Replacements.finish`) or with ``WorkerBootError`` (:meth:`Replacements.fail`).

This module holds the bookkeeping only: the manager starts, stops and signals the processes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

from runtime.exceptions import WorkerBootError
from runtime.supervisor.output import OutputGate
from runtime.supervisor.process import ChildProcess

__all__ = ["Acked", "Candidate", "Replacements", "TakeOver"]


@dataclass(eq=False)
class Candidate:
    """A replacement started beside the process it replaces (rule 1)."""

    proc: ChildProcess
    generation: int | None
    gate: OutputGate | None = None  # a reload's replacement: its output shows once it takes over


class TakeOver(NamedTuple):
    """The restart's candidate serves: it becomes the current process of ``name``."""

    name: str
    candidate: Candidate


class Acked(NamedTuple):
    """The reload's candidate serves: tell the coordinator."""

    name: str
    generation: int


class Replacements:
    """The candidate of each name and the reload's waiters; returns decisions, performs none."""

    def __init__(self) -> None:
        self._candidates: dict[str, Candidate] = {}
        self._waiters: list[asyncio.Future[list[ChildProcess]]] = []
        self._committed: list[ChildProcess] = []
        self.failed: ChildProcess | None = None  # the replacement whose failure is reported

    # --- candidates ----------------------------------------------------------------------------

    def add(self, name: str, candidate: Candidate) -> None:
        self._candidates[name] = candidate

    def pop(self, name: str) -> Candidate | None:
        """Remove and return the candidate of ``name``, if any."""
        return self._candidates.pop(name, None)

    def take(self, name: str, generation: int | None) -> Candidate | None:
        """Remove and return the candidate of ``name`` if it belongs to ``generation``."""
        candidate = self._candidates.get(name)
        if candidate is None or candidate.generation != generation:
            return None
        del self._candidates[name]
        return candidate

    def serving(self, proc: ChildProcess, stopping: bool) -> TakeOver | Acked | None:
        """``proc`` accepts connections: what that means if it is a candidate (rule 3)."""
        candidate = self._candidates.get(proc.name)
        if candidate is None or candidate.proc is not proc or stopping:
            return None
        if candidate.generation is None:
            del self._candidates[proc.name]
            return TakeOver(proc.name, candidate)
        return Acked(proc.name, candidate.generation)

    def exited(self, proc: ChildProcess) -> Candidate | None:
        """``proc`` exited: its candidate, removed, if it was one (rule 4)."""
        candidate = self._candidates.get(proc.name)
        if candidate is None or candidate.proc is not proc:
            return None
        del self._candidates[proc.name]
        return candidate

    def timed_out(self, name: str, candidate: Candidate, stopping: bool) -> bool:
        """``candidate`` missed the ack limit: True (and it is removed) if that is a failure."""
        if self._candidates.get(name) is not candidate or stopping:
            return False
        del self._candidates[name]
        return True

    def clear(self) -> list[Candidate]:
        """The shutdown: every candidate, removed."""
        candidates = list(self._candidates.values())
        self._candidates.clear()
        return candidates

    # --- the reload's waiters ------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        return bool(self._waiters)

    def wait(self, waiter: asyncio.Future[list[ChildProcess]]) -> None:
        """A reload begins: ``waiter`` learns how it ends (rule 5)."""
        self._waiters.append(waiter)
        self._committed = []

    def committed(self, proc: ChildProcess) -> None:
        """``proc`` took over (or restarted) as part of the reload."""
        self._committed.append(proc)

    def finish(self) -> None:
        """The reload committed: every waiter gets the processes that took over."""
        done, self._committed = self._committed, []
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(done)

    def fail(self, reason: str) -> None:
        """The reload failed or was abandoned: every waiter gets ``WorkerBootError(reason)``."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(WorkerBootError(reason))
                waiter.exception()
        self._committed = []
