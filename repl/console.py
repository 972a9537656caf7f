"""``Console``: one console session's state (namespace, evaluator, runner, client, toolbar).

The entry modes (``repl.session``) build a ``Console`` for what the process serves, run statements
through it, and close it; the editor (``repl.ui``) reads its namespace and toolbar.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from repl.evaluate import Evaluator, LoopRunner, Outcome, Runner, ThreadRunner
from repl.namespace import BUILTIN_NAMES, ExitConsole, Help, banner, describe, user_entries
from repl.native import Native, collect, one_line, scopes
from repl.refresh import CodeFingerprint
from repl.requests import bind_do
from repl.routes import RoutesView
from repl.workers import Bridge, Logs, Summary, Workers, ready_count, rows
from runtime.hosting import ASGIHosted, Hosted
from runtime.options import RunOptions

if TYPE_CHECKING:
    from prompt_toolkit.formatted_text import StyleAndTextTuples

    from repl.asgi import InProcessApp

__all__ = ["Console"]


#: how long opening the console waits for the app's lifespan start-up before adding the names
STARTUP_WAIT = 10.0


def _listening_url(host: str) -> str | None:
    """The URL of this process's listening TCP socket on ``host`` (``--single-process -p 0``)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        try:
            if sock.type != socket.SOCK_STREAM or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue
            address, port = sock.getsockname()[:2]
            if address == host or host in ("", "0.0.0.0", "::"):
                shown = f"[{address}]" if ":" in address else address
                return f"http://{shown}:{port}"
        except OSError:
            continue
        finally:
            sock.close()
    return None


def _split_url(url: str) -> tuple[str, str | None]:
    if url.startswith("http://unix:"):
        return "http://localhost", url.removeprefix("http://unix:")
    return url, None


class Console:
    """One console session's state: namespace, evaluator, runner, client, toolbar state.

    ``host`` is what the process serves (``runtime.hosting.Hosted``); the namespace's ``app`` is
    ``host.target``, the framework's own object (the vivace ``App``, the ``FastAPI`` instance, the
    ``Flask`` app, Django's handler). ``do()`` goes through ``App.handle`` for a vivace app and
    through the hosted ASGI callable otherwise (``repl.asgi.InProcessApp``).
    """

    def __init__(
        self,
        host: Hosted,
        control: Any,
        options: RunOptions,
        *,
        exit_hint: str,
        url: str | None = None,
        runner_name: str = "vivace-console",  # attach: each session's threads are named apart
    ) -> None:
        self.host = host
        self.control = control
        self.options = options
        self.exit_hint = exit_hint
        self.loop = asyncio.get_running_loop()
        self.namespace: dict[str, Any] = {"__name__": "__console__", "__builtins__": builtins}
        self.evaluator = Evaluator(self.namespace)
        self.runner: Runner
        self.bridge: Bridge | None = None
        self.progress = ""
        self.progress_at = 0.0
        self.stale = False  # the workers run newer code than this process's app
        self.forced = False  # the shutdown was forced (a second Ctrl+C): nothing waits
        self._code: CodeFingerprint | None = None  # what this process's app was imported from
        self._server_pids: dict[str, Any] = {}
        self._unsubscribe: Any = None
        self._inprocess: InProcessApp | None = None
        self.url = self._server_url(control, options, url)
        base, uds = _split_url(self.url)
        wait_ready: Callable[[float], bool] | None = None
        if control is None:
            self.runner = LoopRunner(self.evaluator)
        else:
            bridge = Bridge(self.loop)
            self.bridge = bridge
            self.runner = ThreadRunner(self.evaluator, runner_name)

            def wait_ready(timeout: float) -> bool:
                try:
                    result = bridge.wait(control.wait_ready(timeout), timeout + 1)
                except TimeoutError:
                    return False
                return result is not False

            add_listener = getattr(control, "add_listener", None)
            if callable(add_listener):
                self._code = CodeFingerprint(options.target.module or "")
                self._server_pids = self._pids()
                self._unsubscribe = add_listener(self._on_progress)
        from repl.client import LiveClient
        from repl.history import History, set_server

        # history, replay, the listeners for do() (issue 14) ---------------------------------
        self.history = History()  # the session's, not the app's: refresh() and reloads keep it
        set_server(base if not uds else "http://localhost", uds)
        self._listeners: Any = None  # repl.listeners.ServerListeners, made by the first do()
        # ------------------------------------------------------------------------------------
        self.client = LiveClient(
            base, uds=uds, wait_ready=wait_ready, protected_loop=self.loop, history=self.history
        )
        self.evaluator.after_statement.append(self.client.settle)
        self.on_change: Callable[[], None] = lambda: None
        self.native = Native()
        self._native_names: dict[str, Any] = {}
        self.native_notes: list[str] = []
        self._prepared = False
        self._workers_ready = control is None
        self._end_scopes: Callable[[], None] | None = None
        self._build_namespace()
        self._set_scopes()

    @staticmethod
    def _server_url(control: Any, options: RunOptions, url: str | None) -> str:
        """The live server's URL: the one the control object or the server hands over; else
        (``--single-process -p 0`` from a server that does not hand it over) the listening
        socket of this process; else the one the options name."""
        given = getattr(control, "url", None) or url
        if given:
            return str(given)
        if control is None and options.port == 0 and not options.unix:
            return _listening_url(options.host) or options.url
        return options.url

    # namespace ---------------------------------------------------------------------------------

    @property
    def vivace(self) -> bool:
        return self.host.interface == "vivace"

    @property
    def app(self) -> object:
        """The framework's own object (``host.target``)."""
        return self.host.target

    def _build_namespace(self) -> None:
        import runtime

        ns = self.namespace
        ns.update(
            app=self.app,
            runtime=runtime,
            client=self.client,
            do=bind_do(
                lambda: ns["app"],
                None if self.vivace else self._in_process,
                record=self.history.add,
                before=self._start_listeners,
            ),
            routes=RoutesView(lambda: ns["app"], lambda: self.host.framework),
            help=Help(self.banner),
            exit=ExitConsole("exit", self.exit_hint),
            quit=ExitConsole("quit", self.exit_hint),
        )
        from repl.history import bind_replay

        ns.update(history=self.history, replay=bind_replay(self.history, self.client, ns["do"]))
        if self.control is not None and self.bridge is not None:
            workers = Workers(self.control, self.bridge)
            ns.update(
                workers=workers,
                restart=workers.restart,
                reload=workers.reload,
                scale=workers.scale,
                manage=workers.manage,
                stop=workers.stop,
                logs=Logs(self.control, self.bridge),
            )
        if self.options.target.module:
            ns["refresh"] = self.refresh
        self.skipped: list[str] = []
        for entry in user_entries(self.host):
            if entry.name in BUILTIN_NAMES:  # app.repl_ctx refuses most; never start without us
                self.skipped.append(entry.name)
                continue
            ns[entry.name] = entry.obj

    def _set_scopes(self) -> None:
        """What each statement runs inside (Flask's and Quart's application context)."""
        found = scopes(self.host, lambda: self.host.target)
        self.evaluator.plain_scope = found.plain
        self.evaluator.task_scope = found.task
        self._end_scopes = found.close

    def _close_scopes(self) -> None:
        end, self._end_scopes = self._end_scopes, None
        if end is not None:
            try:
                end()
            except Exception as exc:
                self._report(f"the application context's teardown failed: {one_line(exc)}")

    def _collect(self) -> Native:
        """The framework's, the packages' and the project's names (run where statements run)."""
        return collect(self.host, start=self.options.target.cwd or os.getcwd())

    async def prepare(self) -> list[str]:
        """Add the framework's and the providers' names (once); returns the problems, one line
        each (a provider that raised), which the banner shows too."""
        if self._prepared:
            return []
        self._prepared = True
        inprocess = self._inprocess
        if inprocess is not None:  # providers may read what the lifespan made (app.state)
            await inprocess.wait_started(STARTUP_WAIT)
        try:
            native = cast(Native, await self.runner.call(self._collect))
        except Exception as exc:
            native = Native(problems=[f"console names: {one_line(exc)}"])
        self._install(native)
        return list(native.problems)

    def _install(self, native: Native) -> None:
        """Bind the names of ``native``'s sections (a later section's name replaces an earlier
        one's; the console's own names and ``app.repl_ctx``'s are kept; on a refresh a name the
        user bound to something else stays the user's)."""
        ns = self.namespace
        previous, self._native_names = self._native_names, {}
        for name, obj in previous.items():
            if name in ns and ns[name] is obj:
                del ns[name]
        notes: list[str] = []
        owner: dict[str, str] = {}
        repl_ctx = {entry.name for entry in user_entries(self.host)}
        for section in native.sections:
            source = section.source or section.title.rstrip(":")
            for name, obj in section.names.items():
                if name in BUILTIN_NAMES:
                    if ns.get(name) is not obj:
                        notes.append(f"Not added from {source}: {name} (a console name)")
                    continue
                if name in repl_ctx:
                    notes.append(f"Not added from {source}: {name} (app.repl_ctx has it)")
                    continue
                if name in owner:
                    notes.append(f"{name}: the one from {source} replaces {owner[name]}'s")
                owner[name] = source
                self._native_names[name] = obj
        for name, obj in self._native_names.items():
            if name in ns:
                continue  # the user bound it to something else since (before a refresh): theirs
            ns[name] = obj
        self.native = native
        self.native_notes = notes

    def banner(self) -> str:
        names = describe(
            has_client=True,
            has_control=self.control is not None,
            single_process=self.control is None,
            can_refresh="refresh" in self.namespace,
            framework=self.host.framework,
        )
        notes = []
        if self.skipped:
            skipped = ", ".join(self.skipped)
            notes.append(f"Not added from app.repl_ctx (the console uses these names): {skipped}")
        if self.control is None:
            notes.append("This console runs inside the serving process, on the server's loop.")
        elif not self.vivace and self.host.interface != "wsgi":
            notes.append(
                "do() runs the app's lifespan start-up here, once (if it has one); its shut-down "
                "runs when the console stops."
            )
        notes += self.native_notes + self.native.problems
        return banner(
            self.app_name,
            names,
            [e for e in user_entries(self.host) if e.name not in self.skipped],
            url=self.url,
            exit_hint=self.exit_hint,
            notes=notes,
            sections=self.native.sections,
        )

    @property
    def app_name(self) -> str:
        """``ConsoleDemo`` for a vivace app; ``FastAPI app 'main:app'`` for the others."""
        if self.vivace:
            return self.host.name
        target = self.options.target
        shown = target.describe() if (target.module or target.path) else self.host.name
        return f"{self.host.framework} app {shown!r}"

    # do() for apps served through ASGI ---------------------------------------------------------

    def _in_process(self) -> InProcessApp | None:
        """The ``InProcessApp`` of the current host (made, and its lifespan begun, on first use)."""
        if self.vivace:
            return None
        if self._inprocess is None:
            from repl.asgi import InProcessApp

            host = cast(ASGIHosted, self.host)
            base, uds = _split_url(self.url)
            in_serving_process = self.control is None
            self._inprocess = InProcessApp(
                host.asgi,
                label=self.app_name,
                base_url="http://localhost" if uds else base,
                root_path=host.root_path,
                lifespan=host.interface != "wsgi",
                own_loop=not in_serving_process,
                state=host.lifespan_state if in_serving_process else None,
                on_startup_error=self._report,
                loop=self._statement_loop(),
                forced=lambda: self.forced,
            )
        return self._inprocess

    def _statement_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop statements that await run on (beside the workers), which the app's lifespan
        and ``do()`` share, so that what the start-up made is usable at the prompt; the runner
        keeps it alive for the app if it has to move on from a stuck statement."""
        if not isinstance(self.runner, ThreadRunner):
            return None
        self.runner.hosts_app = True
        return self.runner.loop

    async def _start_listeners(self) -> None:
        """Before a ``do()`` to a vivace app in the main process: its server listeners, once
        (``repl.listeners``); the serving process of ``--single-process`` ran them already."""
        if not self.vivace or self.control is None:
            return
        if self._listeners is None:
            from repl.listeners import ServerListeners
            from runtime.app import App

            target = self.host.target
            if not isinstance(target, App):
                return
            self._listeners = ServerListeners(
                target, on_report=self._report, forced=lambda: self.forced
            )
            if isinstance(self.runner, ThreadRunner):
                self.runner.hosts_app = True  # its loop holds what the listeners made
        await self._listeners.ensure()

    def _stop_listeners(self) -> None:
        listeners, self._listeners = self._listeners, None
        if listeners is not None:
            listeners.close()

    def start_app(self) -> None:
        """Begin the app's lifespan start-up in this process (apps served through ASGI)."""
        inprocess = self._in_process()
        if inprocess is not None:
            inprocess.start()

    def _report(self, text: str) -> None:
        """A line for the user, printed above the prompt (from any thread)."""
        print(text, file=sys.stdout, flush=True)

    def _close_app(self) -> None:
        inprocess, self._inprocess = self._inprocess, None
        if inprocess is not None:
            inprocess.close()

    # refresh -----------------------------------------------------------------------------------

    def refresh(self) -> Summary:
        """Re-import the app and the user's modules here and rebind ``app`` (variables stay)."""
        from repl.refresh import forget_user_modules
        from runtime.loader import load_app

        target = self.options.target
        module = target.module or ""
        old = self.host
        # App names are unique per process: let the re-imported module register its app again
        from runtime.app import App

        registry: dict[str, Any] | None = None
        held = None
        if isinstance(old.target, App):
            registry = App._registry
            held = registry.pop(old.name, None)
        forgotten = forget_user_modules(module)  # imported again, as a new worker does
        try:
            host = load_app(target)
        except BaseException:
            forgotten.restore()
            if held is not None and registry is not None:
                registry.setdefault(old.name, held)
            raise
        forgotten.settle()
        self.host = host
        self.namespace["app"] = host.target
        self._stop_listeners()  # the old app's teardown listeners; the next do() starts the new
        if host.framework != old.framework:
            self._close_scopes()
            self._set_scopes()
        if not self.vivace or old.interface != "vivace":
            self._close_app()  # the old app's lifespan shut-down; the new one starts now
            self.start_app()
        if self._prepared:  # the names of the new code (refresh runs where statements run)
            native = self._collect()
            self._install(native)
            for problem in native.problems:
                self._report(problem)
        self.stale = False
        if self._code is not None:
            self._code = CodeFingerprint(module)  # what the workers run now, unless newer
            self._server_pids = self._pids()
        self.on_change()
        return Summary(f"app re-imported from {module}{forgotten.note}")

    # toolbar -----------------------------------------------------------------------------------

    def _on_progress(self, event: Any) -> None:
        """Manager events: ``Progress(text)`` (``None`` when it ended), table changes, and
        ``Killing`` (``forced``: a second Ctrl+C; called from the signal handler, so it only
        sets a flag: the waits of :meth:`close` look at it)."""
        if getattr(event, "forced", False):
            self.forced = True
            return
        if hasattr(event, "text"):
            text = str(event.text or "")
            self.progress = text
            self.progress_at = time.monotonic()
            if not text:  # a restart, reload or scale ended
                self._check_code()
        self.on_change()

    def _pids(self) -> dict[str, Any]:
        """The pid of each server worker (a new one started: it imported the code on disk)."""
        if self.control is None:
            return {}
        try:
            found = rows(self.control.snapshot())
        except Exception:
            return dict(self._server_pids)
        return {r.name: r.pid for r in found if r.kind == "server"}

    def _check_code(self) -> None:
        """After a restart or reload: if a server worker was replaced, it imported the code on
        disk; it runs newer code than this process only if that is not what ``app`` came from
        (a reload with nothing changed, or one whose new code failed, leaves the toolbar)."""
        pids = self._pids()
        started = any(pid != self._server_pids.get(name) for name, pid in pids.items())
        self._server_pids = pids
        if started and self._code is not None:
            try:
                self.stale = self._code.differs()
            except Exception:  # never break the manager's loop for the toolbar
                self.stale = True

    def toolbar(self) -> StyleAndTextTuples:
        style = "class:status-toolbar"
        parts: StyleAndTextTuples = [
            (style + " bold", f" {self.app_name} "),
            (style, f" {self.url} "),
        ]
        if self.control is not None:
            try:
                snapshot = self.control.snapshot()
                ready = ready_count(snapshot)
                expected = int(getattr(self.control, "expected_workers", 0)) or len(
                    [r for r in rows(snapshot) if r.kind == "server"]
                )
            except Exception:
                ready, expected = 0, 0
            parts.append((style, f" {ready}/{expected} ready "))
            recent = time.monotonic() - self.progress_at < 3
            if self.progress and (ready < expected or recent):
                parts.append((style + " italic", f" {self.progress} "))
        else:
            parts.append((style, " single process "))
        if self.stale:
            parts.append((style + " reverse", " workers run newer code: refresh() "))
        return parts

    # running statements ------------------------------------------------------------------------

    async def run(self, source: str) -> Outcome:
        if not self._workers_ready:  # an early console (--repl): the first statement waits
            wait = getattr(self.control, "wait_ready", None)
            if callable(wait):
                await wait(None)
            self._workers_ready = True
        return await self.runner.run(source)

    def close(self) -> None:
        # the manager's events are heard until the end: a second Ctrl+C while the app's
        # shut-down below runs (Killing) cuts its wait
        self._close_scopes()  # before the runner: Quart's context is held on the console's loop
        self._close_app()  # the lifespan shut-down, on the console's loop too
        self._stop_listeners()  # a vivace app's teardown listeners, on that loop too
        self.client.close_websockets()  # open ones, on that loop too, before it stops
        if callable(self._unsubscribe):
            with contextlib.suppress(Exception):
                self._unsubscribe()
        self.runner.close()
        self.client.close()
