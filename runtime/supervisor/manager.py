"""``app.manager``: starts, supervises, restarts and stops every child process (main process only).

The manager runs on the main process's asyncio loop and is the single writer of the state table:
children report through typed messages on their pipe and the manager applies them, so no update is
lost. Every change is published at once in memory that every child maps (``published.py``), and a
child's request is answered (``Handled``) only after its effect is published.

:class:`WorkerManager` owns its parts and performs what they decide; none of them knows the
manager: the state table (``table.py``) and its transitions (``states.py``), the registry of names
(``registry.py``), the spawner (``spawner.py``), the exit policy (``policy.py``), the replacement
bookkeeping (``replacements.py``) and, for reloads, ``ReloadCoordinator`` (``reloader.py``).

The exit policy and the replacement bookkeeping are imported when first needed (a process exits, a
restart or reload starts a replacement): nothing before the first fork uses them, and importing
them there cost ~1.3 ms of every start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import pickle
import signal
import socket
import time
from collections.abc import Callable, Iterable
from enum import Enum
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any, NamedTuple

from runtime.appref import AppRef
from runtime.compat import assert_never  # typing.assert_never is Python 3.11+
from runtime.exceptions import WorkerBootError
from runtime.hosting import Hosted
from runtime.settings import Settings
from runtime.supervisor.messages import (
    REQUESTS,
    Ack,
    CallRequest,
    CallResult,
    ChildMessage,
    EarlyExit,
    Handled,
    Heartbeat,
    ManageRequest,
    ProcessKind,
    RestartRequest,
    ScaleRequest,
    Serving,
    StateUpdate,
    TerminateRequest,
)
from runtime.supervisor.output import OutputGate, OutputHub
from runtime.supervisor.process import ChildProcess, start_early
from runtime.supervisor.published import TablePublisher
from runtime.supervisor.registry import RELOADER_NAME, Registry, WorkerRecord
from runtime.supervisor.spawner import Spawner, reap
from runtime.supervisor.states import Event
from runtime.supervisor.table import Snapshot, StateTable
from runtime.supervisor.worker import preload_for_forks

if TYPE_CHECKING:
    from runtime.supervisor.policy import ExitPolicy
    from runtime.supervisor.replacements import Candidate, Effect, Replacements

__all__ = [
    "MAIN_NAME",
    "RELOADER_NAME",
    "Killing",
    "ManagerEvent",
    "Progress",
    "RestartOrder",
    "TableChanged",
    "WorkerManager",
    "WorkerRecord",
]

logger = logging.getLogger("vivace.supervisor")

MAIN_NAME = "Vivace-Main"


class RestartOrder(str, Enum):
    SHUTDOWN_FIRST = "shutdown_first"
    STARTUP_FIRST = "startup_first"


class Progress(NamedTuple):
    """A restart / reload / scale began (``text``) or ended (``None``); for the console toolbar."""

    text: str | None


class TableChanged(NamedTuple):
    """The state table changed."""


class Killing(NamedTuple):
    """The shutdown is forced (a second Ctrl+C or SIGTERM, or the graceful stop timed out):
    every child is killed and nothing in the main process waits for a graceful end any more
    (the console's lifespan shut-down included). Sent from the signal handler: a listener only
    records it."""

    forced: bool = True


ManagerEvent = Progress | TableChanged | Killing


class WorkerManager:
    """Supervises the server workers, the custom processes and the reloader of one server.

    Its parts, each built here from plain values and never calling back:

    * ``table`` (:class:`StateTable`): the state table; the manager is its only writer, states move
      by the rules of ``states.py``; every change is published at once by ``published``
      (:class:`TablePublisher`), where the server workers read it; its subscriber
      :meth:`_broadcast` tells the listeners of every batch of changes (:class:`TableChanged`).
    * ``registry`` (:class:`Registry`): the names (server workers, ``manage()`` groups, the
      reloader), their flags, the start order and which names a restart takes.
    * ``spawner`` (:class:`Spawner`): builds a child's spec and starts it (fork of the main process,
      fork server or spawn); :func:`reap` collects its exit.
    * ``policy`` (:class:`ExitPolicy`): what an exit means (ignore, boot failed, give up, heal) and
      the crash back-off.
    * ``replacements`` (:class:`Replacements`): the candidates started beside the processes they
      replace (zero-downtime restarts, reloads), the ``ReloadCoordinator`` and the callers waiting
      for a reload; it answers each event with typed effects that :meth:`_perform` carries out.

    The loop (:meth:`run`): start every process in the registry's order, wait for the server
    workers' acks (``WORKER_ACK_TIMEOUT``; a failure stops everything with exit code 1) and for them
    to serve, set ``ready``, start the console if any, then supervise until :meth:`request_stop`:
    each child's pipe is read by :meth:`_on_readable` (messages applied by :meth:`_handle`), its
    exit is seen by :meth:`_on_exit` (reaped, then the policy's decision performed), a heartbeat
    watch kills a worker whose event loop is blocked. :meth:`shutdown` then stops every process
    (SIGINT, ``GRACEFUL_SHUTDOWN_TIMEOUT`` + 5 s, then SIGKILL). Requests arrive from the console
    (:class:`~runtime.supervisor.control.Control`), the main process's listeners and the children
    (``app.m``); every method runs on the manager's loop.
    """

    def __init__(
        self,
        app: Hosted,
        app_ref: AppRef,
        sockets: list[socket.socket],
        ctx: BaseContext,
        loop: asyncio.AbstractEventLoop,
        *,
        workers: int = 1,
        settings: Settings | None = None,
        output: OutputHub | None = None,
    ) -> None:
        self.app = app
        self._created = time.time()  # before any child is forked
        self.app_ref = app_ref
        self.sockets = sockets
        self.ctx = ctx
        self.loop = loop
        self.settings = settings if settings is not None else Settings()
        self.output = output or OutputHub()
        self._changed = asyncio.Event()
        self.published = TablePublisher()  # before any child starts: each one maps it
        self.table = StateTable(loop.call_soon, self._changed.set, self.published.publish)
        self.table.add(MAIN_NAME, server=None, pid=os.getpid())
        self.table.subscribe(self._broadcast)
        self.procs: dict[str, ChildProcess] = {}  # the current process of each name
        self._live: set[ChildProcess] = set()  # every process not yet exited (old ones too)
        self.registry = Registry()
        self.server_names = self.registry.server_names  # the registry's own list and dicts
        self.custom_names = self.registry.custom_names
        self.records = self.registry.records
        self._call_ids = itertools.count(1)
        self._listeners: list[Callable[[ManagerEvent], None]] = []
        self._outputs: list[asyncio.Future[None]] = []
        self._stop = asyncio.Event()
        self.running = False
        self.booting = True
        self.stopping = False
        self.exit_code = 0
        self.boot_failure = ""
        self.ready = asyncio.Event()
        self._replacements: Replacements | None = None
        self._given_up: set[str] = set()  # server workers left FAILED (crash loop, failed restart)
        self._console: asyncio.Task[Any] | None = None
        self.killed = False  # kill_all() ran: the shutdown is forced
        self.spawner = Spawner(
            ctx,
            loop,
            self.output,
            app_ref=app_ref,
            sockets=sockets,
            shared_items=lambda: app.shared_items(),
            settings=self.settings,
            table=self.published.segment,
        )
        self.fork_main = self.spawner.fork_main
        self.ack_timeout = self.settings.ack_timeout
        self.heartbeat_timeout = self.settings.heartbeat_timeout
        self.heartbeat_interval = self.settings.heartbeat_interval
        self.graceful = self.settings.graceful_shutdown_timeout
        for _ in range(workers):
            self._add_server()

    @functools.cached_property
    def policy(self) -> ExitPolicy:
        from runtime.supervisor.policy import ExitPolicy

        return ExitPolicy(self.settings.crash_limit, self.settings.crash_window)

    @property
    def replacements(self) -> Replacements:
        if self._replacements is None:
            from runtime.supervisor.replacements import Replacements

            self._replacements = Replacements(self.registry)
        return self._replacements

    # --- events --------------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[ManagerEvent], None]) -> Callable[[], None]:
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    def _emit(self, event: ManagerEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                logger.exception("A manager listener failed")

    # --- the state table (single writer) -------------------------------------------------------

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """A copy of the state table (safe to call from another thread, e.g. a console's)."""
        return self.table.snapshot()

    def _broadcast(self, table: Snapshot) -> None:
        self._emit(TableChanged())

    # --- registration --------------------------------------------------------------------------

    def _add_server(self) -> str:
        name = self.registry.add_server()
        self.table.add(name, server=True)
        return name

    def add_reloader(self, reload_dirs: Iterable[str] = ()) -> None:
        """Register the durable, non-restartable ``Vivace-Reloader-0`` (reload.md section 2); it
        starts after the server workers and runs :func:`~runtime.supervisor.reloader.reloader_main`.
        """
        if self.registry.add_reloader(reload_dirs):
            self.table.add(RELOADER_NAME, server=False, kind="reloader")

    def manage(
        self,
        ident: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any] | None = None,
        transient: bool = False,
        restartable: bool | None = None,
        tracked: bool = True,
        auto_start: bool = True,
        workers: int = 1,
    ) -> WorkerRecord:
        """Register (and unless ``auto_start=False`` start) ``workers`` processes of ``func``."""
        record = self.registry.register(
            ident,
            func,
            kwargs,
            transient=transient,
            restartable=restartable,
            tracked=tracked,
            auto_start=auto_start,
            workers=workers,
            taken=self.table,
        )
        names = record.names
        for name in names:
            self.table.add(name, server=False)
            if not auto_start:
                self.table.move(name, Event.HOLD)
        if self.running and auto_start and not self.stopping:
            for name in names:
                self._start(name)
        return record

    def _manage_from_worker(self, request: ManageRequest) -> None:
        try:
            func = pickle.loads(request.func)
            self.manage(
                request.ident,
                func,
                dict(request.kwargs),
                transient=request.transient,
                restartable=request.restartable,
                tracked=request.tracked,
                auto_start=request.auto_start,
                workers=request.workers,
            )
        except Exception as exc:
            logger.error("Failed to manage worker %s: %s", request.ident, exc)

    # --- starting ------------------------------------------------------------------------------

    def _start(
        self,
        name: str,
        *,
        restarted: bool = False,
        changed: Iterable[str] = (),
        candidate: bool = False,
        gate: OutputGate | None = None,
    ) -> ChildProcess:
        """Start a process for ``name``. A ``candidate`` runs beside the current process: it is
        neither in ``procs`` nor in the table until :meth:`_commit` makes it the current one."""
        kind = self.registry.kind(name)
        record = self.custom_names.get(name)
        prepared = self.spawner.prepare(
            name,
            kind,
            restarted=restarted,
            changed=changed,
            func=record.payload if record else None,
            kwargs=(
                # since: a save made before the reloader watches (it loads the app first) but
                # after the workers imported the code is reloaded as soon as it watches
                {
                    "reload_dirs": list(self.registry.reload_dirs or ()),
                    "since": self._created if not restarted else time.time(),
                }
                if kind == "reloader"
                else (record.kwargs if record else {})
            ),
            ident=record.ident if record else None,
        )
        self.table.ensure(name, server=kind == "server")
        if not candidate and not restarted:  # a restart moved it to RESTARTING already
            self.table.move(name, Event.START)
        proc = self.spawner.launch(prepared, gate)
        self._live.add(proc)
        if not candidate:
            self.procs[name] = proc
            self._given_up.discard(name)
            self.table.started(name, proc.pid, restarted=restarted, server=kind == "server")
        assert proc.output_done is not None
        self._outputs = [o for o in self._outputs if not o.done()]
        self._outputs.append(proc.output_done)
        self.loop.add_reader(proc.conn.fileno(), self._on_readable, proc)
        self.loop.add_reader(proc.process.sentinel, self._on_exit, proc)
        return proc

    # --- messages ------------------------------------------------------------------------------

    def _on_readable(self, proc: ChildProcess) -> None:
        try:
            while proc.conn.poll():
                message = proc.conn.recv()
                try:
                    self._handle(proc, message)
                finally:
                    if isinstance(message, REQUESTS) and message.call_id:
                        self._answer(proc, message.call_id)
        except (EOFError, OSError):
            self.loop.remove_reader(proc.conn.fileno())

    @staticmethod
    def _answer(proc: ChildProcess, call_id: int) -> None:
        """The request ``call_id`` of ``proc`` is handled and its effect on the table published
        (the table publishes every write at once): the caller in the child may return."""
        try:
            (proc.replies or proc.conn).send(Handled(call_id))
        except (OSError, ValueError):
            pass  # it is gone

    def _handle(self, proc: ChildProcess, message: ChildMessage) -> None:
        current = self.procs.get(proc.name) is proc
        match message:
            case Ack():
                proc.last_beat = time.monotonic()
                if current:
                    self.table.move(proc.name, Event.ACK)
                if not proc.acked.done():
                    proc.acked.set_result(None)
            case Serving(serving):
                if current:
                    self.table.set_serving(proc.name, serving)
                if serving and not proc.serving.done():
                    # resolved first: the takeover below records ``serving`` from it; awaiters
                    # only run after this callback, so they still see the table after takeover
                    proc.serving.set_result(None)
                if serving and self._replacements is not None:  # a replacement may take over
                    self._perform(self._replacements.serving(proc, self.stopping))
            case Heartbeat():
                proc.last_beat = time.monotonic()
            case EarlyExit(reason):
                proc.early_reason = reason
            case StateUpdate(values, deleted):
                # the current process of its name, or the replacement started beside it (a
                # reload's, a zero-downtime restart's: every other non-current process was told
                # to stop), whose start-up writes would otherwise be lost when it takes over
                if current or (proc.alive and not proc.expected_stop):
                    self.table.update_custom(proc.name, values, deleted)
            case RestartRequest():
                self.handle_restart(message, proc.kind)
            case ManageRequest():
                self._manage_from_worker(message)
            case ScaleRequest(n):
                self.scale(n)
            case TerminateRequest():
                self.request_stop(0)
            case CallResult(call_id, ok, value, error):
                future = proc.calls.pop(call_id, None)
                if future is not None and not future.done():
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(RuntimeError(f"in {proc.name}: {error}"))
            case _:
                assert_never(message)

    # --- exits ---------------------------------------------------------------------------------

    def _on_exit(self, proc: ChildProcess) -> None:
        self.loop.remove_reader(proc.process.sentinel)
        self._on_readable(proc)  # read what the child said last (e.g. why it failed)
        self.loop.remove_reader(proc.conn.fileno())
        code, reason, was_acked = reap(proc)
        self._live.discard(proc)
        proc.conn.close()
        if proc.replies is not None:
            proc.replies.close()
        from runtime.supervisor.policy import (
            BootFailed,
            Exit,
            Forget,
            GiveUp,
            Heal,
            Ignore,
            short_reason,
        )

        candidate = self._replacements.exited(proc) if self._replacements is not None else None
        if candidate is not None:
            # a replacement that died before taking over: a failed start, never a crash
            if not self.stopping and not proc.expected_stop:
                self._candidate_failed(candidate, reason)
            return
        current = self.procs.get(proc.name) is proc
        if current:
            self.table.exited(proc.name, code, server=proc.kind == "server")
        exit = Exit(
            proc.name,
            proc.kind,
            reason,
            current=current,
            expected=proc.expected_stop,
            acked=was_acked,
            restarted=proc.manual_restart,
            booting=self.booting,
            stopping=self.stopping,
        )
        decision = self.policy.exited(exit)
        match decision:
            case Ignore():
                pass
            case BootFailed(failure):
                self.boot_failure = failure
                self._changed.set()
            case GiveUp():
                self._given_up.add(proc.name)
                logger.error(
                    "Worker %s [%s] failed to start after a restart (%s; its output is above); "
                    "leaving it FAILED.%s",
                    proc.name,
                    proc.pid,
                    short_reason(reason),
                    self._restart_hint(proc.name),
                )
                self._check_servers_left(f"{proc.name} failed to start after a restart")
            case Heal():
                self.loop.create_task(self._heal(proc))
            case Forget():
                self._drop_untracked(proc.name)
            case _:
                assert_never(decision)

    def _drop_untracked(self, name: str) -> None:
        record = self.registry.forget(name, lambda n: n in self.procs and self.procs[n].alive)
        if record is None:
            return
        for n in record.names:
            self.table.remove(n)
            self.procs.pop(n, None)
        logger.info("Removed worker %s", record.ident)

    async def _heal(self, proc: ChildProcess) -> None:
        if proc.output_done is not None:
            try:
                await asyncio.wait_for(asyncio.shield(proc.output_done), 0.5)
            except asyncio.TimeoutError:
                pass
        name = proc.name
        lines = self.spawner.tail(proc, 10)  # this process's own lines, not its predecessors'
        last = "\n".join(f"    {line}" for line in lines) if lines else "    (none)"
        why = "its event loop was blocked" if proc.hung else f"exit code {proc.exitcode}"
        logger.error(
            "Worker %s [%s] died unexpectedly (%s). Last output:\n%s", name, proc.pid, why, last
        )
        from runtime.supervisor.policy import GiveUp, HealAfter

        match self.policy.crashed(name, time.monotonic()):
            case GiveUp(_, crashes):
                if self.stopping or self.procs.get(name) is not proc:
                    return
                self._given_up.add(name)
                logger.error(
                    "Worker %s crashed %d times within %.0f s; leaving it FAILED.%s",
                    name,
                    crashes,
                    self.policy.crash_window,
                    self._restart_hint(name, "Fix the cause above"),
                )
                self._check_servers_left(
                    f"{name} crashed {crashes} times within {self.policy.crash_window:.0f} s"
                )
                return
            case HealAfter(delay):
                await asyncio.sleep(delay)
        if self.stopping or self.procs.get(name) is not proc:
            return
        if name not in self.server_names and proc.kind != "reloader":
            return
        logger.info("Replacing worker %s", name)
        self.table.move(name, Event.RESTART)
        self._start(name, restarted=True)

    def _serving_left(self) -> bool:
        """Some server worker still serves or will again (alive, starting, or being replaced):
        not every one of them was left FAILED."""
        return any(name not in self._given_up for name in self.server_names)

    def _can_recover(self) -> str:
        """Why FAILED workers can still be started again while the server runs ("" if not): an
        open console (its restart()) or auto-reload (a save restarts every server worker). The
        inspector (``INSPECTOR``, an operator's tool, also in production) does not count: it
        runs as the console hook, but a server with no worker is better restarted from outside."""
        console = self._console is not None and not self._console.done()
        if console and not self.app.config.get("INSPECTOR"):
            return "the console is open: fix the cause, then restart() the workers there"
        if self.registry.reloads:
            return "auto-reload is on: fix the cause and save, and the workers start again"
        return ""

    def _restart_hint(self, name: str, fix: str = "Fix the cause") -> str:
        """The end of a "leaving it FAILED" line: how to start it again, when something can."""
        if not self._serving_left() and not self._can_recover():
            return ""  # the server stops (_check_servers_left says why)
        hint = f" {fix}, then restart it with app.m.restart({name!r}) or the console's restart()"
        return hint + (", or save a file (auto-reload)." if self.registry.reloads else ".")

    def _check_servers_left(self, why: str) -> None:
        """After a server worker was left FAILED: when none is left to serve, the server would
        hold its port and accept connections it never answers. So it stops with exit code 1 (a
        supervisor such as systemd, Docker or Kubernetes then restarts it), unless the workers
        can still be started again from here (:meth:`_can_recover`)."""
        if self.stopping or self._serving_left():
            return
        recover = self._can_recover()
        if recover:
            logger.error(
                "No server worker is left to serve (%s): connections wait unanswered. The "
                "server keeps running because %s.",
                why,
                recover,
            )
            return
        logger.error(
            "No server worker is left to serve (%s). Stopping the server with exit code 1, so "
            "that what runs it (systemd, Docker, Kubernetes) can start it again.",
            why,
        )
        self.request_stop(1)

    async def _watch_heartbeats(self) -> None:
        period = max(0.05, min(self.heartbeat_interval, self.heartbeat_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for name in list(self.server_names):
                proc = self.procs.get(name)
                if (
                    proc is None
                    or not proc.alive
                    or proc.hung
                    or proc.expected_stop
                    or not proc.acked.done()
                ):
                    continue
                if now - proc.last_beat > self.heartbeat_timeout:
                    logger.error(
                        "Worker %s [%s]: event loop blocked for more than %.1f s (no heartbeat); "
                        "replacing it",
                        name,
                        proc.pid,
                        self.heartbeat_timeout,
                    )
                    proc.hung = True
                    proc.signal(signal.SIGKILL)

    # --- restart / scale / stop ----------------------------------------------------------------

    def restart(
        self,
        process_names: Iterable[str] | None = None,
        restart_order: RestartOrder = RestartOrder.SHUTDOWN_FIRST,
        changed: Iterable[str] = (),
    ) -> list[ChildProcess]:
        """Restart the named processes (all transient ones when none); returns the new processes."""
        if self.stopping:
            return []
        given = list(process_names or ())
        if not given:
            names = self.registry.global_restart()
        else:  # by name (registry.py rule 4): durable processes only once they ended
            names, refused = self.registry.select(given, self.table.state)
            for name, state in refused:
                logger.error(
                    "Cannot restart process %s because it is not in a final state. "
                    "Current state is: %s.",
                    name,
                    state.name,
                )
            if not names:
                logger.error("Failed to restart processes: %s", ", ".join(given))
                return []
        changed = tuple(changed)
        zero = restart_order is RestartOrder.STARTUP_FIRST
        first = set(names) if zero else self._start_first_while_broken(names)
        return [self._restart_one(name, name in first, changed) for name in names]

    def _start_first_while_broken(self, names: list[str]) -> set[str]:
        """The server workers a shutdown-first restart replaces start-first, because the last
        reload failed: the code on disk does not start, and stopping the workers that serve the
        previous code first would leave none (development.md: a save that breaks the code never
        takes the server down). A replacement that fails leaves its old worker serving."""
        broken = self._replacements.broken if self._replacements is not None else None
        if broken is None:
            return set()
        serving = {
            name
            for name in names
            if (old := self.procs.get(name)) is not None and old.alive and old.kind == "server"
        }
        if serving:
            logger.warning(
                "The last reload failed (%s): restarting %s start-first, so that the running "
                "workers keep serving if the code on disk still does not start",
                broken,
                ", ".join(sorted(serving)),
            )
        return serving

    def handle_restart(self, request: RestartRequest, sender: ProcessKind = "server") -> None:
        """A restart request from a child. The reloader's (or any global request carrying changed
        files) is a reload: start-first, all-or-nothing (:meth:`reload`)."""
        global_request = request.all_workers and not request.names
        if sender == "reloader" or (global_request and request.changed):
            self.reload(request.changed)
            return
        order = RestartOrder.STARTUP_FIRST if request.zero_downtime else RestartOrder.SHUTDOWN_FIRST
        names = None if global_request else request.names
        self.restart(names, order, request.changed)

    def _restart_one(
        self, name: str, zero_downtime: bool, changed: tuple[str, ...]
    ) -> ChildProcess:
        old = self.procs.get(name)
        if zero_downtime and old is not None and old.alive and old.kind == "server":
            # start-first: the old process keeps serving, and keeps its table entry, until the
            # replacement serves (then _commit); a replacement that fails changes nothing
            self._perform(self.replacements.supersede(name, self.stopping))
            return self._launch(name, changed, None)
        self.table.move(name, Event.RESTART)
        if old is not None and old.alive:
            old.expected_stop = True
            old.signal(signal.SIGTERM)
        new = self._start(name, restarted=True, changed=changed)
        new.manual_restart = True
        return new

    def reload(self, changed: Iterable[str] = ()) -> asyncio.Future[list[ChildProcess]]:
        """The global restart of an auto-reload: start every server replacement beside the old
        workers, retire the old ones once all serve, then restart transient custom processes.
        New code that fails to start leaves the old workers serving (reload.md, console.md 5).

        Returns a future: the new processes once committed, or ``WorkerBootError`` on failure.
        """
        waiter: asyncio.Future[list[ChildProcess]] = self.loop.create_future()
        if self.stopping:
            waiter.set_exception(WorkerBootError("the server is stopping"))
            waiter.exception()
            return waiter
        self._emit(Progress("reload"))
        self._perform(self.replacements.reload(changed, waiter))
        return waiter

    # --- start-first replacements (the decisions are replacements.py's) -----------------------

    def _perform(self, effects: Iterable[Effect]) -> None:
        from runtime.supervisor.replacements import (
            Commit,
            Done,
            Drop,
            Launch,
            Report,
            Restart,
            Show,
            Stop,
        )

        for effect in effects:
            match effect:
                case Launch(name, changed, generation):
                    self._launch(name, changed, generation)
                case Stop(candidate, drop):
                    if drop and candidate.gate is not None:
                        candidate.gate.drop()
                    self._stop_candidate(candidate.proc)
                case Commit(name, candidate):
                    self._commit(name, candidate)
                case Restart(name, changed):
                    self.replacements.committed(self._restart_one(name, False, changed))
                case Report(message, after):
                    self._after_output(after, functools.partial(logger.error, "%s", message))
                case Show(candidate):
                    if candidate.gate is not None:
                        candidate.gate.open()
                case Drop(candidate):
                    if candidate.gate is not None:
                        candidate.gate.drop()
                case Done():
                    self._emit(Progress(None))
                case _:
                    assert_never(effect)

    def _launch(self, name: str, changed: tuple[str, ...], generation: int | None) -> ChildProcess:
        """Start a replacement beside the current process of ``name`` and watch it."""
        gate = OutputGate() if generation is not None else None
        proc = self._start(name, restarted=True, changed=changed, candidate=True, gate=gate)
        if generation is None:
            proc.manual_restart = True
        from runtime.supervisor.replacements import Candidate

        candidate = Candidate(proc, generation, gate)
        self.replacements.add(name, candidate)
        self.loop.create_task(self._watch_candidate(name, candidate))
        return proc

    async def _watch_candidate(self, name: str, candidate: Candidate) -> None:
        """Until the replacement serves (then it may take over) or misses the ack limit."""
        proc = candidate.proc
        try:
            await asyncio.wait_for(asyncio.shield(proc.serving), self.ack_timeout)
        except asyncio.TimeoutError:
            if self.replacements.timed_out(name, candidate, self.stopping):
                self._stop_candidate(proc)
                self._candidate_failed(
                    candidate, f"not ready within {self.ack_timeout:g} s (WORKER_ACK_TIMEOUT)"
                )
            return
        except WorkerBootError:
            return  # it exited: _on_exit reported it

    def _candidate_failed(self, candidate: Candidate, reason: str) -> None:
        name = candidate.proc.name
        old = self.procs.get(name)
        old_pid = old.pid if old is not None else None
        self._perform(self.replacements.failed(name, candidate, reason, old_pid, self.stopping))

    def _after_output(self, proc: ChildProcess | None, log: Callable[[], None]) -> None:
        """Run ``log`` once ``proc``'s output is written (at most 0.5 s later), so that a line
        saying "its output is above" comes after that output."""
        done = proc.output_done if proc is not None else None
        if done is None or done.done():
            log()
            return

        async def later() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), 0.5)
            log()

        self.loop.create_task(later())

    def _stop_candidate(self, proc: ChildProcess) -> None:
        """Stop a replacement that will not take over: SIGTERM, SIGKILL after 2 s."""
        proc.expected_stop = True
        proc.signal(signal.SIGTERM)

        def kill() -> None:
            proc.signal(signal.SIGKILL)

        self.loop.call_later(2.0, kill)

    def _commit(self, name: str, candidate: Candidate) -> None:
        """The replacement takes over ``name``: it becomes current and the old one is retired."""
        new = candidate.proc
        old = self.procs.get(name)
        if candidate.gate is not None:
            candidate.gate.open()
        self.procs[name] = new
        self._given_up.discard(name)
        serving = new.serving.done() and new.serving.exception() is None
        self.table.took_over(name, new.pid, serving=serving)
        self.replacements.committed(new)
        if old is not None and old is not new and old.alive:
            old.expected_stop = True
            old.signal(signal.SIGTERM)

    # --- scale / stop / calls ------------------------------------------------------------------

    def scale(self, num_workers: Any) -> list[ChildProcess]:
        """Ask for ``num_workers`` server workers; invalid values are logged and ignored."""
        if self.stopping:
            return []
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            logger.error(
                "Cannot scale to %r workers: the number of server workers must be an integer of at "
                "least 1; the server keeps running with %d",
                num_workers,
                len(self.server_names),
            )
            return []
        current = len(self.server_names)
        if num_workers == current:
            logger.info("No change needed. There are already %d workers.", current)
            return []
        logger.info("Scaling from %d to %d workers", current, num_workers)
        started: list[ChildProcess] = []
        if num_workers > current:
            for _ in range(num_workers - current):
                started.append(self._start(self._add_server()))
            return started
        for name in self.registry.shrink(current - num_workers):
            proc = self.procs.pop(name, None)
            self.table.remove(name)
            self._given_up.discard(name)
            if proc is not None:
                proc.expected_stop = True
                proc.signal(signal.SIGINT)
        self._check_servers_left(f"scaled down to {num_workers}, and the rest had failed")
        return started

    def request_stop(self, code: int = 0) -> None:
        if not self._stop.is_set():
            self.exit_code = code
            self._stop.set()
            self._changed.set()

    def terminate(self) -> None:
        """Shut everything down gracefully, as on SIGINT (exit code 0)."""
        self.request_stop(0)

    shutdown_server = terminate

    def kill_all(self) -> None:
        """SIGKILL every child and tell the listeners once (:class:`Killing`). Called from the
        main process's signal handler (a second Ctrl+C): nothing here waits or takes a lock."""
        for proc in list(self._live):
            proc.expected_stop = True
            proc.signal(signal.SIGKILL)
        if not self.killed:
            self.killed = True
            self._emit(Killing())

    def alive(self) -> list[ChildProcess]:
        return [p for p in self._live if p.alive]

    async def call(
        self, name: str, request_for: Callable[[int], CallRequest], timeout: float
    ) -> Any:
        proc = self.procs.get(name)
        if proc is None or not proc.alive or proc.kind != "server":
            live = [n for n in self.server_names if n in self.procs and self.procs[n].alive]
            raise LookupError(
                f"No live server worker named {name!r}; live workers: {', '.join(live) or 'none'}"
            )
        call_id = next(self._call_ids)
        future: asyncio.Future[Any] = self.loop.create_future()
        proc.calls[call_id] = future
        proc.conn.send(request_for(call_id))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            proc.calls.pop(call_id, None)

    # --- the main loop -------------------------------------------------------------------------

    def _start_all(self) -> None:
        for name in self.registry.start_order():
            self._start(name)

    async def _wait_acks(self) -> str:
        deadline = self.loop.time() + self.ack_timeout
        while True:
            if self._stop.is_set():
                return "stopped"
            if self.boot_failure:
                return "failed"
            if all(n in self.procs and self.procs[n].acked.done() for n in self.server_names):
                return "ok"
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                pending = [n for n in self.server_names if not self.procs[n].acked.done()]
                self.boot_failure = (
                    f"{', '.join(pending)} did not acknowledge start-up within "
                    f"{self.ack_timeout:g} s (WORKER_ACK_TIMEOUT); slow imports or "
                    "before_server_start listeners count against it"
                )
                return "failed"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def run(self, console: Callable[[], Any] | None = None, *, early: bool = False) -> int:
        """Start everything, wait for acks, supervise until told to stop, shut down. Exit code.

        ``console`` starts once the workers serve, or with ``early`` as soon as they are started
        (``--repl``: its prompt shows while they boot; it waits for :attr:`ready` itself before
        it runs anything that needs them). Every first fork is made by then, so the console's
        threads never meet a fork of the main process."""
        try:
            return await self._run(console, early)
        finally:
            self.published.close()  # the children still running keep their own maps

    async def _run(self, console: Callable[[], Any] | None, early: bool) -> int:
        self.running = True
        if self.fork_main:
            preload_for_forks()
        try:
            self._start_all()
        except Exception as exc:
            logger.error("Could not start worker processes: %s", exc)
            self.boot_failure = str(exc)
        console_task: asyncio.Task[Any] | None = None
        if console is not None and early and not self.boot_failure:
            console_task = self._start_console(console)
        outcome = "failed" if self.boot_failure else await self._wait_acks()
        if outcome == "failed":
            await self._end_console(console_task)  # the terminal is restored before the error
            logger.error("Start-up failed: %s. Stopping.", self.boot_failure)
            self.stopping = True
            self.kill_all()
            await self._wait_exits(5.0)
            return 1
        self.booting = False
        watcher = self.loop.create_task(self._watch_heartbeats())
        if outcome == "ok":
            await self._wait_serving(self.ack_timeout)
            if console is not None or not self.fork_main:
                start_early(self.ctx)  # the console's threads make forking the main unsafe
            self.ready.set()
            if console is not None and console_task is None:
                console_task = self._start_console(console)
            await self._stop.wait()
        watcher.cancel()
        await self.shutdown()
        if console_task is not None and not console_task.done():
            console_task.cancel()
        return self.exit_code

    def _start_console(self, console: Callable[[], Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self.loop.create_task(console())
        task.add_done_callback(self._console_done)
        self._console = task
        return task

    async def _end_console(self, task: asyncio.Task[Any] | None) -> None:
        """Cancel an early console that is still open and let it restore the terminal."""
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task], timeout=2.0)

    async def _wait_serving(self, timeout: float) -> None:
        """After the acks: until every server worker accepts (after_server_start done), a stop is
        requested, or ``timeout``."""
        deadline = self.loop.time() + timeout
        while not self._stop.is_set():
            pending = [
                n for n in self.server_names if n in self.procs and not self.procs[n].serving.done()
            ]
            remaining = deadline - self.loop.time()
            if not pending or remaining <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _console_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("The console failed: %s", exc, exc_info=exc)
            self.request_stop(1)
            return
        result = task.result()
        self.request_stop(result if isinstance(result, int) else 0)

    async def shutdown(self) -> None:
        self.stopping = True
        self._stop.set()
        if self._replacements is not None:  # its candidates are stopped with the rest
            self._perform(self._replacements.shutdown())
        for proc in self.alive():
            proc.expected_stop = True
            if self.procs.get(proc.name) is proc:
                self.table.move(proc.name, Event.TERMINATE)
            proc.signal(signal.SIGINT)
        limit = None if self.graceful is None else self.graceful + 5.0
        if not await self._wait_exits(limit):
            logger.error("Worker shutdown timed out. Killing the remaining processes.")
            self.kill_all()
            await self._wait_exits(5.0)

    async def _wait_exits(self, timeout: float | None) -> bool:
        pending = [p.exited for p in self.alive()]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        # let output readers drain
        outputs = [o for o in self._outputs if not o.done()]
        if outputs:
            await asyncio.wait(outputs, timeout=0.5)
        return not still
