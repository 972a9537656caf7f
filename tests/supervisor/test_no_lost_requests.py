"""No request is lost while workers restart, scale down or shut down (issue 13, item 1).

Real processes on a unix socket: client threads keep sending requests, most on a new connection
each (what browsers do after an idle), some on keep-alive connections, while the manager replaces
and removes workers. Every request must get a whole response: no reset, no EOF instead of one.
"""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.supervisor.test_reload_wiring import Vivace

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import json, os
    from runtime import App, text

    app = App("NoLoss")

    @app.get("/")
    async def index(request):
        return text(str(os.getpid()))

    @app.get("/workers")
    async def workers(request):
        return text(json.dumps(request.app.m.workers, default=str))

    @app.get("/restart")
    async def restart(request):
        request.app.m.restart(all_workers=True, zero_downtime=bool(request.args.get("zd")))
        return text("ok")

    @app.get("/scale")
    async def scale(request):
        request.app.m.scale(int(request.args.get("n")))
        return text("ok")
    """
)


class Load:
    """Client threads sending ``GET /`` until stopped; every failure is recorded."""

    def __init__(self, path: str, new_connection: int = 4, keep_alive: int = 2) -> None:
        self.path = path
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.answers = 0
        self.pids: set[str] = set()
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(reuse,), daemon=True)
            for reuse in [False] * new_connection + [True] * keep_alive
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        assert not any(t.is_alive() for t in self.threads), "a client thread hangs"

    def _run(self, reuse: bool) -> None:
        conn: socket.socket | None = None
        buffer = b""
        while not self.stop.is_set():
            if conn is None:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.settimeout(5.0)
                buffer = b""
                try:
                    conn.connect(self.path)
                except OSError as exc:  # the listening socket is never closed, nor full here
                    self._fail(f"connect: {exc!r}")
                    conn.close()
                    conn = None
                    continue
            try:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                head, body, buffer = _read_response(conn, buffer)
            except (OSError, ValueError) as exc:
                self._fail(f"{'reused' if reuse else 'new'} connection: {exc!r}")
                conn.close()
                conn = None
                continue
            with self._lock:
                self.answers += 1
                self.pids.add(body.decode())
            if not reuse or b"connection: close" in head.lower():
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _fail(self, what: str) -> None:
        with self._lock:
            self.failures.append(what)

    def count(self) -> int:
        with self._lock:
            return self.answers


def _read_response(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes, bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError(f"EOF without a response (got {buffer!r})")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ValueError(f"unexpected response {head[:60]!r}")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("EOF in the middle of a body")
        rest += chunk
    return head, rest[:length], rest[length:]


@pytest.fixture
def vivace(tmp_path: Path) -> Iterator[Vivace]:
    (tmp_path / "app.py").write_text(APP)
    v = Vivace(tmp_path, "-w", "2")
    try:
        v.wait_body(r"^\d+$")
        yield v
    finally:
        v.cleanup()


def _servers(v: Vivace) -> dict[str, dict[str, object]]:
    return {n: e for n, e in v.table().items() if e.get("server")}


def _wait_more_answers(load: Load, more: int = 20, timeout: float = 10.0) -> None:
    """Let the clients get ``more`` answers (they are sending while workers change)."""
    target = load.count() + more
    deadline = time.monotonic() + timeout
    while load.count() < target:
        assert time.monotonic() < deadline, "the clients got no answers"
        time.sleep(0.01)


def _wait_gone(pids: set[int], timeout: float = 15.0) -> None:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []


def test_restarts_and_scale_downs_lose_no_request(vivace: Vivace) -> None:
    v = vivace
    with Load(v.sock) as load:
        _wait_more_answers(load)
        for round_ in range(6):
            before = _servers(v)
            zero = round_ % 2 == 1  # shutdown-first and start-first in turn
            assert v.get(f"/restart?zd={int(zero)}" if zero else "/restart") == "ok"
            for name, entry in before.items():
                v.wait_table(name, int(entry["starts"]) + 1)  # type: ignore[call-overload]
            _wait_gone({int(e["pid"]) for e in before.values()})  # type: ignore[call-overload]
            _wait_more_answers(load)
        # scale 2 -> 3 -> 1 -> 2: the removed workers drain while the clients keep sending
        assert v.get("/scale?n=3") == "ok"
        deadline = time.monotonic() + 15
        while len(_servers(v)) != 3 or any(e.get("state") != "ACKED" for e in _servers(v).values()):
            assert time.monotonic() < deadline, v.table()
            time.sleep(0.02)
        _wait_more_answers(load)
        pids = {int(e["pid"]) for e in _servers(v).values()}  # type: ignore[call-overload]
        assert v.get("/scale?n=1") == "ok"
        deadline = time.monotonic() + 15
        while len(_servers(v)) != 1:
            assert time.monotonic() < deadline, v.table()
            time.sleep(0.02)
        left = {int(e["pid"]) for e in _servers(v).values()}  # type: ignore[call-overload]
        _wait_gone(pids - left)
        _wait_more_answers(load)
        assert v.get("/scale?n=2") == "ok"
        _wait_more_answers(load, 50)
        assert load.failures == [], (len(load.failures), load.answers, load.failures[:10])
    assert len(load.pids) >= 10  # the answers came from every generation of workers
    v.remember_children()
    assert v.stop() == 0
    assert v.leftovers() == []
