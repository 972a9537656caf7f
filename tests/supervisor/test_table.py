"""The state table (runtime/supervisor/table.py): one writer, typed entries, batched subscribers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runtime.supervisor.messages import ProcessState
from runtime.supervisor.states import Event, IllegalTransition
from runtime.supervisor.table import Snapshot, StateTable


class Soon:
    """``loop.call_soon`` by hand."""

    def __init__(self) -> None:
        self.queue: list[Callable[[], None]] = []

    def __call__(self, callback: Callable[[], None]) -> None:
        self.queue.append(callback)

    def run(self) -> None:
        queue, self.queue = self.queue, []
        for callback in queue:
            callback()


def _table() -> tuple[StateTable, Soon, list[Snapshot], list[int]]:
    soon = Soon()
    writes: list[int] = []
    table = StateTable(soon, lambda: writes.append(1))
    seen: list[Snapshot] = []
    table.subscribe(seen.append)
    return table, soon, seen, writes


def test_a_first_start_shows_the_workers_md_keys_in_order() -> None:
    table, _, _, _ = _table()
    table.add("Vivace-Main", server=None, pid=100)
    table.add("S", server=True)
    assert table.snapshot() == {"Vivace-Main": {"pid": 100}, "S": {"server": True}}
    table.move("S", Event.START)
    table.started("S", 101, restarted=False, server=True)
    entry = table.snapshot()["S"]
    assert list(entry) == ["server", "state", "starts", "start_at", "pid", "serving"]
    assert entry["state"] == "STARTED" and entry["starts"] == 1 and entry["serving"] is False
    table.move("S", Event.ACK)
    table.set_serving("S", True)
    assert table.snapshot()["S"]["state"] == "ACKED"
    assert table.state("S") is ProcessState.ACKED
    assert table.state("missing") is ProcessState.IDLE


def test_restarts_count_and_stamp_restart_at() -> None:
    table, _, _, _ = _table()
    table.add("S", server=True)
    table.move("S", Event.START)
    table.started("S", 1, restarted=False, server=True)
    first = table.snapshot()["S"]
    table.move("S", Event.RESTART)
    table.started("S", 2, restarted=True, server=True)
    second = table.snapshot()["S"]
    assert second["starts"] == 2 and second["pid"] == 2
    assert second["start_at"] == first["start_at"]
    assert second["restart_at"] >= first["start_at"]
    assert list(second)[-1] == "restart_at"
    table.took_over("S", 3, serving=True)
    third = table.snapshot()["S"]
    assert [third[k] for k in ("state", "starts", "pid", "serving")] == ["ACKED", 3, 3, True]


def test_a_take_over_of_a_removed_name_makes_a_server_entry() -> None:
    table, _, _, _ = _table()
    table.took_over("S", 7, serving=False)
    assert table.snapshot()["S"]["server"] is True


def test_exits_complete_or_fail_and_stop_serving() -> None:
    table, _, _, _ = _table()
    for name in ("ok", "bad"):
        table.add(name, server=True)
        table.move(name, Event.START)
        table.started(name, 1, restarted=False, server=True)
        table.set_serving(name, True)
    table.exited("ok", 0, server=True)
    table.exited("bad", -9, server=True)
    snapshot = table.snapshot()
    assert (snapshot["ok"]["state"], snapshot["ok"]["serving"]) == ("COMPLETED", False)
    assert snapshot["bad"]["state"] == "FAILED"


def test_illegal_moves_raise_and_change_nothing() -> None:
    table, _, _, _ = _table()
    table.add("J", server=False)
    table.move("J", Event.HOLD)
    with pytest.raises(IllegalTransition):
        table.move("J", Event.ACK)
    assert table.snapshot()["J"] == {"server": False, "state": "NONE"}


def test_custom_keys_restricted_keys_dropped_and_unrestricted_fields_overridden() -> None:
    table, _, _, _ = _table()
    table.add("S", server=True)
    table.move("S", Event.START)
    table.started("S", 1, restarted=False, server=True)
    table.update_custom("S", {"jobs": 3, "pid": 0, "state": "X", "serving": "maybe"})
    entry = table.snapshot()["S"]
    assert entry["jobs"] == 3 and entry["pid"] == 1 and entry["state"] == "STARTED"
    assert entry["serving"] == "maybe"  # the latest writer wins ...
    table.set_serving("S", True)
    assert table.snapshot()["S"]["serving"] is True  # ... until the manager writes it again
    table.update_custom("S", {}, ("jobs", "serving", "pid"))
    entry = table.snapshot()["S"]
    assert "jobs" not in entry and "serving" not in entry and entry["pid"] == 1


def test_subscribers_get_one_snapshot_per_batch_and_writes_are_seen_at_once() -> None:
    table, soon, seen, writes = _table()
    table.add("A", server=False)
    table.add("B", server=False)
    table.remove("B")
    table.remove("B")  # nothing to remove: no write
    assert len(writes) == 3
    assert seen == [] and len(soon.queue) == 1
    soon.run()
    assert seen == [{"A": {"server": False}}]
    table.move("A", Event.HOLD)
    soon.run()
    assert seen[-1] == {"A": {"server": False, "state": "NONE"}}


def test_snapshots_are_copies_and_subscribers_can_leave() -> None:
    table, soon, seen, _ = _table()
    table.add("A", server=False)
    table.update_custom("A", {"k": [1]})
    copy: Any = table.snapshot()
    copy["A"]["k2"] = 1
    assert "k2" not in table.snapshot()["A"]
    other: list[Snapshot] = []
    remove = table.subscribe(other.append)
    remove()
    remove()
    soon.run()
    assert len(seen) == 1 and other == []
    assert "A" in table and list(table) == ["A"] and len(table) == 1
