"""ReloadCoordinator: start-first, all-or-nothing reloads (pure logic, no processes)."""

from __future__ import annotations

from runtime.supervisor.reloader import (
    ProcessView,
    ReloadCoordinator,
    ReportFailure,
    RestartCustom,
    RetireOld,
    StartReplacement,
    StopReplacement,
    make_restart_request,
)

PROCS = [
    ProcessView("Vivace-Server-0-0", server=True, transient=True),
    ProcessView("Vivace-Server-1-0", server=True, transient=True),
    ProcessView("Vivace-JOBS-0", server=False, transient=True),
    ProcessView("Vivace-DURABLE-0", server=False, transient=False, restartable=True),
    ProcessView("Vivace-Reloader-0", server=False, transient=False, restartable=False),
]


def test_the_request_message_is_a_start_first_global_restart_with_sorted_paths() -> None:
    request = make_restart_request({"/b.py", "/a.py"})
    assert request.names == ()
    assert request.all_workers is True
    assert request.changed == ("/a.py", "/b.py")
    assert request.zero_downtime is True


def test_replacements_start_first_and_old_workers_retire_only_when_all_acked() -> None:
    c = ReloadCoordinator()
    actions = c.request({"/app.py"}, PROCS)
    assert actions == [
        StartReplacement("Vivace-Server-0-0", ("/app.py",), 1),
        StartReplacement("Vivace-Server-1-0", ("/app.py",), 1),
    ]
    assert c.acked("Vivace-Server-0-0", 1) == []  # the old ones keep serving meanwhile
    assert c.in_progress
    assert c.acked("Vivace-Server-1-0", 1) == [
        RetireOld("Vivace-Server-0-0", 1),
        RetireOld("Vivace-Server-1-0", 1),
        RestartCustom("Vivace-JOBS-0", ("/app.py",)),
    ]
    assert not c.in_progress
    assert c.uncommitted == frozenset()


def test_a_failed_start_keeps_the_old_workers_reports_once_and_the_next_save_retries() -> None:
    c = ReloadCoordinator()
    c.request({"/app.py"}, PROCS)
    c.acked("Vivace-Server-0-0", 1)
    actions = c.failed("Vivace-Server-1-0", 1, "SyntaxError: invalid syntax")
    assert actions == [
        StopReplacement("Vivace-Server-0-0", 1),
        ReportFailure("Vivace-Server-1-0", "SyntaxError: invalid syntax", ("/app.py",)),
    ]
    assert not any(isinstance(a, RetireOld) for a in actions)
    # the second replacement's failure of the same attempt is not reported again
    assert c.failed("Vivace-Server-0-0", 1, "SyntaxError: invalid syntax") == []
    assert c.uncommitted == {"/app.py"}
    # the fixed save: a new attempt that carries both saves' files
    actions = c.request({"/helpers.py"}, PROCS)
    assert actions == [
        StartReplacement(
            "Vivace-Server-0-0",
            (
                "/app.py",
                "/helpers.py",
            ),
            2,
        ),
        StartReplacement(
            "Vivace-Server-1-0",
            (
                "/app.py",
                "/helpers.py",
            ),
            2,
        ),
    ]
    c.acked("Vivace-Server-0-0", 2)
    done = c.acked("Vivace-Server-1-0", 2)
    assert (
        RestartCustom(
            "Vivace-JOBS-0",
            (
                "/app.py",
                "/helpers.py",
            ),
        )
        in done
    )
    assert c.last_failure is None


def test_a_new_save_during_a_reload_supersedes_it() -> None:
    c = ReloadCoordinator()
    c.request({"/a.py"}, PROCS[:2])
    c.acked("Vivace-Server-0-0", 1)
    actions = c.request({"/b.py"}, PROCS[:2])
    assert actions[:2] == [
        StopReplacement("Vivace-Server-0-0", 1),
        StopReplacement("Vivace-Server-1-0", 1),
    ]
    assert actions[2:] == [
        StartReplacement(
            "Vivace-Server-0-0",
            (
                "/a.py",
                "/b.py",
            ),
            2,
        ),
        StartReplacement(
            "Vivace-Server-1-0",
            (
                "/a.py",
                "/b.py",
            ),
            2,
        ),
    ]
    # late news from the superseded attempt changes nothing
    assert c.acked("Vivace-Server-1-0", 1) == []
    assert c.failed("Vivace-Server-1-0", 1, "boom") == []
    assert c.in_progress


def test_shutdown_during_a_reload_stops_the_replacements() -> None:
    c = ReloadCoordinator()
    c.request({"/a.py"}, PROCS[:2])
    assert c.cancel() == [
        StopReplacement("Vivace-Server-0-0", 1),
        StopReplacement("Vivace-Server-1-0", 1),
    ]
    assert c.cancel() == []
    assert not c.in_progress


def test_durable_and_non_restartable_processes_are_never_touched() -> None:
    c = ReloadCoordinator()
    names = [a.name for a in c.request({"/a.py"}, PROCS)]
    names += [a.name for a in c.acked("Vivace-Server-0-0", 1)]
    names += [a.name for a in c.acked("Vivace-Server-1-0", 1)]
    assert "Vivace-DURABLE-0" not in names
    assert "Vivace-Reloader-0" not in names


def test_without_server_workers_transient_customs_restart_at_once() -> None:
    c = ReloadCoordinator()
    assert c.request({"/a.py"}, [PROCS[2]]) == [RestartCustom("Vivace-JOBS-0", ("/a.py",))]
    assert not c.in_progress
