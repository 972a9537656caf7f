"""``do()`` with a vivace app's resources: its four server listeners, run in the console's process.

Workers run ``before_server_start``/``after_server_start`` before they serve, so what the
listeners put on ``app.ctx`` (a pool, a client, a counter) exists there. ``do()`` runs the app in
the console's process (the main process), where no server started: before the first ``do()``
the console runs the two start-up listeners once, on the loop where statements that await run
(so their objects are bound to the loop that uses them), and ``before_server_stop`` then
``after_server_stop`` when the console's process stops (or ``refresh()`` replaces the app). The
shape is ``repl.asgi.InProcessApp``'s lifespan for apps served through ASGI.

In the serving process of ``--single-process`` the server has run them already: nothing runs
twice (the console does not make a ``ServerListeners`` there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.app import App

__all__ = ["ListenersFailed", "ServerListeners", "cancel_on", "wait_unless_forced"]

SHUTDOWN_TIMEOUT = 10.0
FORCED_POLL = 0.05  # how often a teardown wait looks whether the shutdown was forced
CUT_GRACE = 0.5  # a forced shutdown: how long cancelled teardown tasks get to end on their loop


def never() -> bool:
    return False


def wait_unless_forced(
    done: concurrent.futures.Future[Any] | threading.Thread,
    timeout: float,
    forced: Callable[[], bool] = never,
) -> bool:
    """Wait for a future or a thread for up to ``timeout`` s, or until ``forced()`` says the
    shutdown was forced (a second Ctrl+C): False then, and the caller moves on. ``forced`` is
    set from a signal handler, so it is read in slices rather than waited on (a lock taken in
    a signal handler could be held by the code it interrupted)."""
    deadline = time.monotonic() + timeout
    while not forced():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if isinstance(done, threading.Thread):
            done.join(min(FORCED_POLL, remaining))
            if not done.is_alive():
                return True
            continue
        with contextlib.suppress(BaseException):  # an error of its own: it ended all the same
            done.result(min(FORCED_POLL, remaining))
        if done.done():
            return True
    return False


def cancel_on(
    loop: asyncio.AbstractEventLoop, tasks: Callable[[], list[asyncio.Task[Any] | None]]
) -> None:
    """Cancel ``tasks()`` on ``loop`` (from another thread) and give them ``CUT_GRACE`` s to end
    there: a task left pending on a loop that then closes would run its ``finally`` blocks when
    it is garbage-collected, on no loop."""

    async def cut() -> None:
        pending = [task for task in tasks() if task is not None and not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CUT_GRACE)

    if loop.is_closed() or not loop.is_running():
        return
    try:
        future = asyncio.run_coroutine_threadsafe(cut(), loop)
    except RuntimeError:  # closed meanwhile
        return
    with contextlib.suppress(BaseException):
        future.result(CUT_GRACE + 0.5)


class ListenersFailed(RuntimeError):
    """A start-up listener raised in the console's process; ``do()`` cannot run the app."""


class ServerListeners:
    """Run a vivace ``App``'s server listeners once in this process: ``await ensure()`` before
    the first ``do()``; ``close()`` runs the teardown listeners on the same loop."""

    def __init__(
        self,
        app: App,
        *,
        on_report: Callable[[str], None] | None = None,
        forced: Callable[[], bool] = never,
    ) -> None:
        self.app = app
        self._report = on_report or (lambda text: None)
        self._forced = forced  # the shutdown was forced: close() does not wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Future[None] | None = None
        self._closed = False
        self._stopping: asyncio.Task[None] | None = None  # the teardown listeners' run

    @property
    def started(self) -> bool:
        return self._started is not None and self._started.done()

    async def ensure(self) -> None:
        """Run ``before_server_start`` and ``after_server_start`` (once; later calls wait for
        that first run and raise ``ListenersFailed`` again if it failed)."""
        if self._closed:
            raise RuntimeError("the console's process is stopping: do() cannot start the app")
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._loop = loop
            self._started = loop.create_future()
            try:
                await self._start()
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started.exception()  # retrieved: a later ensure() raises it again
                raise
            self._started.set_result(None)
            return
        if self._loop is not loop:
            started = self._started
            assert self._loop is not None

            async def wait() -> None:
                await started

            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wait(), self._loop))
            return
        await self._started

    async def _start(self) -> None:
        from runtime.lifecycle import ListenerEvent, run_listeners

        app = self.app
        if not getattr(app, "finalized", True) and callable(getattr(app, "finalize", None)):
            app.finalize()
        for event in (ListenerEvent.BEFORE_SERVER_START, ListenerEvent.AFTER_SERVER_START):
            try:
                await run_listeners(app, event)
            except Exception as exc:
                text = (
                    f"{event.value} of {getattr(app, 'name', 'the app')} failed in the console's "
                    f"process, so do() cannot run the app: {type(exc).__name__}: {exc}"
                )
                raise ListenersFailed(text) from exc

    async def _stop(self) -> None:
        from runtime.lifecycle import ListenerEvent, run_listeners

        self._stopping = asyncio.current_task()
        for event in (ListenerEvent.BEFORE_SERVER_STOP, ListenerEvent.AFTER_SERVER_STOP):
            for exc in await run_listeners(self.app, event):
                self._report(
                    f"{event.value} failed in the console's process: {type(exc).__name__}: {exc}"
                )

    def close(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Run the teardown listeners if the start-up ran and succeeded (from any thread)."""
        if self._closed:
            return
        self._closed = True
        started, loop = self._started, self._loop
        if started is None or loop is None or loop.is_closed():
            return
        if started.done() and (started.cancelled() or started.exception() is not None):
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # from a statement on that loop: it cannot wait for itself
            loop.create_task(self._stop())
            return
        if not loop.is_running() or self._forced():
            return
        ending: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            self._stop(), loop
        )
        if not wait_unless_forced(ending, timeout, self._forced):
            cancel_on(loop, lambda: [self._stopping])  # forced, or too slow
