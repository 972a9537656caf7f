"""Start-first replacements: the candidates started beside the processes they replace, the reload
in progress and the callers waiting for it (workers.md 6.3, reload.md, console.md 5).

Rules:

1. A name has at most one candidate. A candidate is not the current process of its name: it is
   neither in the manager's ``procs`` nor in the state table until it takes over.
2. A candidate's ``generation`` is its reload attempt (:class:`ReloadCoordinator` numbers them) or
   ``None`` for a zero-downtime restart. A reload's candidate has its output held (an
   ``OutputGate``) until it takes over; a failed one's is shown, a stopped one's dropped.
3. A restart's candidate that serves takes over on its own (:class:`Commit`); a reload's counts as
   acked for its attempt, and the coordinator says when the attempt commits: every old worker is
   retired and the transient custom processes restart. During the shutdown nothing takes over.
4. A candidate that exits or misses the ack limit before it serves is removed and reported as a
   failed start (never a crash) unless the shutdown or the manager itself stopped it. For a reload
   that stops the whole attempt: the old workers keep serving.
5. A zero-downtime restart of a name supersedes its earlier candidate; if that was a reload's, the
   reload is abandoned.
6. Callers of ``reload()`` wait on futures, resolved together when the attempt ends: with the
   processes that took over or restarted, or with ``WorkerBootError``; then the console's progress
   line ends (:class:`Done`).
7. A reload whose new code fails marks the code on disk broken (``broken`` says why) until new
   code serves: a reload commits, or a restart's candidate takes over. Meanwhile the manager
   restarts server workers start-first even when asked for shutdown-first (a restart must not
   stop the workers that serve the previous code for replacements that cannot start).

Events come in as method calls and go out as typed effects (the coordinator's actions translated
into what the manager does), produced lazily: the manager performs each effect before the next one
is decided, as it did when it performed the coordinator's actions itself. No process is touched
here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from runtime.compat import assert_never  # typing.assert_never is Python 3.11+
from runtime.exceptions import WorkerBootError
from runtime.supervisor.output import OutputGate
from runtime.supervisor.policy import short_reason
from runtime.supervisor.process import ChildProcess
from runtime.supervisor.registry import Registry

if TYPE_CHECKING:
    from runtime.supervisor.reloader import Action, ReloadCoordinator

__all__ = [
    "Candidate",
    "Commit",
    "Done",
    "Drop",
    "Effect",
    "Launch",
    "Replacements",
    "Report",
    "Restart",
    "Show",
    "Stop",
]


class Candidate:
    """A replacement started beside the process it replaces (rule 1). A plain slotted class, not
    a dataclass: this module is imported at every start, and a dataclass costs ~0.15 ms to build."""

    __slots__ = ("gate", "generation", "proc")

    def __init__(
        self, proc: ChildProcess, generation: int | None, gate: OutputGate | None = None
    ) -> None:
        self.proc = proc
        self.generation = generation
        self.gate = gate  # a reload's replacement: its output shows once it takes over

    def __repr__(self) -> str:
        return f"Candidate(proc={self.proc!r}, generation={self.generation!r})"


class Launch(NamedTuple):
    """Start a candidate for ``name`` (restarted, seeing ``changed``), then :meth:`add` it; a
    reload's (``generation`` not ``None``) with its output held."""

    name: str
    changed: tuple[str, ...]
    generation: int | None


class Stop(NamedTuple):
    """Stop a candidate that will not take over (SIGTERM, SIGKILL after 2 s); with ``drop``, its
    held output is dropped."""

    candidate: Candidate
    drop: bool


class Commit(NamedTuple):
    """The candidate takes over ``name``: it becomes current, the old process is retired."""

    name: str
    candidate: Candidate


class Restart(NamedTuple):
    """Restart custom process ``name`` (shutdown-first), then tell :meth:`committed`."""

    name: str
    changed: tuple[str, ...]


class Report(NamedTuple):
    """Log ``message`` once the output of ``after`` is written (it says "its output is above")."""

    message: str
    after: ChildProcess | None


class Show(NamedTuple):
    """Show the held output of a candidate whose failure is reported."""

    candidate: Candidate


class Drop(NamedTuple):
    """Drop the held output of a candidate that the shutdown stops with the other processes."""

    candidate: Candidate


class Done(NamedTuple):
    """A restart or reload the console shows as in progress ended."""


Effect = Launch | Stop | Commit | Restart | Report | Show | Drop | Done


class Replacements:
    """The candidate of each name, the reload coordinator and the reload's waiters.

    ``registry`` is read (which names are still server workers or custom processes); nothing else
    outside is. Methods named after events return the effects to perform, in order.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._candidates: dict[str, Candidate] = {}
        self._coordinator: ReloadCoordinator | None = None
        self._waiters: list[asyncio.Future[list[ChildProcess]]] = []
        self._committed: list[ChildProcess] = []
        self._failed: ChildProcess | None = None  # the replacement whose failure is reported
        # why the code on disk does not start (the last reload failed), until new code serves:
        # a shutdown-first restart then goes start-first (manager.py)
        self.broken: str | None = None

    # --- what the manager did ------------------------------------------------------------------

    def add(self, name: str, candidate: Candidate) -> None:
        """A :class:`Launch` started ``candidate``."""
        self._candidates[name] = candidate

    def committed(self, proc: ChildProcess) -> None:
        """``proc`` took over or restarted (a :class:`Commit` or :class:`Restart` was performed)."""
        self._committed.append(proc)

    # --- events --------------------------------------------------------------------------------

    def reload(
        self, changed: Iterable[str], waiter: asyncio.Future[list[ChildProcess]]
    ) -> Iterator[Effect]:
        """A reload: every server worker and transient custom process, start-first (rule 3)."""
        from runtime.supervisor.reloader import ProcessView, ReloadCoordinator

        if self._coordinator is None:
            self._coordinator = ReloadCoordinator()
        self._waiters.append(waiter)
        self._committed = []
        views = [ProcessView(n, server=True, transient=True) for n in self._registry.server_names]
        views += [
            ProcessView(n, server=False, transient=r.transient, restartable=r.restartable)
            for n, r in self._registry.custom_names.items()
        ]
        yield from self._perform(self._coordinator.request(changed, views), stopping=False)

    def supersede(self, name: str, stopping: bool) -> Iterator[Effect]:
        """A zero-downtime restart of ``name`` is about to launch its candidate (rule 5)."""
        previous = self._candidates.pop(name, None)
        if previous is None:
            return
        yield Stop(previous, drop=False)
        if previous.generation is not None and self._coordinator is not None:
            yield from self._perform(self._coordinator.cancel(), stopping)
            yield from self._settle(f"the reload was superseded by a restart of {name}")

    def serving(self, proc: ChildProcess, stopping: bool) -> Iterator[Effect]:
        """``proc`` accepts connections; if it is a candidate it may take over (rule 3)."""
        candidate = self._candidates.get(proc.name)
        if candidate is None or candidate.proc is not proc or stopping:
            return
        if candidate.generation is None:
            del self._candidates[proc.name]
            self.broken = None  # the code on disk starts again
            yield Commit(proc.name, candidate)
        elif self._coordinator is not None:
            acked = self._coordinator.acked(proc.name, candidate.generation)
            yield from self._perform(acked, stopping)

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

    def failed(
        self, name: str, candidate: Candidate, reason: str, old_pid: int | None, stopping: bool
    ) -> Iterator[Effect]:
        """``candidate`` (removed by :meth:`exited` or :meth:`timed_out`) failed to start."""
        if candidate.gate is not None:
            yield Show(candidate)  # the one failure reported: its traceback is shown
        self._failed = candidate.proc
        if candidate.generation is None:
            yield Report(
                f"Zero-downtime restart of {name} failed ({short_reason(reason)}; its output is "
                f"above); the old worker [{'-' if old_pid is None else old_pid}] keeps serving",
                candidate.proc,
            )
        elif self._coordinator is not None:
            failed = self._coordinator.failed(name, candidate.generation, reason)
            yield from self._perform(failed, stopping)

    def shutdown(self) -> Iterator[Effect]:
        """The shutdown stops every process: forget the candidates, fail the waiters."""
        if self._coordinator is not None:
            self._coordinator.cancel()  # every candidate is stopped with the rest
        candidates = list(self._candidates.values())
        self._candidates.clear()
        for candidate in candidates:
            if candidate.gate is not None:
                yield Drop(candidate)
        if self._waiters:
            yield from self._settle("the server is stopping")

    # --- inside --------------------------------------------------------------------------------

    def _perform(self, actions: list[Action], stopping: bool) -> Iterator[Effect]:
        """The coordinator's actions as effects, decided one action at a time."""
        from runtime.supervisor.reloader import (
            ReportFailure,
            RestartCustom,
            RetireOld,
            StartReplacement,
            StopReplacement,
        )

        committed = False
        for action in actions:
            match action:
                case StartReplacement(name, reloaded, generation):
                    earlier = self._candidates.pop(name, None)  # a zero-downtime restart's
                    if earlier is not None:
                        yield Stop(earlier, drop=False)
                    yield Launch(name, reloaded, generation)
                case StopReplacement(name, generation):
                    candidate = self._take(name, generation)
                    if candidate is not None:
                        yield Stop(candidate, drop=True)  # never served: its output would repeat
                case RetireOld(name, generation):
                    committed = True
                    candidate = self._take(name, generation)
                    if candidate is None:
                        continue
                    if name not in self._registry.server_names or stopping:  # scaled away
                        yield Stop(candidate, drop=True)
                        continue
                    yield Commit(name, candidate)
                case RestartCustom(name, reloaded):
                    committed = True
                    if name in self._registry.custom_names and not stopping:
                        yield Restart(name, reloaded)
                case ReportFailure(name, traceback, changed):
                    self.broken = f"{name} could not start the new code: {short_reason(traceback)}"
                    yield Report(
                        f"Reload failed: {name} could not start the new code "
                        f"({short_reason(traceback)}; its output is above). The previous "
                        "workers keep serving; fix the code and save again "
                        f"(changed: {', '.join(changed) or 'none'}).",
                        self._failed,
                    )
                    yield from self._settle(f"{name} could not start the new code")
                case _:
                    assert_never(action)
        if committed and self._coordinator is not None and not self._coordinator.in_progress:
            self.broken = None  # the reload's new code serves
            done, self._committed = self._committed, []
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(done)
            yield Done()

    def _settle(self, reason: str) -> Iterator[Effect]:
        """The reload failed or was abandoned: every waiter gets ``WorkerBootError(reason)``."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(WorkerBootError(reason))
                waiter.exception()
        self._committed = []
        yield Done()

    def _take(self, name: str, generation: int) -> Candidate | None:
        candidate = self._candidates.get(name)
        if candidate is None or candidate.generation != generation:
            return None
        del self._candidates[name]
        return candidate
