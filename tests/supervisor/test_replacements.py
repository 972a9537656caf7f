"""Replacement bookkeeping (runtime/supervisor/replacements.py): events in, typed effects out.

No processes: ``ChildProcess`` objects stand for them, and the test plays the manager's part by
reporting what it performed (``add``, ``committed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any, cast

import pytest

from runtime.exceptions import WorkerBootError
from runtime.supervisor.output import OutputGate
from runtime.supervisor.process import ChildProcess
from runtime.supervisor.registry import Registry
from runtime.supervisor.replacements import (
    Candidate,
    Commit,
    Done,
    Drop,
    Effect,
    Launch,
    Replacements,
    Report,
    Restart,
    Show,
    Stop,
)
from tests.supervisor.apps import countdown


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _registry(servers: int = 2) -> Registry:
    registry = Registry()
    for _ in range(servers):
        registry.add_server()
    for ident, transient in (("JOBS", True), ("DURABLE", False)):
        registry.register(
            ident,
            countdown,
            None,
            transient=transient,
            restartable=True,
            tracked=True,
            auto_start=True,
            workers=1,
            taken=(),
        )
    return registry


class Manager:
    """Performs effects the way the manager does, as far as the bookkeeping sees them."""

    def __init__(self, replacements: Replacements, loop: asyncio.AbstractEventLoop) -> None:
        self.replacements = replacements
        self.loop = loop
        self.procs: dict[str, ChildProcess] = {}
        self.candidates: dict[str, Candidate] = {}

    def proc(self, name: str) -> ChildProcess:
        process = cast(Any, None)
        return ChildProcess(name, "server", process, cast(Any, None), self.loop)

    def perform(self, effects: Iterable[Effect]) -> list[Effect]:
        done: list[Effect] = []
        for effect in effects:
            done.append(effect)
            match effect:
                case Launch(name, _, generation):
                    gate = OutputGate() if generation is not None else None
                    proc = self.proc(name)
                    self.procs[name] = proc
                    self.candidates[name] = Candidate(proc, generation, gate)
                    self.replacements.add(name, self.candidates[name])
                case Commit(_, candidate):
                    self.replacements.committed(candidate.proc)
                case Restart(name, _):
                    self.replacements.committed(self.proc(name))
        return done

    def serving(self, name: str) -> list[Effect]:
        return self.perform(self.replacements.serving(self.procs[name], stopping=False))


def test_a_reload_starts_every_server_first_and_commits_when_all_serve(
    loop: asyncio.AbstractEventLoop,
) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    waiter: asyncio.Future[list[ChildProcess]] = loop.create_future()
    assert m.perform(r.reload({"/app.py"}, waiter)) == [
        Launch("Vivace-Server-0-0", ("/app.py",), 1),
        Launch("Vivace-Server-1-0", ("/app.py",), 1),
    ]
    assert m.serving("Vivace-Server-0-0") == []  # the old workers keep serving meanwhile
    effects = m.serving("Vivace-Server-1-0")
    assert [type(e) for e in effects] == [Commit, Commit, Restart, Done]
    assert effects[2] == Restart("Vivace-JOBS-0", ("/app.py",))  # transient customs only
    assert [p.name for p in waiter.result()] == [
        "Vivace-Server-0-0",
        "Vivace-Server-1-0",
        "Vivace-JOBS-0",
    ]


def test_a_failed_replacement_shows_its_output_stops_the_others_and_fails_the_waiter(
    loop: asyncio.AbstractEventLoop,
) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    waiter: asyncio.Future[list[ChildProcess]] = loop.create_future()
    m.perform(r.reload({"/app.py"}, waiter))
    bad = m.procs["Vivace-Server-1-0"]
    candidate = r.exited(bad)
    assert candidate is not None and candidate.generation == 1
    assert r.exited(bad) is None  # removed
    effects = m.perform(r.failed(bad.name, candidate, "SyntaxError: x", 4000, stopping=False))
    assert [type(e) for e in effects] == [Show, Stop, Report, Done]
    stop = effects[1]
    assert isinstance(stop, Stop) and stop.drop and stop.candidate.proc.name == "Vivace-Server-0-0"
    report = effects[2]
    assert isinstance(report, Report) and report.after is bad
    assert report.message.startswith("Reload failed: Vivace-Server-1-0 could not start the new")
    assert "(SyntaxError; its output is above)" in report.message
    assert "(changed: /app.py)" in report.message
    with pytest.raises(WorkerBootError, match="Vivace-Server-1-0 could not start the new code"):
        waiter.result()


def test_a_zero_downtime_restart_takes_over_when_it_serves(
    loop: asyncio.AbstractEventLoop,
) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    assert list(r.supersede("Vivace-Server-0-0", stopping=False)) == []
    m.perform([Launch("Vivace-Server-0-0", (), None)])
    proc = m.procs["Vivace-Server-0-0"]
    assert list(r.serving(proc, stopping=True)) == []  # nothing takes over during the shutdown
    (commit,) = m.serving("Vivace-Server-0-0")
    assert isinstance(commit, Commit) and commit.candidate.proc is proc
    assert list(r.serving(proc, stopping=False)) == []  # it is current now, not a candidate


def test_a_failed_zero_downtime_restart_keeps_the_old_worker(
    loop: asyncio.AbstractEventLoop,
) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    m.perform([Launch("Vivace-Server-0-0", (), None)])
    proc = m.procs["Vivace-Server-0-0"]
    candidate = r.exited(proc)
    assert candidate is not None
    (report,) = r.failed(proc.name, candidate, "exit code 1", None, stopping=False)
    assert report == Report(
        "Zero-downtime restart of Vivace-Server-0-0 failed (exit code 1; its output is above); "
        "the old worker [-] keeps serving",
        proc,
    )


def test_a_restart_supersedes_the_reload_in_progress(loop: asyncio.AbstractEventLoop) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    waiter: asyncio.Future[list[ChildProcess]] = loop.create_future()
    m.perform(r.reload((), waiter))
    earlier = m.procs["Vivace-Server-0-0"]
    effects = m.perform(r.supersede("Vivace-Server-0-0", stopping=False))
    assert [type(e) for e in effects] == [Stop, Stop, Done]
    first, second = effects[0], effects[1]
    assert isinstance(first, Stop) and first.candidate.proc is earlier and not first.drop
    assert isinstance(second, Stop) and second.candidate.proc.name == "Vivace-Server-1-0"
    with pytest.raises(WorkerBootError, match="superseded by a restart of Vivace-Server-0-0"):
        waiter.result()


def test_a_replacement_of_a_worker_scaled_away_meanwhile_is_stopped(
    loop: asyncio.AbstractEventLoop,
) -> None:
    registry = _registry()
    r = Replacements(registry)
    m = Manager(r, loop)
    waiter: asyncio.Future[list[ChildProcess]] = loop.create_future()
    m.perform(r.reload((), waiter))
    (gone,) = registry.shrink(1)
    m.serving("Vivace-Server-0-0")
    effects = m.serving("Vivace-Server-1-0")
    stops = [e for e in effects if isinstance(e, Stop)]
    assert [s.candidate.proc.name for s in stops] == [gone] and stops[0].drop


def test_a_candidate_missing_the_ack_limit_is_removed_unless_stopping(
    loop: asyncio.AbstractEventLoop,
) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    m.perform([Launch("Vivace-Server-0-0", (), None)])
    candidate = m.candidates["Vivace-Server-0-0"]
    stranger = Candidate(candidate.proc, None)
    assert r.timed_out("Vivace-Server-0-0", stranger, stopping=False) is False  # not this one
    assert r.timed_out("Vivace-Server-0-0", candidate, stopping=True) is False
    assert r.timed_out("Vivace-Server-0-0", candidate, stopping=False) is True
    assert r.timed_out("Vivace-Server-0-0", candidate, stopping=False) is False  # removed
    assert r.exited(candidate.proc) is None


def test_the_shutdown_drops_held_output_and_fails_the_waiters(
    loop: asyncio.AbstractEventLoop,
) -> None:
    r = Replacements(_registry())
    m = Manager(r, loop)
    waiter: asyncio.Future[list[ChildProcess]] = loop.create_future()
    m.perform(r.reload((), waiter))
    effects = list(r.shutdown())
    assert [type(e) for e in effects] == [Drop, Drop, Done]
    with pytest.raises(WorkerBootError, match="the server is stopping"):
        waiter.result()
    assert list(r.shutdown()) == []
    assert list(r.serving(m.procs["Vivace-Server-0-0"], stopping=False)) == []


def test_a_failed_reload_marks_the_code_broken_until_new_code_serves(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Rule 7: the manager restarts start-first while ``broken`` says why the code fails."""
    r = Replacements(_registry())
    m = Manager(r, loop)
    assert r.broken is None
    waiter: asyncio.Future[list[ChildProcess]] = loop.create_future()
    m.perform(r.reload({"/app.py"}, waiter))
    bad = m.procs["Vivace-Server-1-0"]
    candidate = r.exited(bad)
    assert candidate is not None
    m.perform(r.failed(bad.name, candidate, "SyntaxError: x", 4000, stopping=False))
    assert r.broken == "Vivace-Server-1-0 could not start the new code: SyntaxError"
    # a restart's candidate that serves: the code on disk starts again
    m.perform([Launch("Vivace-Server-0-0", (), None)])
    m.serving("Vivace-Server-0-0")
    assert r.broken is None
    # and a reload that commits clears it too
    m.perform(r.reload({"/app.py"}, loop.create_future()))
    bad = m.procs["Vivace-Server-0-0"]
    candidate = r.exited(bad)
    assert candidate is not None
    m.perform(r.failed(bad.name, candidate, "ImportError: y", 4000, stopping=False))
    assert r.broken is not None and "ImportError" in r.broken
    m.perform(r.reload({"/app.py"}, loop.create_future()))
    m.serving("Vivace-Server-0-0")
    assert r.broken is not None  # not every new worker serves yet
    m.serving("Vivace-Server-1-0")
    assert r.broken is None
