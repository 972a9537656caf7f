"""workers.md sections 5 and 7: manage() with every flag and its errors; scale."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from runtime.loader import AppRef
from runtime.supervisor.manager import WorkerManager
from tests.supervisor.apps import countdown


def _wait_table(s: Any, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    table: dict[str, Any] = {}
    while time.monotonic() < deadline:
        table = s.json("/workers")
        if check(table):
            return table
        time.sleep(0.05)
    raise AssertionError(f"state table never matched: {table}")


def test_manage_validation_errors() -> None:
    loop = asyncio.new_event_loop()
    try:
        manager = WorkerManager(object(), AppRef(module="x"), [], None, loop, workers=1)  # type: ignore[arg-type]
        record = manager.manage("JOB", countdown, {"n": 1}, auto_start=False)
        assert record.names == ["Vivace-JOB-0"]
        assert manager.workers["Vivace-JOB-0"] == {"server": False, "state": "NONE"}
        with pytest.raises(ValueError, match="Worker JOB already exists"):
            manager.manage("JOB", countdown)
        with pytest.raises(ValueError, match="transient=True with restartable=False"):
            manager.manage("T", countdown, transient=True, restartable=False)
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            manager.manage("W", countdown, workers=0)
        with pytest.raises(TypeError, match="must be picklable"):
            manager.manage("L", lambda: None)
        with pytest.raises(ValueError, match="already taken"):
            manager.manage("Server-0", countdown)
        # restartable defaults to transient
        assert manager.manage("TR", countdown, transient=True).restartable is True
        assert manager.manage("DU", countdown).restartable is False
        # a server-looking ident is still a custom process (no substring rule)
        manager.manage("ServerJobs", countdown, auto_start=False)
        assert manager.workers["Vivace-ServerJobs-0"]["server"] is False
    finally:
        loop.close()


def test_seed_manage_restart_scenario(serve: Any) -> None:
    s = serve(workers=1, flags="manage")
    s.rewind()  # custom processes start with the servers: their lines may come first
    s.wait_line(r"Vivace-TEST-0\s*\| countdown begins \{\}")
    table = _wait_table(s, lambda t: t["Vivace-TEST-0"].get("state") == "COMPLETED")
    assert table["Vivace-TEST-0"]["server"] == "False"
    assert table["Vivace-TEST-0"]["starts"] == "1"
    assert s.json("/restart?name=Vivace-TEST-0") == {"from": "Vivace-Server-0-0"}
    s.wait_line(r"Vivace-TEST-0\s*\| countdown begins \{'config': \{'RELOADED_FILES': ''\}\}")
    _wait_table(s, lambda t: t["Vivace-TEST-0"]["starts"] == "2")
    assert s.stop() == 0


def test_restart_of_running_durable_process_is_refused(serve: Any) -> None:
    s = serve(workers=1, flags="manage-forever,manage-later")
    # LOOP is transient: restarted with the servers on a global restart
    before = s.json("/workers")["Vivace-LOOP-0"]["pid"]
    s.json("/restart?all=1")
    _wait_table(
        s, lambda t: t["Vivace-LOOP-0"]["pid"] != before and t["Vivace-LOOP-0"]["starts"] == "2"
    )
    # LATER was registered with auto_start=False: NONE until restarted by name
    assert s.json("/workers")["Vivace-LATER-0"]["state"] == "NONE"
    s.json("/restart?name=Vivace-LATER-0")
    s.wait_line(r"Vivace-LATER-0\s*\| tick 1/1")
    _wait_table(s, lambda t: t["Vivace-LATER-0"].get("state") == "COMPLETED")
    # restarting an unknown name logs an error
    s.json("/restart?name=Vivace-NOPE-0")
    s.wait_line(r"Failed to restart processes: Vivace-NOPE-0")
    assert s.stop() == 0


def test_failing_custom_process_is_failed_and_not_replaced(serve: Any) -> None:
    s = serve(workers=1, flags="manage-fails")
    s.rewind()
    s.wait_line(r"Vivace-BAD-0\s*\| RuntimeError: custom process failed on purpose")
    table = _wait_table(s, lambda t: t["Vivace-BAD-0"].get("state") == "FAILED")
    assert table["Vivace-BAD-0"]["starts"] == "1"
    assert s.stop() == 0


def test_manage_from_worker_untracked_replicas_disappear(serve: Any) -> None:
    s = serve(workers=1)
    s.json("/manage")
    s.wait_line(r"Vivace-NEW-[01]\s*\| tick 2/2")
    s.wait_line(r"Removed worker NEW")
    table = s.json("/workers")
    assert not any(name.startswith("Vivace-NEW") for name in table)
    # registering the same ident again from a worker is logged by the manager
    s.json("/manage")
    s.wait_line(r"Removed worker NEW")
    assert s.stop() == 0


def test_scale_up_down_and_invalid(serve: Any) -> None:
    s = serve(workers=1)
    s.json("/scale?n=3")
    s.wait_line(r"Scaling from 1 to 3 workers")
    table = _wait_table(
        s,
        lambda t: (
            sum(
                1
                for k, v in t.items()
                if k.startswith("Vivace-Server") and v.get("state") == "ACKED"
            )
            == 3
        ),
    )
    assert {"Vivace-Server-1-0", "Vivace-Server-2-0"} <= set(table)
    s.json("/scale?n=3")
    s.wait_line(r"No change needed. There are already 3 workers.")
    s.json("/scale?n=0")
    s.wait_line(r"Cannot scale to 0 workers: .* keeps running with 3")
    s.json("/scale?n=1")
    s.wait_line(r"Scaling from 3 to 1 workers")
    table = _wait_table(s, lambda t: sum(1 for k in t if k.startswith("Vivace-Server")) == 1)
    s.wait_line(r"Worker complete")
    s.wait_line(r"Worker complete")
    s.json("/scale?n=2")  # fresh numbers are never reused
    table = _wait_table(
        s, lambda t: "Vivace-Server-3-0" in t and t["Vivace-Server-3-0"].get("state") == "ACKED"
    )
    assert s.stop() == 0


def test_terminate_from_a_worker_exits_0(serve: Any) -> None:
    s = serve(workers=2)
    s.json("/terminate")
    assert s.wait() == 0
    assert s.lines[-1].endswith("Server Stopped")


def test_sockets_are_real(serve: Any) -> None:
    """The port stays open across a restart: connections are accepted throughout."""
    s = serve(workers=1)
    s.json("/restart")
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=2):
            pass
    assert s.stop() == 0
