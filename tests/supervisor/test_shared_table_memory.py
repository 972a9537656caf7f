"""The published state table in one process: ``published.py``'s rules, the table's rule 5, and the
worker's round trip (``Channel.request``)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
from datetime import datetime, timezone
from typing import Any

import pytest

from runtime.supervisor import published
from runtime.supervisor.messages import Handled, StateUpdate, WorkerSpec
from runtime.supervisor.multiplexer import Multiplexer
from runtime.supervisor.published import TablePublisher, TableReader
from runtime.supervisor.states import Event
from runtime.supervisor.table import StateTable
from runtime.supervisor.worker import Channel


@pytest.fixture
def publisher() -> Any:
    p = TablePublisher()
    yield p
    p.close()


def test_a_reader_sees_each_version_and_unpickles_it_once(publisher: TablePublisher) -> None:
    reader = TableReader(publisher.segment)
    assert reader.read() == {}
    now = datetime.now(timezone.utc)
    version = publisher.publish({"A": {"pid": 1, "start_at": now}})
    assert version % 2 == 0
    first = reader.read()
    assert first == {"A": {"pid": 1, "start_at": now}}
    assert reader.read() is first  # unchanged: the cached snapshot
    publisher.publish({"A": {"pid": 2}})
    assert reader.read() == {"A": {"pid": 2}}
    assert reader.version == publisher.version
    reader.close()


def test_the_memory_grows_and_readers_map_it_again(publisher: TablePublisher) -> None:
    reader = TableReader(publisher.segment)
    small = publisher.size
    publisher.publish({"A": {"big": "x" * (3 * small)}})
    assert publisher.size > 3 * small
    assert len(reader.read()["A"]["big"]) == 3 * small
    publisher.publish({"A": {}})
    assert reader.read() == {"A": {}}
    late = TableReader(publisher.segment)  # one that maps the grown memory from the start
    assert late.read() == {"A": {}}
    reader.close()
    late.close()


def test_a_write_under_way_is_never_read_half_done(
    publisher: TablePublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = TableReader(publisher.segment)
    publisher.publish({"A": {"v": 1}})
    assert reader.read() == {"A": {"v": 1}}
    monkeypatch.setattr(published, "_STUCK", 0.05)
    header = publisher._header
    header[0] = publisher.version + 1  # a writer stopped between its two version writes
    header[1] = 3  # and a length that belongs to no whole snapshot
    assert reader.read() == {"A": {"v": 1}}  # the last whole version
    header[0] = publisher.version
    reader.close()


def _read_in_child(segment: published.Segment, out: Any) -> None:
    out.send(TableReader(segment).read())


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_children_receive_the_segment_however_they_start(
    publisher: TablePublisher, method: str
) -> None:
    publisher.publish({"Vivace-Main": {"pid": os.getpid()}})
    ctx = multiprocessing.get_context(method)
    mine, theirs = ctx.Pipe()
    child = ctx.Process(target=_read_in_child, args=(publisher.segment, theirs))
    child.start()
    theirs.close()
    assert mine.poll(30)
    assert mine.recv() == {"Vivace-Main": {"pid": os.getpid()}}
    child.join(10)
    assert child.exitcode == 0


def test_every_table_write_is_published_before_it_returns(publisher: TablePublisher) -> None:
    later: list[Any] = []  # the batched subscribers' schedule: never run here
    table = StateTable(later.append, publish=publisher.publish)
    reader = TableReader(publisher.segment)
    table.add("Vivace-Server-0-0", server=True)
    table.move("Vivace-Server-0-0", Event.START)
    assert reader.read()["Vivace-Server-0-0"]["state"] == "STARTING"
    table.started("Vivace-Server-0-0", 4242, restarted=False, server=True)
    entry = reader.read()["Vivace-Server-0-0"]
    assert (entry["pid"], entry["starts"], entry["state"]) == (4242, 1, "STARTED")
    table.update_custom("Vivace-Server-0-0", {"k": 1})
    assert reader.read()["Vivace-Server-0-0"]["k"] == 1
    table.update_custom("Vivace-Server-0-0", {}, ("k",))
    assert "k" not in reader.read()["Vivace-Server-0-0"]
    reader.close()


_PIPES: list[Any] = []


@pytest.fixture
def channel() -> Any:
    """A worker's channel, the manager's end of its control pipe and of its reply pipe."""
    main_end, child_end = multiprocessing.Pipe()
    replies_in, replies_out = multiprocessing.Pipe(duplex=False)
    out, other = socket.socketpair()
    spec = WorkerSpec(
        name="W", kind="server", main_pid=1234, control=child_end, output=out, replies=replies_in
    )
    yield Channel(spec), main_end, replies_out
    out.close()
    other.close()
    # the pipes stay open: a channel that sees EOF ends the process (no child outlives the main)
    _PIPES.append((main_end, child_end, replies_in, replies_out))


def test_a_request_returns_once_the_manager_answers(channel: Any) -> None:
    worker, manager, replies = channel

    def answer() -> None:
        message = manager.recv()
        replies.send(Handled(message.call_id - 1))  # a late answer to an earlier request: skipped
        replies.send(Handled(message.call_id))

    thread = threading.Thread(target=answer)
    thread.start()
    worker.request(StateUpdate(values={"k": 1}), timeout=10)
    thread.join(10)


def test_a_request_the_manager_never_answers_raises_a_clear_error(channel: Any) -> None:
    worker, manager, _ = channel
    with pytest.raises(TimeoutError, match=r"main process 1234\) did not confirm it within 0.2 s"):
        worker.request(StateUpdate(values={"k": 1}), timeout=0.2)
    assert manager.recv() == StateUpdate(values={"k": 1}, call_id=1)


def test_the_worker_view_checks_keys_before_asking() -> None:
    sent: list[Any] = []
    m = Multiplexer("W", sent.append, lambda: {"W": {"pid": 1, "a": 1}})
    with pytest.raises(LookupError):
        m.state["pid"] = 2
    with pytest.raises(KeyError):
        del m.state["missing"]
    with pytest.raises(NotImplementedError):
        m.state.pop("a")
    assert sent == []
    del m.state["a"]
    m.state.update(b=2)
    assert sent == [StateUpdate(deleted=("a",)), StateUpdate(values={"b": 2})]
    assert m.workers == {"W": {"pid": 1, "a": 1}} and m.state["a"] == 1
