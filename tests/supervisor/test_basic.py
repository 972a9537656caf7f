from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("method", ["auto", "forkserver", "spawn"])
def test_serves_names_and_stops_cleanly(serve: Any, method: str) -> None:
    s = serve(workers=2, env={"VIVACE_WORKER_START_METHOD": method})
    names = {s.json("/pid")["name"] for _ in range(20)}
    assert names <= {"Vivace-Server-0-0", "Vivace-Server-1-0"}
    body = s.json("/pid")
    assert body["env"] == body["name"]
    table = s.json("/workers")
    assert set(table) == {"Vivace-Main", "Vivace-Server-0-0", "Vivace-Server-1-0"}
    for name in ("Vivace-Server-0-0", "Vivace-Server-1-0"):
        assert table[name]["state"] == "ACKED"
        assert table[name]["server"] == "True"
        assert table[name]["starts"] == "1"
    # a restart, a shared counter and a crash replacement work with every start method
    pid = s.json("/pid")["pid"]
    s.json("/restart?all=1")
    s.wait_line(r"Starting worker")
    s.wait_line(r"Starting worker")
    assert s.json("/hit")["hits"] == 1
    s.poke("/crash")
    s.wait_line(r"died unexpectedly")
    s.wait_line(r"Replacing worker")
    s.wait_line(r"Starting worker")
    assert s.json("/pid")["pid"] != pid
    assert s.stop() == 0
    assert s.lines[-1].endswith("Server Stopped")


def test_unknown_start_method_is_a_clear_start_up_error(serve: Any) -> None:
    s = serve(workers=1, env={"VIVACE_WORKER_START_METHOD": "vfork"}, wait=False)
    assert s.wait() == 1
    assert any("WORKER_START_METHOD must be 'auto', 'forkserver' or 'spawn'" in x for x in s.lines)
