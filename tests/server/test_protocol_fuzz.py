"""The asyncio protocol fed random byte streams split at random places (in-memory transport).

Complements the real-socket fuzz in test_corpus.py: here the split points are under the test's
control (TCP would coalesce them), and the end state is checked exactly: every connection is closed,
no task is left behind, nothing is logged as an error, and what was written is a sequence of
well-formed HTTP/1.1 responses.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import App, text
from runtime.request import Request
from runtime.server.http import HttpProtocol, ServerState

PIECES = [
    b"GET / HTTP/1.1\r\nHost: t\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\n",
    b"GET /slow HTTP/1.1\r\nHost: t\r\n",
    b"Host: t\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"\r\n",
    b"3\r\nabc\r\n",
    b"0\r\n\r\n",
    b"abc",
]


class MemoryTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.data = b""
        self.closing = False
        self.lost = False
        self.protocol: HttpProtocol | None = None

    def write(self, data: Any) -> None:
        assert not self.lost, "write after connection_lost"
        if not self.closing:
            self.data += bytes(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self._lose)

    def abort(self) -> None:
        self.close()

    def _lose(self) -> None:
        self.lost = True
        assert self.protocol is not None
        self.protocol.connection_lost(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def make_app() -> App:
    app = App("fuzz")

    @app.get("/")
    async def index(request: Request) -> object:
        return text("ok")

    @app.get("/slow")
    async def slow(request: Request) -> object:
        await asyncio.sleep(0.001)
        return text("slow")

    @app.post("/echo")
    async def echo(request: Request) -> object:
        return text(request.body.decode("latin-1"))

    return app


def well_formed_responses(data: bytes) -> int:
    """How many complete responses ``data`` holds; fails on anything that is not HTTP/1.1."""
    count = 0

    class Count:
        def on_message_complete(self) -> None:
            nonlocal count
            count += 1

    parser = httptools.HttpResponseParser(Count())
    parser.feed_data(data)
    return count


async def run(app: App, chunks: list[bytes]) -> tuple[MemoryTransport, list[Any]]:
    loop = asyncio.get_running_loop()
    errors: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    state = ServerState(app)
    protocol = state.protocol_factory()
    transport = MemoryTransport(loop)
    transport.protocol = protocol
    protocol.connection_made(transport)
    for chunk in chunks:
        if transport.closing:
            break
        protocol.data_received(chunk)
        await asyncio.sleep(0)
    if not transport.closing:
        protocol.eof_received()
        transport.close()  # what asyncio does when eof_received() returns a false value
    for _ in range(200):
        if transport.lost and not state.connections:
            break
        await asyncio.sleep(0.001)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if others:
        await asyncio.wait(others, timeout=2)
    return transport, errors


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=10),
    st.data(),
)
def test_random_streams_end_cleanly(pieces: list[bytes], data: st.DataObject) -> None:
    from runtime.testing import reset_app_registry

    reset_app_registry()
    app = make_app()
    app.finalize()
    stream = b"".join(pieces)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=6)))
    bounds = zip([0, *cuts], [*cuts, len(stream)], strict=True)
    chunks = [stream[a:b] for a, b in bounds if b > a]

    logged: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record)

    handler = Collect(logging.ERROR)
    logging.getLogger("vivace").addHandler(handler)
    try:
        transport, errors = asyncio.run(run(app, chunks))
    finally:
        logging.getLogger("vivace").removeHandler(handler)
        reset_app_registry()
    assert transport.lost, "the connection was not closed"
    assert not errors, errors
    assert not logged, [r.getMessage() for r in logged]
    well_formed_responses(transport.data)


def test_a_broken_pipelined_request_does_not_make_the_answer_before_it_say_close() -> None:
    # found by test_random_streams_end_cleanly: the first answer said "Connection: close" and
    # the 400 of the second request followed it on the same connection
    from runtime.testing import reset_app_registry

    reset_app_registry()
    app = make_app()
    app.finalize()
    stream = (
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: t\r\n"  # not a chunk size
    )
    try:
        transport, errors = asyncio.run(run(app, [stream]))
    finally:
        reset_app_registry()
    assert not errors, errors
    assert well_formed_responses(transport.data) == 2
    first, second = transport.data.split(b"HTTP/1.1 400", 1)
    assert b"connection: keep-alive" in first and b"connection: close" in second
