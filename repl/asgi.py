"""``do()`` for apps vivace serves through ASGI (FastAPI, Starlette, Django, Flask, ...).

A request goes through the hosted ASGI callable in the console's process, with
``httpx.AsyncClient(transport=httpx.ASGITransport(app=...))``: no network, no worker.

* **Lifespan.** In the main process (workers run their own), the app's lifespan start-up runs once,
  when the console opens, on the console's own loop (``loop=``: the loop where statements that
  await run), or else on a thread of its own with its own event loop (``vivace-console-app``);
  every ``do()`` runs on that loop, so what the start-up made (``app.state.db``, the lifespan
  ``state``) is there and bound to the loop that uses it, and a statement that awaits one of its
  objects (``await app.state.queue.put(job)``, ``await app.state.pool.fetch(...)``) runs on that
  loop too. The shut-down runs when the console stops; once the shutdown is forced (a second
  Ctrl+C: the manager's ``Killing`` event) nothing waits for it. The protocol itself is
  ``runtime.foreign.Lifespan`` (the one the workers use): an app without lifespan support is
  run without it, as uvicorn's ``--lifespan auto``; WSGI apps have none.
* **In the serving process** (``--single-process``) the server has run the lifespan already: the
  requests run on the serving loop with the server's lifespan state, and nothing is started twice.
* **State.** ``httpx.ASGITransport`` puts no ``state`` in the scope: the app is wrapped so that each
  ``http`` scope gets a shallow copy of the lifespan state, as the server does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import httpx

from repl.listeners import cancel_on, never, wait_unless_forced
from runtime.hosting import ASGIApp, Receive, Scope, Send

__all__ = ["InProcessApp", "StartupFailed", "with_state"]

T = TypeVar("T")

SHUTDOWN_TIMEOUT = 10.0


class StartupFailed(RuntimeError):
    """The app's lifespan start-up failed in the console's process; ``do()`` cannot run."""


def with_state(app: ASGIApp, state: Callable[[], dict[str, Any] | None]) -> ASGIApp:
    """``app`` with a shallow copy of the lifespan ``state()`` in each http/websocket scope."""

    async def app_with_state(scope: Scope, receive: Receive, send: Send) -> None:
        current = state()
        if current is not None and scope["type"] in ("http", "websocket"):
            scope["state"] = dict(current)
        await app(scope, receive, send)

    return app_with_state


class InProcessApp:
    """An ASGI app run in the console's process for ``do()``: lifespan once, then requests.

    ``own_loop=True`` (the main process): a thread with its own loop runs the lifespan and the
    requests; ``start()`` begins the start-up there, ``close()`` runs the shut-down and ends the
    thread. ``own_loop=False`` (the serving process): requests run on the caller's loop with
    ``state`` (the server's lifespan state); ``start()`` and ``close()`` have nothing to do.
    """

    def __init__(
        self,
        asgi: ASGIApp,
        *,
        label: str,
        base_url: str = "http://localhost",
        root_path: str = "",
        lifespan: bool = True,
        own_loop: bool = True,
        state: dict[str, Any] | None = None,
        on_startup_error: Callable[[str], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        forced: Callable[[], bool] = never,
    ) -> None:
        self.label = label
        self._forced = forced  # the shutdown was forced (a second Ctrl+C): close() cuts its waits
        self.base_url = base_url
        self.root_path = root_path
        self._lifespan_wanted = lifespan and own_loop
        self._own_loop = own_loop
        self._state = state
        self._app = with_state(asgi, lambda: self._state)
        self._raw = asgi
        self._on_startup_error = on_startup_error
        self._loop: asyncio.AbstractEventLoop | None = loop  # given: the console's, not ours
        self._given_loop = loop is not None
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[None] | None = None
        self._lifespan: Any = None  # runtime.foreign.Lifespan once started
        self._app_task: Any = None  # the task running the app's lifespan (on the app's loop)
        self._ending: asyncio.Task[Any] | None = None  # the shut-down, once it runs
        self._closed = False

    # -- the app's thread -------------------------------------------------------------------------

    def _ensure_thread(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        thread = threading.Thread(target=main, name="vivace-console-app", daemon=True)
        thread.start()
        ready.wait(10)
        self._loop, self._thread = loop, thread
        return loop

    async def _startup(self) -> None:
        if not self._lifespan_wanted:
            return
        from runtime.foreign import Lifespan, LifespanFailed

        lifespan = Lifespan(self._raw, self.label)
        self._lifespan = lifespan
        try:
            await lifespan.startup()
        except LifespanFailed as exc:
            text = f"the lifespan start-up of {self.label} failed in the console's process: {exc}"
            if self._on_startup_error is not None:
                self._on_startup_error(text)
            raise StartupFailed(text) from exc
        if lifespan.supported:
            self._state = lifespan.state

    def start(self) -> None:
        """Begin the lifespan start-up (once; ``do()`` waits for it)."""
        if self._closed:
            raise RuntimeError("the console's app runner is closed")
        if self._started is not None or not self._own_loop:
            return
        loop = self._ensure_thread()
        self._started = asyncio.run_coroutine_threadsafe(self._startup(), loop)

    @property
    def started(self) -> bool:
        """True once the start-up finished (successfully or not)."""
        return self._started is not None and self._started.done()

    async def wait_started(self, timeout: float) -> bool:
        """Wait (from any loop) for the start-up begun by ``start()``; False if it failed, is
        still running after ``timeout`` seconds, or was never begun."""
        started = self._started
        if started is None:
            return not self._own_loop
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(started)), timeout)
        except Exception:
            return False
        return True

    @property
    def state(self) -> dict[str, Any] | None:
        """The lifespan state each request scope gets a copy of (None: no lifespan)."""
        return self._state

    async def _on_app_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the app's loop from any loop (cancelling this cancels it there)."""
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # -- requests ---------------------------------------------------------------------------------

    async def _send(self, request: httpx.Request) -> httpx.Response:
        transport = httpx.ASGITransport(app=self._app, root_path=self.root_path)
        async with httpx.AsyncClient(
            transport=transport, base_url=self.base_url, trust_env=False
        ) as client:
            response = await client.send(request)
            await response.aread()
            return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> httpx.Response:
        """Send one request through the app (after the start-up) and return the response."""
        request = httpx.Request(method, self.base_url + path, headers=headers, content=content)
        if not self._own_loop:
            return await self._send(request)
        self.start()
        started = self._started
        assert started is not None
        await asyncio.wrap_future(started)  # raises StartupFailed when the start-up failed
        return await self._on_app_loop(self._send(request))

    def run(self, fn: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run ``fn()`` on the app's loop (tests and ``await`` from elsewhere)."""
        loop = self._ensure_thread()

        async def call() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(call(), loop)

    # -- the end ----------------------------------------------------------------------------------

    def _tasks(self) -> list[asyncio.Task[Any] | None]:
        """What a forced shutdown cancels: the shut-down running, and the app's lifespan (its
        task is the protocol's own: ``runtime.foreign.Lifespan`` has no public handle)."""
        app_task = getattr(self._lifespan, "_task", None) or self._app_task
        return [self._ending, app_task if isinstance(app_task, asyncio.Task) else None]

    async def _shutdown(self) -> None:
        self._ending = asyncio.current_task()
        self._app_task = getattr(self._lifespan, "_task", None)
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.shutdown(SHUTDOWN_TIMEOUT)

    def close(self, timeout: float = SHUTDOWN_TIMEOUT + 1) -> None:
        """Run the lifespan shut-down (if the start-up ran) and end the app's thread."""
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        started = self._started
        if self._given_loop and loop is not None:
            self._close_on_given(loop, started, timeout)
            return
        if loop is None or thread is None:
            return
        # a start-up still running finishes first; nothing waits once the shutdown is forced
        if started is not None:
            wait_unless_forced(started, timeout, self._forced)
            if not self._forced():
                shutdown = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                wait_unless_forced(shutdown, timeout, self._forced)
            if self._forced():
                started.cancel()
                cancel_on(loop, self._tasks)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        wait_unless_forced(thread, timeout, self._forced)

    def _close_on_given(
        self,
        loop: asyncio.AbstractEventLoop,
        started: concurrent.futures.Future[None] | None,
        timeout: float,
    ) -> None:
        """The shut-down on the console's loop, which stays (its owner stops it)."""
        if started is None or loop.is_closed() or not loop.is_running():
            return
        if self._forced():
            started.cancel()
            cancel_on(loop, self._tasks)
            return

        async def shutdown() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(started)  # a start-up still running finishes first
            await self._shutdown()

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # called from a statement on that loop: it cannot wait for itself
            loop.create_task(shutdown())
            return
        ending = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if not wait_unless_forced(ending, timeout, self._forced):
            ending.cancel()  # forced, or too slow
            cancel_on(loop, self._tasks)
