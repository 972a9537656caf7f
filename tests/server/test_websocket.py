"""WebSockets over real sockets: echo, subprotocols, close codes, limits, keepalive, signals."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from runtime import App, text
from runtime.request import Request
from tests.server.helpers import RawClient, get, serve


def make_app() -> App:
    app = App("ws")

    @app.websocket("/echo")
    async def echo(request: Request, ws: object) -> None:
        async for message in ws:  # type: ignore[attr-defined]
            await ws.send(message)  # type: ignore[attr-defined]

    @app.websocket("/chat", subprotocols=["chat.v2", "chat.v1"])
    async def chat(request: Request, ws: object) -> None:
        await ws.send(f"protocol={ws.subprotocol}")  # type: ignore[attr-defined]

    @app.websocket("/once")
    async def once(request: Request, ws: object) -> None:
        message = await ws.recv()  # type: ignore[attr-defined]
        await ws.send(f"got {message}")  # type: ignore[attr-defined]

    @app.websocket("/boom")
    async def boom(request: Request, ws: object) -> None:
        await ws.recv()  # type: ignore[attr-defined]
        raise RuntimeError("handler failed")

    @app.websocket("/custom-close")
    async def custom_close(request: Request, ws: object) -> None:
        await ws.close(4001, "bye now")  # type: ignore[attr-defined]

    @app.websocket("/timeout")
    async def timeout(request: Request, ws: object) -> None:
        message = await ws.recv(timeout=0.1)  # type: ignore[attr-defined]
        await ws.send(repr(message))  # type: ignore[attr-defined]

    @app.websocket("/hold")
    async def hold(request: Request, ws: object) -> None:
        await ws.send("ready")  # type: ignore[attr-defined]
        await asyncio.sleep(30)

    @app.get("/plain")
    async def plain(request: Request) -> object:
        return text("plain http")

    return app


def test_echo_text_and_binary() -> None:
    with serve(make_app()) as srv, connect(f"ws://127.0.0.1:{srv.port}/echo") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
        ws.send(["frag", "mented"])  # a fragmented message is reassembled
        assert ws.recv(timeout=5) == "fragmented"


def test_subprotocol_is_negotiated() -> None:
    with serve(make_app()) as srv:
        url = f"ws://127.0.0.1:{srv.port}/chat"
        with connect(url, subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat.v1"
            assert ws.recv(timeout=5) == "protocol=chat.v1"
        with connect(url) as ws:
            assert ws.recv(timeout=5) == "protocol=None"


def test_handler_return_closes_1000() -> None:
    with serve(make_app()) as srv, connect(f"ws://127.0.0.1:{srv.port}/once") as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "got x"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


def test_handler_exception_closes_1011_and_fires_the_signal() -> None:
    app = make_app()
    seen: list[str] = []

    @app.signal("websocket.handler.before")
    async def before(request: Request, websocket: object) -> None:
        seen.append("before")

    @app.signal("websocket.handler.exception")
    async def failed(request: Request, websocket: object, exception: Exception) -> None:
        seen.append(f"exception:{exception}")

    with serve(app) as srv, connect(f"ws://127.0.0.1:{srv.port}/boom") as ws:
        ws.send("x")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert seen == ["before", "exception:handler failed"]


def test_close_with_code_and_reason() -> None:
    with serve(make_app()) as srv, connect(f"ws://127.0.0.1:{srv.port}/custom-close") as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye now")


def test_oversized_message_closes_1009() -> None:
    app = make_app()
    app.config.WEBSOCKET_MAX_SIZE = 1000
    with serve(app) as srv, connect(f"ws://127.0.0.1:{srv.port}/echo") as ws:
        ws.send("a" * 1000)
        assert ws.recv(timeout=5) == "a" * 1000
        ws.send("a" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_recv_timeout_returns_none() -> None:
    with serve(make_app()) as srv, connect(f"ws://127.0.0.1:{srv.port}/timeout") as ws:
        assert ws.recv(timeout=5) == "None"


def test_shutdown_closes_websockets_1001() -> None:
    with serve(make_app()) as srv, connect(f"ws://127.0.0.1:{srv.port}/hold") as ws:
        assert ws.recv(timeout=5) == "ready"
        threading.Timer(0.05, srv.stop).start()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


def test_upgrade_to_a_plain_route_is_served_as_http() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(get("/plain", "Upgrade: websocket\r\nConnection: Upgrade\r\n"))
        assert client.read_response().body == b"plain http"


def test_bad_handshake_is_refused() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(get("/echo", "Upgrade: websocket\r\nConnection: Upgrade\r\n"))  # no key
        response = client.read_response()
        assert 400 <= response.status < 500
        assert client.closed()


def test_peer_that_does_not_answer_pings_is_closed_1011() -> None:
    app = make_app()
    app.config.WEBSOCKET_PING_INTERVAL = 0.1
    app.config.WEBSOCKET_PING_TIMEOUT = 0.2
    with serve(app) as srv, RawClient(srv.port) as client:
        key = base64.b64encode(os.urandom(16)).decode()
        client.send(
            get(
                "/hold",
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\n",
            )
        )
        assert client.read_response(head_only=True).status == 101
        started = time.monotonic()
        client.sock.settimeout(5)
        data = b""
        while True:  # read frames (ping, "ready", close) until the server closes
            chunk = client.sock.recv(4096)
            if not chunk:
                break
            data += client.buffer + chunk
            client.buffer = b""
        assert b"\x89" in data  # a ping was sent
        close = data[data.rindex(b"\x88") :]
        assert struct.unpack("!H", close[2:4])[0] == 1011
        assert time.monotonic() - started < 3


def test_pings_are_answered_by_the_client_keep_the_connection() -> None:
    app = make_app()
    app.config.WEBSOCKET_PING_INTERVAL = 0.05
    app.config.WEBSOCKET_PING_TIMEOUT = 1.0
    with serve(app) as srv, connect(f"ws://127.0.0.1:{srv.port}/echo") as ws:
        time.sleep(0.3)
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_frames_sent_together_with_the_handshake_are_not_lost() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        key = base64.b64encode(os.urandom(16)).decode()
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"early"))
        frame = b"\x81\x85" + mask + payload
        handshake = get(
            "/once",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\n",
        )
        client.send(handshake + frame[:3])
        client.send(frame[3:])
        assert client.read_response(head_only=True).status == 101
        expected = b"got early"
        data = client._read_exactly(2 + len(expected))
        assert data == b"\x81" + bytes([len(expected)]) + expected


def test_upgrade_to_a_plain_route_closes_after_the_answer() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(get("/plain", "Upgrade: websocket\r\nConnection: Upgrade\r\n"))
        assert client.read_response().body == b"plain http"
        assert client.closed()
