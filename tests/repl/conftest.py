"""Shared helpers for the console tests: a real loopback HTTP server, a fake Control, and vivace
in a real terminal (``term``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.repl.test_repl_terminal import Term, terminals


@pytest.fixture(autouse=True)
def _the_test_suite_is_not_user_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """``refresh()`` run in this process drops the user's modules from ``sys.modules``; the test
    suite's own (``tests.*``) must stay, or a later test holds functions that are no longer the
    module's (pickling them fails: "it's not the same object as tests.supervisor.apps...")."""
    from runtime.supervisor import worker

    real = worker.user_modules
    suite = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")

    def ours(name: str) -> bool:  # a module of the suite, whatever name pytest imported it under
        path = getattr(sys.modules.get(name), "__file__", None) or ""
        return os.path.abspath(path).startswith(suite)

    monkeypatch.setattr(worker, "user_modules", lambda: tuple(n for n in real() if not ours(n)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/big":
            body = ("x" * 5000).encode()
            ctype = "text/plain"
        elif self.path == "/bin":
            body = bytes(range(256))
            ctype = "application/octet-stream"
        else:
            body = json.dumps({"ok": True, "path": self.path}).encode()
            ctype = "application/json"
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Callable[..., Term]]:
    """``term(*args, target=...)``: ``python -m runtime target *args`` in a pty (the ``Term`` of
    test_repl_terminal.py), in ``tmp_path``; every one started is closed after the test."""
    with terminals(tmp_path) as start:
        yield start


class FakeLogs:
    def __init__(self) -> None:
        self.lines = ["Vivace-Server-0-0 | a", "Vivace-Server-0-0 | b"]
        self.muted: list[str | None] = []

    def tail(self, name: str | None = None, n: int = 50) -> list[str]:
        return self.lines[-n:]

    def mute(self, name: str | None = None) -> None:
        self.muted.append(name)

    def unmute(self, name: str | None = None) -> None:
        self.muted.remove(name)

    def only(self, name: str) -> None:
        self.muted = ["all but " + name]


class FakeControl:
    """The Control contract, in memory; every coroutine checks it runs on the owning loop."""

    url = "http://127.0.0.1:1"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.table: dict[str, dict[str, Any]] = {
            "Vivace-Main": {"pid": 1},
            "Vivace-Server-0-0": {"server": True, "state": "ACKED", "pid": 101, "starts": 1},
        }
        self.next_pid = 200
        self.logs = FakeLogs()
        self.listeners: list[Callable[[Any], None]] = []
        self.stopped = False
        self.calls: list[tuple[str, Any]] = []

    def _check(self) -> None:
        assert asyncio.get_running_loop() is self.loop

    @property
    def expected_workers(self) -> int:
        return sum(1 for e in self.table.values() if e.get("server"))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.table.items()}

    async def wait_ready(self, timeout: float) -> None:
        self._check()

    def add_listener(self, cb: Callable[[Any], None]) -> Callable[[], None]:
        self.listeners.append(cb)
        return lambda: self.listeners.remove(cb)

    async def restart(self, *names: str, zero_downtime: bool = False) -> str:
        self._check()
        targets = names or tuple(n for n, e in self.table.items() if e.get("server"))
        for name in targets:
            if name not in self.table:
                raise LookupError(f"No process named {name!r}")
            self.table[name]["pid"] = self.next_pid
            self.table[name]["starts"] += 1
            self.next_pid += 1
        return f"restart: {', '.join(targets)} ready in 1 ms"

    async def reload(self) -> str:
        return "reload: " + await self.restart()

    async def scale(self, n: int) -> str:
        self._check()
        servers = [k for k, e in self.table.items() if e.get("server")]
        while len(servers) > n:
            del self.table[servers.pop()]
        while len(servers) < n:
            name = f"Vivace-Server-{len(self.table)}-0"
            self.table[name] = {"server": True, "state": "ACKED", "pid": self.next_pid, "starts": 1}
            self.next_pid += 1
            servers.append(name)
        return f"scale -> {n}"

    def manage(self, ident: str, func: Any, kwargs: Any = None, **flags: Any) -> None:
        self.calls.append(("manage", (ident, func, kwargs, flags)))
        self.table[f"Vivace-{ident}-0"] = {"server": False, "state": "STARTED", "pid": 900}

    async def stop(self) -> None:
        self._check()
        self.stopped = True

    async def eval_in(self, name: str, expr: str) -> Any:
        self._check()
        return eval(expr, {"name": name})

    async def call_in(self, name: str, fn: Any, *args: Any) -> Any:
        self._check()
        return fn(*args)
