"""``serve_multiprocess``: the main process of a multi-process server (lifecycle.md section 3.1).

The main process runs an asyncio loop (the console shares it). OS signal handlers only record the
signal and wake the loop; the first SIGINT/SIGTERM starts a graceful shutdown at any moment of
start-up or serving, a second one kills every child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from runtime.hosting import Hosted, MainStage, docs_path
from runtime.options import RunOptions
from runtime.settings import Settings
from runtime.supervisor import preload
from runtime.supervisor.control import Control
from runtime.supervisor.manager import WorkerManager
from runtime.supervisor.output import OutputHub
from runtime.supervisor.process import make_context

logger = logging.getLogger("vivace.root")
sup_logger = logging.getLogger("vivace.supervisor")

Console = Callable[[Hosted, Control], Awaitable[int | None]]


def _bind(options: RunOptions) -> socket.socket:
    from runtime.server import sockets

    return sockets.bind(options.host, options.port, options.unix, options.backlog)


def _display_url(sock: socket.socket) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"http://unix:{name}"
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"http://{host}:{name[1]}"


class _Signals:
    """Signal handlers that only record and wake; a second signal kills every child."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.received: str | None = None
        self.manager: WorkerManager | None = None
        self._previous: dict[int, Any] = {}

    def stopping(self) -> bool:
        return self.received is not None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            sup_logger.warning("Shutdown interrupted. Killing.")
            if self.manager is not None:
                self.manager.kill_all()
            else:
                raise KeyboardInterrupt
            return
        self.received = name
        sup_logger.info("Received signal %s. Shutting down.", name)
        if self.manager is not None:
            self.loop.call_soon_threadsafe(self.manager.request_stop, 0)


def serve_multiprocess(
    app: Hosted, options: RunOptions, settings: Settings, *, console: Console | None = None
) -> int:
    """Serve ``app`` from a main process supervising ``options.workers`` workers; exit code.

    ``settings`` were resolved by the launcher; every child receives them as they are.
    """
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    ctx = make_context(settings.start_method)
    if ctx.get_start_method() == "forkserver":
        # the app is loaded: its libraries go to the fork server, which starts later
        count = preload.hand_over()
        sup_logger.debug("The fork server preloads %d library modules", count)
    loop = asyncio.new_event_loop()
    signals = _Signals(loop)
    signals.install()
    sockets: list[socket.socket] = []
    code = 1
    main_started = False
    bind_failed = False
    try:
        motd = settings.motd
        try:
            main_started = True
            app.main_stage(MainStage.START, loop)
            if signals.stopping():
                return 0
            try:
                sockets.append(_bind(options))
            except OSError as exc:
                # one clear line, as in single-process mode: no banner, no "Server Stopped"
                logger.error("%s", exc)
                bind_failed = True
                return 1
            url = _display_url(sockets[0])
            if settings.tls_cert is not None:  # TLS (issue 15): every worker serves HTTPS/WSS
                url = "https" + url[4:]
            if motd:  # after the bind: a port in use never prints a banner first
                logger.info("Goin' Fast @ %s", url)
                docs = docs_path(app)
                if docs is not None and options.unix is None:
                    logger.info("API docs @ %s%s", url, docs)
            output = OutputHub()
            manager = WorkerManager(
                app,
                options.target,
                sockets,
                ctx,
                loop,
                workers=options.workers,
                settings=settings,
                output=output,
            )
            if options.auto_reload:
                manager.add_reloader(options.reload_dirs)
            app.attach_process(manager=manager)
            signals.manager = manager
            app.main_stage(MainStage.READY, loop)
            if signals.stopping():
                return 0
        except Exception as exc:
            if isinstance(exc, OSError) and not sockets:
                logger.error("%s", exc)
            else:
                sup_logger.exception("Start-up failed: %s", exc)
            return 1
        control = Control(manager, url)

        def start_console() -> Awaitable[Any]:
            assert console is not None
            return console(app, control)

        early = bool(getattr(console, "opens_early", False))
        code = loop.run_until_complete(manager.run(start_console if console else None, early=early))
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        for sock in sockets:
            sock.close()
        if sockets and options.unix:
            with contextlib.suppress(OSError):
                os.unlink(options.unix)
        if main_started:
            try:
                app.main_stage(MainStage.STOP, loop)
            except Exception:  # pragma: no cover - teardown errors are logged by lifecycle
                sup_logger.exception("main_process_stop failed")
        _close_loop(loop)
        signals.restore()
        if not bind_failed:
            logger.info("Server Stopped")


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
