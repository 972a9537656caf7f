"""Every ``App`` is an ASGI 3 application: ``uvicorn mod:app``, ``hypercorn mod:app``, granian.

``App.__call__`` delegates here. The three scope types:

* ``http``: the request body is pumped from ``receive`` into ``request.body_channel`` (reading
  pauses when the channel's buffer is full, as in our own server), ``app.handle`` answers, and the
  response is sent whole or, for streaming responses, chunk by chunk.
* ``websocket``: the route is matched before the handshake is accepted (no route: the connection is
  closed, which ASGI servers turn into a 403); the subprotocol is chosen from the route's list; the
  handler gets an :class:`ASGIWebSocket`.
* ``lifespan``: the four server listeners, as lifecycle.md section 9 says: start-up runs
  ``before_server_start`` then ``after_server_start``; shutdown runs ``before_server_stop`` then
  ``after_server_stop`` (each in teardown order) and cancels background tasks. Main-process and
  reload listeners never run under an ASGI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from runtime.datastructures import ConnInfo, Headers
from runtime.exceptions import NotFound, PayloadTooLarge
from runtime.lifecycle import ListenerEvent, run_listeners
from runtime.request import Request
from runtime.signals import Event

if TYPE_CHECKING:
    from runtime.app import App

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("vivace.asgi")

__all__ = ["ASGIWebSocket", "handle_asgi"]


async def handle_asgi(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await _http(app, scope, receive, send)
    elif kind == "websocket":
        await _websocket(app, scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(app, receive, send)
    else:
        raise ValueError(f"vivace does not handle ASGI scope type {kind!r}")


def _request(app: App, scope: Scope, method: str) -> Request:
    raw_path: bytes | None = scope.get("raw_path")
    if not raw_path:
        raw_path = quote(scope.get("path", "/"), safe="/%:@!$&'()*+,;=").encode("ascii")
    query: bytes = scope.get("query_string", b"")
    target = raw_path + b"?" + query if query else raw_path
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    scheme = scope.get("scheme", "http")
    conn_info = ConnInfo(
        client[0],
        client[1],
        server[0],
        server[1] or 0,
        scheme=scheme,
        ssl=scheme in ("https", "wss"),
    )
    headers = Headers.from_raw([(bytes(k), bytes(v)) for k, v in scope.get("headers", ())])
    version = scope.get("http_version", "1.1")
    return Request(app, method, target, headers, version, conn_info=conn_info)


def _ensure_finalized(app: App) -> None:
    if not getattr(app, "_finalized", False):
        app.finalize()


def _too_large(size: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body {size}is over REQUEST_MAX_SIZE ({limit} bytes); raise the limit"
    )


# -- http ----------------------------------------------------------------------------------------


async def _http(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    _ensure_finalized(app)
    request = _request(app, scope, scope["method"])
    channel = request.body_channel
    can_read = asyncio.Event()
    can_read.set()
    channel.on_pause = can_read.clear
    channel.on_resume = can_read.set

    limit = app.config.get("REQUEST_MAX_SIZE")

    async def pump() -> None:
        received = 0
        if limit:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                # never asked for: no "100 Continue", and the handler's first read is a 413
                channel.feed_error(_too_large(f"of {declared} bytes ", limit))
                return
        while True:
            await can_read.wait()
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    received += len(body)
                    if limit and received > limit:
                        channel.feed_error(_too_large("", limit))
                        return
                    channel.feed(bytes(body))
                if not message.get("more_body", False):
                    channel.feed_eof()
                    return
            elif message["type"] == "http.disconnect":
                channel.feed_error(ConnectionResetError("the client disconnected"))
                return

    pumping = asyncio.get_running_loop().create_task(pump())
    try:
        response = await app.handle(request)
    finally:
        if not pumping.done():
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping

    status = response.status
    head = response.header_items()
    no_body = scope["method"] == "HEAD" or status < 200 or status in (204, 304)
    trace_send = app.signal_router.has_handlers(Event.HTTP_LIFECYCLE_SEND)

    async def sent(data: bytes) -> None:
        if trace_send and data:
            await app.dispatch("http.lifecycle.send", inline=True, context={"data": data})

    if not response.is_streaming:
        body: bytes = response.body  # type: ignore[attr-defined]
        if (
            status not in (204, 304)
            and status >= 200
            and not any(name.lower() == b"content-length" for name, _ in head)
        ):
            head.append((b"content-length", str(len(body)).encode("ascii")))
        await send({"type": "http.response.start", "status": status, "headers": head})
        payload = b"" if no_body else body
        await send({"type": "http.response.body", "body": payload, "more_body": False})
        await sent(payload)
        return

    await send({"type": "http.response.start", "status": status, "headers": head})
    if not no_body:

        async def write(chunk: bytes) -> None:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await sent(chunk)

        streamed = await _stream_until_disconnect(
            response.stream_body(write),  # type: ignore[attr-defined]
            receive,
        )
        if not streamed:
            return  # the client left: nothing more to send
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream_until_disconnect(body: Awaitable[None], receive: Receive) -> bool:
    """Run a streaming body; cancel it when the client disconnects (False then).

    ASGI servers may silently drop what is sent after a disconnect (uvicorn does), so without
    this an endless stream (server-sent events, a feed) would run forever for nobody.
    """
    loop = asyncio.get_running_loop()
    streaming = loop.create_task(_run(body))
    watching = loop.create_task(_wait_for_disconnect(receive))
    try:
        await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watching, streaming):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if streaming.cancelled():
        return False
    streaming.result()  # the handler's exception, if any
    return True


async def _run(awaitable: Awaitable[None]) -> None:
    await awaitable


async def _wait_for_disconnect(receive: Receive) -> None:
    """Read (and drop) whatever body the handler left unread until ``http.disconnect``."""
    while (await receive())["type"] != "http.disconnect":
        pass


# -- websocket -----------------------------------------------------------------------------------


def _closed(code: int, reason: str = "") -> Exception:
    frame = Close(code, reason)
    if code in (1000, 1001):
        return ConnectionClosedOK(frame, None)
    return ConnectionClosedError(frame, None)


def _too_big(data: str | bytes, limit: int) -> bool:
    """Is ``data`` over ``limit`` bytes on the wire (text counts in UTF-8)?"""
    if isinstance(data, bytes) or len(data) > limit:
        return len(data) > limit
    return len(data) * 4 > limit and len(data.encode("utf-8", "surrogatepass")) > limit


class ASGIWebSocket:
    """``runtime.websocket.WebSocketProtocol`` over ASGI websocket messages.

    After the connection closed, ``recv`` returns ``None`` and ``send`` / ``ping`` raise the same
    ``websockets.exceptions.ConnectionClosed`` subclasses our own server raises.
    """

    def __init__(
        self,
        receive: Receive,
        send: Send,
        subprotocol: str | None,
        *,
        max_size: int | None = None,
    ) -> None:
        self._receive = receive
        self._send = send
        self._subprotocol = subprotocol
        #: WEBSOCKET_MAX_SIZE: a bigger incoming message closes the connection with 1009
        self.max_size = max_size or None
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def subprotocol(self) -> str | None:
        return self._subprotocol

    async def send(self, data: str | bytes) -> None:
        if self.closed:
            raise _closed(self.close_code or 1006, self.close_reason)
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, (bytes, bytearray, memoryview)):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(f"ws.send() takes str or bytes, not {type(data).__name__}")
        try:
            await self._send(message)
        except OSError as exc:
            # The client went away before the handler saw its close (uvicorn raises its
            # ClientDisconnected, an OSError): raise what our own server raises.
            self.closed = True
            self.close_code = self.close_code or 1006
            raise _closed(self.close_code, self.close_reason) from exc

    async def recv(self, timeout: float | None = None) -> str | bytes | None:
        if self.closed:
            return None
        try:
            message = await asyncio.wait_for(self._receive(), timeout)
        except asyncio.TimeoutError:
            return None
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            data: str | bytes = (
                str(text) if text is not None else bytes(message.get("bytes") or b"")
            )
            if self.max_size is not None and _too_big(data, self.max_size):
                with contextlib.suppress(OSError):
                    await self.close(
                        1009, f"message over WEBSOCKET_MAX_SIZE ({self.max_size} bytes)"
                    )
                self.closed = True
                return None
            return data
        if kind == "websocket.disconnect":
            self.closed = True
            self.close_code = int(message.get("code", 1005))
            self.close_reason = str(message.get("reason") or "")
            return None
        raise RuntimeError(f"unexpected ASGI message {kind!r} on an open websocket")

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        while True:
            message = await self.recv()
            if message is None:
                return
            yield message

    async def ping(self, data: bytes = b"") -> None:
        # ASGI has no ping message: the ASGI server keeps the connection alive itself.
        if self.closed:
            raise _closed(self.close_code or 1006, self.close_reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        with contextlib.suppress(OSError):  # the client already left: nothing to close
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


async def _websocket(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    _ensure_finalized(app)
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    request = _request(app, scope, "GET")
    try:
        route = app.match_websocket(request)
    except NotFound:
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        return
    offered: list[str] = list(scope.get("subprotocols") or ())
    chosen = next((p for p in (route.subprotocols or ()) if p in offered), None)
    accept: Message = {"type": "websocket.accept"}
    if chosen is not None:
        accept["subprotocol"] = chosen
    await send(accept)
    max_size = app.config.get("WEBSOCKET_MAX_SIZE")
    ws = ASGIWebSocket(receive, send, chosen, max_size=int(max_size) if max_size else None)
    try:
        await app.handle_websocket(request, ws)
    except asyncio.CancelledError:
        raise
    except Exception:
        # handle_websocket logged it and fired websocket.handler.exception
        with contextlib.suppress(Exception):
            await ws.close(1011, "internal error")
        return
    with contextlib.suppress(Exception):
        await ws.close(1000)


# -- lifespan ------------------------------------------------------------------------------------


async def _lifespan(app: App, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "lifespan.startup":
            try:
                app.finalize()
                if app.debug and (
                    app.listeners.has(ListenerEvent.BEFORE_SERVER_START)
                    or app.listeners.has(ListenerEvent.AFTER_SERVER_STOP)
                ):
                    logger.debug(
                        "ASGI mode: the ASGI server is already listening when "
                        "before_server_start runs, and still listening when after_server_stop "
                        "runs; they run as early and as late as the ASGI server allows."
                    )
                await run_listeners(app, ListenerEvent.BEFORE_SERVER_START)
                await run_listeners(app, ListenerEvent.AFTER_SERVER_START)
            except Exception as exc:
                logger.exception("ASGI lifespan start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            try:
                failures = await run_listeners(app, ListenerEvent.BEFORE_SERVER_STOP)
                await app.shutdown_tasks(timeout=app.config.GRACEFUL_SHUTDOWN_TIMEOUT)
                failures += await run_listeners(app, ListenerEvent.AFTER_SERVER_STOP)
            except Exception as exc:
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            if failures:
                message_text = "; ".join(f"{type(e).__name__}: {e}" for e in failures)
                await send({"type": "lifespan.shutdown.failed", "message": message_text})
            else:
                await send({"type": "lifespan.shutdown.complete"})
            return
