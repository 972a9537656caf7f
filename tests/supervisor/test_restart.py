"""workers.md section 6: restart self, named, several, all; shutdown-first and zero-downtime."""

from __future__ import annotations

import time
from typing import Any


def _wait_pid_change(s: Any, old: set[int], want: int, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = s.json("/workers")
        servers = {k: v for k, v in table.items() if k.startswith("Vivace-Server")}
        fresh = [
            v for v in servers.values() if int(v["pid"]) not in old and v.get("state") == "ACKED"
        ]
        if len(fresh) >= want:
            return table
        time.sleep(0.05)
    raise AssertionError(f"no {want} restarted workers: {table}")


def test_restart_self_keeps_name_new_pid_starts_incremented(serve: Any) -> None:
    s = serve(workers=1)
    before = s.json("/pid")
    assert s.json("/restart")["from"] == "Vivace-Server-0-0"
    table = _wait_pid_change(s, {before["pid"]}, 1)
    entry = table["Vivace-Server-0-0"]
    assert entry["starts"] == "2"
    assert "restart_at" in entry
    after = s.json("/pid")
    assert after["name"] == "Vivace-Server-0-0" and after["pid"] != before["pid"]
    assert after["reloaded"] == ""
    assert s.stop() == 0


def test_restart_named_several_and_all(serve: Any) -> None:
    s = serve(workers=2)
    table = s.json("/workers")
    pids = {int(table[n]["pid"]) for n in ("Vivace-Server-0-0", "Vivace-Server-1-0")}
    s.json("/restart?name=Vivace-Server-0-0,Vivace-Server-1-0")
    table = _wait_pid_change(s, pids, 2)
    assert table["Vivace-Server-0-0"]["starts"] == "2"
    pids = {int(table[n]["pid"]) for n in ("Vivace-Server-0-0", "Vivace-Server-1-0")}
    s.json("/restart?all=1")
    table = _wait_pid_change(s, pids, 2)
    assert table["Vivace-Server-1-0"]["starts"] == "3"
    # a name together with all_workers is refused in the caller
    assert s.get("/restart?name=Vivace-Server-0-0&all=1").status_code == 500
    assert s.stop() == 0


def test_zero_downtime_new_before_server_start_precedes_old_before_server_stop(serve: Any) -> None:
    s = serve(workers=1)
    old = s.json("/pid")["pid"]
    s.json("/restart?zero=1")
    new_start = s.wait_line(r"EVENT before_server_start (\d+)")
    old_stop = s.wait_line(rf"EVENT before_server_stop {old}")
    assert int(new_start.group(1)) != old
    assert new_start.start() >= 0 and old_stop  # both seen, in this order (wait_line is sequential)
    table = _wait_pid_change(s, {old}, 1)
    assert table["Vivace-Server-0-0"]["starts"] == "2"
    assert s.stop() == 0


def test_reloader_seam_restart_request_sets_reloaded_files(serve: Any) -> None:
    s = serve(workers=2, flags="reloader")
    # a reload is start-first: both replacements start, then both old workers stop
    s.wait_line(r"Vivace-Server-\d-0\s*\| .*Stopping worker")
    s.wait_line(r"Vivace-Server-\d-0\s*\| .*Stopping worker")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        table = s.json("/workers")
        if all(
            table[n]["starts"] == "2" and table[n]["state"] == "ACKED"
            for n in ("Vivace-Server-0-0", "Vivace-Server-1-0")
        ):
            break
        time.sleep(0.05)
    assert s.json("/pid")["reloaded"] == "/srv/app/models.py,/srv/app/views.py"  # sorted
    assert s.json("/workers")["Vivace-Reloader-0"]["server"] == "False"
    assert s.stop() == 0
