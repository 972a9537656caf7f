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
        """The context of the current app (Quart), anchored; the old app's one is ended."""
        app = self._app_now()
        with self._lock:
            if self._ctx is not None and self._app is app:
                return self._ctx
        await self.aclose()
        ctx = app.app_context()
        anchor = contextvars.Context()
        # the anchor push runs in a task made in a context of its own (nothing else sees it)
        await anchor.run(asyncio.get_running_loop().create_task, ctx.push())
        with self._lock:
            self._app, self._ctx, self._anchor = app, ctx, anchor
        return ctx

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
            async with ctx:
                yield ctx
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

    async def aclose(self) -> None:
        """End the Quart context: its teardown runs once."""
        with self._lock:
            app, ctx = self._app, self._ctx
            self._app = self._ctx = self._anchor = None
        if ctx is not None and app is not None:
            await app.do_teardown_appcontext(None)

    def end(self) -> None:
        """``close()`` from anywhere, for either framework (Quart: on a loop of its own)."""
        if self._package == "flask":
            self.close()
        elif self._ctx is not None:  # the caller may be on a running loop: a thread of its own
            ending = threading.Thread(target=asyncio.run, args=(self.aclose(),), daemon=True)
            ending.start()
            ending.join(10)


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
