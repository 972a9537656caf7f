"""The asyncio HTTP/1.1 protocol: where the wire (``runtime.proto.h1``) meets the app.

One :class:`HttpProtocol` per connection. Bytes go to an ``H1Connection``; each request head
becomes a ``Request`` whose body is fed to ``request.body_channel``; requests run one at a time
in a task (pipelined ones wait in a queue, answered in order). Timeouts are checked by one
ticker per server (``runtime.server.state.ServerState``, imported from here too), not by
per-request timers, so the hot path creates no timer handles. Responses are turned into bytes,
and files sent, by ``runtime.server.respond``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, cast

from runtime.datastructures import ConnInfo, Headers
from runtime.exceptions import (
    BadRequest,
    HTTPException,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
)
from runtime.log import access_logger, error_logger, server_logger
from runtime.proto import h1
from runtime.proto.h1 import END, Data, H1Connection, Reject, RequestHead, Upgrade
from runtime.server import respond
from runtime.server.flow import FlowControl
from runtime.server.state import ServerState, _seconds

if TYPE_CHECKING:
    from runtime.app import App
    from runtime.server.ws import ServerWebSocket

__all__ = ["HttpProtocol", "ServerState", "_seconds"]

# connection phases
IDLE: Final = 0  # waiting for the next request (keep-alive)
BUSY: Final = 1  # a request is being handled
CLOSED: Final = 2
OPENING: Final = 3  # accepted by the loop; connection_made has not run yet

_PIPELINE_LIMIT: Final = 16  # queued pipelined requests before reading pauses


class _Cycle:
    """One request on a connection: its head, ``Request``, task and progress."""

    __slots__ = (
        "body_done",
        "discard",
        "head",
        "received",
        "request",
        "response_started",
        "status",
        "task",
        "ticks",
        "upgrade",
        "written",
    )

    def __init__(self, head: RequestHead, request: Any) -> None:
        self.head = head
        self.request = request
        self.received = 0.0  # when the head arrived (perf_counter), when access lines are logged
        self.task: asyncio.Task[None] | None = None
        self.body_done = False
        self.discard = False  # answered before its body arrived: the rest of the body is dropped
        self.response_started = False
        self.ticks = 0.0
        self.status = 0
        self.written = 0
        self.upgrade: bytes | None = None  # bytes after a websocket upgrade head


#: seconds an idle connection stays open at shutdown, for a request already on its way: counted
#: from the stop for a connection idle then, from connection_made for one accepted during the drain
SHUTDOWN_IDLE_GRACE = 0.1

#: seconds a streaming response ended at shutdown has to reach a client that reads slowly (its
#: terminator is written and the connection closed); a connection still open then is dropped
STREAM_END_LINGER = 0.25


class _Stream:
    """A streaming response being written: what ending it at shutdown needs."""

    __slots__ = ("chunked", "cycle", "ended", "timer")

    def __init__(self, cycle: _Cycle, chunked: bool) -> None:
        self.cycle = cycle
        self.chunked = chunked  # ended with a last chunk; otherwise with the connection
        self.ended = False  # ended by the server at shutdown
        self.timer: asyncio.TimerHandle | None = None


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection (see the module docstring)."""

    __slots__ = (
        "_close_after",
        "_cycle",
        "_idle_ticks",
        "_pipeline",
        "_receiving",
        "_recv_ticks",
        "_said_close",
        "_stream",
        "app",
        "conn",
        "conn_info",
        "flow",
        "loop",
        "phase",
        "state",
        "transport",
        "ws",
    )

    #: the request parser: names as the client wrote them (``Headers`` looks them up in any case)
    connection_class: type[H1Connection] = H1Connection

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.app: App = cast("App", state.app)  # this class serves a vivace App
        self.loop = asyncio.get_running_loop()
        self.conn = self.connection_class(
            max_header_size=state.max_header_size,
            max_header_count=state.max_header_count,
            max_body_size=state.max_body_size,
            keep_alive=state.keep_alive,
        )
        self.phase = OPENING
        self._cycle: _Cycle | None = None  # the request being answered
        self._receiving: _Cycle | None = None  # the request whose body is arriving
        self._pipeline: deque[_Cycle | Reject] = deque()
        self._idle_ticks = 0.0
        self._recv_ticks = 0.0
        self._close_after = False
        self._said_close = False  # a response said Connection: close: nothing after it is served
        self._stream: _Stream | None = None  # the streaming response being written
        self.ws: ServerWebSocket | None = None

    # -- asyncio callbacks -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        self.flow = FlowControl(transport)
        peer = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        tls = self.state.tls
        if isinstance(peer, tuple):
            self.conn_info = ConnInfo(peer[0], peer[1], sockname[0], sockname[1], ssl=tls)
        else:
            self.conn_info = ConnInfo(unix=sockname if isinstance(sockname, str) else "", ssl=tls)
        state = self.state
        if self.phase == CLOSED:  # aborted by a forced stop before the loop handed it over
            state.connections.discard(self)
            transport.abort()
            return
        self.phase = IDLE
        state.connections.add(self)
        if state.shutting_down:
            # Accepted by the loop before the drain stopped listening: the client has sent, or is
            # sending, its request. It is answered (with Connection: close), never reset.
            self._close_after = True
            self.loop.call_later(SHUTDOWN_IDLE_GRACE, self._close_if_idle)
        if state.sig_begin:
            self._signal("http.lifecycle.begin", {"conn_info": self.conn_info})

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = CLOSED
        self.flow.connection_lost()
        if self.ws is not None:
            self.ws.connection_lost()
        receiving = self._receiving
        if receiving is not None and not receiving.body_done:
            receiving.request.body_channel.feed_error(ConnectionResetError("client went away"))
        cycle = self._cycle
        if cycle is not None:
            self._answer_lost(cycle)
            task = cycle.task
            if task is not None and not task.done():
                self.state.outlives_connection(task)
        self._pipeline.clear()
        self.state.connection_gone(self)
        if self.state.sig_complete:
            self._signal("http.lifecycle.complete", {"conn_info": self.conn_info})

    def _answer_lost(self, cycle: _Cycle) -> None:
        """The client went away while ``cycle`` (and the pipeline) waited for answers."""
        ws_done = self.ws is not None and not self.ws.handler_running
        if cycle.task is not None and not ws_done:
            cycle.task.cancel()  # nobody is left to answer

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def eof_received(self) -> bool | None:
        if self.ws is not None:
            self.ws.eof_received()
        return None

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.data_received(data)
            return
        self._idle_ticks = 0.0
        if self.conn.dead:
            cycle = self._upgrading()
            if cycle is not None and cycle.upgrade is not None:
                cycle.upgrade += data  # websocket frames that came before the handshake ran
            return
        events = self.conn.receive_data(data)
        for event in events:
            if event.__class__ is RequestHead:
                self._on_head(event)
            elif event is END:
                receiving = self._receiving
                if receiving is not None:
                    receiving.body_done = True
                    if receiving.head.has_body and not receiving.discard:
                        receiving.request.body_channel.feed_eof()
                    self._receiving = None
            elif event.__class__ is Data:
                receiving = self._receiving
                if receiving is not None and not receiving.discard:
                    receiving.request.body_channel.feed(event.data)
            elif event.__class__ is Reject:
                self._on_reject(event)
            elif event.__class__ is Upgrade:
                self._on_upgrade(event)
        if self._receiving is not None or self.conn.in_message:
            pass  # the request timeout counts ticks from now on (see tick)
        else:
            self._recv_ticks = 0.0

    # -- requests --------------------------------------------------------------------------------

    def _on_head(self, head: RequestHead) -> None:
        try:
            request = self.state.request_class(
                self.app,
                head.method,
                head.target,
                Headers.from_raw(head.headers),
                version=head.version,
                conn_info=self.conn_info,
            )
        except Exception as exc:  # a head the app model cannot represent
            self.conn.dead = True
            self._on_reject(Reject(400, f"Bad request: {exc}"))
            return
        self._accept(_Cycle(head, request))

    def _accept(self, cycle: _Cycle) -> None:
        """A request head arrived as ``cycle``: its body goes to ``cycle.request``; it runs now
        or waits in the pipeline. (``cycle.request`` is a ``Request``, or the ASGI host's
        exchange: both have ``body_channel`` and ``no_body()``.)"""
        self._receiving = cycle
        if self.state.access_log:
            cycle.received = time.perf_counter()  # (uvloop's loop.time() counts milliseconds)
        request = cycle.request
        if cycle.head.has_body:
            channel = request.body_channel
            channel.on_pause = self._pause_body
            channel.on_resume = self._resume_body
        else:
            request.no_body()  # no BodyChannel for a GET (see Request.no_body)
        if self._cycle is None:
            self._start(cycle)
        else:
            self._pipeline.append(cycle)
            if len(self._pipeline) > _PIPELINE_LIMIT:
                self.flow.pause_reading("pipeline")

    def _pause_body(self) -> None:
        self.flow.pause_reading("body")

    def _resume_body(self) -> None:
        self.flow.resume_reading("body")

    def _on_reject(self, reject: Reject) -> None:
        receiving = self._receiving
        if receiving is not None and not receiving.body_done:
            # the body of a request already under way broke a rule: that request gets the error
            exc: HTTPException = (
                PayloadTooLarge(reject.reason)
                if reject.status == 413
                else BadRequest(reject.reason)
            )
            receiving.request.body_channel.feed_error(exc)
            receiving.body_done = True
            self._receiving = None
            if receiving is self._cycle:
                # its body is unread: no keep-alive after its answer. (A pipelined request's
                # Reject closes the connection when its turn comes; the responses before it
                # keep their keep-alive, so none says "close" with more to follow.)
                self._close_after = True
            if receiving is self._cycle and not receiving.response_started:
                if receiving.task is not None:
                    receiving.task.cancel()
                self._pipeline.clear()
                self._send_reject(reject)
                return
            if receiving is not self._cycle:
                with contextlib.suppress(ValueError):
                    self._pipeline.remove(receiving)
        if self._cycle is None:
            self._send_reject(reject)
        else:
            self._pipeline.append(reject)

    def _send_reject(self, reject: Reject) -> None:
        if reject.status >= 500:
            server_logger.info("Refused a request: %s", reject.reason)
        else:
            server_logger.debug("Refused a request: %s", reject.reason)
        if not self.transport.is_closing():
            self.transport.write(h1.reject_response(reject.status, reject.reason))
            self.transport.close()

    def _upgrading(self) -> _Cycle | None:
        # the websocket request is the last head seen; it runs when its turn comes
        cycle = self._pipeline[-1] if self._pipeline else self._cycle
        return cycle if isinstance(cycle, _Cycle) else None

    def _on_upgrade(self, upgrade: Upgrade) -> None:
        cycle = self._upgrading()
        if cycle is not None:
            cycle.upgrade = upgrade.trailing

    def _start(self, cycle: _Cycle) -> None:
        self._cycle = cycle
        self.phase = BUSY
        cycle.task = self.loop.create_task(self._run(cycle))

    def _next(self) -> None:
        """The current request is answered: start the next one or go idle."""
        self._cycle = None
        self.phase = IDLE
        self._idle_ticks = 0.0
        transport = self.transport
        if transport.is_closing():
            return
        if self.state.shutting_down:
            if not self.conn.keep_alive:  # the response said Connection: close
                transport.close()
                return
            if not self._pipeline:
                # The response began before the stop and promised keep-alive: the client may be
                # sending its next request now. It is answered (with Connection: close) if it
                # comes within the grace; the connection closes only while no request is on it.
                self.loop.call_later(SHUTDOWN_IDLE_GRACE, self._close_if_idle)
                return
        elif self._said_close:
            # requests pipelined after a response that said Connection: close are not served
            # (RFC 9112 9.6): the client sends them again on a new connection
            transport.close()
            return
        elif not self._pipeline:
            if self._close_after or not self.conn.keep_alive:
                transport.close()
            return
        if len(self._pipeline) <= _PIPELINE_LIMIT:
            self.flow.resume_reading("pipeline")
        item = self._pipeline.popleft()
        if isinstance(item, Reject):
            self._send_reject(item)
        else:
            self._start(item)

    async def _run(self, cycle: _Cycle) -> None:
        app = self.app
        request = cycle.request
        head = cycle.head
        try:
            if self.state.sig_read_head:
                await self._dispatch("http.lifecycle.read_head", {"head": _raw_head(head)})
            if cycle.upgrade is not None and await self._websocket(cycle):
                return
            if head.expect_continue and not cycle.body_done and head.version == "1.1":
                self.transport.write(h1.CONTINUE)
            response = await app.handle(request)
            if not response.is_streaming:
                self._send(cycle, response)
            elif response.is_file:
                await self._send_file(cycle, response)
            else:
                await self._send_stream(cycle, response)
        except asyncio.CancelledError:
            return  # connection lost, timed out or shutting down; the canceller cleans up
        except Exception:
            error_logger.exception("Error while serving %s %r", head.method, head.target)
            if not cycle.response_started and not self.transport.is_closing():
                self._send_reject(Reject(500, "the server failed while answering"))
            else:
                self.transport.abort()
        if self.state.access_log:
            self._access_log(cycle)
        if not cycle.body_done:
            # the handler answered without reading the whole body: drop the rest of it
            cycle.discard = True
            channel = request.body_channel
            with contextlib.suppress(Exception):
                channel.feed_error(BadRequest("the response was sent before the body was read"))
            self.flow.resume_reading("body")
        self._next()

    def _closes(self) -> None:
        """The response being written says ``Connection: close``."""
        self.conn.keep_alive = False
        self._said_close = True

    def _keeps_alive(self, cycle: _Cycle) -> bool:
        """May the connection carry another request after ``cycle``'s response?"""
        return cycle.head.keep_alive and not self._close_after and not self.state.shutting_down

    def _send(self, cycle: _Cycle, response: Any) -> None:
        """Write a complete (non-streaming) response, head and body, in one write."""
        cycle.status = response.status
        cycle.response_started = True
        keep_alive = self._keeps_alive(cycle)
        self._write(cycle, respond.complete(response, cycle.head, keep_alive))
        if not keep_alive:
            self._closes()

    async def _send_stream(self, cycle: _Cycle, response: Any) -> None:
        """Write a streaming response: chunked unless it has a Content-Length (or HTTP/1.0)."""
        cycle.status = response.status
        cycle.response_started = True
        keep_alive = self._keeps_alive(cycle)
        head = respond.stream_head(response, cycle.head, keep_alive)
        if not head.keep_alive:
            self._closes()
        self._write(cycle, head.data)
        if head.bodyless:
            return
        chunked = head.chunked
        flow = self.flow
        stream = self._stream_begins(cycle, chunked)

        async def write(chunk: bytes | str) -> None:
            if isinstance(chunk, str):
                chunk = chunk.encode()
            if not chunk:
                return
            if self.transport.is_closing():
                if stream.ended:  # a handler that went on after its cancellation
                    raise asyncio.CancelledError("the server ended the stream at shutdown")
                raise ConnectionResetError("the client closed the connection")
            self._write(cycle, h1.chunk(chunk) if chunked else chunk)
            await flow.drain()

        try:
            await response.stream_body(write)
        except asyncio.CancelledError:
            if stream.ended and self.state.access_log:
                self._access_log(cycle)
            raise
        finally:
            self._stream_done(stream)
        if chunked and not stream.ended:
            self._write(cycle, h1.LAST_CHUNK)

    async def _send_file(self, cycle: _Cycle, response: Any) -> None:
        """Write a file response (``runtime.server.respond``): its head, then the file's bytes
        with ``sendfile``; a large file is a stream for the shutdown grace."""
        keep_alive = self._keeps_alive(cycle)
        body = respond.file_head(response, cycle.head, cycle.request.headers, keep_alive)
        if body is None:  # removed since the handler found it
            from runtime.response import text

            self._send(cycle, text("404 Not Found: the file is gone", status=404))
            return
        cycle.status = body.status
        cycle.response_started = True
        if not keep_alive:
            self._closes()
        if body.fd < 0:
            self._write(cycle, body.head)
            return
        try:
            if body.length <= respond.SMALL_FILE:
                data = os.pread(body.fd, body.length, body.offset)
                self._write(cycle, body.head + data)
                if len(data) != body.length:  # shrunk since its fstat: the length was promised
                    self.transport.abort()
                return
            self._write(cycle, body.head)
            stream = self._stream_begins(cycle, chunked=False)
            try:
                await respond.send_file(
                    self.transport,
                    self.flow,
                    body,
                    chunk_size=response.chunk_size,
                    write=lambda data: self._write(cycle, data),
                )
            except ConnectionResetError as exc:
                # the client went away, or the file shrank: the promised length cannot be kept
                server_logger.debug("File response cut: %s", exc)
                self.transport.abort()
                return
            finally:
                self._stream_done(stream)
            cycle.written += body.length
        finally:
            os.close(body.fd)

    # -- streams at shutdown -----------------------------------------------------------------------

    def _stream_begins(self, cycle: _Cycle, chunked: bool) -> _Stream:
        """A streaming response's head is written; its body follows. One that begins while the
        server stops gets its grace from now."""
        stream = _Stream(cycle, chunked)
        self._stream = stream
        if self.state.shutting_down:
            self._stream_grace(stream)
        return stream

    def _stream_done(self, stream: _Stream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        if self._stream is stream:
            self._stream = None

    def _stream_grace(self, stream: _Stream) -> None:
        if stream.timer is None and not stream.ended:
            grace = self.state.stream_grace
            stream.timer = self.loop.call_later(grace, self._end_stream, stream)

    def _end_stream(self, stream: _Stream) -> None:
        """The grace is over: end the stream where it stands.

        Between two chunks (every chunk is one write), so a chunked body gets its last chunk
        (``0\\r\\n\\r\\n``) and is complete; a body delimited by the connection (HTTP/1.0) ends
        with the close, as it should. A body with a ``Content-Length`` cannot be completed: the
        connection closes and the client sees a short body. The connection closes either way
        (it never carries another request) and the producer is stopped (:meth:`_stop_producer`).
        """
        stream.timer = None
        if self._stream is not stream or stream.ended:
            return
        stream.ended = True
        self.conn.keep_alive = False
        self._pipeline.clear()
        transport = self.transport
        if not transport.is_closing():
            if stream.chunked:
                self._write(stream.cycle, h1.LAST_CHUNK)
            transport.close()  # after what is buffered
            self.loop.call_later(STREAM_END_LINGER, self._drop_if_open)
        task = stream.cycle.task
        if task is not None and not task.done():
            self.state.ended_streams.add(task)
            task.add_done_callback(self.state.ended_streams.discard)
        server_logger.debug("Ended a streaming response at shutdown")
        self._stop_producer(stream.cycle)

    def _stop_producer(self, cycle: _Cycle) -> None:
        """The stream was ended at shutdown: the handler is cancelled."""
        if cycle.task is not None:
            cycle.task.cancel()

    def _drop_if_open(self) -> None:
        if self.phase != CLOSED:  # the client has not taken the rest of the response
            self.transport.abort()

    def _write(self, cycle: _Cycle, data: bytes) -> None:
        cycle.written += len(data)
        self.transport.write(data)
        if self.state.sig_send:
            self._signal("http.lifecycle.send", {"data": data})

    async def _websocket(self, cycle: _Cycle) -> bool:
        """Run a websocket route; False when no websocket route matches (answer as HTTP)."""
        from runtime.server.ws import ServerWebSocket

        try:
            route = self.app.match_websocket(cycle.request)
        except NotFound:
            # answered as plain HTTP; the parser stopped at the upgrade, so close afterwards
            cycle.upgrade = None
            self._close_after = True
            return False
        ws = ServerWebSocket(self, cycle, route)
        self.ws = ws
        await ws.run()
        return True

    # -- timeouts and shutdown ---------------------------------------------------------------------

    def tick(self, interval: float) -> None:
        """Called by the server ticker every ``interval`` seconds."""
        if self.phase >= CLOSED or self.ws is not None:  # CLOSED or OPENING
            return
        state = self.state
        if (self._receiving is not None or self.conn.in_message) and not self.flow.read_paused:
            self._recv_ticks += interval
            if self._recv_ticks > state.request_timeout:
                self._request_timeout()
                return
        cycle = self._cycle
        if cycle is not None:
            if not cycle.response_started:
                # counted once the request has arrived: while its body still comes and is read,
                # the request timeout is the one that counts (an upload slower than the response
                # timeout is no slow handler); a body the handler does not read counts here
                if self._receiving is not cycle or self.flow.read_paused:
                    cycle.ticks += interval
                if cycle.ticks > state.response_timeout:
                    self._response_timeout(cycle)
            elif self.flow.write_paused:
                # a streaming response to a client that stopped reading: give up after as long
                cycle.ticks += interval
                if cycle.ticks > state.response_timeout:
                    server_logger.info("Client stopped reading a response; closing")
                    self.abort()
            else:
                cycle.ticks = 0.0
        elif not self.conn.in_message:
            self._idle_ticks += interval
            if self._idle_ticks > state.keep_alive_timeout:
                if self.transport.is_closing():
                    self.transport.abort()  # closing, but the peer does not read what is left
                else:
                    self.transport.close()

    def _request_timeout(self) -> None:
        receiving = self._receiving
        if receiving is not None and not receiving.body_done:
            receiving.request.body_channel.feed_error(RequestTimeout("Request body timed out"))
        cycle = self._cycle
        if cycle is not None and cycle.task is not None:
            if cycle.response_started:
                self.transport.abort()
                return
            cycle.task.cancel()
        self._pipeline.clear()
        self._send_reject(Reject(408, "the request took too long to arrive"))

    def _response_timeout(self, cycle: _Cycle) -> None:
        if cycle.task is not None:
            cycle.task.cancel()
        self._pipeline.clear()
        server_logger.warning("Response timeout for %s %r", cycle.head.method, cycle.head.target)
        self._send_reject(Reject(503, "the handler did not respond in time"))

    def shutdown(self) -> None:
        """The server is stopping: close if idle, else close after the current response.

        Every request the connection has read is answered; the next response says
        ``Connection: close`` (one that already began with keep-alive is followed by the next
        request, if it comes, answered with close). The connection closes only between requests.
        A streaming response gets ``STREAM_SHUTDOWN_GRACE`` seconds (counted from now, or from
        its head for one that begins later) to finish; then it is ended (:meth:`_end_stream`).
        """
        if self.phase >= CLOSED:  # closed, or OPENING: connection_made sees the shutdown
            return
        if self.ws is not None:
            self.ws.going_away()
            return
        self._close_after = True
        if self._stream is not None:
            self._stream_grace(self._stream)
        if self._cycle is None and not self.transport.is_closing():
            # A request may be on its way: the client connected (or reused this keep-alive
            # connection) just before the stop. Closing now, with its bytes unread, would answer
            # it with a reset; give it a moment to arrive and answer it with Connection: close.
            self.loop.call_later(SHUTDOWN_IDLE_GRACE, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if (
            self._cycle is None
            and self._receiving is None
            and not self.conn.in_message  # part of a head has come: the request timeout rules
            and not self.transport.is_closing()
        ):
            self.transport.close()

    def abort(self) -> asyncio.Task[None] | None:
        """Cancel the request in flight and drop the connection; returns the cancelled task."""
        if self.phase == OPENING:  # no transport yet: connection_made will drop it
            self.phase = CLOSED
            self.state.connections.discard(self)
            return None
        task = self._cycle.task if self._cycle is not None else None
        if task is not None:
            task.cancel()
        if self.ws is not None:
            self.ws.abort()
        self.transport.abort()
        return task

    # -- signals and logging ---------------------------------------------------------------------

    def _signal(self, event: str, context: dict[str, Any]) -> None:
        self.loop.create_task(self._dispatch(event, context))

    async def _dispatch(self, event: str, context: dict[str, Any]) -> None:
        try:
            await self.app.dispatch(event, context=context, inline=True, fail_not_found=False)
        except Exception:
            error_logger.exception("Error in a %s signal handler", event)

    def _access_log(self, cycle: _Cycle) -> None:
        head = cycle.head
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(
                '%s - "%s %s HTTP/%s" %d %d',
                self.conn_info.client,
                head.method,
                head.target.decode("latin-1"),
                head.version,
                cycle.status,
                cycle.written,
                extra={"duration": time.perf_counter() - cycle.received},
            )


def _raw_head(head: RequestHead) -> bytes:
    lines = [b"%s %s HTTP/%s\r\n" % (head.method.encode(), head.target, head.version.encode())]
    lines.extend(name + b": " + value + b"\r\n" for name, value in head.headers)
    lines.append(b"\r\n")
    return b"".join(lines)
