"""Auto-reload: the reloader process body and the manager's reload bookkeeping.

Two independent parts:

* :func:`reloader_main` is the body of the durable managed process ``Vivace-Reloader-0``
  (reload.md sections 2-6, lifecycle.md 3.3). It loads the app itself, starts native watchers
  (:mod:`runtime.supervisor.watch`: the project's ``.py`` files, the reload dirs and a Django or
  Flask app's template directories, read from the loaded app), runs ``reload_process_start``
  (every change from then on is seen) and, per batch, runs ``before_reload_trigger``, calls
  ``send(RestartRequest(...))`` and runs ``after_reload_trigger(app, changed)``. SIGINT/SIGTERM
  only set a ``threading.Event``; the loop notices it within 50 ms, runs ``reload_process_stop``
  and returns 0. The manager starts it with the ``send`` callable of its choice (a pipe's
  ``send``, a queue's ``put``): the reloader knows nothing about processes or HTTP.

* :class:`ReloadCoordinator` is the pure decision logic the manager runs for such a request:
  start every server replacement first, retire the old workers only once *all* replacements
  acked, restart transient custom processes with ``config={"RELOADED_FILES": ...}`` at that
  moment, and when the new code fails (import error, exception in ``before_server_start``, no
  ack) stop the replacements, keep the old workers serving, report the traceback once, and fold
  the changed files into the next attempt. It returns typed actions; the manager performs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from runtime.appref import AppRef
from runtime.hosting import Hosted
from runtime.loader import load_app
from runtime.log import reload_logger
from runtime.supervisor.messages import RestartRequest
from runtime.supervisor.watch import (
    Batcher,
    ChangeStream,
    WatchSet,
    build_watch_set,
    compile_globs,
    precedence_line,
)

__all__ = [
    "RELOADER_NAME",
    "Action",
    "ListenerRunner",
    "ProcessView",
    "ReloadCoordinator",
    "ReportFailure",
    "RestartCustom",
    "RetireOld",
    "StartReplacement",
    "StopReplacement",
    "make_restart_request",
    "reloader_main",
]

RELOADER_NAME = "Vivace-Reloader-0"

#: ``run(app, event_name, loop, changed)``: runs one reload event's listeners in this process.
ListenerRunner = Callable[[Any, str, asyncio.AbstractEventLoop, "set[str] | None"], None]


# --- the request sent to the manager ------------------------------------------------------------


def make_restart_request(changed: Iterable[str]) -> RestartRequest:
    """The message a reload sends: restart all transient processes, start-first, with the paths."""
    return RestartRequest(
        names=(), all_workers=True, changed=tuple(sorted(changed)), zero_downtime=True
    )


# --- loading the app and running its listeners --------------------------------------------------


def _lifecycle_runner() -> ListenerRunner:
    """The hosted app's ``reload_stage`` behind the :data:`ListenerRunner` shape."""

    def run(app: Hosted, event: str, loop: asyncio.AbstractEventLoop, changed: Any) -> None:
        app.reload_stage(event, loop, changed)

    return run


def _roots_for(ref: AppRef, app: Hosted) -> list[str]:
    """The project: the working directory and the directory of the app's top-level package or
    script."""
    roots = [ref.cwd or os.getcwd()]
    if ref.path:
        roots.append(os.path.dirname(os.path.abspath(ref.path)))
    elif ref.module:
        top = sys.modules.get(ref.module.split(".")[0])
        file = getattr(top, "__file__", None)
        if isinstance(file, str):
            roots.append(os.path.dirname(os.path.abspath(file)))
    return roots


def _template_dirs(app: Hosted) -> list[str]:
    """A Django or Flask app's template directories (``ForeignApp.template_dirs``): its framework
    caches templates, so an edit is served once the workers restart. (Asked of the hosted object:
    the supervisor knows what it serves only through ``runtime.hosting``; a vivace app has none.)"""
    dirs = getattr(app, "template_dirs", None)
    return [str(d) for d in dirs()] if callable(dirs) else []


def _app_reload_dirs(app: Hosted) -> list[str]:
    """Reload dirs the app itself declares (``app.run(reload_dir=...)``), when it exposes them."""
    for holder in (app, getattr(app, "state", None)):
        dirs = getattr(holder, "reload_dirs", None)
        if isinstance(dirs, str):
            return [dirs]
        if isinstance(dirs, Iterable):
            return [str(d) for d in dirs]
    return []


@contextlib.contextmanager
def _stop_on_signals(stop_event: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop_event`` (and nothing else); the previous handlers come back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def reloader_main(
    target: AppRef,
    send: Callable[[RestartRequest], object],
    *,
    reload_dirs: Sequence[str] = (),
    stop_event: threading.Event | None = None,
    run_listeners: ListenerRunner | None = None,
    app: Hosted | None = None,
    step: int = 10,
    batcher: Batcher | None = None,
    on_watching: Callable[[WatchSet], object] | None = None,
    since: float | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    extra_files: Sequence[str] = (),
) -> int:
    """Run the reloader until SIGINT/SIGTERM (or ``stop_event``); returns the exit code.

    ``since``: when the workers were started; a module file modified after it, before the
    watchers went live, is reloaded at once (the reloader loads the app before it watches, and
    the workers may serve the older code by then).

    ``send`` receives one :func:`make_restart_request` value per batch of changes. ``app`` skips
    loading (for a caller that already holds it); ``run_listeners`` replaces
    ``runtime.lifecycle.run_listeners_sync``; ``on_watching`` is called with the watch set once the
    native watchers are live (a readiness signal for tests and benchmarks).

    ``include`` / ``exclude`` are ``--reload-include`` / ``--reload-exclude`` globs (checked by
    the command line already); ``extra_files`` are watched too (the ``--env-file`` files).
    """
    stop = stop_event or threading.Event()
    runner = run_listeners or _lifecycle_runner()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    with _stop_on_signals(stop):
        if app is None:
            try:
                app = load_app(target)
            except Exception:
                reload_logger.error(
                    "The reloader could not load the app; fix the error and restart vivace:\n%s",
                    traceback.format_exc(),
                )
                return 1
        loop = asyncio.new_event_loop()
        try:
            return _watch_and_trigger(
                target,
                app,
                send,
                reload_dirs,
                stop,
                runner,
                loop,
                step,
                batcher,
                on_watching,
                since,
                (include, exclude, extra_files),
            )
        finally:
            loop.close()


def _watch_and_trigger(
    target: AppRef,
    app: Hosted,
    send: Callable[[RestartRequest], object],
    reload_dirs: Sequence[str],
    stop: threading.Event,
    runner: ListenerRunner,
    loop: asyncio.AbstractEventLoop,
    step: int,
    batcher: Batcher | None,
    on_watching: Callable[[WatchSet], object] | None,
    since: float | None = None,
    patterns: tuple[Sequence[str], Sequence[str], Sequence[str]] = ((), (), ()),
) -> int:
    include, exclude, extra_files = patterns
    dirs = list(dict.fromkeys([*reload_dirs, *_app_reload_dirs(app)]))
    extra = [*([target.path] if target.path else []), *extra_files]
    cwd = target.cwd or os.getcwd()
    # The roots are the project: every .py file below them reloads, imported here or not. This
    # process imports the app once, but the workers import more later (a Django URLconf on the
    # first request, a module imported inside a handler, a router written during the session), so
    # the reloader's sys.modules cannot say what they run (watch.WatchSet explains the rule).
    watch_set = build_watch_set(
        roots=_roots_for(target, app),
        reload_dirs=dirs,
        extra_files=extra,
        missing_level=logging.DEBUG,  # the main process already warned (launch.check_reload_dirs)
        include_globs=compile_globs(include, cwd, "--reload-include"),
        exclude_globs=compile_globs(exclude, cwd, "--reload-exclude"),
        template_dirs=_template_dirs(app),
    )
    code = 0
    stream = ChangeStream(watch_set, stop, step=step, batcher=batcher)
    # The native watchers go live first, so that every change made from the moment
    # reload_process_start runs is seen (a listener that regenerates files in a reload dir
    # correctly causes a reload: the workers started before it).
    stream.start()
    # the rules in force, on one line (at INFO when the command line gave patterns)
    level = logging.INFO if include or exclude else logging.DEBUG
    reload_logger.log(level, "%s", precedence_line(watch_set))
    try:
        runner(app, "reload_process_start", loop, None)
    except Exception:
        stream.close()
        reload_logger.exception("reload_process_start failed; the reloader stops")
        return 1
    try:
        if on_watching is not None:
            on_watching(watch_set)
        missed = _modified_since(watch_set, since) if since is not None else set()
        if missed and not _trigger(app, send, missed, runner, loop):
            return 1
        for changed in stream:
            if not _trigger(app, send, set(changed), runner, loop):
                code = 1
                break
    finally:
        stream.close()
        runner(app, "reload_process_stop", loop, None)
    return code


def _modified_since(watch_set: WatchSet, since: float) -> set[str]:
    """The watched module files modified after ``since`` (saved before the watchers went live)."""
    found = set()
    for path in watch_set.module_files:
        try:
            if os.stat(path).st_mtime > since:
                found.add(path)
        except OSError:
            continue
    return found


def _trigger(
    app: Hosted,
    send: Callable[[RestartRequest], object],
    changed: set[str],
    runner: ListenerRunner,
    loop: asyncio.AbstractEventLoop,
) -> bool:
    """One batch: ``before_reload_trigger`` -> restart request -> ``after_reload_trigger``.

    False when the request could not be sent (the manager is gone): the reloader then stops.
    """
    reload_logger.debug("Change detected: %s", ", ".join(sorted(changed)))
    try:
        runner(app, "before_reload_trigger", loop, None)
    except Exception:
        reload_logger.exception("A before_reload_trigger listener failed; reloading anyway")
    try:
        send(make_restart_request(changed))
    except (OSError, EOFError) as exc:
        reload_logger.error("Cannot reach the worker manager (%s); the reloader stops", exc)
        return False
    try:
        runner(app, "after_reload_trigger", loop, set(changed))
    except Exception:
        reload_logger.exception("An after_reload_trigger listener failed")
    return True


# --- what the manager does with a reload request ------------------------------------------------


@dataclass(frozen=True)
class ProcessView:
    """What the coordinator needs to know about one managed process."""

    name: str
    server: bool
    transient: bool
    restartable: bool = True


@dataclass(frozen=True)
class StartReplacement:
    """Start a new server process for ``name`` beside the old one (which keeps serving).

    The new worker sees ``reloaded_files`` (comma-joined) in ``app.config.RELOADED_FILES``;
    report its ack with
    :meth:`ReloadCoordinator.acked` and its failure with :meth:`ReloadCoordinator.failed`, quoting
    ``generation``.
    """

    name: str
    reloaded_files: tuple[str, ...]
    generation: int


@dataclass(frozen=True)
class StopReplacement:
    """Stop the uncommitted replacement of ``name`` from ``generation`` (SIGTERM, then kill)."""

    name: str
    generation: int


@dataclass(frozen=True)
class RetireOld:
    """The replacement of ``name`` took over: gracefully stop the old process (SIGTERM)."""

    name: str
    generation: int


@dataclass(frozen=True)
class RestartCustom:
    """Restart transient custom process ``name`` (shutdown-first), passing
    ``config={"RELOADED_FILES": ...}`` (``reloaded_files`` comma-joined) when its function accepts
    ``config`` or ``**kwargs``."""

    name: str
    reloaded_files: tuple[str, ...]


@dataclass(frozen=True)
class ReportFailure:
    """Print this traceback once (the first failure of a reload attempt)."""

    name: str
    traceback: str
    changed: tuple[str, ...]


Action = StartReplacement | StopReplacement | RetireOld | RestartCustom | ReportFailure


@dataclass
class _Attempt:
    generation: int
    changed: frozenset[str]
    pending: set[str]
    acked: set[str]
    customs: tuple[str, ...]


class ReloadCoordinator:
    """Start-first, all-or-nothing reloads, as a state machine with no I/O.

    The manager calls :meth:`request` on every reload request, :meth:`acked` / :meth:`failed` when a
    replacement acks or dies (or misses the ack limit) and :meth:`cancel` on shutdown, and performs
    the returned actions in order.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._attempt: _Attempt | None = None
        self._uncommitted: set[str] = set()
        self.last_failure: ReportFailure | None = None

    @property
    def in_progress(self) -> bool:
        return self._attempt is not None

    @property
    def uncommitted(self) -> frozenset[str]:
        """Changed files not yet served by committed workers (e.g. after a failed attempt)."""
        return frozenset(self._uncommitted)

    def request(self, changed: Iterable[str], processes: Sequence[ProcessView]) -> list[Action]:
        """A reload request: supersede any attempt in progress and start a new one."""
        actions: list[Action] = self._abandon()
        self._uncommitted |= set(changed)
        self.generation += 1
        reloaded = tuple(sorted(self._uncommitted))
        servers = [p.name for p in processes if p.server and p.restartable]
        customs = tuple(p.name for p in processes if not p.server and p.transient and p.restartable)
        attempt = _Attempt(
            self.generation, frozenset(self._uncommitted), set(servers), set(), customs
        )
        self._attempt = attempt
        actions += [StartReplacement(n, reloaded, attempt.generation) for n in servers]
        if not servers:
            actions += self._commit()
        return actions

    def acked(self, name: str, generation: int) -> list[Action]:
        attempt = self._attempt
        if attempt is None or generation != attempt.generation or name not in attempt.pending:
            return []  # a superseded or failed attempt: its replacement was already stopped
        attempt.pending.discard(name)
        attempt.acked.add(name)
        return self._commit() if not attempt.pending else []

    def failed(self, name: str, generation: int, error: str) -> list[Action]:
        attempt = self._attempt
        if attempt is None or generation != attempt.generation:
            return []
        if name not in attempt.pending and name not in attempt.acked:
            return []
        self._attempt = None
        others = sorted((attempt.pending | attempt.acked) - {name})
        report = ReportFailure(name, error, tuple(sorted(attempt.changed)))
        self.last_failure = report
        return [*(StopReplacement(n, attempt.generation) for n in others), report]

    def cancel(self) -> list[Action]:
        """Shutdown while a reload is in progress: stop every uncommitted replacement."""
        return self._abandon()

    def _abandon(self) -> list[Action]:
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return []
        names = sorted(attempt.pending | attempt.acked)
        return [StopReplacement(n, attempt.generation) for n in names]

    def _commit(self) -> list[Action]:
        attempt, self._attempt = self._attempt, None
        assert attempt is not None
        reloaded = tuple(sorted(attempt.changed))
        self._uncommitted -= attempt.changed
        self.last_failure = None
        actions: list[Action] = [RetireOld(n, attempt.generation) for n in sorted(attempt.acked)]
        actions += [RestartCustom(n, reloaded) for n in attempt.customs]
        return actions
