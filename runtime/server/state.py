"""``ServerState``: what every connection of one server shares.

The app, its settings (limits and timeouts, checked once with a clear error), the open
connections, and the one ticker per server that checks every connection's timeouts (no timer
handle per request) and refreshes the cached ``Date`` header.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.config import stream_shutdown_grace
from runtime.exceptions import ConfigError
from runtime.hosting import Hosted
from runtime.log import server_logger
from runtime.proto import h1
from runtime.server import respond

if TYPE_CHECKING:
    from runtime.server.http import HttpProtocol

__all__ = ["ServerState"]


def _has_signal(app: Hosted, name: str) -> bool:
    router = getattr(app, "signal_router", None)
    if router is None:
        return False
    try:
        from runtime.signals import Event

        return bool(router.has_handlers(Event(name)))
    except (ImportError, ValueError, AttributeError):
        return False


def _seconds(config: Any, key: str) -> float:
    """A timeout setting in seconds; ``None`` means no limit."""
    value = config.get(key)
    if value is None:
        return float("inf")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(
            f"{key} must be a positive number of seconds (or None for no limit), got {value!r}"
        )
    return float(value)


def _optional_seconds(config: Any, key: str) -> float | None:
    return None if not config.get(key) else _seconds(config, key)


def _size(config: Any, key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive whole number, got {value!r}")
    return value


class ServerState:
    """What every connection of one server shares: the app, settings, open connections."""

    def __init__(self, app: Hosted, *, access_log: bool | None = None) -> None:
        from runtime.request import Request  # the app model; imported when a server is built
        from runtime.response import BaseHTTPResponse

        respond.bind_response_class(BaseHTTPResponse)
        self.app = app
        #: ``App(request_class=...)``: a subclass of ``Request`` the app asked for
        self.request_class: Callable[..., Any] = getattr(app, "request_class", None) or Request
        from runtime.server.http import HttpProtocol  # the connection, defined over this state

        #: the connection class: ``HttpProtocol`` for a vivace ``App``; the ASGI host sets its own
        self.protocol_class: Callable[[ServerState], HttpProtocol] = HttpProtocol
        config = app.config
        self.max_header_size = _size(config, "REQUEST_MAX_HEADER_SIZE")
        self.max_header_count = _size(config, "REQUEST_MAX_HEADER_COUNT")
        self.max_body_size = _size(config, "REQUEST_MAX_SIZE")
        self.keep_alive = bool(config.KEEP_ALIVE)
        self.request_timeout = _seconds(config, "REQUEST_TIMEOUT")
        self.response_timeout = _seconds(config, "RESPONSE_TIMEOUT")
        self.keep_alive_timeout = _seconds(config, "KEEP_ALIVE_TIMEOUT")
        self.ws_max_size: int | None = (
            None if config.WEBSOCKET_MAX_SIZE is None else _size(config, "WEBSOCKET_MAX_SIZE")
        )
        self.ws_ping_interval: float | None = _optional_seconds(config, "WEBSOCKET_PING_INTERVAL")
        self.ws_ping_timeout: float | None = _optional_seconds(config, "WEBSOCKET_PING_TIMEOUT")
        self.access_log = bool(config.ACCESS_LOG) if access_log is None else access_log
        self.tls = False  # the server wraps its connections in TLS (Server(ssl=...), issue 15)
        self.sig_begin = _has_signal(app, "http.lifecycle.begin")
        self.sig_read_head = _has_signal(app, "http.lifecycle.read_head")
        self.sig_send = _has_signal(app, "http.lifecycle.send")
        self.sig_complete = _has_signal(app, "http.lifecycle.complete")
        self.connections: set[HttpProtocol] = set()
        self.tick_interval = max(
            0.02,
            min(
                1.0,
                self.request_timeout / 4,
                self.response_timeout / 4,
                self.keep_alive_timeout / 4,
            ),
        )
        #: seconds a streaming response gets once the server stops (see HttpProtocol.shutdown)
        self.stream_grace = stream_shutdown_grace(
            config.get("STREAM_SHUTDOWN_GRACE"), debug=bool(config.get("DEBUG"))
        )
        #: the tasks of streaming responses ended at shutdown: the drain waits for them briefly
        self.ended_streams: set[asyncio.Task[None]] = set()
        #: request tasks still running after their connection was lost: an ASGI app is told the
        #: client has gone, not cancelled, and may still be finishing its response (a WSGI app's
        #: thread sending its last message after the client read the whole body). The drain waits
        #: for them as for connections (``Server._drain``)
        self.orphaned: set[asyncio.Task[None]] = set()
        self.shutting_down = False
        self._ticker: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle_or_gone = asyncio.Event()

    # ticks: one timer for all connections ---------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ticker = loop.call_later(self.tick_interval, self._tick)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self) -> None:
        assert self._loop is not None
        h1.http_date()
        for conn in list(self.connections):
            try:
                conn.tick(self.tick_interval)
            except Exception:  # pragma: no cover - a bug; never let it stop the ticker
                server_logger.exception("Error in the connection ticker")
        self._ticker = self._loop.call_later(self.tick_interval, self._tick)

    def protocol_factory(self) -> HttpProtocol:
        # The loop calls this when it accepts a connection and connection_made a loop iteration
        # later: counted from here, a connection accepted just before the drain began is one the
        # drain waits for (and answers), not one it forgets while the loop tears down.
        conn = self.protocol_class(self)
        self.connections.add(conn)
        return conn

    def outlives_connection(self, task: asyncio.Task[None]) -> None:
        """``task`` runs on after its connection was lost: the drain waits for it."""
        self.orphaned.add(task)
        task.add_done_callback(self.orphaned.discard)

    def connection_gone(self, conn: HttpProtocol) -> None:
        self.connections.discard(conn)
        if self.shutting_down and not self.connections:
            self.idle_or_gone.set()
