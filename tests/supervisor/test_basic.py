from __future__ import annotations

from typing import Any


def test_serves_names_and_stops_cleanly(serve: Any) -> None:
    s = serve(workers=2)
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
    assert s.stop() == 0
    assert s.lines[-1].endswith("Server Stopped")
