"""workers.md section 2 on real processes: the state table is shared (issue 13 item 4).

Once ``app.m.state[...] = v``, ``update`` or ``del`` has returned in one worker, the next read in
any other worker sees it; so does a restart's new pid once ``app.m.restart()`` has returned; no
update is lost; nothing is left in ``/dev/shm``. Each test talks to given workers over kept-alive
connections (a connection stays with the worker that accepted it), so every read lands on the
worker the test means, right after the write it checks.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import ROOT, Served

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc, memfd")

APP = "tests.supervisor.test_shared_table_app"
SHM = "/dev/shm"


class TableServed(Served):
    """``Served`` for this file's app (``Served`` itself starts ``tests.supervisor.apps``)."""

    def __init__(self, workers: int, env: dict[str, str]) -> None:
        environ = dict(os.environ)
        environ.update(
            PYTHONPATH=str(ROOT),
            VIVACE_WORKER_ACK_TIMEOUT="10",
            VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT="3",
            NO_COLOR="1",
        )
        environ.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.supervisor.serve", APP, str(workers)],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._seen = 0
        self.url = ""
        self.descendants: list[psutil.Process] = []
        threading.Thread(target=self._read, daemon=True).start()


class Conn:
    """One kept-alive HTTP/1.1 connection: every request on it reaches the same worker."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buffer = b""
        self.name = self.get("/me")["name"]

    def get(self, path: str) -> Any:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 200"), head
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(body)

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served() -> Iterator[Any]:
    started: list[TableServed] = []
    conns: list[Conn] = []

    def factory(workers: int = 2, env: dict[str, str] | None = None) -> TableServed:
        s = TableServed(workers, env or {})
        started.append(s)
        return s.start(workers)

    def connect(s: TableServed, n: int, workers: int | None = None) -> list[Conn]:
        """Connections to ``n`` different workers, once all ``workers`` serve (the table says)."""
        first = Conn(s.url)
        conns.append(first)
        names = [f"Vivace-Server-{i}-0" for i in range(workers or n)]

        def serving(name: str) -> bool:
            return first.get(f"/entry?name={name}")["entry"].get("serving") == "True"

        _wait_for(lambda: all(serving(name) for name in names))
        found = {first.name: first}
        deadline = time.monotonic() + 10
        while len(found) < n:
            assert time.monotonic() < deadline, f"connections reached only {sorted(found)}"
            conn = Conn(s.url)
            conns.append(conn)
            found.setdefault(conn.name, conn)
        return list(found.values())

    factory.connect = connect  # type: ignore[attr-defined]
    yield factory
    for conn in conns:
        conn.close()
    for s in started:
        s.cleanup()


def _wait_for(check: Any, timeout: float = 10.0) -> Any:
    """Poll ``check`` (an observable condition) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.mark.parametrize(("method", "trials"), [("auto", 200), ("forkserver", 40), ("spawn", 40)])
def test_a_write_is_read_by_the_other_worker_right_after(
    served: Any, method: str, trials: int
) -> None:
    s = served(2, env={"VIVACE_WORKER_START_METHOD": method})
    a, b = served.connect(s, 2)
    stale = []
    for i in range(trials):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        writer.get(f"/set?k=k&v={i}")
        seen = reader.get(f"/entry?name={writer.name}")["entry"].get("k")
        if seen != str(i):
            stale.append((i, seen))
    assert stale == [], f"{len(stale)} of {trials} reads were stale: {stale[:5]}"
    assert s.stop() == 0


def test_update_and_del_are_seen_by_the_other_worker_and_by_the_writer(served: Any) -> None:
    s = served(2)
    a, b = served.connect(s, 2)
    a.get("/update?x=1&y=2&z=3")
    assert {k: v for k, v in b.get(f"/entry?name={a.name}")["entry"].items() if k in "xyz"} == {
        "x": "1",
        "y": "2",
        "z": "3",
    }
    a.get("/del?k=x")
    entry = b.get(f"/entry?name={a.name}")["entry"]
    assert "x" not in entry and entry["y"] == "2"
    assert a.get("/own")["state"]["y"] == "2"  # the writer's own view, right after
    assert "x" not in a.get("/own")["state"]
    assert a.get("/del?k=x")["error"] == "KeyError: 'x'"  # already gone
    # the manager's keys are intact beside the custom ones
    assert entry["state"] == "ACKED" and entry["starts"] == "1" and entry["serving"] == "True"
    assert s.stop() == 0


def test_a_restart_is_seen_by_every_worker_once_restart_returned(served: Any) -> None:
    s = served(3)
    a, b = served.connect(s, 2, workers=3)
    other = next(
        f"Vivace-Server-{i}-0" for i in range(3) if f"Vivace-Server-{i}-0" not in (a.name, b.name)
    )
    for round_ in range(2):
        answer = a.get(f"/restart-other?name={other}")
        before, after = answer["before"], answer["after"]
        assert after["pid"] != before["pid"]
        assert int(after["starts"]) == int(before["starts"]) + 1 == round_ + 2
        assert after["state"] in ("STARTED", "ACKED")  # ACKED if it was that quick
        seen = b.get(f"/entry?name={other}")["entry"]  # another worker, right after
        assert seen["pid"] == after["pid"] and seen["starts"] == after["starts"]
        _wait_for(lambda: b.get(f"/entry?name={other}")["entry"]["state"] == "ACKED")
    assert s.stop() == 0


def test_a_replacement_s_start_up_writes_are_kept_when_it_takes_over(served: Any) -> None:
    s = served(2)
    a, b = served.connect(s, 2)
    old = b.get(f"/entry?name={a.name}")["entry"]
    assert old["booted"] == old["pid"]
    b.get(f"/restart-zero?name={a.name}")
    new = _wait_for(
        lambda: (
            (e := b.get(f"/entry?name={a.name}")["entry"])["pid"] != old["pid"]
            and e["serving"] == "True"
            and e
        )
    )
    assert new["booted"] == new["pid"]  # written by the replacement before it took over
    assert s.stop() == 0


def test_no_update_is_lost_with_two_workers_writing_at_once(served: Any) -> None:
    s = served(2)
    a, b = served.connect(s, 2)
    n = 300
    errors: list[BaseException] = []

    def storm(conn: Conn) -> None:
        try:
            conn.get(f"/storm?n={n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=storm, args=(c,)) for c in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    for writer, reader in ((a, b), (b, a)):
        entry = reader.get(f"/entry?name={writer.name}")["entry"]
        assert [entry.get(f"w{i}") for i in range(n)] == [str(i) for i in range(n)]
        assert entry["state"] == "ACKED" and entry["starts"] == "1" and entry["serving"] == "True"
    assert s.stop() == 0


def test_a_large_table_grows_the_shared_memory(served: Any) -> None:
    s = served(2)
    a, b = served.connect(s, 2)
    size = 300_000  # beyond the first 64 KiB
    a.get(f"/big?size={size}")
    assert len(b.get(f"/entry?name={a.name}")["entry"]["big"]) == size
    b.get("/set?k=after&v=1")
    assert a.get(f"/entry?name={b.name}")["entry"]["after"] == "1"
    assert s.stop() == 0


def _shm() -> set[str]:
    return set(os.listdir(SHM)) if os.path.isdir(SHM) else set()


def _ours(entries: set[str]) -> set[str]:
    return {e for e in entries if "vivace" in e.lower() or e.startswith(("psm_", "wnsm_"))}


def _maps_table(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as maps:
        return "vivace-state-table" in maps.read()


def test_nothing_is_left_in_dev_shm_after_a_stop_or_a_killed_worker(served: Any) -> None:
    before = _shm()
    s = served(2)
    a, b = served.connect(s, 2)
    pid_a = a.get("/me")["pid"]
    assert _maps_table(pid_a) and _maps_table(b.get("/me")["pid"])
    os.kill(pid_a, signal.SIGKILL)
    entry = _wait_for(
        lambda: (
            (e := b.get(f"/entry?name={a.name}")["entry"]).get("state") == "ACKED"
            and e["pid"] != str(pid_a)
            and e
        )
    )
    assert _maps_table(int(entry["pid"]))  # the replacement maps the same table
    assert _ours(_shm() - before) == set()
    assert s.stop() == 0
    assert _ours(_shm() - before) == set()


def test_nothing_is_left_in_dev_shm_when_the_main_process_is_killed(served: Any) -> None:
    before = _shm()
    s = served(2)
    family = psutil.Process(s.proc.pid).children(recursive=True)
    s.proc.kill()
    s.proc.wait(5)
    _, alive = psutil.wait_procs(family, timeout=10)  # they die with it (parent-death signal)
    assert alive == []
    assert _ours(_shm() - before) == set()
