"""Starting one child process (its :class:`WorkerSpec`, its pipes, how it is created), and
reaping it.

Three ways, chosen per start:

* a fork of the main process itself, while the main process has a single thread (Linux,
  ``WORKER_START_METHOD=auto``): the fastest start, see ``worker._forget_main_process``;
* the preloaded fork server (``runtime.supervisor.process.make_context``) once other threads exist
  (the console's), since forking a process with threads can deadlock its children;
* ``spawn`` where forking is unsafe (macOS, Windows) or asked for.

A start has two steps, so that the manager can write the state table in between:
:meth:`Spawner.prepare` builds the spec and the process object, :meth:`Spawner.launch` starts it
and returns the :class:`ChildProcess`. When it has exited, :func:`reap` collects its exit code and
settles everything still waiting on it. The spawner knows nothing about the state table (only the
descriptor of its published copy, ``published.py``, handed to each server worker), restarts or
the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

from runtime.appref import AppRef
from runtime.exceptions import WorkerBootError
from runtime.settings import Settings
from runtime.supervisor.messages import ProcessKind, WorkerSpec
from runtime.supervisor.output import OutputGate, OutputHub
from runtime.supervisor.process import ChildProcess, fork_is_safe
from runtime.supervisor.published import Segment
from runtime.supervisor.worker import child_main, user_main_ref, user_modules

__all__ = ["STOP_SIGNALS", "Prepared", "Reaped", "Spawner", "reap", "stop_signals_blocked"]

logger = logging.getLogger("vivace.supervisor")


@contextlib.contextmanager
def _main_hidden(hide: bool) -> Iterator[None]:
    """Keep ``multiprocessing`` from re-running a user ``__main__`` in a new child before the
    child has redirected its output; the child runs it itself (``WorkerSpec.main_ref``)."""
    main = sys.modules.get("__main__")
    if not hide or main is None:
        yield
        return
    saved: dict[str, Any] = {
        key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


#: the signals that stop a child: blocked around its start (see :func:`stop_signals_blocked`)
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while a child is started.

    A forked child starts with the main process's signal handlers, which only log and wake the
    main process's loop: a stop signal the manager sends in the moment before the child sets its
    own handlers would be lost there, and the child would live on (a reloader did, holding the
    shutdown for its whole grace). Blocked, such a signal waits: the child inherits the mask
    (across exec too, for spawn and the fork server) and ``worker.child_main`` unblocks it once
    its handlers are the default ones. The main process gets a signal sent meanwhile on exit.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Prepared:
    """A child ready to start: its spec, its process object and the main process's pipe ends.
    (A plain slotted class: a dataclass costs ~0.2 ms to build at every start.)"""

    __slots__ = ("child_ends", "conn", "ident", "output", "process", "replies", "spec")

    def __init__(
        self,
        spec: WorkerSpec,
        process: BaseProcess,
        conn: Connection,
        output: socket.socket,
        child_ends: tuple[Connection | socket.socket, ...],
        ident: str | None,
        replies: Connection | None = None,
    ) -> None:
        self.spec = spec
        self.process = process
        self.conn = conn
        self.output = output
        self.child_ends = child_ends
        self.ident = ident
        self.replies = replies  # the manager's end of a server worker's reply pipe


#: lines of its own output kept for each child, for the report of its crash
TAIL_SIZE = 50


class _Tail(OutputGate):
    """What a child's output goes through on its way to the hub: the last lines of this very
    process are kept (the hub's ring is per name, so it mixes the lines of every process a name
    had), then passed on, through ``inner`` when the process has a gate of its own."""

    def __init__(self, inner: OutputGate | None) -> None:
        super().__init__()
        self.inner = inner
        self.lines: deque[str] = deque(maxlen=TAIL_SIZE)
        if inner is None:
            self.state = "open"  # straight through

    def feed(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        if self.inner is not None:
            self.inner.feed(lines)
        else:
            super().feed(lines)


class Spawner:
    """Builds and starts children for one server (its app reference, sockets and settings).

    ``shared_items`` returns the hosted app's shared context, handed to each server worker.
    ``WORKER_START_METHOD`` in ``settings`` is ``auto`` (default), ``forkserver`` or ``spawn``;
    any other value raises ``ValueError`` here.
    """

    def __init__(
        self,
        ctx: BaseContext,
        loop: asyncio.AbstractEventLoop,
        output: OutputHub,
        *,
        app_ref: AppRef,
        sockets: list[socket.socket],
        shared_items: Callable[[], Mapping[str, Any]],
        settings: Settings,
        table: Segment | None = None,
    ) -> None:
        self.ctx = ctx
        self.loop = loop
        self.output = output
        self.app_ref = app_ref
        self.sockets = sockets
        self.shared_items = shared_items
        self.settings = settings
        self.table = table  # the published state table, mapped by every server worker
        method = settings.start_method  # checked once, by Settings.resolve
        # Fork the (single-threaded) main process itself where forking is safe; the preloaded
        # fork server is used once other threads exist (the console's), spawn where fork is unsafe.
        self.fork_main = fork_is_safe() and method == "auto"
        self._told_threads = False
        self._tails: weakref.WeakKeyDictionary[ChildProcess, _Tail] = weakref.WeakKeyDictionary()

    def prepare(
        self,
        name: str,
        kind: ProcessKind,
        *,
        restarted: bool = False,
        changed: Iterable[str] = (),
        func: bytes | None = None,
        kwargs: Mapping[str, Any] | None = None,
        ident: str | None = None,
    ) -> Prepared:
        """The spec and process object of a child ``name`` (nothing started yet);
        ``func``/``kwargs`` a custom process's callable."""
        ctx = self.ctx
        forked = self.fork_main and threading.active_count() == 1
        if self.fork_main and not forked and not self._told_threads:
            self._told_threads = True
            self._tell_threads()
        if forked:  # fast path: fork the main process itself (see worker._forget_main_process)
            ctx = multiprocessing.get_context("fork")
            sys.stdout.flush()
            sys.stderr.flush()
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        out_main, out_child = socket.socketpair()
        # the manager's answers to app.m's requests: read by the waiting thread itself
        replies_in, replies_out = ctx.Pipe(duplex=False) if kind == "server" else (None, None)
        spec = WorkerSpec(
            name=name,
            kind=kind,
            main_pid=os.getpid(),
            control=child_conn,
            replies=replies_in,
            output=out_child,
            app_ref=self.app_ref if kind != "custom" else None,
            settings=self.settings,
            reloaded_files=tuple(changed),
            sockets=tuple(self.sockets) if kind == "server" else (),
            shared_ctx=self.shared_items() if kind == "server" else {},
            func=func,
            kwargs=dict(kwargs or {}),
            restarted=restarted,
            table=self.table if kind == "server" else None,
            forked_from_main=forked,
            user_modules=user_modules() if forked else (),
            main_ref=user_main_ref(),
        )
        process = ctx.Process(target=child_main, args=(spec,), name=name)  # type: ignore[attr-defined]
        child_ends = (
            (child_conn, out_child) if replies_in is None else (child_conn, out_child, replies_in)
        )
        return Prepared(spec, process, parent_conn, out_main, child_ends, ident, replies_out)

    def launch(self, prepared: Prepared, gate: OutputGate | None = None) -> ChildProcess:
        """Start the prepared child; its output goes to the hub (through ``gate`` when given)."""
        spec = prepared.spec
        hide = spec.main_ref is not None and not spec.forked_from_main
        with _main_hidden(hide), stop_signals_blocked():
            prepared.process.start()
        for end in prepared.child_ends:
            end.close()
        proc = ChildProcess(
            spec.name,
            spec.kind,
            prepared.process,
            prepared.conn,
            self.loop,
            ident=prepared.ident,
            replies=prepared.replies,
        )
        proc.pid = prepared.process.pid or 0
        tail = _Tail(gate)
        proc.output_done = self.output.attach(spec.name, prepared.output, self.loop, tail)
        if gate is not None:
            gate._sink = tail._sink  # the hub's writer, which attach gave the outer gate
        self._tails[proc] = tail
        return proc

    def tail(self, proc: ChildProcess, n: int) -> list[str]:
        """The last ``n`` lines (at most ``TAIL_SIZE``) that ``proc`` itself wrote."""
        tail = self._tails.get(proc)
        return list(tail.lines)[-n:] if tail is not None and n > 0 else []

    @staticmethod
    def _tell_threads() -> None:
        names = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
        ours = all(name.startswith(("vivace", "Vivace")) for name in names)
        logger.log(
            logging.DEBUG if ours else logging.INFO,
            "Threads run in the main process (%s): workers start from the fork server "
            "instead of a fork of the main process (forking a process with threads can "
            "deadlock its children)",
            ", ".join(names),
        )


class Reaped(NamedTuple):
    """How a child ended."""

    code: int  # -1 when it could not be reaped
    reason: str  # the child's own one-line summary (``EarlyExit``), or "exit code N"
    acked: bool  # it had acknowledged its start-up


def reap(proc: ChildProcess) -> Reaped:
    """Collect the exit of ``proc`` (its pipe already read to the end) and settle its futures:
    pending calls fail, ``acked``/``serving`` fail with ``WorkerBootError``, ``exited`` resolves."""
    proc.process.join(0)
    if proc.process.exitcode is None:  # pipe closed a moment before the process is reapable
        proc.process.join(1.0)
    code = proc.process.exitcode
    code = -1 if code is None else code
    proc.exitcode = code
    for future in proc.calls.values():
        if not future.done():
            future.set_exception(RuntimeError(f"{proc.name} exited before answering"))
    proc.calls.clear()
    reason = proc.early_reason or f"exit code {code}"
    acked = proc.acked.done() and proc.acked.exception() is None
    for waiting in (proc.acked, proc.serving):
        if not waiting.done():
            waiting.set_exception(WorkerBootError(f"{proc.name} failed to start: {reason}"))
            waiting.exception()  # mark retrieved
    proc.exited.set_result(code)
    return Reaped(code, reason, acked)
