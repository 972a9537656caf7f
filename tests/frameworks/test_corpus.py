"""Every framework app served by a real server over real sockets: vivace single-process and
``-w 2``, and uvicorn as the reference (issue 12, acceptance: the corpus of point 2)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from tests.frameworks.apps import common
from tests.frameworks.conftest import Served
from tests.frameworks.servers import wait_until

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def test_hello(served: Served) -> None:
    response = httpx.get(served.url + "/", timeout=10)
    assert response.status_code == 200
    assert response.text == served.framework.hello


def test_head_has_the_get_headers_and_no_body(served: Served) -> None:
    get = httpx.get(served.url + "/", timeout=10)
    head = httpx.head(served.url + "/", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if "content-length" in head.headers:
        assert head.headers["content-length"] == str(len(get.content))


def test_path_parameter_and_query(served: Served) -> None:
    response = httpx.get(served.url + "/items/42", params={"q": "a b"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"id": 42, "q": "a b"}


def test_unknown_path_is_404(served: Served) -> None:
    assert httpx.get(served.url + "/no/such/path", timeout=10).status_code == 404


def test_one_mib_upload_is_echoed(served: Served) -> None:
    payload = os.urandom(MIB)
    response = httpx.post(served.url + "/echo", content=payload, timeout=30)
    assert response.status_code == 200
    assert response.headers["x-length"] == str(MIB)
    assert response.content == payload


def test_one_mib_chunked_upload_is_echoed(served: Served) -> None:
    if served.framework.wsgi:
        pytest.skip("a WSGI app reads CONTENT_LENGTH bytes; a chunked body has none (PEP 3333)")
    pieces = [os.urandom(64 * 1024) for _ in range(16)]

    def body() -> Iterator[bytes]:
        yield from pieces

    response = httpx.post(served.url + "/echo", content=body(), timeout=30)
    assert response.status_code == 200
    assert response.headers["x-length"] == str(MIB)
    assert response.content == b"".join(pieces)


def test_streamed_download(served: Served) -> None:
    with httpx.stream("GET", served.url + "/stream", timeout=30) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"".join(common.chunks())


def test_requests_share_a_keep_alive_connection(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        ports = set()
        for i in range(5):
            response = client.get(f"/items/{i}")
            assert response.json() == {"id": i, "q": None}
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1, "each request opened a new connection"


def test_lifespan_state_reaches_requests(served: Served) -> None:
    if not served.framework.lifespan:
        pytest.skip(f"{served.framework.name} has no lifespan")
    for _ in range(6):
        with httpx.Client(timeout=10) as client:  # a new connection: either worker may answer
            state = client.get(served.url + "/state").json()
        assert state["token"] == f"lifespan-in-{state['pid']}"


def test_request_facts(served: Served) -> None:
    response = httpx.get(
        served.url + "/headers", params={"a": "1"}, headers={"X-Probe": "yes"}, timeout=10
    )
    assert response.status_code == 200
    facts = response.json()
    headers = dict(facts["headers"])
    assert headers["x-probe"] == "yes"
    assert headers["host"] == f"127.0.0.1:{served.server.port}"
    assert facts["scheme"] == "http"
    assert facts["root_path"] == ""
    assert facts["method"] == "GET"
    assert facts["query_string"] == "a=1"
    assert facts["client_host"] == "127.0.0.1"
    if served.framework.wsgi:
        assert facts["path"] == "/headers"
        assert facts["protocol"] == "HTTP/1.1"
    else:
        assert (facts["path"], facts["raw_path"]) == ("/headers", "/headers")
        assert facts["http_version"] == "1.1"
        assert facts["client_port_is_int"] is True


def test_websocket_echo(served: Served) -> None:
    if not served.framework.websocket:
        pytest.skip(f"{served.framework.name} has no websockets here")
    with connect(served.ws_url + "/ws", open_timeout=10, close_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01\xfe\xff")
        assert ws.recv(timeout=10) == b"\x00\x01\xfe\xff"
        big = "é" * 20_000
        ws.send(big)
        assert ws.recv(timeout=10) == big


def test_disconnect_is_seen_by_the_app(served: Served) -> None:
    if not served.framework.disconnect:
        pytest.skip(f"{served.framework.name} cannot observe a disconnect")
    key = uuid.uuid4().hex
    request = f"GET /disconnect-probe?key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        started = served.server.trace_dir / f"probe-started-{key}"
        wait_until(started.exists, 10, f"{served.framework.name} to start the probe")
        time.sleep(0.1)  # the app is now waiting for the disconnect
    seen = served.server.trace_dir / f"disconnect-{key}"
    wait_until(seen.exists, 10, f"{served.framework.name} to see the client go away")
