"""ASGI websockets over real sockets: a raw ASGI app (and FastAPI) served by vivace.

The raw-app tests where vivace and uvicorn agree also run under uvicorn (in a thread, on a socket
of the same kind), so the behaviour is checked against an independent server; where they differ
is listed above ``test_uvicorn_agrees``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import queue
import socket
import struct
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from runtime.config import Config
from runtime.foreign import ForeignApp
from runtime.hosting import Message, Receive, Scope, Send
from tests.server.helpers import TIMEOUT, RawClient, get, serve

#: what the app saw, by the tag in the query string (the app runs in the server's thread)
SEEN: defaultdict[str, queue.Queue[Any]] = defaultdict(queue.Queue)


def seen(tag: str, timeout: float = 5.0) -> Any:
    return SEEN[tag].get(timeout=timeout)


def _tag() -> str:
    return uuid.uuid4().hex[:12]


async def _until_disconnect(receive: Receive) -> Message:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return message


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["answer"] = 42
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    assert scope["type"] == "websocket"
    tag = scope["query_string"].decode()
    record = SEEN[tag].put
    path = scope["path"]
    connect_message = await receive()
    record(connect_message["type"])
    if path == "/echo":
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record(message)
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path.endswith("/scope"):
        await send({"type": "websocket.accept"})
        shown = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string")}
        shown["raw_path"] = scope["raw_path"].decode("latin-1")
        shown["query_string"] = scope["query_string"].decode("latin-1")
        shown["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        await send({"type": "websocket.send", "text": json.dumps(shown)})
        await _until_disconnect(receive)
    elif path == "/subprotocol":
        offered = scope["subprotocols"]
        chosen = offered[-1] if offered else None
        headers = [(b"x-custom", b"yes"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        await send({"type": "websocket.accept", "subprotocol": chosen, "headers": headers})
        await send({"type": "websocket.send", "text": f"offered={offered} chosen={chosen}"})
        await _until_disconnect(receive)
    elif path == "/close":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye now"})
        record(await receive())
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except RuntimeError:
            record("RuntimeError")
    elif path == "/refuse":
        await send({"type": "websocket.close"})
        record(await receive())
    elif path == "/deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Token")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"token"})
    elif path == "/wait":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "ready"})
        record(await _until_disconnect(receive))
        try:
            await send({"type": "websocket.send", "text": "after"})
        except OSError as exc:
            record(type(exc).__name__)
        await send({"type": "websocket.close"})  # the connection is closed already: no error
        record("closed quietly")
    elif path == "/late":  # accepts only after the connection is gone
        record(await receive())
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            record(type(exc).__name__)
    elif path == "/boom-before":
        raise RuntimeError("failed before accepting")
    elif path == "/boom-after":
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("failed after accepting")
    elif path == "/return":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})
    elif path == "/no-answer":
        return
    elif path == "/wrong":
        try:
            await send({"type": "websocket.send", "text": "before accept"})
        except RuntimeError:
            record("RuntimeError before accept")
        await send({"type": "websocket.accept"})
        for bad in (
            {"type": "websocket.accept"},
            {"type": "websocket.send"},
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
            {"type": "websocket.send", "text": b"not str"},
            {"type": "websocket.close", "code": 1006},
        ):
            try:
                await send(bad)
            except RuntimeError:
                record("RuntimeError")
        await send({"type": "websocket.send", "text": "still open"})
        await _until_disconnect(receive)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve(ForeignApp(app, "asgi3", name="t", config=Config(env_prefix=None))) as srv:
        yield srv.port


def url(port: int, path: str, tag: str = "") -> str:
    return f"ws://127.0.0.1:{port}{path}?{tag}"


def close_of(info: pytest.ExceptionInfo[ConnectionClosed]) -> tuple[int, str]:
    rcvd = info.value.rcvd
    assert rcvd is not None
    return rcvd.code, rcvd.reason


def handshake(path: str, extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return get(
        path,
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\n{extra}",
    )


# -- the raw app under vivace -----------------------------------------------------------------


def test_echo_text_and_bytes_and_client_close(port: int) -> None:
    tag = _tag()
    with connect(url(port, "/echo", tag)) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
        ws.send(["frag", "mented"])
        assert ws.recv(timeout=5) == "fragmented"
        ws.close(4002, "done here")
    assert seen(tag) == "websocket.connect"
    assert seen(tag) == {"type": "websocket.disconnect", "code": 4002, "reason": "done here"}


def test_scope(port: int) -> None:
    with connect(url(port, "/a%20b/scope", "x=1"), additional_headers={"X-Test": "T"}) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/a b/scope"
    assert scope["raw_path"] == "/a%20b/scope"
    assert scope["query_string"] == "x=1"
    assert scope["root_path"] == ""
    assert ["x-test", "T"] in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["subprotocols"] == []
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", port]
    assert scope["state"] == {"answer": 42}
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert "method" not in scope


def test_subprotocol_and_accept_headers(port: int) -> None:
    offered: Any = ["chat.v1", "chat.v2"]
    with connect(url(port, "/subprotocol"), subprotocols=offered) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.recv(timeout=5) == "offered=['chat.v1', 'chat.v2'] chosen=chat.v2"
        assert ws.response is not None
        headers = ws.response.headers
        assert headers["X-Custom"] == "yes"
        assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    with connect(url(port, "/subprotocol")) as ws:
        assert ws.subprotocol is None
        assert ws.recv(timeout=5) == "offered=[] chosen=None"


def test_app_close_with_code_and_reason(port: int) -> None:
    tag = _tag()
    with connect(url(port, "/close", tag)) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert close_of(info) == (4001, "bye now")
    assert seen(tag) == "websocket.connect"
    assert seen(tag) == {"type": "websocket.disconnect", "code": 4001, "reason": "bye now"}
    assert seen(tag) == "RuntimeError"  # send after websocket.close


def test_close_before_accept_is_403(port: int) -> None:
    tag = _tag()
    with pytest.raises(InvalidStatus) as info:
        connect(url(port, "/refuse", tag))
    assert info.value.response.status_code == 403
    assert seen(tag) == "websocket.connect"
    assert seen(tag)["type"] == "websocket.disconnect"


def test_denial_response(port: int) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(url(port, "/deny"))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.headers["Content-Length"] == "8"
    assert response.body == b"no token"


def test_denial_response_raw(port: int) -> None:
    with RawClient(port) as client:
        client.send(handshake("/deny"))
        response = client.read_response()
        assert (response.status, response.body) == (401, b"no token")
        assert response.header("connection") == "close"
        assert client.closed()


def test_connection_loss_is_disconnect_1006(port: int) -> None:
    tag = _tag()
    with RawClient(port) as client:
        client.send(handshake(f"/wait?{tag}"))
        assert client.read_response(head_only=True).status == 101
        assert client._read_exactly(7) == b"\x81\x05ready"
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert seen(tag) == "websocket.connect"
    assert seen(tag)["code"] == 1006
    assert seen(tag) == "ClientDisconnected"  # send after the peer went: an OSError
    assert seen(tag) == "closed quietly"


def test_app_exception_before_accept_is_500(port: int) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(url(port, "/boom-before"))
    assert info.value.response.status_code == 500


def test_app_returning_without_answer_is_500(port: int) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(url(port, "/no-answer"))
    assert info.value.response.status_code == 500


def test_app_exception_after_accept_closes_1011(port: int) -> None:
    with connect(url(port, "/boom-after")) as ws:
        ws.send("x")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert close_of(info)[0] == 1011


def test_app_return_closes_1000(port: int) -> None:
    with connect(url(port, "/return")) as ws:
        assert ws.recv(timeout=5) == "bye"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert close_of(info)[0] == 1000


def test_invalid_messages_raise_runtime_error_in_the_app(port: int) -> None:
    tag = _tag()
    with connect(url(port, "/wrong", tag)) as ws:
        assert ws.recv(timeout=5) == "still open"
    assert seen(tag) == "websocket.connect"
    assert seen(tag) == "RuntimeError before accept"
    assert [seen(tag) for _ in range(5)] == ["RuntimeError"] * 5


def test_frames_sent_with_the_handshake_wait_for_the_accept(port: int) -> None:
    mask = b"\x01\x02\x03\x04"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"early"))
    with RawClient(port) as client:
        client.send(handshake("/echo") + b"\x81\x85" + mask + payload)
        assert client.read_response(head_only=True).status == 101
        assert client._read_exactly(7) == b"\x81\x05early"


def test_bad_handshake_is_refused_without_the_app(port: int) -> None:
    with RawClient(port) as client:
        client.send(get("/echo", "Upgrade: websocket\r\nConnection: Upgrade\r\n"))  # no key
        response = client.read_response()
        assert 400 <= response.status < 500
        assert client.closed()


def test_plain_http_still_served(port: int) -> None:
    with RawClient(port) as client:
        client.send(get("/"))
        assert client.read_response().body == b"plain http"


# -- settings and shutdown (a server each) ----------------------------------------------------


def served(*, root_path: str = "", **settings: Any) -> contextlib.AbstractContextManager[Any]:
    config = Config(settings, env_prefix=None)
    return serve(ForeignApp(app, "asgi3", name="t", config=config, root_path=root_path))


def test_scope_with_root_path() -> None:
    with served(root_path="/api") as srv, connect(url(srv.port, "/x/scope")) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == (
        "/api",
        "/api/x/scope",
        "/api/x/scope",  # raw_path carries the root_path too, as uvicorn's does
    )


def test_oversized_message_closes_1009() -> None:
    tag = _tag()
    with served(WEBSOCKET_MAX_SIZE=1000) as srv, connect(url(srv.port, "/echo", tag)) as ws:
        ws.send("a" * 1000)
        assert ws.recv(timeout=5) == "a" * 1000
        ws.send("a" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert close_of(info)[0] == 1009
    assert seen(tag) == "websocket.connect"
    assert seen(tag)["code"] == 1009


def test_shutdown_closes_1001_and_tells_the_app() -> None:
    tag = _tag()
    with served() as srv, connect(url(srv.port, "/wait", tag)) as ws:
        assert ws.recv(timeout=5) == "ready"
        threading.Timer(0.05, srv.stop).start()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert close_of(info)[0] == 1001
    assert seen(tag) == "websocket.connect"
    assert seen(tag)["code"] == 1001


def test_shutdown_before_accept_is_503_and_disconnect_1001() -> None:
    tag = _tag()
    with served() as srv, RawClient(srv.port) as client:
        client.send(handshake(f"/late?{tag}"))
        assert seen(tag) == "websocket.connect"
        srv.stop()
        assert client.read_response().status == 503
        assert client.closed()
    assert seen(tag) == {
        "type": "websocket.disconnect",
        "code": 1001,
        "reason": "server shutting down",
    }
    assert seen(tag) == "ClientDisconnected"


def test_connection_loss_before_accept() -> None:
    tag = _tag()
    with served() as srv:
        with RawClient(srv.port) as client:
            client.send(handshake(f"/late?{tag}"))
            assert seen(tag) == "websocket.connect"
        assert seen(tag)["code"] == 1006
        assert seen(tag) == "ClientDisconnected"


def test_peer_that_does_not_answer_pings_is_closed_1011() -> None:
    tag = _tag()
    with (
        served(WEBSOCKET_PING_INTERVAL=0.1, WEBSOCKET_PING_TIMEOUT=0.2) as srv,
        RawClient(srv.port) as client,
    ):
        client.send(handshake(f"/wait?{tag}"))
        assert client.read_response(head_only=True).status == 101
        client.sock.settimeout(5)
        data = client.buffer
        while chunk := client.sock.recv(4096):  # ping, "ready", close: until the server closes
            data += chunk
        assert b"\x89" in data
        close = data[data.rindex(b"\x88") :]
        assert struct.unpack("!H", close[2:4])[0] == 1011
    assert seen(tag) == "websocket.connect"
    assert seen(tag)["code"] == 1011


def test_answered_pings_keep_the_connection() -> None:
    settings = served(WEBSOCKET_PING_INTERVAL=0.05, WEBSOCKET_PING_TIMEOUT=1.0)
    with settings as srv, connect(url(srv.port, "/echo")) as ws:
        time.sleep(0.3)
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


# -- FastAPI / Starlette ------------------------------------------------------------------------


def fastapi_app() -> Any:
    fastapi = pytest.importorskip("fastapi")
    api = fastapi.FastAPI()

    async def echo(websocket: Any, name: str) -> None:
        await websocket.accept(subprotocol="v1" if websocket.scope["subprotocols"] else None)
        await websocket.send_text(f"hello {name}")
        try:
            while True:
                data = await websocket.receive_json()
                await websocket.send_json({"echo": data})
        except fastapi.WebSocketDisconnect as exc:
            SEEN[name].put(exc.code)

    async def private(websocket: Any) -> None:
        await websocket.close(code=1008)

    # the annotations are strings here (future import): FastAPI needs the class itself
    echo.__annotations__.update(websocket=fastapi.WebSocket, name=str)
    private.__annotations__.update(websocket=fastapi.WebSocket)
    api.websocket("/echo/{name}")(echo)
    api.websocket("/private")(private)
    return api


def test_fastapi_websocket() -> None:
    api = fastapi_app()
    tag = _tag()
    host = ForeignApp(api, "asgi3", name="api", config=Config(env_prefix=None))
    offered: Any = ["v1"]
    with serve(host) as srv:
        with connect(f"ws://127.0.0.1:{srv.port}/echo/{tag}", subprotocols=offered) as ws:
            assert ws.subprotocol == "v1"
            assert ws.recv(timeout=5) == f"hello {tag}"
            ws.send(json.dumps({"n": 1}))
            assert json.loads(ws.recv(timeout=5)) == {"echo": {"n": 1}}
            ws.close(4003)
        assert seen(tag) == 4003
        with pytest.raises(InvalidStatus) as info:
            connect(f"ws://127.0.0.1:{srv.port}/private")
        assert info.value.response.status_code == 403


# -- the same app under uvicorn: where the two servers agree ------------------------------------


@contextlib.contextmanager
def uvicorn_serving(asgi: Callable[..., Any]) -> Iterator[int]:
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi, lifespan="on", log_level="critical", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()


@pytest.fixture(scope="module")
def uvicorn_port() -> Iterator[int]:
    with uvicorn_serving(app) as port:
        yield port


#: where uvicorn (0.55, websockets-sansio) differs, vivace follows the spec or the brief: uvicorn
#: reports a lost connection as 1005 (the spec says 1006), closes the TCP connection without a close
#: frame when the app returns or raises after accepting (vivace sends 1000 / 1011, as its native
#: websockets do), and drops frames that arrive in the same packet as the handshake
@pytest.mark.parametrize(
    "test",
    [
        test_echo_text_and_bytes_and_client_close,
        test_subprotocol_and_accept_headers,
        test_app_close_with_code_and_reason,
        test_close_before_accept_is_403,
        test_denial_response,
        test_app_exception_before_accept_is_500,
        test_app_returning_without_answer_is_500,
    ],
    ids=lambda test: test.__name__.removeprefix("test_"),
)
def test_uvicorn_agrees(test: Callable[[int], None], uvicorn_port: int) -> None:
    test(uvicorn_port)
