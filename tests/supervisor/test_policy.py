"""The exit policy (runtime/supervisor/policy.py), with plain values: no processes, no clock."""

from __future__ import annotations

import pytest

from runtime.supervisor.policy import (
    BootFailed,
    Exit,
    ExitPolicy,
    Forget,
    GiveUp,
    Heal,
    HealAfter,
    Ignore,
)


def _server(**facts: bool) -> Exit:
    return Exit("Vivace-Server-0-0", "server", "exit code 1", **facts)


def test_exits_during_the_shutdown_or_of_replaced_processes_are_ignored() -> None:
    policy = ExitPolicy()
    assert policy.exited(_server(stopping=True)) == Ignore()
    assert policy.exited(_server(current=False)) == Ignore()
    assert policy.exited(Exit("Vivace-JOB-0", "custom", "", stopping=True)) == Ignore()
    assert policy.exited(Exit("Vivace-JOB-0", "custom", "", current=False)) == Ignore()


def test_a_server_worker_or_the_reloader_the_manager_stopped_is_ignored() -> None:
    policy = ExitPolicy()
    assert policy.exited(_server(expected=True)) == Ignore()
    assert policy.exited(_server(expected=True, booting=True)) == Ignore()
    reloader = Exit("Vivace-Reloader-0", "reloader", "exit code 0", expected=True)
    assert policy.exited(reloader) == Ignore()
    assert policy.exited(reloader._replace(expected=False, stopping=True)) == Ignore()


def test_a_reloader_that_dies_unasked_is_healed() -> None:
    # killed (the OOM killer) or crashed: saves would no longer reload, and nothing would say so
    policy = ExitPolicy()
    assert policy.exited(Exit("Vivace-Reloader-0", "reloader", "exit code -9")) == Heal()


def test_a_worker_dying_before_its_ack_during_the_start_up_fails_the_boot() -> None:
    decision = ExitPolicy().exited(
        Exit("Vivace-Server-1-0", "server", "ImportError: no module x", booting=True)
    )
    assert decision == BootFailed("Vivace-Server-1-0 failed to start: ImportError: no module x")


def test_a_worker_that_acked_during_the_start_up_crashed() -> None:
    assert ExitPolicy().exited(_server(booting=True, acked=True)) == Heal()


def test_a_restarted_worker_that_never_acked_is_given_up() -> None:
    policy = ExitPolicy()
    assert policy.exited(_server(restarted=True)) == GiveUp("restart")
    assert policy.exited(_server(restarted=True, acked=True)) == Heal()


def test_custom_processes_are_forgotten_whatever_the_code() -> None:
    policy = ExitPolicy()
    assert policy.exited(Exit("Vivace-JOB-0", "custom", "exit code 0")) == Forget()
    assert policy.exited(Exit("Vivace-JOB-0", "custom", "exit code 1", expected=True)) == Forget()


def test_crashes_back_off_doubling_then_give_up_at_the_limit() -> None:
    policy = ExitPolicy(crash_limit=5, crash_window=60.0)
    delays = [policy.crashed("W", now) for now in (0.0, 1.0, 2.0, 3.0)]
    assert delays == [HealAfter(0.1), HealAfter(0.2), HealAfter(0.4), HealAfter(0.8)]
    assert policy.crashed("W", 4.0) == GiveUp("crashes", 5)
    assert policy.crashed("other", 4.0) == HealAfter(0.1)  # counted per name


def test_crashes_older_than_the_window_are_forgotten() -> None:
    policy = ExitPolicy(crash_limit=3, crash_window=10.0)
    assert policy.crashed("W", 0.0) == HealAfter(0.1)
    assert policy.crashed("W", 5.0) == HealAfter(0.2)
    assert policy.crashed("W", 10.0) == GiveUp("crashes", 3)  # 0.0 is exactly 10 s old: kept
    assert policy.crashed("W", 30.0) == HealAfter(0.1)


@pytest.mark.parametrize(("count", "delay"), [(7, 6.4), (8, 10.0), (20, 10.0)])
def test_the_back_off_is_at_most_ten_seconds(count: int, delay: float) -> None:
    policy = ExitPolicy(crash_limit=100, crash_window=1000.0)
    decisions = [policy.crashed("W", float(i)) for i in range(count)]
    last = decisions[-1]
    assert isinstance(last, HealAfter) and last.delay == pytest.approx(delay)
