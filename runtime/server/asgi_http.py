"""ASGI 3 over vivace's HTTP/1.1 connection: how a foreign app (FastAPI, Django ...) is served.

:class:`ASGIHttpProtocol` is an :class:`~runtime.server.http.HttpProtocol`: the parser, limits,
keep-alive, pipelining, timeouts, flow control, access log and graceful drain are the same as for a
vivace ``App``. Only what happens between a request head and its response differs: instead of a
``Request`` and ``app.handle``, the request becomes an ASGI ``http`` scope, its body is read by the
app's ``receive()`` and the response comes from its ``send()`` messages.

Rules of one request (asgiref's HTTP spec; the scope says version 2.3, as uvicorn's does, so that
Starlette watches for the disconnect while it streams and cancels an idle stream when the client
leaves; ``send()`` still raises as version 2.4 asks):

1. ``receive()`` returns ``http.request`` messages until one has ``more_body`` false; the body is
   read from the connection as the app asks for it (reading pauses while the app does not ask).
   After that, and whenever the client has gone or the response is complete, ``receive()`` waits
   for and returns ``http.disconnect``; every later call returns it at once. Several ``receive()``
   calls may wait at once (a disconnect listener beside the app's own): each is told.
2. ``send()`` takes one ``http.response.start``, then ``http.response.body`` messages until one has
   ``more_body`` false. Anything else is a protocol error: a ``RuntimeError`` raised in the app; if
   the app lets it out, it is logged with the app's name and, when nothing was written yet, the
   client gets a 500. The connection is closed and the worker goes on serving. An exception
   after the response is complete (a failing background task) is only logged: the response
   stands.
3. The head is written with the first body message: a response whose first body message is also
   its last goes out in one write with its ``Content-Length``; a streamed one is chunked (HTTP/1.1)
   or ends with the connection (HTTP/1.0), unless the app gave a ``Content-Length``. Each streamed
   chunk waits for the transport to drain (backpressure).
4. The client going away does not cancel the app: ``receive()`` returns ``http.disconnect`` and
   ``send()`` of a body raises :class:`ClientDisconnected` (an ``OSError``, as the spec asks).
   A ``receive()`` already waiting returns first: the app's disconnect listener hears it before
   its stream's next ``send()`` raises, whichever of its tasks the loop runs first.
5. ``Expect: 100-continue`` is answered when the app first asks for the body.
6. The connection moves on when the response is complete, not when the app returns: the next
   request on it is served while the app still runs its background work (Starlette's
   ``BackgroundTasks``), as uvicorn does. At shutdown the drain waits for such work as for any
   request whose client has gone (``ServerState.orphaned``).
7. A streamed response still going when the server stops gets ``STREAM_SHUTDOWN_GRACE`` seconds;
   then the server ends it (``HttpProtocol._end_stream``: the last chunk, or the close, ends the
   body) and the app is told as in rule 4: ``receive()`` returns ``http.disconnect`` and ``send()``
   raises :class:`ClientDisconnected`. An app still running a moment later is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from runtime.body import DEFAULT_BUFFER_SIZE, BodyChannel
from runtime.datastructures import split_target
from runtime.exceptions import BadRequest
from runtime.hosting import ASGIApp, ASGIHosted, Message
from runtime.log import error_logger, server_logger
from runtime.proto import h1
from runtime.proto.h1 import Reject, RequestHead
from runtime.server.asgi_messages import ClientDisconnected, response_fields
from runtime.server.http import HttpProtocol, ServerState, _Cycle, _Stream

if TYPE_CHECKING:
    from runtime.proxy import TrustedProxies

__all__ = ["ASGIHttpProtocol", "ClientDisconnected", "host_asgi"]

_SPEC = "2.3"  # see the module docstring


def host_asgi(state: ServerState, host: ASGIHosted) -> None:
    """Serve ``host`` on the connections of ``state``."""
    state.protocol_class = ASGIHttpProtocol


class _Exchange:
    """One request's ASGI side: its body channel, disconnect waiter and response progress.

    Stands where ``HttpProtocol`` keeps a ``Request`` (``cycle.request``): the connection feeds
    ``body_channel`` and calls ``no_body()`` exactly as it does for a vivace request.
    """

    __slots__ = (
        "_channel",
        "_no_body",
        "body_sent",
        "complete",
        "disconnected",
        "heard",
        "high_water",
        "listeners",
        "reading",
        "started",
        "waiter",
    )

    def __init__(self, high_water: int) -> None:
        self._channel: BodyChannel | None = None
        self._no_body = False
        self.high_water = high_water
        self.body_sent = False  # the last http.request message went to the app
        self.started = False  # http.response.start received
        self.complete = False  # the last http.response.body message was written
        self.disconnected = False
        self.reading = False  # a receive() is reading the body now
        self.waiter: asyncio.Future[None] | None = None
        self.listeners = 0  # receive() calls waiting on ``waiter``
        self.heard: asyncio.Future[None] | None = None  # resolved when the last one returns

    @property
    def body_channel(self) -> BodyChannel:
        channel = self._channel
        if channel is None:
            channel = self._channel = BodyChannel(self.high_water)
            if self._no_body:
                channel.feed_eof()
        return channel

    def no_body(self) -> None:
        self._no_body = True
        if self._channel is not None:
            self._channel.feed_eof()

    def over(self) -> bool:
        """The client has gone or the response is complete: ``receive()`` says disconnect."""
        return self.disconnected or self.complete

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Wait for ``wake()`` as one of the receive() calls listening (each shielded: one
        caller cancelled, as Starlette's is_disconnected() does, leaves the others waiting)."""
        waiter = self.waiter
        if waiter is None or waiter.done():
            waiter = self.waiter = asyncio.get_running_loop().create_future()
        self.listeners += 1
        try:
            await asyncio.shield(waiter)
        finally:
            self.listeners -= 1
            heard = self.heard
            if not self.listeners and heard is not None and not heard.done():
                heard.set_result(None)

    async def told(self) -> None:
        """Return once every receive() listening has returned (``http.disconnect``, after
        ``wake()``): a send() that raises for the disconnect lets them hear it first."""
        if self.listeners:
            heard = self.heard
            if heard is None or heard.done():
                heard = self.heard = asyncio.get_running_loop().create_future()
            await heard


def _proxies(host: ASGIHosted) -> TrustedProxies:
    from runtime.proxy import trusted_proxies  # only behind a proxy (--proxy-headers)

    return trusted_proxies(host.config.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))


class ASGIHttpProtocol(HttpProtocol):
    """One HTTP/1.1 connection to an ASGI app (see the module docstring)."""

    connection_class = h1.LowerNamesConnection

    __slots__ = (
        "_asgi",
        "_buffer",
        "_client",
        "_context",
        "_host",
        "_proxies",
        "_root_path",
        "_scheme",
        "_server",
        "_state",
        "_trailing",
    )

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        host = cast(ASGIHosted, state.app)
        self._host = host
        self._asgi: ASGIApp = host.asgi
        self._root_path = host.root_path
        self._state = host.lifespan_state  # set before the server accepts connections
        self._buffer = int(host.config.get("REQUEST_BUFFER_SIZE", DEFAULT_BUFFER_SIZE))
        self._scheme = "http"
        self._client: tuple[str, int] | None = None
        self._server: tuple[str, int | None] | None = None
        self._trailing: asyncio.Task[None] | None = None  # an answered request's app, running on
        self._context = contextvars.copy_context()  # what a request's task starts from
        # --proxy-headers (issue 15): client and scheme from a trusted proxy's headers
        self._proxies = _proxies(host) if host.config.get("PROXY_HEADERS") else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        info = self.conn_info if self.state.connections and self in self.state.connections else None
        if info is None:
            return
        if info.unix is not None:
            self._server = (info.unix, None)
        else:
            self._client = (info.client_ip, info.client_port)
            self._server = (info.server_ip, info.server_port)
        if info.ssl:
            self._scheme = "https"

    def connection_lost(self, exc: Exception | None) -> None:
        self._keep_trailing()
        super().connection_lost(exc)

    def abort(self) -> asyncio.Task[None] | None:
        # the drain's deadline passed with the connection still open: its answered request's app
        # is waited for (then cancelled) with the other orphans, now, not when the loop gets to
        # connection_lost (after the drain's wait)
        self._keep_trailing()
        return super().abort()

    def _keep_trailing(self) -> None:
        trailing = self._trailing
        if trailing is not None and not trailing.done():
            self.state.outlives_connection(trailing)  # the drain waits for it (rule 6)
        self._trailing = None

    def _answer_lost(self, cycle: _Cycle) -> None:
        # the app is told (rule 4: http.disconnect, a raising send), never cancelled
        for item in (cycle, *self._pipeline):
            if isinstance(item, _Cycle) and isinstance(item.request, _Exchange):
                item.request.disconnected = True
                item.request.wake()

    # -- requests --------------------------------------------------------------------------------

    def _on_head(self, head: RequestHead) -> None:
        # no Request (nor its Headers) for an ASGI app: the scope is built from the head
        self._accept(_Cycle(head, _Exchange(self._buffer)))

    def _scope(self, head: RequestHead) -> dict[str, Any]:
        target = head.target
        if target[0] != 47 or 35 in target:  # not "/...", or a "#": b"x" in is slower
            raw_path, query = split_target(target)  # absolute form, a fragment
        else:
            raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        root = self._root_path
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": _SPEC},
            "http_version": head.version,
            "server": self._server,
            "client": self._client,
            "scheme": self._scheme,
            "method": head.method,
            "root_path": root,
            "path": root + path,
            "raw_path": root.encode("latin-1") + raw_path if root else raw_path,
            "query_string": query,
            "headers": head.headers,  # lowercased by the parser (LowerNamesConnection)
        }
        state = self._state
        if state is not None:
            scope["state"] = state.copy()
        if self._proxies is not None:
            self._proxies.apply_to_scope(scope)
        return scope

    async def _run(self, cycle: _Cycle) -> None:
        head = cycle.head
        try:
            if cycle.upgrade is not None:
                from runtime.server.asgi_ws import serve_websocket

                if await serve_websocket(self, cycle):
                    return
            await self._exchange(cycle)
        except asyncio.CancelledError:
            return  # connection timed out or the server is stopping; the canceller cleans up
        except Exception:  # pragma: no cover - a bug of ours, not of the app
            error_logger.exception("Error while serving %s %r", head.method, head.target)
            if self._cycle is not cycle:
                return  # answered already: the connection has moved on
            if not cycle.response_started and not self.transport.is_closing():
                self._send_reject(Reject(500, "the server failed while answering"))
            else:
                self.transport.abort()
        if self._cycle is cycle:  # not answered while the app ran (rule 6)
            self._answered(cycle, False)
        elif self._trailing is cycle.task:
            self._trailing = None  # answered before, and now its app is done

    def _answered(self, cycle: _Cycle, app_running: bool) -> None:
        """``cycle``'s response is complete, or failed: log it and move on to the next request.
        When the app runs on (rule 6), ``_trailing`` keeps its task for the drain."""
        if app_running:
            if self._trailing is not None:  # the app of an earlier request still runs
                self.state.outlives_connection(self._trailing)
            self._trailing = cycle.task
        if self.state.access_log:
            self._access_log(cycle)
        if not cycle.body_done:
            # the app answered without reading the whole body: drop the rest of it
            cycle.discard = True
            with contextlib.suppress(Exception):
                cycle.request.body_channel.feed_error(
                    BadRequest("the response was sent before the body was read")
                )
            self.flow.resume_reading("body")
        if app_running and self._pipeline:
            # this runs in the app's send(): the next request's task starts in the connection's
            # context, not in a copy of the context variables the app set (a request id, a span)
            self._context.run(self._next)
        else:
            self._next()

    async def _exchange(self, cycle: _Cycle) -> None:
        """Run the app for one request (rules 1-5 of the module docstring)."""
        head = cycle.head
        exchange: _Exchange = cycle.request
        transport = self.transport
        flow = self.flow
        keep_alive = head.keep_alive
        status = 0
        fields = b""  # the app's header lines, serialised
        length: int | None = None  # the app's Content-Length
        sent = 0  # body bytes of a streamed response
        chunked = False
        send_body = head.method != "HEAD"
        http10 = head.version == "1.0"  # HTTP/1.1 implies keep-alive: only 1.0 is told
        asked = False
        stream: _Stream | None = None  # this response's, once its head is written

        async def receive() -> Message:
            nonlocal asked
            waited = False
            while not exchange.body_sent:
                if exchange.disconnected or exchange.complete:
                    return {"type": "http.disconnect"}
                if not head.has_body:
                    exchange.body_sent = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                if exchange.reading:
                    # another receive() is reading the body (Starlette's disconnect listener
                    # beside a stream that reads the request): they take turns, each chunk goes
                    # to one of them, as under uvicorn
                    await exchange.wait()
                    waited = True
                    continue
                if not asked:
                    asked = True
                    if (
                        head.expect_continue
                        and not cycle.body_done
                        and head.version == "1.1"
                        and not cycle.response_started
                        and not transport.is_closing()
                    ):
                        transport.write(h1.CONTINUE)
                channel = exchange.body_channel
                exchange.reading = True
                try:
                    chunk = await channel.read()
                except Exception:
                    # the client went away, the body broke a limit or timed out
                    exchange.disconnected = True
                    return {"type": "http.disconnect"}
                finally:
                    exchange.reading = False
                    if exchange.waiter is not None:
                        exchange.wake()  # the next reader's turn, or the disconnect
                if chunk is None:
                    exchange.body_sent = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                more = not channel.at_eof
                if not more:
                    exchange.body_sent = True
                return {"type": "http.request", "body": chunk, "more_body": more}
            if waited and not exchange.over():
                # the other reader took the body's end while this one waited for its turn: this
                # one is told the body has ended too (as uvicorn tells every waiting receive())
                return {"type": "http.request", "body": b"", "more_body": False}
            while not exchange.over():
                await exchange.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, fields, length, sent, chunked, keep_alive, send_body, stream
            kind = message.get("type")
            if not exchange.started:
                if kind != "http.response.start":
                    raise RuntimeError(
                        f"Expected ASGI message 'http.response.start', but got {kind!r}"
                    )
                given = message.get("status")
                if isinstance(given, bool) or not isinstance(given, int):
                    raise RuntimeError(f"ASGI response status must be an int, got {given!r}")
                status = given
                if not 100 <= status <= 999:
                    raise RuntimeError(f"ASGI response status {status} is not a valid status")
                fields, length, close = response_fields(message.get("headers", ()))
                if close:
                    keep_alive = False
                exchange.started = True
                return
            if exchange.complete:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} after the response ended")
            if kind != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got {kind!r}")
            body = message.get("body", b"")
            if body.__class__ is not bytes:
                if not isinstance(body, (bytearray, memoryview)):
                    raise RuntimeError(
                        f"ASGI response body must be bytes, got {type(body).__name__}"
                    )
                body = bytes(body)
            more = message.get("more_body", False)
            if exchange.disconnected or transport.is_closing():
                if not more and not body and cycle.response_started:
                    # the last, empty message of a body the client has had (its Content-Length
                    # met) or has left: nothing is lost. A WSGI app's thread sends it after
                    # a2wsgi's last chunk, often once a "Connection: close" client has gone
                    if stream is not None:
                        self._stream_done(stream)
                    self._finish(exchange)
                    self._answered(cycle, True)
                    return
                if exchange.disconnected:
                    # a receive() waiting (the app's disconnect listener), woken, hears it
                    # before this send raises, whichever of the app's tasks runs first (rule 4)
                    await exchange.told()
                raise ClientDisconnected("the client closed the connection")
            if not cycle.response_started:
                keep = keep_alive and not self._close_after and not self.state.shutting_down
                bodyless = not send_body or status < 200 or status == 204 or status == 304
                if not more:  # the whole response in one write
                    if length is not None and length != len(body) and not bodyless:
                        # nothing is written yet: the client gets a 500 (rule 2)
                        raise RuntimeError(
                            f"Response content length {len(body)} does not match its "
                            f"Content-Length header ({length})"
                        )
                    cycle.status = status
                    cycle.response_started = True
                    size: int | None = len(body) if length is None else length
                    if length is None and not send_body and not body:
                        # HEAD, and no body to measure (Werkzeug answers HEAD with none): the
                        # length a GET would have is unknown, so none is announced (as uvicorn)
                        size = None
                    data = h1.fields_head(
                        status,
                        fields,
                        content_length=size,
                        keep_alive=keep,
                        chunked=False,
                        announce_keep_alive=http10,
                    )
                    if not bodyless:
                        data += body
                    self._write(cycle, data)
                    if not keep:
                        self._closes()
                    exchange.complete = True  # _finish(), inline: once per request
                    if exchange.waiter is not None:
                        exchange.wake()
                    self._answered(cycle, True)
                    return
                cycle.status = status
                cycle.response_started = True
                # HTTP/1.0 has no chunks: the body ends with the connection; a response without a
                # body (HEAD, 204, 304) announces no framing at all, as uvicorn's
                raw = length is None and head.version == "1.0" and not bodyless
                if raw:
                    keep = False
                chunked = length is None and not raw and not bodyless
                self._write(
                    cycle,
                    h1.fields_head(
                        status,
                        fields,
                        content_length=length,
                        keep_alive=keep,
                        chunked=chunked,
                        announce_keep_alive=http10,
                    ),
                )
                if not keep:
                    self._closes()
                if bodyless:
                    send_body = False
                stream = self._stream_begins(cycle, chunked)  # a grace at shutdown (rule 7)
            if send_body and body:
                sent += len(body)
                if length is not None and sent > length:
                    raise RuntimeError("Response content longer than its Content-Length header")
                self._write(cycle, h1.chunk(body) if chunked else body)
            if not more:
                if send_body and length is not None and sent < length:
                    raise RuntimeError("Response content shorter than its Content-Length header")
                if chunked:
                    self._write(cycle, h1.LAST_CHUNK)
                if stream is not None:
                    self._stream_done(stream)
                self._finish(exchange)
                self._answered(cycle, True)
                return
            await flow.drain()

        try:
            try:
                await self._asgi(self._scope(head), receive, send)
            finally:
                if stream is not None:
                    self._stream_done(stream)
        except ClientDisconnected:
            server_logger.debug("The client went away during %s %r", head.method, head.target)
            self._cut_short(cycle, exchange)
            return
        except Exception:
            if exchange.disconnected and cycle.response_started:
                self._cut_short(cycle, exchange)
                return
            error_logger.exception("Exception in ASGI application %s", self._host.name)
            self._fail(cycle, exchange)
            return
        if exchange.complete:
            return
        if exchange.disconnected:
            self._cut_short(cycle, exchange)
            return
        if not exchange.started or not cycle.response_started:
            error_logger.error(
                "ASGI application %s returned without sending a response to %s %s",
                self._host.name,
                head.method,
                head.target.decode("latin-1"),
            )
        else:
            error_logger.error(
                "ASGI application %s returned without completing the response to %s %s",
                self._host.name,
                head.method,
                head.target.decode("latin-1"),
            )
        self._fail(cycle, exchange)

    def _cut_short(self, cycle: _Cycle, exchange: _Exchange) -> None:
        """The app ended after a disconnect (rule 4). A response it began and did not complete
        cannot be finished, so its connection can carry no other request: when the connection
        is still open (the "disconnect" was the request body breaking a limit), it is dropped."""
        if cycle.response_started and not exchange.complete and not self.transport.is_closing():
            self.transport.abort()

    def _stop_producer(self, cycle: _Cycle) -> None:
        """The stream was ended at shutdown: the app is told the client has gone (rule 7)."""
        exchange = cycle.request
        if isinstance(exchange, _Exchange):
            exchange.disconnected = True
            exchange.wake()

    def _finish(self, exchange: _Exchange) -> None:
        exchange.complete = True
        exchange.wake()

    def _fail(self, cycle: _Cycle, exchange: _Exchange) -> None:
        """The app failed: a 500 when nothing was written, else the connection is cut. After a
        complete response (a failing background task) the response stands (rule 2)."""
        if exchange.complete:
            return
        exchange.complete = True
        exchange.wake()
        if self.transport.is_closing():
            return
        if not cycle.response_started:
            cycle.status = 500
            cycle.response_started = True
            self._close_after = True
            self._send_reject(Reject(500, "the application failed while answering"))
        else:
            self.transport.abort()
