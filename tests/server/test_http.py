"""HTTP/1.1 over real sockets: keep-alive, pipelining, bodies, streaming, limits, timeouts."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest

from runtime import App, json, stream, text
from runtime.request import Request
from runtime.response import ResponseStream, StreamingResponse
from tests.server.helpers import RawClient, get, request, serve


def make_app() -> App:
    app = App("http")

    @app.get("/")
    async def index(request: Request) -> object:
        return json({"hello": "world"})

    @app.get("/sleep/<ms:int>")
    async def sleep(request: Request, ms: int) -> object:
        await asyncio.sleep(ms / 1000)
        return text(f"slept {ms}")

    @app.post("/echo")
    async def echo(request: Request) -> object:
        return text(request.body.decode(), headers={"x-length": str(len(request.body))})

    @app.post("/stream-in", stream=True)
    async def stream_in(request: Request) -> object:
        sizes = []
        while (chunk := await request.stream.read()) is not None:
            sizes.append(len(chunk))
        return json({"total": sum(sizes), "chunks": len(sizes)})

    @app.get("/stream-out")
    async def stream_out(request: Request) -> object:
        async def parts():  # type: ignore[no-untyped-def]
            for i in range(3):
                yield f"part{i};"

        return StreamingResponse(parts())

    return app


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        for _ in range(3):
            client.send(get("/"))
            response = client.read_response()
            assert response.status == 200
            assert response.body == b'{"hello":"world"}'
            assert response.header("connection") == "keep-alive"
            assert response.header("content-length") == "17"
            assert (
                response.header(
                    "date",
                )
                is not None
            )


def test_connection_close_and_http10_close_after_the_response() -> None:
    with serve(make_app()) as srv:
        with RawClient(srv.port) as client:
            client.send(get("/", "Connection: close\r\n"))
            assert client.read_response().header("connection") == "close"
            assert client.closed()
        with RawClient(srv.port) as client:
            client.send(b"GET / HTTP/1.0\r\n\r\n")
            assert client.read_response().status == 200
            assert client.closed()


def test_pipelined_requests_are_answered_in_order() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(get("/sleep/60") + get("/sleep/1") + get("/") + get("/sleep/20"))
        bodies = [client.read_response().body for _ in range(4)]
        assert bodies == [b"slept 60", b"slept 1", b'{"hello":"world"}', b"slept 20"]


def test_content_length_and_chunked_uploads() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        assert client.read_response().body == b"hello"
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
        )
        response = client.read_response()
        assert response.body == b"abcdefg"
        assert response.header("x-length") == "7"


def test_streamed_request_body_arrives_in_pieces() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(b"POST /stream-in HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            client.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
            time.sleep(0.01)
        client.send(b"0\r\n\r\n")
        response = client.read_response()
        assert response.status == 200
        assert b'"total":5120' in response.body


def test_streaming_response_is_chunked() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(get("/stream-out"))
        response = client.read_response()
        assert response.header("transfer-encoding") == "chunked"
        assert response.body == b"part0;part1;part2;"
        client.send(b"GET /stream-out HTTP/1.0\r\n\r\n")  # no chunked framing for HTTP/1.0
        response = client.read_response()
        assert response.header("transfer-encoding") is None
        assert response.body == b"part0;part1;part2;"


def test_head_has_headers_but_no_body() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get("/"))
        head = client.read_response(head_only=True)
        assert head.status == 200
        assert head.header("content-length") == "17"
        assert client.read_response().body == b'{"hello":"world"}'  # nothing leaked in between


def test_expect_100_continue() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = client.read_response(head_only=True)
        assert interim.status == 100
        client.send(b"ping")
        assert client.read_response().body == b"ping"


def test_expect_100_continue_over_the_limit_gets_413_without_100() -> None:
    app = make_app()
    app.config.REQUEST_MAX_SIZE = 10
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\nExpect: 100-continue\r\n\r\n"
        )
        assert client.read_response().status == 413
        assert client.closed()


@pytest.mark.parametrize(
    ("setting", "value", "data", "status"),
    [
        (
            "REQUEST_MAX_SIZE",
            10,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n",
            413,
        ),
        (
            "REQUEST_MAX_SIZE",
            10,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n"
            b"8\r\n12345678\r\n0\r\n\r\n",
            413,
        ),
        ("REQUEST_MAX_HEADER_SIZE", 200, get("/", "X-Big: " + "a" * 300 + "\r\n"), 431),
        ("REQUEST_MAX_HEADER_SIZE", 100, get("/" + "a" * 200), 431),
        ("REQUEST_MAX_HEADER_COUNT", 5, get("/", "".join(f"X-{i}: v\r\n" for i in range(6))), 431),
    ],
)
def test_limits(setting: str, value: int, data: bytes, status: int) -> None:
    app = make_app()
    app.config[setting] = value
    with serve(app) as srv:
        with RawClient(srv.port) as client:
            client.send(data)
            response = client.read_response()
            assert response.status == status, response.body
            assert response.body  # a clear message
            assert client.closed()
        assert request(srv.port, get("/")).status == 200


def test_limits_are_not_hit_by_requests_just_under_them() -> None:
    app = make_app()
    app.config.REQUEST_MAX_SIZE = 10
    app.config.REQUEST_MAX_HEADER_COUNT = 5
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789")
        assert client.read_response().status == 200
        client.send(get("/", "".join(f"X-{i}: v\r\n" for i in range(4))))
        assert client.read_response().status == 200


def test_unsupported_transfer_encoding_is_501_and_smuggling_is_400_with_close() -> None:
    with serve(make_app()) as srv:
        with RawClient(srv.port) as client:
            client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n")
            assert client.read_response().status == 501
            assert client.closed()
        with RawClient(srv.port) as client:
            client.send(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            response = client.read_response()
            assert response.status == 400
            assert client.closed()  # the smuggled request is never answered


def test_request_timeout_is_408() -> None:
    app = make_app()
    app.config.REQUEST_TIMEOUT = 0.3
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"
        )  # 7 bytes never come
        started = time.monotonic()
        response = client.read_response()
        assert response.status == 408
        assert 0.2 < time.monotonic() - started < 3
        assert client.closed()


def test_partial_head_times_out_too() -> None:
    app = make_app()
    app.config.REQUEST_TIMEOUT = 0.3
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        assert client.read_response().status == 408


def test_response_timeout_is_503() -> None:
    app = make_app()
    app.config.RESPONSE_TIMEOUT = 0.3
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/sleep/5000"))
        response = client.read_response()
        assert response.status == 503
        assert client.closed()


def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    app = make_app()
    app.config.KEEP_ALIVE_TIMEOUT = 0.3
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/"))
        assert client.read_response().status == 200
        started = time.monotonic()
        assert client.closed()
        assert 0.2 < time.monotonic() - started < 3


def test_keep_alive_off_closes_after_each_response() -> None:
    app = make_app()
    app.config.KEEP_ALIVE = False
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/"))
        assert client.read_response().header("connection") == "close"
        assert client.closed()


def test_slow_client_backpressure_pauses_the_streaming_handler() -> None:
    app = App("slow")
    progress: list[int] = []
    finished = threading.Event()

    @app.get("/big")
    async def big(request: Request) -> object:
        async def produce(response: ResponseStream) -> None:
            for i in range(400):
                await response.write(b"x" * 65536)
                progress.append(i)
            finished.set()

        return stream(produce)

    with serve(app) as srv, RawClient(srv.port) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.send(get("/big"))
        deadline = time.monotonic() + 10
        while not progress and time.monotonic() < deadline:
            time.sleep(0.01)
        last = -1
        while time.monotonic() < deadline:  # wait until the producer stops moving
            time.sleep(0.2)
            if len(progress) == last:
                break
            last = len(progress)
        assert len(progress) == last, "the handler kept writing to a client that does not read"
        assert 0 < last < 200  # 25 MB would be buffered without backpressure
        response = client.read_response()
        assert len(response.body) == 400 * 65536
        assert finished.wait(5)


def test_slow_handler_backpressure_pauses_reading_the_body() -> None:
    app = App("slowread")
    release = threading.Event()
    received: list[int] = []

    @app.post("/slow", stream=True)
    async def slow(request: Request) -> object:
        while not release.is_set():
            await asyncio.sleep(0.01)
        total = 0
        while (chunk := await request.stream.read()) is not None:
            total += len(chunk)
        received.append(total)
        return text(str(total))

    app.config.REQUEST_BUFFER_SIZE = 65536
    size = 64 * 1024 * 1024
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        client.sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                sent += client.sock.send(b"y" * 65536)
            except BlockingIOError:
                time.sleep(0.01)
        assert sent < size  # the server stopped reading: our sends block
        assert srv.server.state is not None
        assert any(conn.flow.read_paused for conn in srv.server.state.connections)
        release.set()
        client.sock.setblocking(True)
        client.sock.settimeout(10)
        client.send(b"y" * (size - sent))
        response = client.read_response()
        assert response.body == str(size).encode()


def _app_with_in_flight_marker() -> tuple[App, threading.Event]:
    app = make_app()
    in_flight = threading.Event()

    @app.get("/slow/<ms:int>")
    async def slow(request: Request, ms: int) -> object:
        in_flight.set()
        await asyncio.sleep(ms / 1000)
        return text(f"slow {ms}")

    return app, in_flight


def test_graceful_shutdown_lets_an_in_flight_request_finish() -> None:
    app, in_flight = _app_with_in_flight_marker()
    with serve(app) as srv, RawClient(srv.port) as busy, RawClient(srv.port) as idle:
        idle.send(get("/"))
        assert idle.read_response().status == 200
        busy.send(get("/slow/400"))
        assert in_flight.wait(10)
        srv.stop()
        response = busy.read_response()
        assert response.body == b"slow 400"
        assert response.header("connection") == "close"
        assert busy.closed()
        assert idle.closed()


def test_graceful_shutdown_aborts_what_outlives_the_timeout() -> None:
    app, in_flight = _app_with_in_flight_marker()
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 0.3
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/slow/10000"))
        assert in_flight.wait(10)
        started = time.monotonic()
        srv.stop()
        assert client.closed()
        assert time.monotonic() - started < 5
        assert client.buffer == b""  # aborted: no response at all


def test_server_lifecycle_signals_fire_when_registered() -> None:
    app = make_app()
    seen: list[str] = []

    @app.signal("http.lifecycle.begin")
    async def begin(conn_info: object) -> None:
        seen.append("begin")

    @app.signal("http.lifecycle.read_head")
    async def read_head(head: bytes) -> None:
        seen.append("read_head:" + head.split(b"\r\n")[0].decode())

    @app.signal("http.lifecycle.send")
    async def send(data: bytes) -> None:
        seen.append("send")

    @app.signal("http.lifecycle.complete")
    async def complete(conn_info: object) -> None:
        seen.append("complete")

    with serve(app) as srv:
        with RawClient(srv.port) as client:
            client.send(get("/", "Connection: close\r\n"))
            assert client.read_response().status == 200
            assert client.closed()
        deadline = time.monotonic() + 5
        while "complete" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    assert seen == ["begin", "read_head:GET / HTTP/1.1", "send", "complete"]


def test_access_log_writes_one_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vivace.access"):
        with serve(make_app(), access_log=True) as srv:
            assert request(srv.port, get("/?q=1")).status == 200
        lines = [r.getMessage() for r in caplog.records if r.name == "vivace.access"]
    assert len(lines) == 1
    assert '"GET /?q=1 HTTP/1.1" 200' in lines[0]


def test_handler_exception_is_a_500_and_the_connection_lives_on() -> None:
    app = make_app()

    @app.get("/boom")
    async def boom(request: Request) -> object:
        raise RuntimeError("boom")

    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/boom"))
        assert client.read_response().status == 500
        client.send(get("/"))
        assert client.read_response().status == 200


def test_an_answer_before_the_body_is_read_drops_the_rest_and_keeps_the_connection() -> None:
    app = App("early")

    @app.post("/early", stream=True)
    async def early(request: Request) -> object:
        first = await request.stream.read()
        return text(f"first {len(first or b'')}")

    @app.get("/")
    async def index(request: Request) -> object:
        return text("next")

    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(
            b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n" + b"a" * 1000
        )
        assert client.read_response().body == b"first 1000"
        client.send(b"b" * 299000)  # the rest of the body arrives after the answer
        client.send(get("/"))
        assert client.read_response().body == b"next"
        assert not srv.errors


def test_a_client_that_stops_reading_a_stream_is_dropped_after_the_response_timeout() -> None:
    app = App("stalled")
    app.config.RESPONSE_TIMEOUT = 0.5
    cancelled = threading.Event()

    @app.get("/endless")
    async def endless(request: Request) -> object:
        async def produce(response: ResponseStream) -> None:
            try:
                while True:
                    await response.write(b"x" * 65536)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        return stream(produce)

    with serve(app) as srv, RawClient(srv.port) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.send(get("/endless"))
        assert cancelled.wait(10), "the stalled stream was never given up"
        assert srv.server.state is not None
        deadline = time.monotonic() + 5
        while srv.server.state.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not srv.server.state.connections


def test_a_forced_stop_does_not_wait_for_the_drain() -> None:
    app, in_flight = _app_with_in_flight_marker()
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 60
    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/slow/30000"))
        assert in_flight.wait(10)
        started = time.monotonic()
        srv.stop()
        time.sleep(0.2)
        assert not client.closed_now()  # still draining
        srv.server.stop(force=True)
        assert client.closed()
        assert time.monotonic() - started < 5
