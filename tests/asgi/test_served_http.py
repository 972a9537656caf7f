"""tests/server/test_http.py's server-independent behaviours, the app served by uvicorn (hypercorn).

Limits and timeouts that belong to the server itself (header size and count, smuggling shapes,
REQUEST/RESPONSE/KEEP_ALIVE timeouts, graceful drain) are uvicorn's business in ASGI mode; what
the app decides (413 past REQUEST_MAX_SIZE, 400 for bad JSON, 404/405, 500) is tested here.
Every test runs under each server of ``tests.asgi.servers.SERVERS`` that is installed.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.asgi.conftest import server_params
from tests.asgi.servers import Served, serve
from tests.server.helpers import RawClient, get

HELLO = b'{"hello":"world","token":"from-before-server-start"}'
REQUEST_MAX_SIZE = 65536


@pytest.fixture(scope="module", params=server_params())
def small_bodies(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The app served with REQUEST_MAX_SIZE = 64 KiB."""
    server = serve(
        tmp_path_factory.mktemp("small-bodies"),
        env={"VIVACE_REQUEST_MAX_SIZE": str(REQUEST_MAX_SIZE)},
        server=request.param,
    )
    try:
        yield server
    finally:
        server.stop()


def _tag() -> str:
    return uuid.uuid4().hex[:12]


def test_keep_alive_serves_several_requests_on_one_connection(served: Served) -> None:
    with RawClient(served.port) as client:
        for _ in range(3):
            client.send(get("/"))
            response = client.read_response()
            assert response.status == 200
            assert response.body == HELLO
            assert response.header("content-length") == str(len(HELLO))
            assert response.header("date") is not None
        assert not client.closed_now()


def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(get("/sleep/60") + get("/sleep/1") + get("/") + get("/sleep/20"))
        bodies = [client.read_response().body for _ in range(4)]
        assert bodies == [b"slept 60", b"slept 1", HELLO, b"slept 20"]


def test_content_length_and_chunked_uploads(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        assert client.read_response().body == b"hello"
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
        )
        response = client.read_response()
        assert response.body == b"abcdefg"
        assert response.header("x-length") == "7"


def test_streamed_request_body_arrives_in_pieces(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(b"POST /stream-in HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            client.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
            time.sleep(0.01)
        client.send(b"0\r\n\r\n")
        response = client.read_response()
        assert response.status == 200
        assert b'"total":5120' in response.body


def test_streaming_response_is_chunked(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(get("/stream"))
        response = client.read_response()
        assert response.header("transfer-encoding") == "chunked"
        assert response.body == b"".join(f"part{i}\n".encode() for i in range(5))
        client.send(get("/"))  # the connection is still usable after the last chunk
        assert client.read_response().body == HELLO


def test_head_has_headers_but_no_body(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get("/"))
        head = client.read_response(head_only=True)
        assert head.status == 200
        assert head.header("content-length") == str(len(HELLO))
        assert client.read_response().body == HELLO  # nothing leaked in between


def test_request_body_over_request_max_size_is_413_and_the_server_keeps_serving(
    small_bodies: Served,
) -> None:
    over = REQUEST_MAX_SIZE + 1
    for path in (b"/echo", b"/stream-in"):  # buffered and streamed routes alike
        with RawClient(small_bodies.port) as client:  # declared length over the limit
            client.send(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (path, over))
            response = client.read_response()  # answered before the body is sent
            assert response.status == 413
            assert b"REQUEST_MAX_SIZE" in response.body  # says which setting to raise
        with RawClient(small_bodies.port) as client:  # chunked: counted as it comes
            client.send(b"POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" % path)
            for _ in range(over // 8192 + 1):
                client.send(b"2000\r\n" + b"b" * 8192 + b"\r\n")
            client.send(b"0\r\n\r\n")
            response = client.read_response()
            assert response.status == 413
            assert b"REQUEST_MAX_SIZE" in response.body
            client.send(get("/"))  # the rest of the body never leaks into the next request
            assert client.read_response().body == HELLO
    with RawClient(small_bodies.port) as client:  # exactly at the limit is fine
        body = b"c" * REQUEST_MAX_SIZE
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        client.send(body)
        response = client.read_response()
        assert (response.status, response.header("x-length")) == (200, str(REQUEST_MAX_SIZE))


def test_expect_100_continue(small_bodies: Served) -> None:
    with RawClient(small_bodies.port) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert client.read_response(head_only=True).status == 100
        client.send(b"ping")
        assert client.read_response().body == b"ping"


def test_expect_100_continue_over_the_limit_gets_413_without_100(small_bodies: Served) -> None:
    for path in (b"/echo", b"/stream-in"):
        with RawClient(small_bodies.port) as client:
            client.send(
                b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n"
                b"Expect: 100-continue\r\n\r\n" % path
            )
            response = client.read_response()
            if small_bodies.kind == "hypercorn":  # hypercorn answers 100 before the app runs
                assert response.status == 100
                response = client.read_response()
            assert response.status == 413


def test_malformed_json_is_400_with_the_reason(served: Served) -> None:
    response = httpx.post(served.url + "/json", content=b'{"a": 1,', timeout=5)
    assert response.status_code == 400
    assert "Invalid JSON body" in response.text
    response = httpx.post(served.url + "/json", content=b'{"a": [1, 2]}', timeout=5)
    assert response.json() == {"parsed": {"a": [1, 2]}}


def test_handler_exception_is_a_500_and_the_connection_lives_on(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(get("/boom"))
        response = client.read_response()
        assert response.status == 500
        assert b"handler exploded" not in response.body  # no traceback outside debug
        client.send(get("/"))
        assert client.read_response().body == HELLO
    assert "handler exploded" in served.output()  # logged in the server's output


def test_not_found_and_method_not_allowed_with_allow(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(get("/no/such/page"))
        assert client.read_response().status == 404
        client.send(b"DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        response = client.read_response()
        assert response.status == 405
        allow = response.header("allow")
        assert allow is not None and "POST" in allow and "DELETE" not in allow


def test_cookies_are_read_and_set(served: Served) -> None:
    with RawClient(served.port) as client:
        client.send(get("/cookies", "Cookie: flavour=oatmeal; other=1\r\n"))
        response = client.read_response()
        assert response.body == b"flavour=oatmeal"
        set_cookie = response.header("set-cookie")
        assert set_cookie is not None
        assert set_cookie.startswith("visited=yes")
        assert "HttpOnly" in set_cookie


def test_slow_client_backpressure_pauses_the_streaming_handler(served: Served) -> None:
    tag = _tag()
    with RawClient(served.port) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.send(get(f"/big/{tag}"))

        def progress() -> int:
            value = httpx.get(f"{served.url}/progress/{tag}", timeout=5).json()["progress"]
            return int(value or 0)

        deadline = time.monotonic() + 10
        while not progress() and time.monotonic() < deadline:
            time.sleep(0.01)
        last = -1
        while time.monotonic() < deadline:  # wait until the producer stops moving
            time.sleep(0.2)
            now = progress()
            if now == last:
                break
            last = now
        assert progress() == last, "the handler kept writing to a client that does not read"
        assert 0 < last < 200  # 25 MB would be buffered without backpressure
        response = client.read_response()
        assert len(response.body) == 400 * 65536
    assert progress() == 400


def test_slow_handler_backpressure_pauses_reading_the_body(served: Served) -> None:
    tag = _tag()
    size = 32 * 1024 * 1024
    with RawClient(served.port) as client:
        client.send(
            b"POST /slow/%s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
            % (
                tag.encode(),
                size,
            )
        )
        client.sock.setblocking(False)
        sent = 0
        stalled_since = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # send until the server stops taking bytes
            try:
                sent += client.sock.send(b"y" * 65536)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break
                time.sleep(0.01)
        assert sent < size  # the server stopped reading: our sends block
        assert httpx.get(f"{served.url}/release/{tag}", timeout=5).text == "released"
        client.sock.setblocking(True)
        client.sock.settimeout(10)
        client.send(b"y" * (size - sent))
        response = client.read_response()
        assert response.body == str(size).encode()


def test_a_stream_is_cancelled_when_the_client_disconnects(served: Served) -> None:
    tag = _tag()
    with RawClient(served.port) as client:
        client.send(get(f"/endless/{tag}"))
        assert client.read_response(head_only=True).status == 200
        while b"tick" not in client.buffer:
            assert client._fill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = httpx.get(f"{served.url}/seen/{tag}", timeout=5).json()
        if seen:
            break
        time.sleep(0.02)
    assert seen == ["cancelled"]  # not still writing to nobody


def test_an_answer_before_the_body_is_read_drops_the_rest_and_keeps_the_connection(
    served: Served,
) -> None:
    with RawClient(served.port) as client:
        client.send(
            b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n" + b"a" * 1000
        )
        assert client.read_response().body == b"first 1000"
        if served.kind == "hypercorn":
            # h11 cannot skip an unread body: hypercorn closes the connection instead
            assert client.closed()
            with RawClient(served.port) as fresh:
                fresh.send(get("/"))
                assert fresh.read_response().body == HELLO
            return
        client.send(b"b" * 299000)  # the rest of the body arrives after the answer
        client.send(get("/"))
        assert client.read_response().body == HELLO


@pytest.mark.parametrize("kind", server_params())
def test_graceful_shutdown_lets_an_in_flight_request_finish(tmp_path: Path, kind: str) -> None:
    server = serve(tmp_path, server=kind)
    try:
        tag = _tag()
        with RawClient(server.port) as client:
            client.send(get(f"/in-flight/{tag}/400"))
            deadline = time.monotonic() + 5
            while httpx.get(f"{server.url}/seen/{tag}", timeout=5).json() != ["started"]:
                assert time.monotonic() < deadline, "the request never reached its handler"
                time.sleep(0.01)
            server.proc.send_signal(signal.SIGINT)
            response = client.read_response()
            assert (response.status, response.body) == (200, b"done after 400")
        assert server.proc.wait(timeout=10) == 0
    finally:
        server.stop()
    assert server.trace.read_text().split()[-2:] == ["before_server_stop", "after_server_stop"]
