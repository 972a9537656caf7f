"""Streams end cleanly when a worker stops (issue 13 item 5).

An open streaming response (SSE) gets ``STREAM_SHUTDOWN_GRACE`` seconds, then ends with its
terminator (``0\\r\\n\\r\\n`` for a chunked body; the close for an HTTP/1.0 body) and its
connection closes; the handler sees cancellation (a vivace handler) or ``http.disconnect`` (an
ASGI app), and the server's ``run()`` returns within the grace plus a second. A stream with a
Content-Length cannot be completed: its connection closes, never resets. Websockets still get
their 1001 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from runtime import App, Request, text
from runtime.config import (
    STREAM_SHUTDOWN_GRACE,
    STREAM_SHUTDOWN_GRACE_DEBUG,
    Config,
    stream_shutdown_grace,
)
from runtime.exceptions import ConfigError
from runtime.foreign import ForeignApp
from runtime.hosting import Hosted, Receive, Scope, Send
from runtime.response import ResponseStream
from runtime.server import Server, bind, new_event_loop
from runtime.server.http import ServerState

GRACE = 0.3
TIMEOUT = 10.0
#: the bound every stop is held to: the grace plus a second
LIMIT = GRACE + 1.0
#: how early the end may come (timer resolution): a stream is never ended before its grace
EARLY = 0.05


@dataclass
class Running:
    server: Server
    port: int
    finished: list[float] = field(default_factory=list)  # when run() returned (monotonic)
    done: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> float:
        started = time.monotonic()
        self.server.stop()
        return started

    def wait_finished(self) -> float:
        assert self.done.wait(TIMEOUT + 20), "the server did not stop"
        return self.finished[0]


@contextlib.contextmanager
def running(app: Hosted) -> Iterator[Running]:
    """``app`` served on a free port in a thread; ``finished`` records when ``run()`` returned."""
    sock = bind("127.0.0.1", 0)
    server = Server(app, [sock], install_signals=False)
    loop = new_event_loop()
    run = Running(server, sock.getsockname()[1])

    def target() -> None:
        try:
            loop.run_until_complete(server.run())
        finally:
            run.finished.append(time.monotonic())
            run.done.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name="stream-shutdown-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started.is_set():
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.002)
        yield run
    finally:
        server.stop()
        thread.join(TIMEOUT + 20)
        sock.close()
        assert not thread.is_alive(), "the server thread did not stop"


class StreamClient:
    """A raw socket reading one streamed response, with the time its end (EOF) came."""

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.sendall(request)
        self.received = b""
        self.ended_at = 0.0

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def wait_for(self, data: bytes) -> None:
        while data not in self.received:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before {data!r}: {self.received!r}"
            self.received += chunk

    def read_to_eof(self) -> bytes:
        """Everything up to the server's close (a reset raises ConnectionResetError)."""
        while chunk := self.sock.recv(65536):
            self.received += chunk
        self.ended_at = time.monotonic()
        return self.received

    @property
    def head(self) -> bytes:
        return self.received.partition(b"\r\n\r\n")[0]

    @property
    def body(self) -> bytes:
        return self.received.partition(b"\r\n\r\n")[2]


def dechunk(body: bytes) -> tuple[list[bytes], bytes]:
    """The chunks of a chunked body and what follows its last chunk; AssertionError when the
    body does not end with a last chunk."""
    chunks: list[bytes] = []
    rest = body
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        assert sep, f"the chunked body has no last chunk: ...{body[-60:]!r}"
        size = int(size_line, 16)
        if size == 0:
            assert rest.startswith(b"\r\n"), f"no CRLF after the last chunk: {rest!r}"
            return chunks, rest[2:]
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n", "a chunk without its CRLF"
        rest = rest[size + 2 :]


def get(path: str, version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: t\r\n\r\n".encode()


# --- a vivace handler ---------------------------------------------------------------------------


def streaming_app(seen: queue.Queue[str], **config: Any) -> App:
    app = App("stream_shutdown")
    app.config.STREAM_SHUTDOWN_GRACE = GRACE
    app.config.update(config)

    async def forever(response: ResponseStream) -> None:
        n = 0
        try:
            while True:
                await response.write(f"data: {n}\n\n")
                n += 1
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            seen.put("cancelled")
            raise

    @app.get("/events")
    async def events(request: Request) -> ResponseStream:
        return ResponseStream(forever, content_type="text/event-stream")

    @app.get("/sized")
    async def sized(request: Request) -> ResponseStream:
        return ResponseStream(forever, headers={"content-length": "1000000"})

    return app


def test_a_vivace_stream_gets_its_grace_then_its_last_chunk_and_the_handler_is_cancelled() -> None:
    seen: queue.Queue[str] = queue.Queue()
    with running(streaming_app(seen)) as server, StreamClient(server.port, get("/events")) as c:
        c.wait_for(b"data: 0\n\n")
        stopped = server.stop()
        c.read_to_eof()
        finished = server.wait_finished()
        assert seen.get(timeout=TIMEOUT) == "cancelled"
    assert c.head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in c.head.lower()
    chunks, after = dechunk(c.body)
    assert after == b""  # the last chunk, then the close: nothing else
    assert all(chunk.startswith(b"data: ") for chunk in chunks)
    # it kept streaming through the grace, then ended
    assert GRACE - EARLY <= c.ended_at - stopped <= LIMIT, c.ended_at - stopped
    assert len(chunks) > 3
    assert finished - stopped <= LIMIT, finished - stopped


def test_a_stream_with_a_content_length_cannot_be_completed_its_connection_closes() -> None:
    seen: queue.Queue[str] = queue.Queue()
    with running(streaming_app(seen)) as server, StreamClient(server.port, get("/sized")) as c:
        c.wait_for(b"data: 0\n\n")
        stopped = server.stop()
        c.read_to_eof()  # a close, not a reset
        finished = server.wait_finished()
        assert seen.get(timeout=TIMEOUT) == "cancelled"
    assert b"content-length: 1000000" in c.head.lower()
    assert 0 < len(c.body) < 1000000
    assert GRACE - EARLY <= c.ended_at - stopped <= LIMIT
    assert finished - stopped <= LIMIT


def test_an_http_1_0_stream_ends_with_the_close() -> None:
    seen: queue.Queue[str] = queue.Queue()
    request = get("/events", "1.0")
    with running(streaming_app(seen)) as server, StreamClient(server.port, request) as c:
        c.wait_for(b"data: 0\n\n")
        stopped = server.stop()
        c.read_to_eof()
        finished = server.wait_finished()
        assert seen.get(timeout=TIMEOUT) == "cancelled"
    assert b"transfer-encoding" not in c.head.lower()
    assert c.body.startswith(b"data: 0\n\n") and c.body.endswith(b"\n\n")
    assert GRACE - EARLY <= c.ended_at - stopped <= LIMIT
    assert finished - stopped <= LIMIT


def test_a_stream_that_ends_within_its_grace_is_not_cut() -> None:
    app = App("stream_finishes")
    app.config.STREAM_SHUTDOWN_GRACE = 5.0
    release: asyncio.Event | None = None
    streaming = threading.Event()

    async def body(response: ResponseStream) -> None:
        nonlocal release
        release = asyncio.Event()
        await response.write("first ")
        streaming.set()
        await release.wait()
        await response.write("last")

    @app.get("/")
    async def index(request: Request) -> ResponseStream:
        return ResponseStream(body)

    with running(app) as server, StreamClient(server.port, get("/")) as c:
        assert streaming.wait(TIMEOUT)
        stopped = server.stop()
        while server.server.state is None or not server.server.state.shutting_down:
            assert time.monotonic() - stopped < TIMEOUT
            time.sleep(0.002)
        assert release is not None
        loop = server.server._loop
        assert loop is not None
        loop.call_soon_threadsafe(release.set)
        c.read_to_eof()
        finished = server.wait_finished()
    chunks, after = dechunk(c.body)
    assert b"".join(chunks) == b"first last" and after == b""
    assert finished - stopped < 5.0  # the drain did not wait for a grace nobody needed


def test_a_websocket_gets_1001_at_once_while_a_stream_has_its_grace() -> None:
    seen: queue.Queue[str] = queue.Queue()
    app = streaming_app(seen, STREAM_SHUTDOWN_GRACE=2.0)

    @app.websocket("/hold")
    async def hold(request: Request, ws: Any) -> None:
        await ws.send("ready")
        await asyncio.sleep(30)

    with (
        running(app) as server,
        StreamClient(server.port, get("/events")) as c,
        connect(f"ws://127.0.0.1:{server.port}/hold") as ws,
    ):
        assert ws.recv(timeout=TIMEOUT) == "ready"
        c.wait_for(b"data: 0\n\n")
        stopped = server.stop()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=TIMEOUT)
        closed = time.monotonic()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        c.read_to_eof()
        finished = server.wait_finished()
    assert closed - stopped < 1.0  # not held for the streams' grace
    dechunk(c.body)
    assert 2.0 - EARLY <= c.ended_at - stopped <= 3.0
    assert finished - stopped <= 3.0


# --- an ASGI app ----------------------------------------------------------------------------------


def sse_asgi(seen: queue.Queue[str]) -> Any:
    """An SSE-like ASGI app streaming forever; it reports what told it to stop."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            seen.put("http.disconnect")
            gone.set()

        watcher = asyncio.ensure_future(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        n = 0
        try:
            while not gone.is_set():
                body = f"data: {n}\n\n".encode()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                n += 1
                with contextlib.suppress(asyncio.TimeoutError):  # (not TimeoutError on 3.10)
                    await asyncio.wait_for(gone.wait(), 0.02)
        except OSError:
            seen.put("send raised")
        finally:
            watcher.cancel()
        seen.put("returned")

    return app


def test_an_asgi_stream_gets_its_grace_then_its_last_chunk_and_the_app_sees_disconnect() -> None:
    seen: queue.Queue[str] = queue.Queue()
    config = Config(env_prefix=None)
    config.STREAM_SHUTDOWN_GRACE = GRACE
    host = ForeignApp(sse_asgi(seen), "asgi3", name="sse", config=config)
    with running(host) as server, StreamClient(server.port, get("/events")) as c:
        c.wait_for(b"data: 0\n\n")
        stopped = server.stop()
        c.read_to_eof()
        finished = server.wait_finished()
        assert seen.get(timeout=TIMEOUT) == "http.disconnect"
        assert seen.get(timeout=TIMEOUT) == "returned"
    chunks, after = dechunk(c.body)
    assert after == b"" and len(chunks) > 3
    assert GRACE - EARLY <= c.ended_at - stopped <= LIMIT, c.ended_at - stopped
    assert finished - stopped <= LIMIT


def test_a_listening_receive_hears_the_disconnect_before_a_send_raises() -> None:
    """The app's disconnect listener is told before its stream's next send() raises, even when
    the sending task is the one the loop runs first (it never waits for anything but the loop)."""
    told: list[str] = []

    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            told.append("http.disconnect")

        watcher = asyncio.ensure_future(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"data\n", "more_body": True})
                await asyncio.sleep(0)  # ready again at once: first in line after the end
        except OSError:
            told.append("send raised")
        finally:
            watcher.cancel()

    config = Config(env_prefix=None)
    config.STREAM_SHUTDOWN_GRACE = GRACE
    host = ForeignApp(busy, "asgi3", name="busy", config=config)
    with running(host) as server, StreamClient(server.port, get("/")) as c:
        c.wait_for(b"data\n")
        server.stop()
        c.read_to_eof()
        server.wait_finished()
    assert told == ["http.disconnect", "send raised"]


def test_an_asgi_app_that_ignores_the_disconnect_is_cancelled() -> None:
    seen: queue.Queue[str] = queue.Queue()

    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)
        await send({"type": "http.response.body", "body": b"data: 0\n\n", "more_body": True})
        try:
            await asyncio.sleep(60)  # neither receive() nor send() again
        except asyncio.CancelledError:
            seen.put("cancelled")
            raise

    config = Config(env_prefix=None)
    config.STREAM_SHUTDOWN_GRACE = GRACE
    host = ForeignApp(stubborn, "asgi3", name="stubborn", config=config)
    with running(host) as server, StreamClient(server.port, get("/")) as c:
        c.wait_for(b"data: 0\n\n")
        stopped = server.stop()
        c.read_to_eof()
        finished = server.wait_finished()
        assert seen.get(timeout=TIMEOUT) == "cancelled"
    assert dechunk(c.body) == ([b"data: 0\n\n"], b"")
    assert finished - stopped <= LIMIT


# --- the setting ----------------------------------------------------------------------------------


def test_the_grace_defaults_to_two_seconds_and_half_a_second_in_debug_mode() -> None:
    assert stream_shutdown_grace(None, debug=False) == STREAM_SHUTDOWN_GRACE == 2.0
    assert stream_shutdown_grace(None, debug=True) == STREAM_SHUTDOWN_GRACE_DEBUG == 0.5
    assert stream_shutdown_grace(0, debug=True) == 0.0
    assert stream_shutdown_grace(7, debug=True) == 7.0
    app = App("grace_default")
    assert ServerState(app).stream_grace == 2.0
    app.config.DEBUG = True
    assert ServerState(app).stream_grace == 0.5


@pytest.mark.parametrize("value", [-1, True, "2", float("inf"), float("nan")])
def test_a_grace_that_is_not_a_number_of_seconds_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="STREAM_SHUTDOWN_GRACE"):
        stream_shutdown_grace(value, debug=False)


def test_a_plain_request_running_at_the_stop_is_not_cut_at_the_stream_grace() -> None:
    app = App("slow_plain")
    app.config.STREAM_SHUTDOWN_GRACE = 0.0
    release = threading.Event()

    @app.get("/")
    async def index(request: Request) -> Any:
        await asyncio.get_running_loop().run_in_executor(None, release.wait, TIMEOUT)
        return text("done")

    with running(app) as server, StreamClient(server.port, get("/")) as c:
        deadline = time.monotonic() + TIMEOUT
        while server.server.state is None or not any(
            conn._cycle is not None for conn in server.server.state.connections
        ):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        server.stop()
        while not server.server.state.shutting_down:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(0.2)  # past the (zero) stream grace: the request is not a stream
        release.set()
        c.read_to_eof()
    assert c.head.startswith(b"HTTP/1.1 200") and c.body == b"done"
    assert b"connection: close" in c.head.lower()


def test_the_run_settings_resolve_the_grace_once_for_every_worker() -> None:
    from runtime.appref import AppRef
    from runtime.options import RunOptions
    from runtime.settings import Settings

    dev = RunOptions(target=AppRef(module="m"), debug=True, auto_reload=True)
    plain = RunOptions(target=AppRef(module="m"))
    assert Settings.resolve(dev, Config(env_prefix=None)).stream_shutdown_grace == 0.5
    assert Settings.resolve(plain, Config(env_prefix=None)).stream_shutdown_grace == 2.0
    config = Config(env_prefix=None)
    config.STREAM_SHUTDOWN_GRACE = 3
    settings = Settings.resolve(dev, config)
    assert settings.config_updates()["STREAM_SHUTDOWN_GRACE"] == 3.0  # what a worker applies
    config.STREAM_SHUTDOWN_GRACE = -1
    with pytest.raises(ConfigError, match="STREAM_SHUTDOWN_GRACE"):
        Settings.resolve(plain, config)
