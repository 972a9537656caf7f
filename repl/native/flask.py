"""Flask and Quart in the console: an application context per statement, ``flask shell``'s names.

``flask shell`` runs in one application context (``current_app``, ``g``, Flask-SQLAlchemy's
``db.session`` work) and adds ``app.make_shell_context()``: ``app``, ``g`` and the names of every
``@app.shell_context_processor``. The console does the same:

* **One application context per console session, pushed for each statement** (not a request
  context). Contexts live in contextvars and each statement runs in a task of its own (and plain
  statements on the console's thread), so the context is pushed where each statement runs and
  popped when it ends. It is the *same* context object each time, kept open underneath by one push
  of its own: ``g`` and ``db.session`` (scoped to the context) carry from one statement to the next
  as in ``flask shell`` (``db.session.add(note)``, then ``db.session.commit()``), and its teardown
  (``db.session.remove()``) runs once, when the console closes or ``refresh()`` brings a new app.
* Flask's context is pushed on the thread that runs the statement; Quart's is async (``async with
  app.app_context()``), pushed in the statement's task on the console's loop, and a plain statement
  runs in a copy of that task's contextvars, so ``current_app`` is there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from repl.native import Scopes, Section, framework_object

__all__ = ["AppContextSession", "flask_scopes", "quart_scopes", "shell_context_section"]

CONTEXT_NOTE = (
    "Each statement runs in the console's application context, as in flask shell: "
    "current_app, g,\nextensions (db.session) work and carry from one statement to the next; "
    "no request context."
)


class AppContextSession:
    """The console's one application context of the current app (a new one after ``refresh``).

    ``package`` is ``flask`` or ``quart``. The context is created on first use, with one push of
    its own in a context of its own (the anchor: the pops of the statements never end it), and
    ended by ``close()``, which runs the app's teardown once.
    """

    def __init__(self, current: Callable[[], object], package: str) -> None:
        self._current = current
        self._package = package
        self._lock = threading.Lock()
        self._app: Any = None
        self._ctx: Any = None
        self._anchor: contextvars.Context | None = None
        self._holder: tuple[asyncio.AbstractEventLoop, asyncio.Event, asyncio.Task[None]] | None
        self._holder = None

    def _app_now(self) -> Any:
        app = framework_object(self._current(), self._package)
        if app is None:
            raise RuntimeError(
                f"the console's app is not a {self._package} application: {self._current()!r}"
            )
        return app

    def _sync_context(self) -> Any:
        """The context of the current app (Flask), anchored; the old app's one is ended."""
        app = self._app_now()
        with self._lock:
            if self._ctx is not None and self._app is app:
                return self._ctx
        self.close()
        ctx = app.app_context()
        anchor = contextvars.Context()
        anchor.run(ctx.push)
        with self._lock:
            self._app, self._ctx, self._anchor = app, ctx, anchor
        return ctx

    async def _async_context(self) -> Any:
        """The context of the current app (Quart), anchored; the old app's one is ended.

        Quart's push is async and its pop must run in the context of its push: the anchor is a
        task on the console's loop that pushes the context and holds it until ``close()``."""
        app = self._app_now()
        with self._lock:
            if self._ctx is not None and self._app is app:
                return self._ctx
        await self._release()
        ctx = app.app_context()
        pushed = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with ctx:
                pushed.set()
                await release.wait()

        loop = asyncio.get_running_loop()
        holder = loop.create_task(hold())
        await asyncio.wait({holder, loop.create_task(pushed.wait())}, return_when="FIRST_COMPLETED")
        if holder.done():
            holder.result()  # the push failed: its error
        with self._lock:
            self._app, self._ctx, self._holder = app, ctx, (loop, release, holder)
        return ctx

    async def _release(self) -> None:
        """End the Quart context held by the anchor task (its teardown runs there)."""
        with self._lock:
            holder, self._holder = self._holder, None
            self._app = self._ctx = None
        if holder is not None:
            _, release, task = holder
            release.set()
            await task

    @contextlib.contextmanager
    def plain(self) -> Iterator[object]:
        """Flask: the context pushed around a statement on the thread that runs it."""
        with self._sync_context() as ctx:
            yield ctx

    @contextlib.asynccontextmanager
    async def task(self) -> AsyncIterator[object]:
        """Pushed in the statement's task (Quart: async; Flask: its sync push)."""
        if self._package == "quart":
            ctx = await self._async_context()
            try:
                from quart.globals import _cv_app
            except ImportError:  # a Quart without it: push the anchored context again
                async with ctx:
                    yield ctx
                return
            # The anchor holds the push; the statement's task only sees the context. (Pushing the
            # same context again here breaks Quart 0.23, which keeps one token per context.)
            token = _cv_app.set(ctx)
            try:
                yield ctx
            finally:
                _cv_app.reset(token)
        else:
            with self.plain() as ctx:
                yield ctx

    def close(self) -> None:
        """End the Flask context: its teardown runs (``db.session.remove()``)."""
        with self._lock:
            ctx, anchor = self._ctx, self._anchor
            self._app = self._ctx = self._anchor = None
        if ctx is not None and anchor is not None and self._package == "flask":
            anchor.run(ctx.pop)

    def end(self, timeout: float = 10.0) -> None:
        """End the context, from any thread but the console loop's (Quart: on that loop)."""
        if self._package == "flask":
            self.close()
            return
        holder = self._holder
        if holder is None:
            return
        loop, release, _ = holder
        if loop.is_closed() or not loop.is_running():
            self._holder = None
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # --single-process: the holder pops when this loop runs it next
            with self._lock:
                self._holder = None
                self._app = self._ctx = None
            release.set()
            return
        asyncio.run_coroutine_threadsafe(self._release(), loop).result(timeout)


def flask_scopes(current: Callable[[], object]) -> Scopes:
    session = AppContextSession(current, "flask")

    def plain() -> AbstractContextManager[object]:
        return session.plain()

    def task() -> AbstractAsyncContextManager[object]:
        return session.task()

    return Scopes(plain=plain, task=task, close=session.end)


def quart_scopes(current: Callable[[], object]) -> Scopes:
    session = AppContextSession(current, "quart")

    def task() -> AbstractAsyncContextManager[object]:
        return session.task()

    return Scopes(task=task, close=session.end)


def shell_context_section(target: object, framework: str) -> list[Section]:
    """``app.make_shell_context()`` (``app`` left out: the console has its own)."""
    package = framework.lower()
    app = framework_object(target, package)
    if app is None:
        return []
    if framework == "Flask":
        with app.app_context():
            context: dict[str, Any] = dict(app.make_shell_context())
    else:
        context = dict(app.make_shell_context())  # Quart: run in the statement's app context
    context.pop("app", None)
    processors = len(getattr(app, "shell_context_processors", ()))
    kind = f"{processors} shell context processor{'s' if processors != 1 else ''}"
    title = f"From app.make_shell_context() ({kind}), as {package} shell adds them:"
    notes = [CONTEXT_NOTE.replace("flask", package)]
    return [Section(title, context, source="app.make_shell_context()", notes=notes)]
