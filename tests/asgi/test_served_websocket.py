"""tests/server/test_websocket.py's server-independent behaviours, the app served by uvicorn
(and hypercorn when installed).

Pings and keepalive are the ASGI server's own (uvicorn's ``--ws-ping-interval``), so they are not
tested here; WEBSOCKET_MAX_SIZE is enforced by vivace on every message (docs/asgi.md).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.asgi.conftest import WEBSOCKET_MAX_SIZE
from tests.asgi.servers import Served, serve


def _tag() -> str:
    return uuid.uuid4().hex[:12]


def _seen(served: Served, tag: str, until: str, timeout: float = 5.0) -> list[str]:
    """The signal trace of ``tag``, once its last entry starts with ``until`` (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        seen: list[str] = httpx.get(f"{served.url}/seen/{tag}", timeout=5).json()
        if (seen and seen[-1].startswith(until)) or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def test_echo_text_and_binary(served: Served) -> None:
    with connect(f"{served.ws_url}/echo") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
        ws.send(["frag", "mented"])  # a fragmented message is reassembled
        assert ws.recv(timeout=5) == "fragmented"


def test_subprotocol_is_negotiated(served: Served) -> None:
    url = f"{served.ws_url}/chat"
    with connect(url, subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v1"
        assert ws.recv(timeout=5) == "protocol=chat.v1"
    both = ["chat.v1", "chat.v2"]
    with connect(url, subprotocols=both) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "chat.v2"  # the route's order wins
        assert ws.recv(timeout=5) == "protocol=chat.v2"
    with connect(url) as ws:
        assert ws.subprotocol is None
        assert ws.recv(timeout=5) == "protocol=None"


def test_handler_return_closes_1000_and_fires_before_and_after(served: Served) -> None:
    tag = _tag()
    with connect(f"{served.ws_url}/once?tag={tag}") as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "got x"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
    assert _seen(served, tag, "after") == ["before", "after"]


def test_handler_exception_closes_1011_and_fires_the_signal(served: Served) -> None:
    tag = _tag()
    with connect(f"{served.ws_url}/boom?tag={tag}") as ws:
        ws.send("x")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert _seen(served, tag, "exception") == ["before", "exception:handler failed"]
    with connect(f"{served.ws_url}/echo") as ws:  # the server keeps serving
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_close_with_code_and_reason_from_the_handler(served: Served) -> None:
    with connect(f"{served.ws_url}/custom-close") as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye now")


def test_close_code_and_reason_from_the_client_reach_the_handler(served: Served) -> None:
    tag = _tag()
    with connect(f"{served.ws_url}/until-closed/{tag}?tag={tag}") as ws:
        assert ws.recv(timeout=5) == "ready"
        ws.close(4002, "client leaves")
    seen = _seen(served, tag, "after")
    if served.kind == "hypercorn":  # hypercorn 0.18 reports every client close as 1006
        assert seen == ["before", "closed:1006:", "after"]
    else:
        assert seen == ["before", "closed:4002:client leaves", "after"]


def test_sending_after_the_client_closed_raises_connection_closed(served: Served) -> None:
    if served.kind == "hypercorn":
        pytest.skip("hypercorn drops sends after a close silently: a handler learns it from recv")
    tag = _tag()
    with connect(f"{served.ws_url}/send-after-close/{tag}?tag={tag}") as ws:
        assert ws.recv(timeout=5) == "tick"
        ws.close(1000)
    seen = _seen(served, tag, "send")
    # the exception our own server raises (not uvicorn's ClientDisconnected), and a peer that
    # left is not a handler error: no websocket.handler.exception, nothing logged
    assert seen[:1] == ["before"]
    assert seen[1].startswith("send:websockets.exceptions.ConnectionClosed"), seen
    assert seen[2:] == []
    assert "send_after_close" not in served.output(), served.output()


def test_oversized_message_closes_1009(served: Served) -> None:
    with connect(f"{served.ws_url}/echo") as ws:
        ws.send("a" * WEBSOCKET_MAX_SIZE)
        assert ws.recv(timeout=5) == "a" * WEBSOCKET_MAX_SIZE
        ws.send(b"b" * WEBSOCKET_MAX_SIZE)
        assert ws.recv(timeout=5) == b"b" * WEBSOCKET_MAX_SIZE
        ws.send("a" * (WEBSOCKET_MAX_SIZE + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    with connect(f"{served.ws_url}/echo") as ws:  # counted in UTF-8 bytes, as on the wire
        ws.send("é" * (WEBSOCKET_MAX_SIZE // 2 + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_uvicorns_own_smaller_ws_max_size_also_closes_1009(tmp_path: Path) -> None:
    server = serve(tmp_path, args=("--ws-max-size", "100"))
    try:
        with connect(f"{server.ws_url}/echo") as ws:
            ws.send("a" * 100)
            assert ws.recv(timeout=5) == "a" * 100
            ws.send("a" * 101)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    finally:
        server.stop()


def test_recv_timeout_returns_none(served: Served) -> None:
    with connect(f"{served.ws_url}/timeout") as ws:
        assert ws.recv(timeout=5) == "None"


def test_no_websocket_route_refuses_the_handshake(served: Served) -> None:
    for path in ("/no-such-socket", "/http-only"):
        with pytest.raises(InvalidStatus) as refused, connect(f"{served.ws_url}{path}"):
            pass
        assert refused.value.response.status_code == 403
    assert httpx.get(f"{served.url}/http-only", timeout=5).text == "plain http"
