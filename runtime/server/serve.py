"""Serving an app: :class:`Server` (one worker's life) and :func:`serve_single` (one process).

``Server.run()`` follows lifecycle.md section 3.2::

    app.finalize() -> before_server_start -> on_ack() -> start accepting -> after_server_start
    -> "Starting worker [pid]" -> wait for stop() -> "Stopping worker [pid]"
    -> before_server_stop -> drain (STREAM_SHUTDOWN_GRACE for streaming responses,
    GRACEFUL_SHUTDOWN_TIMEOUT for the rest) -> after_server_stop
    -> "Worker complete [pid]"

SIGINT/SIGTERM handlers are installed on the loop while the server runs (main thread only) and the
previous handlers are put back afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl as ssl_module
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, cast

from runtime.hosting import ASGIHosted, Hosted, ServeStage, docs_path
from runtime.log import access_logger, configure, error_logger, logger, server_logger
from runtime.server.http import STREAM_END_LINGER, ServerState, _seconds
from runtime.server.sockets import BindError, bind, display_url, remove_unix_socket, unix_path

__all__ = ["Server", "new_event_loop", "serve_single"]

#: ``await console(host, None, url=...)``: the console of ``--single-process`` (repl.ConsoleHook)
Console = Callable[..., Awaitable[int | None]]


class Server:
    """Serve ``app`` on already bound, listening ``sockets`` until :meth:`stop` is called."""

    def __init__(
        self,
        app: Hosted,
        sockets: list[socket.socket],
        *,
        on_ack: Callable[[], None] | None = None,
        access_log: bool | None = None,
        install_signals: bool = True,
        console: Console | None = None,
        backlog: int | None = None,
        second_signal_forces: bool = False,
        sole_listener: bool = False,
        ssl: ssl_module.SSLContext | None = None,
        health_path: str | None = None,
    ) -> None:
        self.app = app
        #: ``--health-path``: answered 200 by the server itself while it serves (503 draining)
        self.health_path = health_path
        #: TLS (``--tls-cert``/``--auto-tls``): every connection is wrapped, HTTPS and WSS
        self.ssl = ssl
        self.sockets = sockets
        self.on_ack = on_ack
        self.access_log = access_log
        self.install_signals = install_signals
        self.second_signal_forces = second_signal_forces
        #: no other process listens on ``sockets`` (one process serving): at the drain the
        #: connections queued in them are accepted and answered, as nobody else will
        self.sole_listener = sole_listener
        self._signalled = False
        self.console = console
        self.backlog = int(app.config.get("BACKLOG", 100)) if backlog is None else backlog
        self.console_result: int | None = None
        self.started = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self._force: asyncio.Event | None = None
        self._phase_task: asyncio.Future[object] | None = None
        self._step_cancelled = False
        self._servers: list[asyncio.base_events.Server] = []
        self.state: ServerState | None = None

    def stop(self, *, force: bool = False) -> None:
        """Ask for a graceful stop; safe from a signal handler and from other threads.

        ``force=True`` while connections are draining stops waiting for them (they are aborted).
        """
        loop, stop = self._loop, self._stop
        if force and self._stop_requested:
            stop = self._force
        self._stop_requested = True
        if loop is None or stop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            stop.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop.set)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        app = self.app
        app.finalize()
        await app.serve_stage(ServeStage.BEFORE_START)
        if self.on_ack is not None:
            self.on_ack()
        state = ServerState(app, access_log=self.access_log)
        state.tls = self.ssl is not None
        if self.health_path is not None:
            _answer_health(app, self.health_path, state)
        if app.interface != "vivace":
            from runtime.server.asgi_http import host_asgi

            host_asgi(state, cast(ASGIHosted, app))
        self.state = state
        state.start(loop)
        console_task: asyncio.Task[int | None] | None = None
        try:
            with self._signals(loop):
                for sock in self.sockets:
                    # Closing the server at the drain closes this descriptor (uvloop: libuv's
                    # close(2); asyncio: sock.close()), never shutdown(2): a worker's descriptor
                    # is its own (the fork server passed a duplicate), so the listening socket
                    # and the connections queued in it live on for the other and next workers.
                    self._servers.append(
                        await loop.create_server(
                            self._factory(state), sock=sock, backlog=self.backlog, ssl=self.ssl
                        )
                    )
                self.started.set()
                await app.serve_stage(ServeStage.AFTER_START)
                pid = os.getpid()
                logger.info("Starting worker [%d]", pid)
                if self.console is not None:
                    console_task = loop.create_task(self._run_console(self.console))
                await self._stop.wait()
                logger.info("Stopping worker [%d]", pid)
                await self._phase(app.serve_stage(ServeStage.BEFORE_STOP))
                await self._drain(state)  # a second signal sets _force: it stops waiting
                if console_task is not None and not console_task.done():
                    console_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await console_task
                await self._phase(app.serve_stage(ServeStage.AFTER_STOP))
                logger.info("Worker complete [%d]", pid)
        finally:
            state.stop()
            for server in self._servers:
                server.close()
            self._servers.clear()

    async def _phase(self, step: Coroutine[Any, Any, object]) -> None:
        """Run one teardown listener step; a further Ctrl+C cancels it and teardown moves on."""
        task = asyncio.ensure_future(step)
        self._phase_task = task
        try:
            await task
        except asyncio.CancelledError:
            if not self._step_cancelled:
                raise  # the server itself is being cancelled, not just this step
            self._step_cancelled = False
            logger.warning("Shutdown interrupted: a teardown step was cancelled")
            if self.state is not None:
                self._abort_connections(self.state)
        finally:
            self._phase_task = None

    def _abort_connections(self, state: ServerState) -> None:
        for server in self._servers:
            server.close()
        for conn in list(state.connections):
            conn.abort()

    async def _run_console(self, console: Console) -> int | None:
        try:
            url = display_url(self.sockets[0]) if self.sockets else None
            if url is not None and self.ssl is not None and url.startswith("http:"):
                url = "https" + url[4:]
            result = await console(self.app, None, url=url)
        except asyncio.CancelledError:
            raise
        except Exception:
            error_logger.exception("The console failed")
            result = 1
        self.console_result = result
        self.stop()
        return result

    async def _drain(self, state: ServerState) -> None:
        """Stop accepting, answer what was accepted, wait for the connections to close.

        Closing the servers stops this worker's accepting only: a connection not accepted yet
        stays queued in the shared listening socket for the other (or next) worker. Every
        connection the loop did accept (``ServerState.protocol_factory`` counts it) is served:
        the requests it carries are answered with ``Connection: close``.

        A streaming response gets ``STREAM_SHUTDOWN_GRACE`` seconds, then ends with its terminator
        and its connection closes (``HttpProtocol.shutdown``); its handler is cancelled (an ASGI
        app is told ``http.disconnect`` and cancelled if it runs on a moment later). A request
        whose client has gone while its app still runs is waited for too. Requests still running
        after ``GRACEFUL_SHUTDOWN_TIMEOUT`` are cancelled and their connections aborted.
        """
        accepting = self._accept_queued(state) if self.sole_listener else []
        for server in self._servers:
            server.close()  # stop accepting
        state.shutting_down = True
        await asyncio.sleep(0)  # accepts the asyncio loop had begun reach protocol_factory
        if accepting:
            await asyncio.gather(*accepting, return_exceptions=True)
        for conn in list(state.connections):
            conn.shutdown()
        timeout = _seconds(self.app.config, "GRACEFUL_SHUTDOWN_TIMEOUT")
        loop = asyncio.get_running_loop()
        deadline = None if timeout == float("inf") else loop.time() + timeout
        if state.connections:
            assert self._force is not None
            waits = [
                asyncio.ensure_future(state.idle_or_gone.wait()),
                asyncio.ensure_future(self._force.wait()),
            ]
            await asyncio.wait(
                waits,
                timeout=None if timeout == float("inf") else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiter in waits:
                waiter.cancel()
            if self._force.is_set():
                server_logger.info("Stopping now: %d connections aborted", len(state.connections))
        tasks = [t for t in (conn.abort() for conn in list(state.connections)) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await self._wait_orphaned(state, deadline)
        await _finish_ended_streams(state)
        await _cancel_background_tasks(self.app)
        await asyncio.sleep(0)  # let aborted connections run connection_lost

    async def _wait_orphaned(self, state: ServerState, deadline: float | None) -> None:
        """Requests whose client has gone while their app still runs (``ServerState.orphaned``)
        are waited for until the graceful timeout's deadline, as uvicorn waits for its tasks,
        then cancelled. Stopping the loop under them would leave a WSGI app's thread waiting
        forever on the loop, and the worker hanging in its exit."""
        # (a stream the server ended at shutdown has its own short linger: _finish_ended_streams)
        ended = state.ended_streams
        running = [task for task in state.orphaned if not task.done() and task not in ended]
        if not running:
            return
        assert self._force is not None
        if not self._force.is_set():
            loop = asyncio.get_running_loop()
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            waits = [
                asyncio.ensure_future(asyncio.wait(running, timeout=remaining)),
                asyncio.ensure_future(self._force.wait()),
            ]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
        left = [task for task in running if not task.done()]
        for task in left:
            task.cancel()
        if left:
            server_logger.info("Stopping now: %d requests cancelled", len(left))
            await asyncio.wait(left, timeout=5.0)

    def _factory(self, state: ServerState) -> Callable[[], asyncio.Protocol]:
        """The protocol factory of the sockets. Under TLS the loop makes the protocol at accept
        but calls its ``connection_made`` only after the handshake, and never calls its
        ``connection_lost`` when the handshake fails: counted at accept, such a connection would
        stay in ``state.connections`` for good (and every drain would wait for it), so it is
        counted from ``connection_made``."""
        if self.ssl is None:
            return state.protocol_factory
        return lambda: state.protocol_class(state)

    def _accept_queued(self, state: ServerState) -> list[asyncio.Task[Any]]:
        """Accept every connection queued in the sockets: closing the last descriptor of a
        listening socket would reset them (the clients have connected and sent their requests)."""
        loop = self._loop
        assert loop is not None
        tasks: list[asyncio.Task[Any]] = []
        for sock in self.sockets:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:  # BlockingIOError: the queue is empty
                    break
                conn.setblocking(False)
                accept = loop.connect_accepted_socket(self._factory(state), conn, ssl=self.ssl)
                tasks.append(loop.create_task(accept))
        return tasks

    def _on_signal(self) -> None:
        force = self._signalled and self.second_signal_forces
        self._signalled = True
        if force:
            # A second Ctrl+C forces the stop: teardown listeners still running are cancelled and
            # open connections aborted (console.md section 6).
            logger.info("Second signal: stopping now")
            step = self._phase_task
            if step is not None and not step.done():
                self._step_cancelled = True  # _phase tells this from the server's cancellation
                step.cancel()
        self.stop(force=force)

    @contextlib.contextmanager
    def _signals(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """Install SIGINT/SIGTERM handlers for the run; put the previous ones back afterwards."""
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        installed: list[tuple[signal.Signals, Any]] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, self._on_signal)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                continue
            installed.append((signum, previous))
        try:
            yield
        finally:
            for signum, previous in installed:
                loop.remove_signal_handler(signum)
                with contextlib.suppress(TypeError, ValueError):
                    signal.signal(signum, previous)


async def _finish_ended_streams(state: ServerState) -> None:
    """Let the handlers of streams ended at shutdown return; cancel those that do not soon."""
    running = list(state.ended_streams)
    if not running:
        return
    _, pending = await asyncio.wait(running, timeout=STREAM_END_LINGER)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=STREAM_END_LINGER)


async def _cancel_background_tasks(app: Hosted) -> None:
    """Cancel the app's background tasks (``app.add_task``) after the drain."""
    try:
        await app.cancel_tasks()
    except Exception:
        error_logger.exception("Error while cancelling background tasks")


HEALTH_BODY = b"ok"
DRAINING_BODY = b"stopping"


def _answer_health(app: Hosted, path: str, state: ServerState) -> None:
    """``--health-path``: a ``GET``/``HEAD`` of ``path`` is answered by the server before the
    app sees it (no routing, middleware or handler): 200 ``ok`` once the worker serves, 503
    ``stopping`` while it drains, so a load balancer or Kubernetes stops sending it requests."""
    if app.interface == "vivace":
        from runtime.response import text

        handle = cast(Any, app).handle

        async def handle_or_health(request: Any) -> Any:
            if request.path == path and request.method in ("GET", "HEAD"):
                if state.shutting_down:
                    return text(DRAINING_BODY.decode(), status=503)
                return text(HEALTH_BODY.decode())
            return await handle(request)

        setattr(app, "handle", handle_or_health)  # noqa: B010 - this worker's app only
        return
    host = cast(ASGIHosted, app)
    asgi = host.asgi

    async def asgi_or_health(scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == host.root_path + path
            and scope["method"] in ("GET", "HEAD")
        ):
            draining = state.shutting_down
            body = DRAINING_BODY if draining else HEALTH_BODY
            await send(
                {
                    "type": "http.response.start",
                    "status": 503 if draining else 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await asgi(scope, receive, send)

    setattr(host, "asgi", asgi_or_health)  # noqa: B010 - the host's callable, in this worker


@contextlib.contextmanager
def _start_up_signals() -> Iterator[None]:
    """SIGINT and SIGTERM honoured before the server's own handlers are in place (while the
    start-up listeners or the app's lifespan start-up run; lifecycle.md section 10): SIGINT is
    :func:`_run_on`'s (``asyncio.Runner``'s) cancellation of the start-up, also when the parent
    left SIGINT ignored (a shell does for a background job: ``vivace ... &`` then ``kill -INT``),
    and SIGTERM does the same instead of killing the process mid-start. The previous dispositions
    are put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigint = signal.getsignal(signal.SIGINT)
    sigterm = signal.getsignal(signal.SIGTERM)
    if sigint is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if sigterm in (signal.SIG_DFL, signal.SIG_IGN):
        signal.signal(signal.SIGTERM, _as_sigint)
    try:
        yield
    finally:
        if sigint is signal.SIG_IGN:
            signal.signal(signal.SIGINT, sigint)
        if sigterm in (signal.SIG_DFL, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, sigterm)


def _as_sigint(signum: int, frame: Any) -> None:
    """SIGTERM handled as SIGINT is at that moment (the runner's handler: cancel the start-up; a
    second one forces)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)


def _run_on(loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.Runner(loop_factory=...).run(main)``: Ctrl+C cancels ``main`` and raises
    ``KeyboardInterrupt`` once it ended; the loop is closed after."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            runner.run(main)
        return
    _run_on_310(loop, main)  # pragma: no cover - Python 3.10


def _run_on_310(loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, None]) -> None:
    """What ``asyncio.Runner`` (Python 3.11) does for :func:`_run_on`, on Python 3.10."""
    asyncio.set_event_loop(loop)
    task = loop.create_task(main)
    interrupted = False
    previous = None

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        loop.call_soon_threadsafe(task.cancel)

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if previous is not None and signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, previous)
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for left in pending:
                left.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else the default asyncio loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def serve_single(
    app: Hosted,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    unix: str | None = None,
    debug: bool = False,
    access_log: bool | None = None,
    motd: bool = True,
    backlog: int = 100,
    console: Console | None = None,
    configure_logging: bool = True,
    ssl: ssl_module.SSLContext | None = None,
    health_path: str | None = None,
) -> int:
    """Serve ``app`` in this process until SIGINT/SIGTERM (or the console returns).

    Returns 0 after a normal stop, 1 when the socket cannot be bound (one line on stderr), or the
    console's result. A listener that raises during start-up propagates (lifecycle.md section 8).
    """
    if debug:
        app.config.DEBUG = True  # what App.debug reads
    effective_access = debug if access_log is None else access_log
    app.config.ACCESS_LOG = effective_access
    if configure_logging:  # the entry point did it when the launcher calls
        configure(debug=debug, verbosity=int(app.config.get("VERBOSITY", 0)))
    if effective_access:
        access_logger.disabled = False
    try:
        sock = bind(host, port, unix, backlog)
    except BindError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    socket_file = unix_path(sock)
    if motd and app.config.get("MOTD", True):
        url = display_url(sock)
        url = "https" + url[4:] if ssl and url.startswith("http:") else url
        logger.info("Goin' Fast @ %s", url)
        docs = docs_path(app)
        if docs is not None and socket_file is None:
            logger.info("API docs @ %s%s", url, docs)
    server = Server(
        app,
        [sock],
        access_log=effective_access,
        console=console,
        backlog=backlog,
        second_signal_forces=True,  # Ctrl+C twice: no manager here to send a second signal
        sole_listener=True,
        ssl=ssl,
        health_path=health_path,
    )
    loop = new_event_loop()
    if debug:
        loop.set_debug(True)
    try:
        with _start_up_signals():
            _run_on(loop, server.run())
    except KeyboardInterrupt:
        # Ctrl+C during before_server_start, before the server's own handlers are installed:
        # the runner cancelled the start-up (each stage cleans up after itself); a normal stop
        logger.info("Start-up interrupted")
    finally:
        sock.close()  # (the loop may have closed it already)
        remove_unix_socket(socket_file)
    server_logger.debug("Server stopped")
    if console is not None:
        return server.console_result or 0
    return 0
