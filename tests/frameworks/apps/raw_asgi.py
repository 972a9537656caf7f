"""Framework-less ASGI apps: plain callables written to the asgiref specs.

* ``app``: ASGI 3 with lifespan (state set at startup), the corpus and a websocket echo;
* ``failing_startup``: its lifespan answers ``lifespan.startup.failed`` with a message;
* ``raising_startup``: its lifespan raises once it has received ``lifespan.startup``;
* ``no_lifespan``: raises for the lifespan scope, before receiving anything (as Django does);
* ``ASGI2App``: an ASGI 2 double callable (a class called with the scope).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
from typing import Any
from urllib.parse import parse_qs

import common

Scope = dict[str, Any]
Message = dict[str, Any]

STARTUP_FAILURE = common.RAW_STARTUP_FAILURE
STARTUP_EXCEPTION = common.RAW_STARTUP_EXCEPTION


async def lifespan(scope: Scope, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["token"] = common.token()
            common.record(f"raw-startup-{os.getpid()}")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            common.record(f"raw-shutdown-{os.getpid()}")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(
    send: Any,
    body: bytes,
    *,
    status: int = 200,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Any, value: object, status: int = 200) -> None:
    await respond(send, json.dumps(value).encode(), status=status, content_type=b"application/json")


async def read_body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away during the upload")
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def full_scope(scope: Scope) -> dict[str, object]:
    """Every field of the http scope, JSON-safe (``GET /scope``)."""
    summary = common.scope_summary(scope)
    server = scope.get("server")
    summary.update(
        type=scope["type"],
        asgi=scope["asgi"],
        server_host=server[0] if server else None,
        server_port_is_int=isinstance(server[1], int) if server else None,
        state_keys=sorted(scope.get("state", {})),
        extensions_is_dict=isinstance(scope.get("extensions", {}), dict),
    )
    return summary


async def http(scope: Scope, receive: Any, send: Any) -> None:
    path, method = scope["path"], scope["method"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path == "/" and method in ("GET", "HEAD"):
        await respond(send, b"hello from raw asgi")
    elif path.startswith("/items/") and path[7:].isdigit():
        query = parse_qs(scope["query_string"].decode("latin-1"))
        await respond_json(send, {"id": int(path[7:]), "q": query.get("q", [None])[0]})
    elif path == "/echo" and method == "POST":
        body = await read_body(receive)
        extra = [(b"x-length", str(len(body)).encode())]
        await respond(send, body, content_type=b"application/octet-stream", extra=extra)
    elif path == "/stream":
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
        await send(start)
        async for piece in common.achunks():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/state":
        await respond_json(send, common.state_body(scope.get("state", {}).get("token")))
    elif path == "/headers":
        await respond_json(send, common.scope_summary(scope))
    elif path == "/scope":
        await respond_json(send, full_scope(scope))
    elif path == "/disconnect-probe":
        key = scope["query_string"].decode().partition("key=")[2]
        common.probe_started(key)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                common.disconnected(key)
                return
    elif path == "/after-response":
        await respond(send, b"done")
        key = scope["query_string"].decode().partition("key=")[2]
        message = await asyncio.wait_for(receive(), 5)
        common.record(f"after-response-{key}", message["type"])
    elif path == "/linger":
        # the whole body goes out (its Content-Length is met) but the app is not done: its last
        # message comes later, as a WSGI app's thread sends it through a2wsgi
        key = scope["query_string"].decode().partition("key=")[2]
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"done", "more_body": True})
        try:
            await asyncio.sleep(0.5)
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            common.record(f"linger-{key}", "cancelled")
            raise
        except OSError as exc:  # the client has gone: send() may say so (ASGI spec)
            common.record(f"linger-{key}", f"finished, {type(exc).__name__}")
            return
        common.record(f"linger-{key}", "finished")
    elif path == "/big-then-raise":
        # a complete response, then the app fails (a background task raising): the response
        # stands, all of it, even for a client that reads slowly
        body = b"x" * BIG
        await respond(send, body)
        raise RuntimeError("raw app: the background work failed after the response")
    elif path == "/context":
        # a context variable set while answering (a request id, a tracing span) and reset only
        # after the response: the next pipelined request must not see it
        seen = REQUEST_ID.get()
        token = REQUEST_ID.set(path + "?" + scope["query_string"].decode())
        try:
            await respond(send, seen.encode())
            await asyncio.sleep(0.05)
        finally:
            REQUEST_ID.reset(token)
    elif path == "/two-receivers":
        await two_receivers(scope["query_string"].decode().partition("key=")[2], receive, send)
    elif path == "/not-modified":  # a 304 may carry the Content-Length a 200 would have
        headers = [(b"etag", b'"v1"'), (b"content-length", b"1234")]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/close":
        await respond(send, b"closing", extra=[(b"connection", b"close")])
    elif path.startswith("/broken/"):
        await broken(path.removeprefix("/broken/"), send)
    else:
        await respond(send, b"not found", status=404)


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")

#: bytes of ``GET /big-then-raise``: more than a socket buffer takes at once
BIG = 8 * 1024 * 1024


async def two_receivers(key: str, receive: Any, send: Any) -> None:
    """A disconnect listener beside a ``receive()`` that is cancelled (as Starlette's
    ``is_disconnected()`` cancels its own): the listener must still hear the client leave."""
    await read_body(receive)
    start = {"type": "http.response.start", "status": 200, "headers": []}
    await send(start)
    await send({"type": "http.response.body", "body": b"streaming", "more_body": True})
    listener = asyncio.ensure_future(receive())
    await asyncio.sleep(0.05)
    probe = asyncio.ensure_future(receive())
    await asyncio.sleep(0.05)
    probe.cancel()
    common.probe_started(key)
    try:
        message = await asyncio.wait_for(listener, 10)
    except asyncio.TimeoutError:
        common.record(f"two-receivers-{key}", "the listener never heard")
        return
    common.record(f"two-receivers-{key}", message["type"])


async def broken(kind: str, send: Any) -> None:
    """Protocol errors: the server answers 500 if nothing was sent and keeps serving."""
    start = {"type": "http.response.start", "status": 200, "headers": []}
    if kind == "raises":
        raise RuntimeError("raw app: broken on purpose")
    if kind == "body-before-start":
        await send({"type": "http.response.body", "body": b"too early"})
    elif kind == "wrong-type":
        await send({"type": "http.response.bogus"})
    elif kind == "second-start":
        await send(start)
        await send(start)
    elif kind == "header-crlf":  # a value that would end the head early: never written
        await send({**start, "headers": [(b"x-a", b"1\r\nset-cookie: injected=1")]})
        await send({"type": "http.response.body", "body": b"injected"})
    elif kind == "bad-length":
        await send({**start, "headers": [(b"content-length", b"five")]})
        await send({"type": "http.response.body", "body": b"hello"})
    elif kind == "no-response":
        return
    elif kind == "short-length":  # one message, shorter than its Content-Length
        await send({**start, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"hello"})


async def websocket(scope: Scope, receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 4404})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)


async def failing_startup(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": STARTUP_FAILURE})
        return
    await app(scope, receive, send)


async def raising_startup(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        raise RuntimeError(STARTUP_EXCEPTION)
    await app(scope, receive, send)


async def no_lifespan(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError(f"this app handles only http, not {scope['type']}")
    await http(scope, receive, send)


class ASGI2App:
    """ASGI 2: ``ASGI2App(scope)`` is the instance, awaited with ``(receive, send)``."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await app(self.scope, receive, send)


async def slow_startup(scope: Scope, receive: Any, send: Any) -> None:
    """Its lifespan start-up takes a second after it began (and says so): a stop that comes
    meanwhile must still shut it down once it completed."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                common.record(f"slow-startup-{os.getpid()}")
                await asyncio.sleep(1.0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                common.record(f"slow-shutdown-{os.getpid()}")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await respond(send, b"slow")
