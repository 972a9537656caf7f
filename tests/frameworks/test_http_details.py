"""HTTP details of the ASGI server, checked with the raw ASGI app on vivace and on uvicorn
(issue 12, point 2): protocol errors in the app's messages, ``http.disconnect`` for a
``receive()`` after the response, pipelining and ``Expect: 100-continue``."""

from __future__ import annotations

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
