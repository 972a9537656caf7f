"""Streams through reloads and shutdown, in real processes (issue 13 item 5).

``python -m runtime app:app --reload --debug`` (so ``STREAM_SHUTDOWN_GRACE`` is its debug default,
0.5 s) with a client that keeps a server-sent-events stream open at all times, reconnecting when
one ends, while the app is saved again and again. Every stream ends with its last chunk; the old
worker's handler is cancelled (a vivace app) or told ``http.disconnect`` (an ASGI app); every old
worker exits within the grace plus a second of being told to stop. The workers print the moment
they are told (``before_server_stop``) with ``time.monotonic()``, the clock the test reads too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
GRACE = 0.5  # STREAM_SHUTDOWN_GRACE in debug mode
LIMIT = GRACE + 1.0
EARLY = 0.05

pytestmark = pytest.mark.slow

VIVACE_APP = textwrap.dedent(
    """
    import asyncio, os, time
    from runtime import App, text
    from runtime.response import ResponseStream

    app = App("StreamRestart")
    VERSION = "v1"

    def say(what):
        print(f"{what} {os.getpid()} {time.monotonic()}", flush=True)

    @app.before_server_stop
    def stopping(app):
        say("STOPPING")

    @app.get("/")
    async def index(request):
        return text(f"{VERSION} {os.getpid()}")

    @app.get("/events")
    async def events(request):
        async def body(response):
            n = 0
            try:
                while True:
                    await response.write(f"data: {os.getpid()} {n}\\n\\n")
                    n += 1
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                say("CANCELLED")
                raise
        return ResponseStream(body, content_type="text/event-stream")
    """
)

ASGI_APP = textwrap.dedent(
    """
    import asyncio, os, time

    VERSION = "v1"

    def say(what):
        print(f"{what} {os.getpid()} {time.monotonic()}", flush=True)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["path"] != "/events":
            body = f"{VERSION} {os.getpid()}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        gone = asyncio.Event()

        async def watch():
            while (await receive())["type"] != "http.disconnect":
                pass
            say("DISCONNECT")
            gone.set()

        watcher = asyncio.ensure_future(watch())
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        n = 0
        try:
            while not gone.is_set():
                data = f"data: {os.getpid()} {n}\\n\\n".encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
                n += 1
                try:
                    await asyncio.wait_for(gone.wait(), 0.02)
                except asyncio.TimeoutError:
                    pass
        except OSError:
            say("SEND_RAISED")
        finally:
            watcher.cancel()
    """
)


def _request(sock_path: str, path: str, timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def dechunk(body: bytes) -> tuple[list[bytes], bytes] | None:
    """The chunks of a chunked body and what follows its last chunk; None when incomplete."""
    chunks: list[bytes] = []
    rest = body
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return None
        size = int(size_line, 16)
        if size == 0:
            return (chunks, rest[2:]) if rest.startswith(b"\r\n") else None
        if rest[size : size + 2] != b"\r\n":
            return None
        chunks.append(rest[:size])
        rest = rest[size + 2 :]


@dataclass
class Stream:
    pid: int
    head: bytes
    body: bytes
    ended_at: float
    error: str = ""

    @property
    def complete(self) -> bool:
        parsed = dechunk(self.body)
        return parsed is not None and parsed[1] == b""


class Current:
    """A value that threads wait on (the pid of the worker streaming now)."""

    def __init__(self) -> None:
        self._value = 0
        self._changed = threading.Condition()

    def set(self, value: int) -> None:
        with self._changed:
            self._value = value
            self._changed.notify_all()

    def wait_for(self, value: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._value == value, timeout)


class Served:
    """``python -m runtime <target> -u <socket> <args>`` in ``cwd``; output in a file."""

    def __init__(self, cwd: Path, target: str, *args: str) -> None:
        self.cwd = cwd
        self.sock = str(cwd / "s.sock")
        self.out_path = cwd / "out.txt"
        self.out = self.out_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", target, "-u", self.sock, *args],
            cwd=cwd,
            env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", NO_COLOR="1"),
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.streams: list[Stream] = []
        self.on_stream = Current()  # the worker whose stream is open now
        self.exits: dict[int, float] = {}  # worker pid -> when it was first seen gone
        self._seen: set[int] = set()
        self._stop = threading.Event()
        #: cleared before the whole server stops: the stream open then is the last one
        self.reconnect = threading.Event()
        self.reconnect.set()
        self._threads: list[threading.Thread] = []

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def events(self, kind: str) -> dict[int, float]:
        """pid -> monotonic time of the first ``KIND pid time`` line (a worker's line comes
        after its name and a bar)."""
        found: dict[int, float] = {}
        for pid, at in re.findall(rf"(?:^|\| ){kind} (\d+) ([\d.]+)$", self.output(), re.M):
            found.setdefault(int(pid), float(at))
        return found

    def wait_body(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                last = _request(self.sock, "/").partition(b"\r\n\r\n")[2].decode()
                if re.search(pattern, last):
                    return last
            except OSError:
                pass
            time.sleep(0.02)  # no readiness signal for "serves new code" other than asking
        raise AssertionError(f"no {pattern!r} within {timeout}s (last {last!r}):\n{self.output()}")

    # -- background observers --------------------------------------------------------------------

    def start_observers(self) -> None:
        for target in (self._stream_forever, self._watch_workers):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop_observers(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
            assert not thread.is_alive()

    def _stream_forever(self) -> None:
        """Keep one SSE stream open: reconnect as soon as one ends; record each."""
        while not self._stop.is_set():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(10.0)
                    s.connect(self.sock)
                    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = b""
                    while not re.search(rb"data: \d+ ", data):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if found := re.search(rb"data: (\d+) ", data):
                        self.on_stream.set(int(found.group(1)))
                    while not self._stop.is_set() and (chunk := s.recv(65536)):
                        data += chunk
                    ended = time.monotonic()
            except OSError as exc:
                self.streams.append(Stream(0, b"", b"", time.monotonic(), repr(exc)))
                time.sleep(0.01)  # the server is between workers: try again shortly
                continue
            if self._stop.is_set():
                return  # the test ended this one
            head, _, body = data.partition(b"\r\n\r\n")
            found = re.search(rb"data: (\d+) ", body)
            self.streams.append(Stream(int(found.group(1)) if found else 0, head, body, ended))
            if not self.reconnect.is_set():
                return

    def _watch_workers(self) -> None:
        """Record when each worker process is first seen gone (exited or a zombie)."""
        main = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                children = {p.pid: p for p in main.children(recursive=True)}
            except psutil.NoSuchProcess:
                children = {}
            now = time.monotonic()
            for pid, proc in children.items():
                try:
                    gone = proc.status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    gone = True
                if not gone:
                    self._seen.add(pid)
                elif pid not in self.exits:
                    self.exits[pid] = now
            for pid in self._seen - children.keys():
                self.exits.setdefault(pid, now)
            time.sleep(0.01)  # a poll: process exits have no event the test can wait on

    # -- the end ---------------------------------------------------------------------------------

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            self.out.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(VIVACE_APP)
    (tmp_path / "asgi_app.py").write_text(ASGI_APP)
    return tmp_path


def save(path: Path, version: str) -> None:
    path.write_text(re.sub(r'VERSION = ".*"', f'VERSION = "{version}"', path.read_text()))


@pytest.fixture
def serving(project: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    served = Served(project, request.param, "--reload", "--debug", "--no-motd")
    try:
        served.wait_body("^v1 ")
        yield served
    finally:
        served.stop_observers()
        served.stop()


def _stream_on_current(served: Served, version: str) -> int:
    """The pid of the worker serving ``version`` once the open stream is on it. (One save can
    reach the reloader as two batches: the worker that answered may be replaced meanwhile.)"""
    deadline = time.monotonic() + 15
    while True:
        pid = int(served.wait_body(f"^{version} ").split()[1])
        if served.on_stream.wait_for(pid, 1.0):
            return pid
        assert time.monotonic() < deadline, f"no stream reached a {version} worker"


def _check(served: Served, stops: dict[int, float]) -> None:
    """Every stream complete; every stopped worker's streams ended after its grace and within the
    grace plus a second, and the worker gone within the grace plus a second."""
    streams = [s for s in served.streams if not s.error]
    errors = [s.error for s in served.streams if s.error]
    assert streams, "no stream was recorded"
    # the listening socket stays open through reloads: no stream is refused or reset
    assert errors == []
    for stream in streams:
        assert stream.head.startswith(b"HTTP/1.1 200"), stream.head
        assert stream.complete, f"stream of {stream.pid} cut: ...{stream.body[-80:]!r}"
        assert stream.pid in stops, (stream.pid, stops)
        after = stream.ended_at - stops[stream.pid]
        assert GRACE - EARLY <= after <= LIMIT, (stream.pid, after)
    for pid, stopped in stops.items():
        assert pid in served.exits, f"worker {pid} still running"
        assert served.exits[pid] - stopped <= LIMIT, (pid, served.exits[pid] - stopped)


@pytest.mark.parametrize("serving", ["app:app"], indirect=True)
def test_sse_through_saves_in_a_row_ends_cleanly_and_no_old_worker_lingers(
    project: Path, serving: Served
) -> None:
    served = serving
    served.start_observers()
    for version in ("v2", "v3"):  # each save once the last one is served, a stream open on it
        save(project / "app.py", version)
        _stream_on_current(served, version)
    for version in ("v4", "v5", "v6"):  # saves in a quick row
        save(project / "app.py", version)
        time.sleep(0.1)  # the pace of the saves themselves, not a wait for the server
    last_pid = _stream_on_current(served, "v6")
    # the whole server stops (SIGINT): the last worker's stream ends the same way
    served.reconnect.clear()
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(20) == 0
    deadline = time.monotonic() + 5
    while last_pid not in {s.pid for s in served.streams}:  # the observer records the end
        assert time.monotonic() < deadline, served.output()
        time.sleep(0.01)
    served.stop_observers()
    stops = served.events("STOPPING")
    cancelled = served.events("CANCELLED")
    assert len(stops) >= 4, served.output()  # v1, v2, v3, at least one of v4-v5, v6
    _check(served, stops)
    streamed = {s.pid for s in served.streams if not s.error}
    assert last_pid in streamed and len(streamed) >= 4, streamed
    assert streamed <= cancelled.keys(), (streamed, cancelled)  # each handler saw cancellation


@pytest.mark.parametrize("serving", ["asgi_app:app"], indirect=True)
def test_an_asgi_sse_stream_through_a_save_ends_cleanly_and_the_app_sees_disconnect(
    project: Path, serving: Served
) -> None:
    served = serving
    served.start_observers()
    old = _stream_on_current(served, "v1")
    saved = time.monotonic()
    save(project / "asgi_app.py", "v2")
    served.wait_body("^v2 ")
    deadline = time.monotonic() + 10
    while old not in {s.pid for s in served.streams} or old not in served.exits:
        assert time.monotonic() < deadline, served.output()
        time.sleep(0.01)
    served.stop_observers()
    stream = next(s for s in served.streams if s.pid == old)
    assert stream.complete, stream.body[-80:]
    disconnected = served.events("DISCONNECT")
    assert old in disconnected, served.output()
    # told at the stream's end, ended no sooner than the grace after the save, gone just after
    assert stream.ended_at - saved >= GRACE - EARLY
    assert abs(disconnected[old] - stream.ended_at) < 0.5
    assert served.exits[old] - stream.ended_at <= 1.0
