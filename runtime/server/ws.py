"""The server side of a websocket: ``runtime.websocket.WebSocketProtocol`` over ``WSConnection``.

The HTTP protocol hands a connection over after a websocket request head: the handshake is
answered here, then every byte from the client goes to :meth:`ServerWebSocket.data_received`,
and the handler runs through ``app.handle_websocket(request, ws)``.

Close codes: the handler returning closes with 1000; a handler exception closes with 1011; server
shutdown closes with 1001; an oversized message is closed by the protocol with 1009; a peer that
does not answer pings within ``WEBSOCKET_PING_TIMEOUT`` is closed with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from runtime.log import server_logger
from runtime.proto.ws import Closed, Message, Pong, WSConnection

if TYPE_CHECKING:
    from runtime.server.http import HttpProtocol, _Cycle

__all__ = ["ServerWebSocket", "WebSocketClosed"]

_QUEUE_HIGH = 64  # queued incoming messages before reading pauses
_CLOSE_WAIT = 5.0  # seconds to wait for the peer's close frame


WebSocketClosed = ConnectionClosed  # what send()/ping() raise once the connection is closed


def _closed_error(code: int, reason: str = "") -> ConnectionClosed:
    frame = Close(code, reason)
    if code in (1000, 1001):
        return ConnectionClosedOK(frame, None)
    return ConnectionClosedError(frame, None)


Data = str | bytes


class ServerWebSocket:
    """What the handler sees as ``ws`` (``runtime.websocket.WebSocketProtocol``)."""

    def __init__(self, http: HttpProtocol, cycle: _Cycle, route: Any) -> None:
        state = http.state
        self._http = http
        self._cycle = cycle
        self._transport = http.transport
        self._flow = http.flow
        self._conn = WSConnection(
            max_size=state.ws_max_size,
            subprotocols=tuple(getattr(route, "subprotocols", None) or ()),
        )
        self._messages: deque[Data] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: Closed | None = None
        self._closed_event = asyncio.Event()
        self._pong_waiters: list[asyncio.Future[None]] = []
        self._ping_interval: float | None = state.ws_ping_interval
        self._ping_timeout: float | None = state.ws_ping_timeout
        self._keepalive: asyncio.Task[None] | None = None
        self.handler_running = False

    @property
    def subprotocol(self) -> str | None:
        return self._conn.subprotocol

    @property
    def close_code(self) -> int | None:
        return self._closed.code if self._closed else None

    # -- lifecycle (server side) -----------------------------------------------------------------

    async def run(self) -> None:
        head = self._cycle.head
        reply = self._conn.handshake(head.method, head.target, head.headers)
        self._cycle.response_started = True
        self._cycle.status = 101 if self._conn.accepted else 400
        self._transport.write(reply)
        if not self._conn.accepted:
            self._transport.close()
            return
        trailing = self._cycle.upgrade
        if trailing:
            self.data_received(trailing)
        if self._ping_interval:
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive())
        app = self._http.app
        self.handler_running = True
        try:
            await app.handle_websocket(self._cycle.request, self)
        except asyncio.CancelledError:
            self._send(self._conn.fail(1001, "going away"))
            raise
        except Exception:  # the app logged it and dispatched websocket.handler.exception
            await self.close(1011, "internal error")
        else:
            await self.close(1000, "")
        finally:
            self.handler_running = False
            if self._keepalive is not None:
                self._keepalive.cancel()

    def data_received(self, data: bytes) -> None:
        self._handle(self._conn.receive_data(data))

    def eof_received(self) -> None:
        self._handle(self._conn.receive_eof())

    def _handle(self, events: list[Any]) -> None:
        pending = self._conn.data_to_send()
        if pending:
            self._transport.write(pending)
        for event in events:
            if isinstance(event, Message):
                self._messages.append(event.data)
                if len(self._messages) >= _QUEUE_HIGH:
                    self._flow.pause_reading("ws")
            elif isinstance(event, Pong):
                waiters, self._pong_waiters = self._pong_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            elif isinstance(event, Closed):
                self._set_closed(event)
        self._wake()
        if self._conn.should_close:
            self._transport.close()

    def _set_closed(self, closed: Closed) -> None:
        if self._closed is None:
            self._closed = closed
            self._closed_event.set()
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self) -> None:
        self._set_closed(Closed(1006, "connection lost"))
        for waiter in self._pong_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def going_away(self) -> None:
        """The server is shutting down: close with 1001."""
        if self._closed is None:
            self._send(self._conn.close(1001, "server shutting down"))

    def abort(self) -> None:
        self._set_closed(Closed(1006, "aborted"))
        self._transport.abort()

    async def _keep_alive(self) -> None:
        assert self._ping_interval
        while self._closed is None:
            await asyncio.sleep(self._ping_interval)
            if self.close_code is not None:
                return
            pong = asyncio.get_running_loop().create_future()
            self._pong_waiters.append(pong)
            self._send(self._conn.ping(os.urandom(4)))
            try:
                await asyncio.wait_for(pong, self._ping_timeout)
            except asyncio.TimeoutError:
                server_logger.info("Websocket peer did not answer a ping; closing")
                self._send(self._conn.fail(1011, "keepalive ping timeout"))
                self._set_closed(Closed(1011, "keepalive ping timeout"))
                self._transport.close()
                return

    def _send(self, data: bytes) -> None:
        if data and not self._transport.is_closing():
            self._transport.write(data)
        if self._conn.should_close and not self._transport.is_closing():
            self._transport.close()

    # -- WebSocketProtocol (handler side) --------------------------------------------------------

    async def send(self, data: Data) -> None:
        if self._closed is not None or not self._conn.open:
            closed = self._closed or Closed(self._conn.close_code or 1006, "")
            raise _closed_error(closed.code, closed.reason)
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"ws.send() takes str or bytes, not {type(data).__name__}")
        self._send(self._conn.send(data if isinstance(data, str) else bytes(data)))
        await self._flow.drain()

    async def recv(self, timeout: float | None = None) -> Data | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._messages:
            if self._closed is not None:
                return None
            if self._waiter is not None:
                raise RuntimeError(
                    "ws.recv() is already waiting in another task; read from one task only"
                )
            self._waiter = loop.create_future()
            try:
                if deadline is None:
                    await self._waiter
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return None
                    try:
                        await asyncio.wait_for(self._waiter, remaining)
                    except asyncio.TimeoutError:
                        return None
            finally:
                self._waiter = None
        message = self._messages.popleft()
        if len(self._messages) < _QUEUE_HIGH // 2:
            self._flow.resume_reading("ws")
        return message

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        while True:
            message = await self.recv()
            if message is None:
                return
            yield message

    async def ping(self, data: bytes = b"") -> None:
        if self._closed is not None or not self._conn.open:
            raise _closed_error(self.close_code or 1006)
        self._send(self._conn.ping(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None and self._conn.open:
            self._send(self._conn.close(code, reason))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed_event.wait(), _CLOSE_WAIT)
        self._set_closed(Closed(code, reason))
        if not self._transport.is_closing():
            self._transport.close()
