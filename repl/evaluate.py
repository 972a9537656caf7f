"""Run console input: compile with top-level ``await``, await awaitable results, report an Outcome.

No prompt_toolkit here: the evaluator is driven by the UI, by scripted mode and by tests alike.
``Evaluator.run`` runs on whatever loop calls it; ``ThreadRunner`` gives it a loop of its own on a
console thread, so that blocking calls in user code (``client.get("/")``) never stall the loop that
supervises the workers and prints their output.

Two kinds of statements (``ThreadRunner``, the console beside the workers, for every app):

* **Plain statements** (no top-level ``await``, ``async for`` or ``async with``) run on one
  dedicated thread with no event loop (``SyncLane``), as IPython's autoawait and ``manage.py
  shell`` run them: libraries that refuse to block a running loop work as in a script (Django's
  ORM raises ``SynchronousOnlyOperation`` on a loop; ``asyncio.run()`` refuses a running loop).
  Always the *same* thread, so what is bound to a thread carries from one statement to the next:
  Django opens one database connection per thread (an SQLite in-memory database is one per
  connection), a transaction begun in one statement is seen by the next.
* **Statements that await** run as tasks on the console's loop, as before. An awaitable value of a
  plain statement (``do("/")``, ``client.get("/")``) is awaited there too.

``LoopRunner`` (``--single-process``: the console on the serving loop) runs both kinds on that loop.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import contextvars
import ctypes
import inspect
import os
import queue
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from types import CodeType
from typing import Any, Protocol, TypeAlias

import runtime

FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
CANCELLED_TEXT = "KeyboardInterrupt: statement cancelled"
DETACHED_TEXT = (
    " (blocked in a call that cannot be interrupted, such as time.sleep(): it keeps running in "
    "the background; its output will be shown)"
)
FINISHED_TEXT = "The statement left running in the background finished"


def _package_dir(module_file: str | None) -> str:
    return os.path.dirname(os.path.abspath(module_file or "")) + os.sep


# Where the console's own machinery lives: its package, the thread bridge (concurrent.futures,
# asyncio) and the manager API behind ``workers``/``restart``/``scale`` (runtime.supervisor).
_INTERNAL_DIRS = (
    _package_dir(__file__),
    _package_dir(concurrent.futures.__file__),
    _package_dir(asyncio.__file__),
    os.path.join(_package_dir(runtime.__file__), "supervisor") + os.sep,
)


@dataclass
class Outcome:
    """What one input did: a value to show, an error, or a request to leave the console."""

    value: object = None
    has_value: bool = False
    error: BaseException | None = None
    exit_code: int | None = None  # set when the input raised SystemExit (``exit()``)
    cancelled: bool = False
    detached: bool = False  # cancelled, but still running on a thread the console left behind

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled

    def format_error(self) -> str:
        if self.cancelled:
            return CANCELLED_TEXT + (DETACHED_TEXT if self.detached else "") + "\n"
        if self.error is None:
            return ""
        return format_exception(self.error)


def _internal(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_INTERNAL_DIRS)


def _shown_name(exc: BaseException) -> str:
    """The class name to show: the console's own error classes show as their builtin base."""
    cls = type(exc)
    if cls.__module__.split(".")[0] == "repl":
        for base in cls.__mro__:
            if base.__module__ == "builtins":
                return base.__name__
    return cls.__name__


def format_exception(exc: BaseException) -> str:
    """What a failed statement prints: a traceback of the statement's own frames.

    Frames of the console's machinery (this package, the thread bridge, the manager API) are
    left out. When the error was raised by that machinery itself (``restart("nope")``,
    ``scale(0)``, ``workers["nope"]``: a console command refusing), it is one line,
    ``LookupError: no process named 'nope'; running: ...``.
    """
    tb = exc.__traceback__
    innermost = tb
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    if innermost is not None and _internal(innermost.tb_frame.f_code.co_filename):
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return f"{_shown_name(exc)}: {message}\n" if message else f"{_shown_name(exc)}\n"
    shown = traceback.TracebackException(type(exc), exc, tb, compact=True)
    pending = [shown]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        frames = [f for f in current.stack if not _internal(f.filename)]
        current.stack = traceback.StackSummary.from_list(frames)
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    text = "".join(shown.format())
    if sys.version_info < (3, 11):  # the traceback shows __notes__ from Python 3.11 on
        text += "".join(f"{note}\n" for note in getattr(exc, "__notes__", ()))
    return text


def is_complete(source: str) -> bool:
    """True when ``source`` is a whole statement (scripted mode uses it to group lines)."""
    try:
        compile(source + "\n", "<console>", "exec", FLAGS | ast.PyCF_ONLY_AST)
    except SyntaxError:
        return False
    return not source.rstrip().endswith(":")


def split_statements(source: str) -> list[str]:
    """Top-level statements of a script, each as its own source text (decorators included)."""
    tree = compile(source, "<stdin>", "exec", FLAGS | ast.PyCF_ONLY_AST)
    assert isinstance(tree, ast.Module)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    chunks = []
    for node in tree.body:
        first: ast.AST = node
        for deco in getattr(node, "decorator_list", []):
            if (deco.lineno, deco.col_offset) < (first.lineno, first.col_offset):  # type: ignore[attr-defined]
                first = deco
        start = offsets[first.lineno - 1] + first.col_offset  # type: ignore[attr-defined]
        if first is not node:
            start = offsets[first.lineno - 1]  # type: ignore[attr-defined]
        end_line = node.end_lineno or node.lineno
        end = offsets[end_line - 1] + (node.end_col_offset or 0)
        chunks.append(source[start:end])
    return chunks


def needs_loop(*codes: CodeType | None) -> bool:
    """True when one of the compiled parts awaits at top level (``await``, ``async for/with``)."""
    return any(code is not None and code.co_flags & inspect.CO_COROUTINE for code in codes)


#: runs a plain statement's code somewhere else (a thread) and awaits what it returned
Offload: TypeAlias = Callable[[Callable[[], object]], Awaitable[object]]


SYNC_ONLY_NOTE = (
    "This statement awaits, so it runs on the console's event loop, where Django refuses its sync "
    "API.\nRun the sync call in a statement of its own (no await), or use the async API "
    "(await Model.objects.acount())."
)


def _add_note(exc: BaseException, note: str) -> None:
    notes = list(getattr(exc, "__notes__", ()))
    if note not in notes:
        setattr(exc, "__notes__", [*notes, note])  # noqa: B010 - add_note is Python 3.11+


def _resolved(value: object) -> object:
    """The object behind a context-local proxy (Flask's ``g``), shown after its context ends."""
    if type(value).__name__ != "LocalProxy":
        return value
    get = getattr(value, "_get_current_object", None)
    try:
        return get() if callable(get) else value
    except RuntimeError:  # not bound here
        return value


@contextlib.asynccontextmanager
async def _in_task(scope: Callable[[], AbstractContextManager[object]]) -> AsyncIterator[object]:
    with scope() as entered:
        yield entered


class Evaluator:
    """Evaluate inputs in one namespace, Python console style (the value of a last expression).

    ``offload``, when given, runs inputs with no top-level ``await`` (``ThreadRunner``: on its
    thread with no event loop); inputs that await, and awaitable values, run on the calling loop.
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        filename: str = "<console>",
        *,
        offload: Offload | None = None,
    ) -> None:
        self.namespace = namespace
        self.filename = filename
        self.offload = offload
        self.after_statement: list[Callable[[], Awaitable[None]]] = []
        #: entered around each plain statement on the thread that runs it (Flask's app context)
        self.plain_scope: Callable[[], AbstractContextManager[object]] | None = None
        #: entered in the task of each statement that awaits, and of a plain one when there is
        #: no ``plain_scope`` (Quart's async app context: the plain statement then runs in a copy
        #: of the task's contextvars)
        self.task_scope: Callable[[], AbstractAsyncContextManager[object]] | None = None

    def compile(self, source: str) -> tuple[CodeType | None, CodeType | None]:
        """(statements, last expression) code objects; raises SyntaxError."""
        tree = compile(source, self.filename, "exec", FLAGS | ast.PyCF_ONLY_AST)
        assert isinstance(tree, ast.Module)
        body: CodeType | None = None
        last: CodeType | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            expr = ast.Expression(tree.body[-1].value)
            last = compile(expr, self.filename, "eval", FLAGS)
            tree.body = tree.body[:-1]
        if tree.body:
            body = compile(tree, self.filename, "exec", FLAGS)
        return body, last

    async def _execute(self, code: CodeType) -> object:
        result = eval(code, self.namespace)
        if code.co_flags & inspect.CO_COROUTINE:
            result = await result
        return result

    def _statement_scope(self, offloaded: bool) -> AbstractAsyncContextManager[object]:
        """The scope entered in a statement's task (``offloaded``: a plain one on the lane)."""
        if offloaded and self.plain_scope is not None:
            return contextlib.nullcontext()  # entered on the lane's thread (_plain_call)
        if self.task_scope is not None:
            return self.task_scope()
        if self.plain_scope is not None:
            return _in_task(self.plain_scope)
        return contextlib.nullcontext()

    def _plain_call(self, fn: Callable[[], object]) -> Callable[[], object]:
        """``fn`` as it runs on the lane: inside ``plain_scope``, or in the task's contextvars."""
        scope = self.plain_scope
        if scope is not None:

            def scoped() -> object:
                with scope():
                    return _resolved(fn())

            return scoped
        if self.task_scope is not None:
            context = contextvars.copy_context()
            return lambda: context.run(fn)
        return fn

    async def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` where a plain statement runs, in the same scope; its errors propagate."""
        offloaded = self.offload is not None
        async with self._statement_scope(offloaded):
            if self.offload is not None:
                return await self.offload(self._plain_call(fn))
            return fn()

    def _execute_plain(self, body: CodeType | None, last: CodeType | None) -> object:
        """Run an input with no top-level ``await`` (on the offload's thread)."""
        if body is not None:
            eval(body, self.namespace)
        return eval(last, self.namespace) if last is not None else None

    async def run(self, source: str) -> Outcome:
        """Run one input. CancelledError (Ctrl+C) propagates; everything else is in the Outcome."""
        try:
            body, last = self.compile(source)
            value: object = None
            offloaded = self.offload is not None and not needs_loop(body, last)
            async with self._statement_scope(offloaded):
                if offloaded:
                    assert self.offload is not None
                    value = await self.offload(
                        self._plain_call(lambda: self._execute_plain(body, last))
                    )
                else:
                    if body is not None:
                        await self._execute(body)
                    if last is not None:
                        value = await self._execute(last)
                if self.task_scope is not None:
                    value = _resolved(value)  # a proxy passes for an awaitable
                if inspect.isawaitable(value):
                    value = await value
            for hook in self.after_statement:
                await hook()
        except SystemExit as exc:
            code = exc.code
            return Outcome(exit_code=code if isinstance(code, int) else (0 if code is None else 1))
        except (KeyboardInterrupt, asyncio.CancelledError):
            raise
        except BaseException as exc:
            if type(exc).__name__ == "SynchronousOnlyOperation" and self.offload is not None:
                _add_note(exc, SYNC_ONLY_NOTE)
            return Outcome(error=exc)
        if last is not None and value is not None:
            self.namespace["_"] = value
            return Outcome(value=value, has_value=True)
        return Outcome()


class Runner(Protocol):
    """Where statements run: the current loop, or a console thread with its own loop."""

    async def run(self, source: str) -> Outcome: ...

    async def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` where plain statements run (the console's names are collected so)."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class LoopRunner:
    """Statements run as tasks on the calling loop (``--single-process``: the serving loop)."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self._task: asyncio.Task[Outcome] | None = None

    async def run(self, source: str) -> Outcome:
        self._task = asyncio.get_running_loop().create_task(self.evaluator.run(source))
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task.cancelled() and not _current_cancelling():
                return Outcome(cancelled=True)
            self._task.cancel()
            raise
        finally:
            self._task = None

    async def call(self, fn: Callable[[], object]) -> object:
        return await self.evaluator.call(fn)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def close(self) -> None:
        self.cancel()


def _current_cancelling() -> int:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Task.cancelling() is Python 3.11+
    return int(cancelling()) if cancelling is not None else 0


class _Lane:
    """One console thread with its own event loop."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Outcome] | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            while True:
                try:
                    self.loop.run_forever()
                    break
                except KeyboardInterrupt:  # a late Ctrl+C landed between statements
                    continue
        finally:
            self.loop.close()

    def stop(self) -> None:
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)


def _set_async_exc(ident: int | None, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``ident`` at its next bytecode; ``None`` withdraws a pending one."""
    if ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None
    )


_Ending: TypeAlias = tuple[object, BaseException | None]  # (value, error) of one call
_Job: TypeAlias = tuple[Callable[[], object], "concurrent.futures.Future[_Ending]"]


class SyncLane:
    """One thread with no event loop that runs calls one at a time, always on that thread.

    ``submit(fn)`` queues a call; its future gets ``(value, None)`` or ``(None, error)`` (errors
    of every kind, ``KeyboardInterrupt`` and ``SystemExit`` included, travel as values).
    ``interrupt()`` raises ``KeyboardInterrupt`` in the running call at its next bytecode, and
    never outside a call: the lock orders it with the call's end, and an interrupt still pending
    when the call ends is withdrawn.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    @property
    def busy(self) -> bool:
        return self._running

    def submit(self, fn: Callable[[], object]) -> concurrent.futures.Future[_Ending]:
        future: concurrent.futures.Future[_Ending] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return future

    def interrupt(self) -> bool:
        """``KeyboardInterrupt`` in the running call; False when no call is running."""
        with self._lock:
            if not self._running:
                return False
            _set_async_exc(self.thread.ident, KeyboardInterrupt)
            return True

    def withdraw(self) -> None:
        """Withdraw an interrupt not delivered yet (the call goes on as if never interrupted)."""
        with self._lock:
            _set_async_exc(self.thread.ident, None)

    def stop(self) -> None:
        """End the thread once the queued calls ran."""
        self._jobs.put(None)

    def _main(self) -> None:
        while True:
            try:
                job = self._jobs.get()
                if job is None:
                    return
                fn, future = job
                if future.set_running_or_notify_cancel():
                    future.set_result(self._call(fn))
            except KeyboardInterrupt:  # a late Ctrl+C landed between calls
                continue

    def _call(self, fn: Callable[[], object]) -> _Ending:
        with self._lock:
            self._running = True
        ending: _Ending
        try:
            ending = (fn(), None)
        except BaseException as exc:
            ending = (None, exc)
        while True:
            try:
                with self._lock:
                    self._running = False
                    _set_async_exc(self.thread.ident, None)
                return ending
            except KeyboardInterrupt:  # delivered after the call ended: it ended anyway
                continue


def _background_report(outcome: Outcome) -> str:
    """The line printed when a statement left running in the background ends."""
    if outcome.cancelled:
        return ""
    if outcome.error is not None:
        return f"{FINISHED_TEXT} with an error:\n{outcome.format_error()}"
    if outcome.has_value:
        try:
            return f"{FINISHED_TEXT}: {outcome.value!r}\n"
        except Exception as exc:
            return f"{FINISHED_TEXT}; repr() of its value failed: {exc!r}\n"
    return f"{FINISHED_TEXT}.\n"


class ThreadRunner:
    """Statements run off the caller's loop; the caller's loop only awaits the result.

    Plain statements run on a ``SyncLane`` (thread ``name``, no event loop); statements that
    await run as tasks on a console loop of their own (thread ``name-loop``); see the module's
    docstring. The runner sets ``evaluator.offload`` to its lane.

    Ctrl+C cancels the statement's task, and a plain statement gets a ``KeyboardInterrupt`` at
    once (as in Python's own console); code that awaits but is stuck in synchronous Python gets a
    KeyboardInterrupt a moment later; code stuck in C (``time.sleep(60)``) is left to finish on
    its thread (the KeyboardInterrupt withdrawn, so what it prints afterwards still appears,
    followed by a one-line note with its value), and the console moves on with fresh threads
    (same namespace) after ``ABANDON_AFTER`` seconds.
    """

    INTERRUPT_AFTER = 0.3
    ABANDON_AFTER = 1.5

    def __init__(self, evaluator: Evaluator, name: str = "vivace-console") -> None:
        self.evaluator = evaluator
        self._name = name
        self._lane = _Lane(name + "-loop")
        self._sync = SyncLane(name)
        self._give_up: asyncio.Future[None] | None = None
        #: the console's app runs its lifespan and ``do()`` on ``loop``: when a stuck statement
        #: is left behind, its loop keeps running for the app (statements move to a new one)
        self.hosts_app = False
        self._kept: list[_Lane] = []
        evaluator.offload = self._offload

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The console loop, where statements that await run."""
        return self._lane.loop

    @property
    def thread(self) -> threading.Thread:
        """The thread where plain statements run."""
        return self._sync.thread

    async def _offload(self, fn: Callable[[], object]) -> object:
        """Run a plain statement on the sync lane (called on the console loop)."""
        sync = self._sync
        future = sync.submit(fn)
        ending = asyncio.wrap_future(future)
        try:
            value, error = await asyncio.shield(ending)
        except asyncio.CancelledError:
            if future.cancel():  # not started yet
                raise
            sync.interrupt()  # Ctrl+C: a KeyboardInterrupt where the statement stands
            value, error = await ending  # it ends there (or the runner gives up waiting)
        if error is not None:
            raise error
        return value

    async def _run_here(self, lane: _Lane, source: str) -> Outcome:
        lane.task = asyncio.current_task()
        try:
            return await self.evaluator.run(source)
        except (asyncio.CancelledError, KeyboardInterrupt):
            return Outcome(cancelled=True)
        finally:
            lane.task = None

    async def run(self, source: str) -> Outcome:
        lane = self._lane
        future = asyncio.run_coroutine_threadsafe(self._run_here(lane, source), lane.loop)
        result = asyncio.wrap_future(future)
        give_up = asyncio.get_running_loop().create_future()
        self._give_up = give_up
        try:
            await asyncio.wait({result, give_up}, return_when=asyncio.FIRST_COMPLETED)
            if result.done():
                return result.result()
            # stuck where neither cancellation nor an async exception reaches: move on, and let
            # the statement finish where it is (its later output is shown, then a note)
            sync = self._sync
            self._lane = _Lane(self._name + "-loop")
            self._sync = SyncLane(self._name)
            _set_async_exc(lane.thread.ident, None)
            sync.withdraw()
            sync.stop()  # its thread ends once the statement does
            keep = self.hosts_app
            if keep:
                self._kept.append(lane)  # stopped by close()
            future.add_done_callback(lambda done: self._detached_done(lane, done, keep=keep))
            return Outcome(cancelled=True, detached=True)
        except asyncio.CancelledError:
            self.cancel()
            raise
        finally:
            self._give_up = None
            give_up.cancel()

    async def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the lane, in a statement's scope, from the caller's loop."""
        future = asyncio.run_coroutine_threadsafe(self.evaluator.call(fn), self._lane.loop)
        return await asyncio.wrap_future(future)

    @staticmethod
    def _detached_done(
        lane: _Lane, done: concurrent.futures.Future[Outcome], *, keep: bool = False
    ) -> None:
        """On the old thread, when a statement left in the background ends: report, then stop
        (``keep``: its loop runs on, for the app that lives there)."""
        try:
            report = "" if done.cancelled() else _background_report(done.result())
            if report:
                sys.stdout.write(report)  # the console's output stream: above the prompt
                sys.stdout.flush()
        except Exception:  # reporting must never break the old thread's shutdown
            pass
        finally:
            if not keep:
                lane.stop()

    def cancel(self) -> None:
        """Cancel the running statement (called on the caller's loop, e.g. on Ctrl+C)."""
        lane = self._lane
        task = lane.task
        if task is None:
            return
        lane.loop.call_soon_threadsafe(task.cancel)  # a plain statement: _offload interrupts it
        sync = self._sync

        def interrupt() -> None:
            if sync.busy:  # a plain statement: interrupted already
                return
            if lane.task is task and not task.done() and self._lane is lane:
                _set_async_exc(lane.thread.ident, KeyboardInterrupt)

        timer = threading.Timer(self.INTERRUPT_AFTER, interrupt)
        timer.daemon = True
        timer.start()
        give_up = self._give_up
        if give_up is not None:
            loop = give_up.get_loop()

            def abandon() -> None:
                if lane.task is task and not task.done() and not give_up.done():
                    give_up.set_result(None)

            loop.call_later(self.ABANDON_AFTER, abandon)

    def close(self) -> None:
        self.cancel()
        self._lane.stop()
        self._sync.stop()
        for kept in self._kept:  # loops kept for the app after a stuck statement
            kept.stop()
        self._lane.thread.join(5)
        self._sync.thread.join(5)
