"""ASGI websockets over vivace's websocket stack: the ``websocket`` scope for a foreign app.

:class:`ASGIWebSocket` is a :class:`~runtime.server.ws.ServerWebSocket` (frames, flow control,
keepalive pings, the close handshake and shutdown are the same as for a vivace route) whose
handshake waits for the app: the request is checked when it arrives, and the ``101`` is written
only when the app sends ``websocket.accept``.

Rules of one connection (asgiref's WebSocket spec 2.4 and its "Websocket Denial Response"
extension):

1. ``receive()`` returns ``websocket.connect`` first. After ``websocket.accept`` it returns
   ``websocket.receive`` messages (``text`` or ``bytes``) in arrival order; once the connection is
   closed, and no message is left, it returns ``websocket.disconnect`` with the ``code`` and
   ``reason`` of the close (the peer's close frame; 1006 when the connection was lost; the app's own
   code once it sent ``websocket.close``; 1001 when the server shuts down) for every later call.
2. ``send()`` before the handshake is answered takes ``websocket.accept`` (``subprotocol`` and
   ``headers`` go into the ``101``), ``websocket.close`` (answered ``403``, as uvicorn does) or
   ``websocket.http.response.start`` followed by ``websocket.http.response.body`` messages until
   one has ``more_body`` false (that response is sent instead of the handshake, then the
   connection closes). After the accept it takes ``websocket.send`` (exactly one of ``text`` and
   ``bytes``; each waits for the transport to drain) and ``websocket.close`` (``code``, default
   1000, and ``reason``). Anything else, or anything after the app closed or answered, raises
   ``RuntimeError`` in the app.
3. ``send()`` of data once the peer has gone raises :class:`ClientDisconnected` (an ``OSError``);
   ``websocket.close`` then is accepted and does nothing, since the connection is closed already.
4. The app raising: before the handshake is answered the client gets a ``500``; after, the
   connection is closed with 1011. The app returning without answering the handshake is a ``500``
   (logged); returning with the connection open closes it with 1000.
5. Server shutdown closes an open connection with 1001 (and the app receives
   ``websocket.disconnect`` 1001 at once); a handshake the app has not answered yet gets a
   ``503``. Oversized messages close with 1009, unanswered keepalive pings with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from websockets.exceptions import ProtocolError

from runtime.hosting import Message
from runtime.log import error_logger, server_logger
from runtime.proto import h1
from runtime.proto.ws import Closed
from runtime.server.asgi_messages import ClientDisconnected, response_headers
from runtime.server.ws import _CLOSE_WAIT, _QUEUE_HIGH, ServerWebSocket

if TYPE_CHECKING:
    from runtime.proto.h1 import RequestHead
    from runtime.server.asgi_http import ASGIHttpProtocol
    from runtime.server.http import _Cycle

__all__ = ["ASGIWebSocket", "serve_websocket", "websocket_scope"]

# what the app's send() accepts (rule 2)
CONNECTING: Final = 0  # the handshake is not answered yet
OPEN: Final = 1  # accepted
RESPONDING: Final = 2  # a denial response is under way
DONE: Final = 3  # the app closed, refused or finished its denial response

_EARLY_LIMIT: Final = 65536  # bytes a client sends before the 101 before reading pauses
#: headers of the handshake itself: the server writes them, an app's copies are dropped
_HANDSHAKE_HEADERS: Final = frozenset(
    (b"upgrade", b"sec-websocket-accept", b"sec-websocket-extensions", b"sec-websocket-protocol")
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


async def serve_websocket(http: ASGIHttpProtocol, cycle: _Cycle) -> bool:
    """Run the app for the websocket request of ``cycle``; always True (the app answers it).

    The HTTP parser stops at an upgrade, so the connection is closed afterwards whatever the
    outcome.
    """
    http._close_after = True
    ws = ASGIWebSocket(http, cycle)
    http.ws = ws
    await ws.run()
    return True


def websocket_scope(
    http: ASGIHttpProtocol, head: RequestHead, offered: list[str]
) -> dict[str, Any]:
    """The ``websocket`` scope of a request: the ``http`` one's fields, minus ``method``."""
    scope = http._scope(head)
    del scope["method"]
    scope["type"] = "websocket"
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}  # the http scope says 2.3
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = offered
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


def _disconnect(closed: Closed) -> Message:
    return {"type": "websocket.disconnect", "code": closed.code, "reason": closed.reason}


class ASGIWebSocket(ServerWebSocket):
    """One websocket connection driven by an ASGI app (see the module docstring)."""

    def __init__(self, http: ASGIHttpProtocol, cycle: _Cycle) -> None:
        super().__init__(http, cycle, None)
        self._host = http
        self._phase: int = CONNECTING
        self._connect_sent = False
        self._early = bytearray(cycle.upgrade or b"")  # frames sent before the handshake's answer
        self._app_closed: Closed | None = None  # the app's websocket.close (or refusal)
        self._denial: tuple[int, list[tuple[bytes, bytes]], int | None] | None = None
        self._denial_body: list[bytes] = []
        self._lost = asyncio.Event()

    # -- the connection (HttpProtocol calls these) -------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._conn.accepted:
            super().data_received(data)
        elif self._phase == CONNECTING:
            self._early += data
            if len(self._early) > _EARLY_LIMIT:
                self._flow.pause_reading("ws-early")
        # else: refused or denied, the connection is closing; the bytes are dropped

    def eof_received(self) -> None:
        if self._conn.accepted:
            super().eof_received()
        # else: the transport closes (connection_lost tells the app)

    def connection_lost(self) -> None:
        super().connection_lost()
        self._lost.set()
        self._wake()

    def going_away(self) -> None:
        """The server is shutting down: close with 1001 (rule 5)."""
        if self._closed is not None:
            return
        self._set_closed(Closed(1001, "server shutting down"))
        if self._conn.accepted:
            if self._conn.open:
                self._send(self._conn.close(1001, "server shutting down"))
        elif self._phase in (CONNECTING, RESPONDING):
            self._refuse(503, "the server is shutting down")

    # -- running the app ---------------------------------------------------------------------------

    async def run(self) -> None:
        http = self._host
        cycle = self._cycle
        head = cycle.head
        rejection = self._conn.check_handshake(head.method, head.target, head.headers)
        if rejection is not None:
            cycle.response_started = True
            cycle.status = int(rejection[9:12])
            self._transport.write(rejection)
            self._transport.close()
            self._log(cycle)
            return
        scope = websocket_scope(http, head, self._conn.offered)
        self.handler_running = True
        try:
            await http._asgi(scope, self.asgi_receive, self.asgi_send)
        except ClientDisconnected:
            server_logger.debug("The client went away during websocket %r", head.target)
        except Exception:
            error_logger.exception("Exception in ASGI application %s", http._host.name)
            if self._conn.accepted:
                self._close(1011, "internal error")
            else:
                self._refuse(500, "the application failed while answering")
        else:
            if self._conn.accepted:
                self._close(1000, "")
            elif self._phase != DONE and self._closed is None:
                error_logger.error(
                    "ASGI application %s returned without accepting or refusing websocket %s",
                    http._host.name,
                    head.target.decode("latin-1"),
                )
                self._refuse(500, "the application did not answer the websocket handshake")
        finally:
            self.handler_running = False
            if self._keepalive is not None:
                self._keepalive.cancel()
        transport = self._transport
        if not transport.is_closing():
            # the close frame is out: the peer answers it, then _handle closes the transport
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._lost.wait(), _CLOSE_WAIT)
            if not transport.is_closing():
                transport.close()

    def _close(self, code: int, reason: str) -> None:
        """The app is done with an accepted connection: close it if it is still open."""
        if self._conn.open and self._closed is None:
            self._send(self._conn.close(code, reason))

    def _refuse(self, status: int, reason: str) -> None:
        """Answer the handshake with an error response and close (nothing was written yet)."""
        if self._closed is None:
            self._app_closed = Closed(1006, "")  # the connection was never opened
        self._respond(h1.reject_response(status, reason), status)

    def _respond(self, data: bytes, status: int) -> None:
        cycle = self._cycle
        if cycle.response_started or self._transport.is_closing():
            return
        cycle.response_started = True
        cycle.status = status
        cycle.written += len(data)
        self._transport.write(data)
        self._transport.close()
        self._log(cycle)

    def _log(self, cycle: _Cycle) -> None:
        if self._host.state.access_log:
            self._host._access_log(cycle)

    # -- the app's receive() -----------------------------------------------------------------------

    async def asgi_receive(self) -> Message:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        loop = asyncio.get_running_loop()
        while True:
            messages = self._messages
            if messages:
                data = messages.popleft()
                if len(messages) < _QUEUE_HIGH // 2:
                    self._flow.resume_reading("ws")
                if isinstance(data, str):
                    return {"type": "websocket.receive", "text": data}
                return {"type": "websocket.receive", "bytes": data}
            closed = self._app_closed or self._closed
            if closed is not None:
                return _disconnect(closed)
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = loop.create_future()
            try:
                await asyncio.shield(waiter)  # several receivers may wait on one future
            finally:
                if self._waiter is waiter and waiter.done():
                    self._waiter = None

    # -- the app's send() --------------------------------------------------------------------------

    async def asgi_send(self, message: Message) -> None:
        kind = message.get("type") if isinstance(message, Mapping) else None
        phase = self._phase
        if phase == OPEN:
            if kind == "websocket.send":
                data = _data(message)
                if self._closed is not None or not self._conn.open:
                    raise ClientDisconnected("the websocket is closed")
                self._send(self._conn.send(data))
                await self._flow.drain()
            elif kind == "websocket.close":
                self._app_close(message)
            else:
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}"
                )
        elif phase == CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":  # code and reason are not sent: not checked either
                self._phase = DONE
                self._refuse(403, "the application refused the websocket")
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got {kind!r}"
                )
        elif phase == RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body', but got {kind!r}"
                )
            self._denial_part(message)
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after the websocket was closed")

    def _gone(self) -> bool:
        return self._closed is not None or self._transport.is_closing()

    def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and (
            not isinstance(subprotocol, str) or not _TOKEN.fullmatch(subprotocol)
        ):
            raise RuntimeError(f"Invalid websocket subprotocol {subprotocol!r}")
        raw, _, _ = response_headers(message.get("headers") or ())
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in raw
            if name.lower() not in _HANDSHAKE_HEADERS
        ]
        if self._gone():
            raise ClientDisconnected("the client went away before the websocket was accepted")
        reply = self._conn.accept(subprotocol, headers)
        self._phase = OPEN
        cycle = self._cycle
        cycle.response_started = True
        cycle.status = 101
        cycle.written += len(reply)
        self._transport.write(reply)
        self._log(cycle)
        early, self._early = bytes(self._early), bytearray()
        self._flow.resume_reading("ws-early")
        if early:
            super().data_received(early)
        if self._ping_interval and self._closed is None:
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive())

    def _app_close(self, message: Message) -> None:
        code, reason = _close_args(message)
        if self._closed is None and self._conn.open:
            try:
                data = self._conn.close(code, reason)
            except ProtocolError as exc:
                raise RuntimeError(f"Invalid websocket close code {code}: {exc}") from None
            self._send(data)
            self._app_closed = Closed(code, reason)
            self._wake()
        self._phase = DONE  # closed already (by the peer, a lost connection): nothing to send

    def _start_denial(self, message: Message) -> None:
        status = message.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 999:
            raise RuntimeError(f"Invalid websocket denial response status {status!r}")
        headers, length, _ = response_headers(message.get("headers") or ())
        if self._gone():
            raise ClientDisconnected("the client went away before the denial response")
        self._denial = (status, headers, length)
        self._phase = RESPONDING

    def _denial_part(self, message: Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise RuntimeError(f"ASGI response body must be bytes, got {type(body).__name__}")
        if self._gone():
            raise ClientDisconnected("the client went away during the denial response")
        self._denial_body.append(bytes(body))
        if message.get("more_body", False):
            return
        assert self._denial is not None
        status, headers, length = self._denial
        whole = b"".join(self._denial_body)
        self._denial_body = []
        if length is not None and length != len(whole):
            raise RuntimeError(
                f"Response content length {len(whole)} does not match its "
                f"Content-Length header ({length})"
            )
        data = h1.response_head(status, headers, content_length=len(whole), keep_alive=False)
        if h1.status_has_body(status):
            data += whole
        self._phase = DONE
        if self._closed is None:
            self._app_closed = Closed(1006, "")
        self._respond(data, status)


def _data(message: Message) -> str | bytes:
    data = message.get("bytes")
    text = message.get("text")
    if data is not None:
        if text is not None:
            raise RuntimeError("websocket.send takes 'bytes' or 'text', not both")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise RuntimeError(f"websocket.send 'bytes' must be bytes, got {type(data).__name__}")
        return bytes(data)
    if text is None:
        raise RuntimeError("websocket.send needs 'bytes' or 'text'")
    if not isinstance(text, str):
        raise RuntimeError(f"websocket.send 'text' must be a str, got {type(text).__name__}")
    return text


def _close_args(message: Message) -> tuple[int, str]:
    code = message.get("code")
    if code is None:
        code = 1000
    if isinstance(code, bool) or not isinstance(code, int):
        raise RuntimeError(f"websocket.close 'code' must be an int, got {code!r}")
    reason = message.get("reason") or ""
    if not isinstance(reason, str):
        raise RuntimeError(f"websocket.close 'reason' must be a str, got {reason!r}")
    if len(reason.encode()) > 123:
        raise RuntimeError("websocket.close 'reason' is longer than 123 bytes")
    return code, reason
