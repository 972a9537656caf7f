"""Entry modes, the ENTER watcher, scripted mode and exit semantics of the console.

``console_for(options)`` returns the hook the launcher runs on the main process's loop once the
workers are ready (``hook(app, control)``), or on the serving loop in ``--single-process`` mode
(``hook(app, None)``). When the hook returns an int, the server stops with that exit code.

* ``--repl``: the console opens at once; Ctrl+D / ``exit()`` stop the server (exit code 0).
* ``--dev``: ``Press ENTER to open the console``; an empty line opens it, other lines are ignored;
  closing it keeps the server running and ENTER reopens it.
* scripted (``--repl-command CODE``, or ``--repl`` with stdin or stdout not a terminal): statements
  run one after another, results printed as plain text; exit code 0, or 1 if a statement raised.

The terminal's modes are saved when the hook starts and restored on every way out.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import contextlib
import os
import signal
import socket
import sys
import termios
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from repl.evaluate import Evaluator, LoopRunner, Outcome, Runner, ThreadRunner, split_statements
from repl.namespace import (
    BUILTIN_NAMES,
    ExitConsole,
    Help,
    banner,
    describe,
    user_entries,
)
from repl.requests import Result, bind_do
from repl.routes import Routes, RoutesView
from repl.workers import Bridge, Logs, Row, Summary, Worker, Workers, ready_count, rows
from runtime.app import App
from runtime.hosting import ASGIHosted, Hosted
from runtime.options import RunOptions

if TYPE_CHECKING:
    from prompt_toolkit.formatted_text import StyleAndTextTuples

    from repl.asgi import InProcessApp


class ConsoleHook(Protocol):
    """``await hook(host, control)``: run the console; an int return is the server's exit code.

    ``control`` is the main process's ``Control`` (None in the serving process of
    ``--single-process``); ``url`` is the server's bound URL when no ``control`` carries it.
    """

    def __call__(
        self, host: Hosted, control: Any = None, *, url: str | None = None
    ) -> Awaitable[int | None]: ...


ENTER_LINE = "Press ENTER to open the console"
REOPEN_LINE = "Console closed; the server keeps running. Press ENTER to open the console again."
NO_TTY_LINE = "No console: stdin and stdout must be a terminal for the --dev console (use --repl "
NO_TTY_LINE += "to run statements from a pipe)."
BACKGROUND_LINE = (
    "The console is not available in the background (vivace is not the terminal's foreground "
    "process group: started with '&' or by a tool such as 'timeout'); serving without it."
)


def _plain_types() -> tuple[type, ...]:
    """Values shown as their plain repr (tables, HTTP responses), not highlighted as Python."""
    from repl.client import LiveResponse

    return (LiveResponse, Summary, Workers, Worker, Logs, Result, Row, Routes, RoutesView)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):
        return False


def _background(stream: Any) -> bool:
    """True when ``stream`` is a terminal whose foreground process group is not ours.

    Reading such a terminal (SIGTTIN) or changing its modes (SIGTTOU) would stop this process.
    """
    try:
        return os.tcgetpgrp(stream.fileno()) != os.getpgrp()
    except (AttributeError, ValueError, OSError):  # not a real terminal: nothing to protect
        return False


@contextlib.contextmanager
def _no_job_control_stops() -> Iterator[None]:
    """Ignore SIGTTIN/SIGTTOU meanwhile: a terminal read from the background fails (EIO)
    instead of stopping vivace, which would then never see SIGTERM (ignored in a child of it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTTIN, signal.SIGTTOU)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def console_for(
    options: RunOptions, *, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> ConsoleHook | None:
    """The console hook for these options, or None (after one info line) when none should run."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    if options.repl_commands:
        commands = list(options.repl_commands)

        async def scripted_commands(
            host: Hosted, control: Any = None, *, url: str | None = None
        ) -> int | None:
            return await run_scripted(host, control, options, commands=commands, url=url)

        return scripted_commands
    if options.repl == "off":
        return None
    terminal = _isatty(stdin) and _isatty(stdout)
    if not terminal:
        if options.repl == "open":

            async def scripted_stdin(
                host: Hosted, control: Any = None, *, url: str | None = None
            ) -> int | None:
                return await run_scripted(host, control, options, stdin=stdin, url=url)

            return scripted_stdin
        print(NO_TTY_LINE, file=stdout, flush=True)
        return None
    if _background(stdin):
        print(BACKGROUND_LINE, file=stdout, flush=True)
        return None
    mode = options.repl

    async def interactive(
        host: Hosted, control: Any = None, *, url: str | None = None
    ) -> int | None:
        return await run_interactive(host, control, options, enter=(mode == "enter"), url=url)

    return interactive


# --- the session ---------------------------------------------------------------------------------


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
        self.stale = False
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
            self.runner = ThreadRunner(self.evaluator)

            def wait_ready(timeout: float) -> bool:
                try:
                    result = bridge.wait(control.wait_ready(timeout), timeout + 1)
                except TimeoutError:
                    return False
                return result is not False

            add_listener = getattr(control, "add_listener", None)
            if callable(add_listener):
                self._unsubscribe = add_listener(self._on_progress)
        from repl.client import LiveClient  # httpx: imported once the console starts

        self.client = LiveClient(base, uds=uds, wait_ready=wait_ready, protected_loop=self.loop)
        self.evaluator.after_statement.append(self.client.settle)
        self.on_change: Callable[[], None] = lambda: None
        self._build_namespace()

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
            do=bind_do(lambda: ns["app"], None if self.vivace else self._in_process),
            routes=RoutesView(lambda: ns["app"], lambda: self.host.framework),
            help=Help(self.banner),
            exit=ExitConsole("exit", self.exit_hint),
            quit=ExitConsole("quit", self.exit_hint),
        )
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
                "do() runs the app's lifespan start-up here, once; its shut-down runs when the "
                "console stops."
            )
        return banner(
            self.app_name,
            names,
            [e for e in user_entries(self.host) if e.name not in self.skipped],
            url=self.url,
            exit_hint=self.exit_hint,
            notes=notes,
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
            )
        return self._inprocess

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
        """Re-import the app module in this process and rebind ``app`` (your variables stay)."""
        from runtime.loader import load_app

        target = self.options.target
        module = target.module or ""
        old = self.host
        # App names are unique per process: let the re-imported module register its app again
        registry: dict[str, Any] | None = None
        held = None
        if isinstance(old.target, App):
            registry = App._registry
            held = registry.pop(old.name, None)
        saved = {k: v for k, v in sys.modules.items() if k == module or k.startswith(module + ".")}
        for key in saved:
            del sys.modules[key]
        try:
            host = load_app(target)
        except BaseException:
            sys.modules.update(saved)
            if held is not None and registry is not None:
                registry.setdefault(old.name, held)
            raise
        self.host = host
        self.namespace["app"] = host.target
        if not self.vivace or old.interface != "vivace":
            self._close_app()  # the old app's lifespan shut-down; the new one starts now
            self.start_app()
        self.stale = False
        self.on_change()
        return Summary(f"app re-imported from {module}")

    # toolbar -----------------------------------------------------------------------------------

    def _on_progress(self, event: Any) -> None:
        """Manager events: ``Progress(text)`` (``None`` when it ended) and table changes."""
        if hasattr(event, "text"):
            text = str(event.text or "")
            self.progress = text
            self.progress_at = time.monotonic()
            if "reload" in text.lower():
                self.stale = True
        self.on_change()

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
        return await self.runner.run(source)

    def close(self) -> None:
        if callable(self._unsubscribe):
            with contextlib.suppress(Exception):
                self._unsubscribe()
        self.runner.close()
        self.client.close()
        self._close_app()


# --- terminal modes -----------------------------------------------------------------------------


class TerminalModes:
    """Save the terminal's modes now; ``restore()`` puts them back (also at interpreter exit)."""

    def __init__(self, stream: TextIO) -> None:
        self.fd: int | None = None
        self.saved: list[Any] | None = None
        try:
            fd = stream.fileno()
            if os.isatty(fd):
                self.saved = termios.tcgetattr(fd)
                self.fd = fd
        except (ValueError, OSError, termios.error):
            pass
        if self.saved is not None:
            atexit.register(self.restore)

    def restore(self) -> None:
        if self.fd is None or self.saved is None:
            return
        if _background(self):  # the terminal belongs to another process group now: leave it
            return
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def fileno(self) -> int:
        if self.fd is None:
            raise ValueError("no terminal")
        return self.fd

    def close(self) -> None:
        self.restore()
        atexit.unregister(self.restore)


# --- interactive ----------------------------------------------------------------------------------


async def _wait_for_enter(stream: TextIO) -> None:
    """Return when an empty line is typed; other lines are ignored (the console stays available)."""
    loop = asyncio.get_running_loop()
    fd = stream.fileno()
    done: asyncio.Future[None] = loop.create_future()
    pending = bytearray()

    def listen_again() -> None:
        if not done.done():
            loop.add_reader(fd, readable)

    def readable() -> None:
        if _background(stream):  # sent to the background (Ctrl+Z, bg): the shell owns input
            loop.remove_reader(fd)
            loop.call_later(0.5, listen_again)
            return
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # Ctrl+D with the console closed, or a hang-up: pause, then listen again
            loop.remove_reader(fd)
            loop.call_later(0.5, listen_again)
            return
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            if not line.strip() and not done.done():
                done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)


def _warm_imports() -> None:
    """Import the editor's modules (run in a thread while the console is closed)."""
    import ptpython.repl  # noqa: F401
    import pygments.lexers.python  # type: ignore[import-untyped]  # noqa: F401

    import repl.ui  # noqa: F401


async def _make_ui(console: Console) -> Any:
    """Build the editor once; warming its imports in a thread keeps the loop free meanwhile."""
    await asyncio.get_running_loop().run_in_executor(None, _warm_imports)
    from repl.ui import ConsoleUI, history_path

    return ConsoleUI(
        lambda: console.namespace,
        toolbar=console.toolbar,
        history_file=history_path(console.options.target.cwd),
        plain_types=_plain_types(),
    )


async def _session(console: Console, ui: Any, *, first: bool) -> int:
    """One opening of the editor; returns the exit code when the user leaves."""
    from repl.ui import routed_output

    with routed_output():
        console.on_change = ui.invalidate
        try:
            console.start_app()  # an app served through ASGI: its lifespan, for do()
            if first:
                ui.print(console.banner())
            while True:
                await ui.drain()
                try:
                    text = await ui.read()
                except EOFError:
                    return 0
                with ui.interruptible(console.runner.cancel):
                    outcome = await console.run(text)
                if outcome.exit_code is not None:
                    return int(outcome.exit_code)
                ui.show(outcome)
        finally:
            console.on_change = lambda: None


async def run_interactive(
    host: Hosted, control: Any, options: RunOptions, *, enter: bool, url: str | None = None
) -> int | None:
    with _no_job_control_stops():
        return await _run_interactive(host, control, options, enter=enter, url=url)


async def _run_interactive(
    host: Hosted, control: Any, options: RunOptions, *, enter: bool, url: str | None
) -> int | None:
    terminal = TerminalModes(sys.stdin)
    hint = "close the console (the server keeps running)" if enter else "stop the server"
    console = Console(host, control, options, exit_hint=hint, url=url)
    ui_task: asyncio.Task[Any] | None = None
    try:
        if not enter:
            return await _session(console, await _make_ui(console), first=True)
        print(ENTER_LINE, flush=True)
        ui_task = asyncio.get_running_loop().create_task(_make_ui(console))
        first = True
        while True:
            await _wait_for_enter(sys.stdin)
            await _session(console, await ui_task, first=first)
            first = False
            terminal.restore()
            print(REOPEN_LINE, flush=True)
    finally:
        if ui_task is not None and not ui_task.done():
            ui_task.cancel()
        console.close()
        terminal.close()


# --- scripted -------------------------------------------------------------------------------------


async def run_scripted(
    host: Hosted,
    control: Any,
    options: RunOptions,
    *,
    commands: list[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    url: str | None = None,
) -> int:
    """Run statements from ``commands`` (or stdin) against the live server; 0 if all succeeded."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    console = Console(host, control, options, exit_hint="stop", url=url)
    try:
        console.start_app()
        if commands is None:
            source_stream = stdin or sys.stdin
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(None, source_stream.read)
            commands = [text]
        statements: list[str] = []
        for command in commands:
            try:
                statements += split_statements(command)
            except SyntaxError as exc:
                err.write(f"{type(exc).__name__}: {exc}\n")
                err.flush()
                return 1
        ok = True
        for statement in statements:
            outcome = await console.run(statement)
            if outcome.exit_code is not None:
                return outcome.exit_code
            if not outcome.ok:
                ok = False
                err.write(outcome.format_error())
                err.flush()
            elif outcome.has_value:
                out.write(repr(outcome.value) + "\n")
                out.flush()
        return 0 if ok else 1
    finally:
        console.close()
