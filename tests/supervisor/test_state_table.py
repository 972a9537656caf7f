"""workers.md sections 1, 2 and 10: names, the state table and its views, shared context."""

from __future__ import annotations

from typing import Any

import pytest


def test_state_view_restricted_keys_and_shared_ctx_lock(serve: Any) -> None:
    s = serve(workers=1)
    body = s.json("/state/set")
    assert body["state"]["color"] == "blue"
    assert body["errors"][0].startswith("LookupError: Cannot set restricted key 'pid'")
    assert body["errors"][1:] == ["NotImplementedError", "RuntimeError"]
    # the manager applied the custom key: it shows in the table pushed back to the worker
    for _ in range(50):
        table = s.json("/workers")
        if table["Vivace-Server-0-0"].get("color") == "blue":
            break
    assert table["Vivace-Server-0-0"]["color"] == "blue"
    assert table["Vivace-Server-0-0"]["state"] == "ACKED"
    assert s.stop() == 0


@pytest.mark.slow
def test_shared_ctx_value_counter_shared_by_two_workers(serve: Any) -> None:
    s = serve(workers=2)
    seen_pids = set()
    values = []
    for _ in range(40):
        body = s.json("/hit")
        seen_pids.add(body["pid"])
        values.append(body["hits"])
    assert values == list(range(1, 41))  # one counter, no lost increments
    assert len(seen_pids) == 2  # both workers served (the kernel spreads accepts)
    assert s.stop() == 0
