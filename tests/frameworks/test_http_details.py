"""HTTP details of the ASGI server, checked with the raw ASGI app on vivace and on uvicorn
(issue 12, point 2): protocol errors in the app's messages, ``http.disconnect`` for a
``receive()`` after the response, pipelining and ``Expect: 100-continue``."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.frameworks.servers import MODES, Server, start, wait_until

pytestmark = pytest.mark.slow

WHERE = {"vivace": ("vivace", MODES["single"]), "uvicorn": ("uvicorn", ())}


@pytest.fixture(scope="module", params=list(WHERE))
def raw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    kind, args = WHERE[request.param]
    server = start(kind, "raw_asgi:app", tmp_path_factory.mktemp(f"raw-{kind}"), args=args)
    try:
        yield server
    finally:
        server.stop()
        assert not server.orphans, f"processes left behind: {server.orphans}"


def _still_serving(server: Server) -> None:
    response = httpx.get(server.url + "/", timeout=10)
    assert (response.status_code, response.text) == (200, "hello from raw asgi")


@pytest.mark.parametrize("kind", ["raises", "body-before-start", "wrong-type", "no-response"])
def test_protocol_error_before_any_byte_is_a_500_and_serving_goes_on(
    raw: Server, kind: str
) -> None:
    response = httpx.get(raw.url + f"/broken/{kind}", timeout=10)
    assert response.status_code == 500
    _still_serving(raw)


@pytest.mark.parametrize("kind", ["header-crlf", "bad-length"])
def test_an_invalid_response_header_is_never_written(raw: Server, kind: str) -> None:
    try:
        response = httpx.get(raw.url + f"/broken/{kind}", timeout=10)
    except httpx.RemoteProtocolError:
        assert raw.kind == "uvicorn"  # uvicorn closes the connection; vivace answers 500
    else:
        assert response.status_code == 500
        assert "set-cookie" not in response.headers and "injected" not in response.text
    _still_serving(raw)


def test_a_second_start_is_an_error_and_serving_goes_on(raw: Server) -> None:
    try:
        response = httpx.get(raw.url + "/broken/second-start", timeout=10)
    except httpx.TransportError:
        pass  # the head was already out: the server can only close the connection
    else:
        assert response.status_code in (200, 500)
    _still_serving(raw)


def test_protocol_errors_are_logged_with_the_apps_name(raw: Server) -> None:
    if raw.kind != "vivace":
        pytest.skip("vivace's own log format")
    httpx.get(raw.url + "/broken/body-before-start", timeout=10)
    wait_until(lambda: "http.response.body" in raw.output(), 5, "the protocol error logged")
    assert "raw_asgi" in raw.output()


def test_receive_after_the_response_is_a_disconnect(raw: Server) -> None:
    key = uuid.uuid4().hex
    with httpx.Client(timeout=10) as client:  # the connection stays open (keep-alive)
        assert client.get(raw.url + f"/after-response?key={key}").text == "done"
        seen = raw.trace_dir / f"after-response-{key}"
        wait_until(seen.exists, 6, "the app's receive() after its response to return")
    assert seen.read_text() == "http.disconnect"


@pytest.mark.parametrize(
    ("kind", "args"),
    [("vivace", MODES["single"]), ("vivace", MODES["workers"]), ("uvicorn", ())],
    ids=["vivace-single", "vivace-workers", "uvicorn"],
)
def test_the_stop_waits_for_an_app_still_finishing_after_its_client_left(
    kind: str, args: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> None:
    trace = tmp_path_factory.mktemp(f"linger-{kind}")
    server = start(kind, "raw_asgi:app", trace, args=args)
    key = uuid.uuid4().hex
    try:
        with httpx.Client(timeout=10) as client:
            assert client.get(server.url + f"/linger?key={key}").text == "done"
        # the client has closed its connection; the app is still in its sleep
    finally:
        server.stop_cleanly()
    seen = trace / f"linger-{key}"
    assert seen.exists(), f"the app never finished:\n{server.output()}"
    assert seen.read_text().startswith("finished"), seen.read_text()


def _read_until(
    sock: socket.socket, done: bytes | None, count: int = 1, timeout: float = 10
) -> bytes:
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done is not None and data.count(done) >= count:
            return data
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return data
        data += chunk
    return data


def test_pipelined_requests_are_answered_in_order(raw: Server) -> None:
    requests = b"".join(
        f"GET /items/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in (1, 2, 3)
    )
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(requests)
        data = _read_until(sock, b"HTTP/1.1 200", count=3)
        data += _read_until(sock, b'"id": 3', timeout=2)
    positions = [data.find(f'"id": {i}'.encode()) for i in (1, 2, 3)]
    assert -1 not in positions and positions == sorted(positions), data


def test_expect_100_continue(raw: Server) -> None:
    head = (
        b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(head)
        interim = _read_until(sock, b"\r\n\r\n", timeout=5)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        sock.sendall(b"hello")
        final = _read_until(sock, b"hello", timeout=5)
    assert final.startswith(b"HTTP/1.1 200 OK\r\n") and final.endswith(b"hello"), final


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """One request on an open connection and its whole response (head and Content-Length
    body)."""
    sock.sendall(request)
    data = _read_until(sock, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().partition(b"content-length: ")[2].split(b"\r\n")[0] or 0)
    while len(body) < length:
        more = _read_until(sock, None, timeout=0.5)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    ("kind", "args"),
    [("vivace", MODES["single"]), ("vivace", MODES["workers"]), ("uvicorn", ())],
    ids=["vivace-single", "vivace-workers", "uvicorn"],
)
def test_background_work_after_the_response_does_not_hold_the_connection(
    kind: str, args: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """FastAPI's ``BackgroundTasks`` run after the response: the next request on the same
    connection is served meanwhile, and the stop waits for the work to finish."""
    trace = tmp_path_factory.mktemp(f"background-{kind}")
    server = start(kind, "fastapi_app:app", trace, args=args)
    key = uuid.uuid4().hex
    mail = trace / f"background-{key}"
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            signup = f"POST /signup?key={key} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            first = _exchange(sock, signup.encode())
            assert first.startswith(b"HTTP/1.1 200"), first
            second = _exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert second.startswith(b"HTTP/1.1 200") and b"fastapi" in second, second
            # served while the background work (3 s) still ran on this connection's request
            assert not mail.exists(), "the second request waited for the first's background work"
    finally:
        server.stop_cleanly()
    assert mail.exists(), f"the stop did not wait for the background work:\n{server.output()}"


def test_a_failure_after_a_complete_response_leaves_the_response_whole(raw: Server) -> None:
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(b"GET /big-then-raise HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.0)  # a slow reader: most of the body is still in the server's buffer
        data = _read_until(sock, None, timeout=10)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert len(body) == 8 * 1024 * 1024, f"{len(body)} bytes of the body came"
    _still_serving(raw)


def test_every_waiting_receive_hears_the_client_leave(raw: Server) -> None:
    key = uuid.uuid4().hex
    started = raw.trace_dir / f"probe-started-{key}"
    heard = raw.trace_dir / f"two-receivers-{key}"
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(f"GET /two-receivers?key={key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(started.exists, 10, "the app's two receive() calls")
    wait_until(heard.exists, 15, "the listener's receive() to return")
    assert heard.read_text() == "http.disconnect"


def test_a_304_goes_out_with_its_headers(raw: Server) -> None:
    response = httpx.get(raw.url + "/not-modified", timeout=10)
    assert response.status_code == 304 and response.headers["etag"] == '"v1"'
    assert response.content == b""
    _still_serving(raw)


def test_a_body_shorter_than_its_length_in_one_message_is_a_500(raw: Server) -> None:
    try:
        response = httpx.get(raw.url + "/broken/short-length", timeout=10)
    except httpx.TransportError:
        assert raw.kind == "uvicorn"  # uvicorn writes what it has and closes
    else:
        assert response.status_code == 500
    _still_serving(raw)


def test_no_request_is_served_after_a_response_that_says_close(raw: Server) -> None:
    requests = b"GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(requests)
        data = _read_until(sock, None, timeout=10)  # to the close
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"closing"), data
    assert b'"id": 2' not in data


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("http://127.0.0.1:{port}/items/7?q=abs", "/items/7", "q=abs"),  # RFC 9112 3.2.2
        ("/items/8?q=frag#section", "/items/8", "q=frag"),  # a fragment is dropped
        ("/items/9#section", "/items/9", ""),
    ],
    ids=["absolute-form", "fragment-after-query", "fragment"],
)
def test_unusual_request_targets(raw: Server, target: str, path: str, query: str) -> None:
    line = target.format(port=raw.port)
    request = f"GET {line} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        data = _exchange(sock, request)
    assert data.startswith(b"HTTP/1.1 200"), data
    answer = json.loads(data.partition(b"\r\n\r\n")[2])
    assert answer == {"id": int(path[7:]), "q": query.partition("=")[2] or None}


def test_whitespace_after_a_header_value_is_not_part_of_it(raw: Server) -> None:
    if raw.kind != "vivace":
        pytest.skip("uvicorn's answer depends on its version and parser (it kept it on 3.10)")
    request = (
        b"GET /headers HTTP/1.1\r\nHost: 127.0.0.1 \r\nX-Padded: v  w \t\r\n"
        b"Expect: 100-continue \r\nContent-Length: 0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        data = _exchange(sock, request)
    assert data.startswith(b"HTTP/1.1 200"), data
    headers = dict(json.loads(data.partition(b"\r\n\r\n")[2])["headers"])
    assert headers["host"] == "127.0.0.1" and headers["x-padded"] == "v  w"


@pytest.fixture(scope="module", params=["vivace-single", "vivace-workers", "uvicorn"])
def fastapi(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    kind, _, mode = request.param.partition("-")
    args = MODES[mode] if mode else ()
    server = start(kind, "fastapi_app:app", tmp_path_factory.mktemp(request.param), args=args)
    try:
        yield server
    finally:
        server.stop()
        assert not server.orphans, f"processes left behind: {server.orphans}"


def test_an_idle_stream_ends_when_its_client_leaves(fastapi: Server) -> None:
    """A Starlette stream waiting for its next event (an SSE feed) is cancelled when the
    client goes, as under uvicorn: it is not left running until its next event."""
    key = uuid.uuid4().hex
    url = fastapi.url + f"/feed?key={key}"
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        first = next(response.iter_raw())
        assert first.startswith(b"data: first"), first
    ended = fastapi.trace_dir / f"feed-{key}"
    wait_until(ended.exists, 10, "the stream's generator to be cancelled")
    assert ended.read_text() == "cancelled"


def test_a_wsgi_apps_last_message_after_a_closing_client_is_no_disconnect(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """a2wsgi sends a Flask response's last (empty) message from its thread, often after a
    ``Connection: close`` client has read the whole body and gone: nothing is lost, and the
    debug log must not say the client went away for every such request."""
    trace = tmp_path_factory.mktemp("flask-close")
    server = start("vivace", "flask_app:app", trace, args=(*MODES["single"], "--debug"))
    try:
        for _ in range(5):
            response = httpx.get(server.url + "/", headers={"Connection": "close"}, timeout=10)
            assert response.status_code == 200
        wait_until(lambda: server.output().count('"GET / HTTP/1.1" 200') >= 5, 10, "the log")
        time.sleep(0.3)  # a late line would come now
        assert "went away" not in server.output(), server.output()
    finally:
        server.stop_cleanly()


def test_a_stream_that_reads_the_request_body_completes(fastapi: Server) -> None:
    """Starlette runs a disconnect listener beside a ``StreamingResponse`` (spec_version 2.3):
    two ``receive()`` calls read the body at once. The response must still end, and the
    connection stay usable (uvicorn gives each chunk to one of them, as vivace does)."""
    head = b"POST /echo-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", fastapi.port), timeout=10) as sock:
        sock.sendall(head)
        for i in range(5):
            sock.sendall(b"6\r\npart%d;\r\n" % i)
            time.sleep(0.1)
        sock.sendall(b"0\r\n\r\n")
        data = _read_until(sock, b"0\r\n\r\n", timeout=10)
        assert data.startswith(b"HTTP/1.1 200") and b"[end]" in data, data
        assert data.endswith(b"0\r\n\r\n"), data
        again = _exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert again.startswith(b"HTTP/1.1 200") and b"fastapi" in again, again


@pytest.mark.parametrize("mode", ["single", "workers"])
def test_background_work_still_running_at_the_deadline_is_cancelled(
    mode: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The stop's deadline passes while the connection is still open (a next request half
    sent): the background work of its answered request is cancelled (its clean-up runs), not
    dropped with the loop."""
    trace = tmp_path_factory.mktemp(f"deadline-{mode}")
    env = {"VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT": "1"}
    server = start("vivace", "fastapi_app:app", trace, args=MODES[mode], env=env)
    key = uuid.uuid4().hex
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            signup = f"POST /signup?key={key} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            assert _exchange(sock, signup.encode()).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET / HTTP/1.1\r\nHost")  # not idle: the drain waits for it
            server.stop_cleanly()
    finally:
        server.stop()
    mail = trace / f"background-{key}"
    assert mail.exists(), f"the background work was dropped:\n{server.output()}"
    assert mail.read_text() == "cancelled"


def test_the_next_pipelined_request_does_not_inherit_the_apps_context(raw: Server) -> None:
    if raw.kind != "vivace":
        pytest.skip("uvicorn starts the next request in the app's context (it leaks)")
    requests = b"".join(
        f"GET /context?n={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)
    )
    with socket.create_connection(("127.0.0.1", raw.port), timeout=10) as sock:
        sock.sendall(requests)
        data = _read_until(sock, b"HTTP/1.1 200", count=3)
        data += _read_until(sock, None, timeout=1)
    assert data.count(b"HTTP/1.1 200") == 3, data
    assert data.count(b"unset") == 3, data


def test_head_of_a_streamed_wsgi_response_announces_no_wrong_length(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Werkzeug answers HEAD of a generator response with no body at all: the length a GET
    would have is unknown, so none is announced (before: ``content-length: 0``)."""
    trace = tmp_path_factory.mktemp("flask-head")
    server = start("vivace", "flask_app:app", trace, args=MODES["single"])
    try:
        full = httpx.get(server.url + "/stream", timeout=10)
        assert full.status_code == 200 and len(full.content) > 0
        head = httpx.head(server.url + "/stream", timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert head.headers.get("content-length") in (None, str(len(full.content))), head.headers
        _still = httpx.get(server.url + "/stream", timeout=10)
        assert _still.content == full.content
    finally:
        server.stop_cleanly()


def test_an_upload_slower_than_the_response_timeout_is_answered(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The response timeout counts once the request has arrived: while the body still comes
    (and the app reads it) only the request timeout does (before: a 503 at RESPONSE_TIMEOUT)."""
    trace = tmp_path_factory.mktemp("slow-upload")
    env = {"VIVACE_RESPONSE_TIMEOUT": "1", "VIVACE_REQUEST_TIMEOUT": "20"}
    server = start("vivace", "fastapi_app:app", trace, args=MODES["single"], env=env)
    try:
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head)
            for i in range(10):  # 2.5 s of upload
                sock.sendall(b"4\r\n%04d\r\n" % i)
                time.sleep(0.25)
            sock.sendall(b"0\r\n\r\n")
            data = _read_until(sock, b"0009", timeout=10)
        assert data.startswith(b"HTTP/1.1 200"), data
        assert data.endswith(b"".join(b"%04d" % i for i in range(10))), data
    finally:
        server.stop_cleanly()
