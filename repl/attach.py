"""``vivace attach``: the console of a running server, from another terminal.

Server side (:class:`AttachService`, started by the console hook when attach is on): the control
socket (``runtime.supervisor.attach``) hands each attached peer to :class:`AttachedSession`, a
``repl.console.Console`` of its own (own namespace, own console threads ``vivace-attach-N``) in the
server's main process. Statements arrive as ``run`` frames; what they print (written on their
threads), worker output lines (from the output hub) and toolbar changes go back as ``output`` and
``toolbar`` frames; each statement ends with an ``outcome`` frame. ``stop()`` asks the attached
terminal for a confirmation (``ask`` / ``answer``); ``exit()`` and Ctrl+D detach.

Client side (:func:`main`): the banner and a first prompt at once, then the editor
(``repl.ui.ConsoleUI``) in the attaching terminal; Tab asks the server, which completes on the live
namespace (``complete`` / ``completions``). Without a terminal, statements are read from stdin and
run one after another (scripted).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import ssl
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO, cast

from repl.evaluate import Outcome, split_statements
from repl.workers import Summary
from runtime.hosting import Hosted
from runtime.options import RunOptions
from runtime.supervisor import attach as wire

__all__ = ["AttachService", "AttachedSession", "RemoteConsole", "main", "with_attach"]

#: worker output is sent in batches at most this often (seconds)
FLUSH_EVERY = 0.02
#: a peer this far behind (bytes not yet sent) gets worker lines dropped, then a note
BACKLOG_LIMIT = 2 * 1024 * 1024
SESSION_PREFIX = "vivace-attach-"
#: the colours of process names, as the server's own terminal shows them
_PALETTE = ("36", "35", "33", "32", "34", "96", "95", "93", "92", "94")
DETACH_HINT = "detach (the server keeps running)"


# --- the server side ------------------------------------------------------------------------------


class _Router:
    """``sys.stdout`` while sessions are attached: what a session's console threads write goes to
    that session; everything else to the stream that was there."""

    sinks: dict[str, Callable[[str], None]] = {}

    def __init__(self, base: TextIO) -> None:
        self.base = base
        self.encoding = getattr(base, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    @staticmethod
    def _sink() -> Callable[[str], None] | None:
        name = threading.current_thread().name
        if not name.startswith(SESSION_PREFIX):
            return None
        return _Router.sinks.get(name.removesuffix("-loop"))

    def write(self, text: str) -> int:
        sink = self._sink()
        if sink is not None:
            sink(text)
            return len(text)
        return self.base.write(text)

    def flush(self) -> None:
        if self._sink() is None:
            self.base.flush()

    def isatty(self) -> bool:
        return self.base.isatty()

    def fileno(self) -> int:
        return self.base.fileno()

    @staticmethod
    def ensure() -> None:
        """Route ``sys.stdout`` unless it is routed already. The server terminal's console puts
        its own stream there while it is open, and checks that it is still there: that stream
        keeps its class and gets a routing ``write`` of its own instead of a router in front."""
        out = sys.stdout
        if isinstance(out, _Router) or getattr(out, "_vivace_routed", False):
            return
        if any(cls.__name__ == "StdoutProxy" for cls in type(out).__mro__):
            write = out.write

            def routed(text: str) -> int:
                sink = _Router._sink()
                if sink is not None:
                    sink(text)
                    return len(text)
                return write(text)

            vars(out).update(write=routed, _vivace_routed=True)  # on this object only
            return
        sys.stdout = cast(TextIO, _Router(out))


def _plain_types() -> tuple[type, ...]:
    from repl.session import _plain_types as plain

    return plain()


class AttachedSession:
    """One attached console in the server's main process."""

    def __init__(
        self, service: AttachService, conn: wire.Connection, number: int, colour: bool
    ) -> None:
        from repl.console import Console

        self.service = service
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        self.name = f"{SESSION_PREFIX}{number}"
        self.colour = colour
        self.console = Console(
            service.host,
            service.control,
            service.options,
            exit_hint=DETACH_HINT,
            runner_name=self.name,
        )
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._dropped = 0
        self._toolbar_sent: Any = None
        self._question: concurrent.futures.Future[bool] | None = None
        self._statement: asyncio.Task[Outcome] | None = None
        self._width = 0
        self._colours: dict[str, str] = {}
        self._completer: Any = None
        self._completing: set[asyncio.Task[None]] = set()
        self._warm: asyncio.Future[Any] | None = None
        namespace = self.console.namespace
        if "stop" in namespace:
            namespace["stop"] = self._confirmed_stop(namespace["stop"])

    # output ------------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        """From any thread: text for the attached terminal, sent in batches."""
        with self._lock:
            self._pending.append(text)
        self.loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_later(FLUSH_EVERY, self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending or self.conn.closed:
            return
        self.conn.send({"type": "output", "text": "".join(pending)})

    def worker_line(self, name: str, line: str) -> None:
        """The output hub's listener (main loop): one line of a child process."""
        hub = self.service.control.logs
        if not hub.is_shown(name):
            return
        if self.conn.buffered() > BACKLOG_LIMIT:  # a peer that cannot keep up loses lines
            self._dropped += 1
            return
        note = ""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            note = f"[{dropped} lines not shown: the terminal was too slow]\n"
        self._width = max(self._width, len(name))
        label = name.ljust(self._width)
        if self.colour:
            code = self._colours.setdefault(name, _PALETTE[len(self._colours) % len(_PALETTE)])
            label = f"\033[{code}m{label}\033[0m"
        with self._lock:
            self._pending.append(f"{note}{label} | {line}\n")
        self._schedule()

    def send_toolbar(self) -> None:
        if self.conn.closed:
            return
        try:
            parts = [[style, text] for style, text, *_ in self.console.toolbar()]
        except Exception:
            return
        if parts != self._toolbar_sent:
            self._toolbar_sent = parts
            self.conn.send({"type": "toolbar", "parts": parts})

    # stop() asks first --------------------------------------------------------------------------

    def ask(self, question: str, timeout: float = 300.0) -> bool:
        """From a statement's thread: ask the attached terminal a yes/no question."""
        answer: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def send() -> None:
            self._question = answer
            self.flush()
            self.conn.send({"type": "ask", "text": question})

        self.loop.call_soon_threadsafe(send)
        try:
            return answer.result(timeout)
        except concurrent.futures.TimeoutError:
            return False

    def _confirmed_stop(self, stop: Callable[[], Any]) -> Callable[[], Any]:
        def confirmed_stop() -> Any:
            """stop(): stop the server (after a confirmation in this terminal)."""
            question = "Stop the server for everyone (the workers and every console)? [y/N] "
            if not self.ask(question):
                return Summary("not stopped: the server keeps running")
            self.conn.send({"type": "stopping"})
            return stop()

        return confirmed_stop

    # the conversation ---------------------------------------------------------------------------

    def _names(self) -> list[str]:
        return sorted(name for name in self.console.namespace if not name.startswith("__"))

    async def run(self) -> None:
        console = self.console
        _Router.sinks[self.name] = self.write
        _Router.ensure()
        hub = self.service.control.logs
        remove_listener = hub.add_listener(self.worker_line)

        def changed() -> None:
            self.loop.call_soon_threadsafe(self.send_toolbar)

        console.on_change = changed
        ticker = self.loop.create_task(self._tick())
        try:
            console.start_app()
            await console.prepare()
            self.conn.send({"type": "banner", "text": console.banner(), "names": self._names()})
            self.send_toolbar()
            await self.conn.drain()
            # the completer's first use imports jedi and builds its caches (~0.7 s, seconds on
            # a loaded machine): done now, in a thread, so that the first Tab is answered at once
            self._warm = self.loop.run_in_executor(None, self._warm_up)
            while True:
                frame = await self.conn.recv()
                kind = frame.get("type")
                if kind == "run":
                    if self._statement is not None and not self._statement.done():
                        self.conn.send({"type": "error", "text": "a statement is running"})
                        continue
                    source = frame.get("source")
                    if not isinstance(source, str):
                        raise wire.ProtocolError("'run' needs a string 'source'")
                    self._statement = self.loop.create_task(self._run(frame.get("id"), source))
                elif kind == "complete":
                    text = frame.get("text")
                    if not isinstance(text, str):
                        raise wire.ProtocolError("'complete' needs a string 'text'")
                    self._spawn_completion(frame.get("id"), text)
                elif kind == "cancel":
                    console.runner.cancel()
                elif kind == "answer":
                    question, self._question = self._question, None
                    if question is not None and not question.done():
                        question.set_result(bool(frame.get("yes")))
                elif kind == "detach":
                    return
                else:
                    raise wire.ProtocolError(f"unknown frame type {kind!r}")
        finally:
            ticker.cancel()
            remove_listener()
            question = self._question
            if question is not None and not question.done():
                question.set_result(False)
            statement = self._statement
            if statement is not None and not statement.done():
                console.runner.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(statement), 3)
            _Router.sinks.pop(self.name, None)
            console.on_change = lambda: None
            await self.loop.run_in_executor(None, console.close)

    def _spawn_completion(self, ident: Any, text: str) -> None:
        async def answer() -> None:
            try:
                if self._warm is not None:  # one completer, built once
                    await asyncio.shield(self._warm)
                items = await self.loop.run_in_executor(None, self._completions, text)
            except Exception:  # completion never breaks the session
                items = []
            self.conn.send({"type": "completions", "id": ident, "items": items})

        task = self.loop.create_task(answer())
        self._completing.add(task)
        task.add_done_callback(self._completing.discard)

    def _warm_up(self) -> None:
        with contextlib.suppress(Exception):  # a warm-up never breaks the session
            self._completions("app.")

    def _completions(self, text: str) -> list[list[Any]]:
        """What Tab offers after ``text`` here, on the live namespace: the local console's
        completer (route paths in request strings, else ptpython's jedi completion)."""
        from prompt_toolkit.completion import CompleteEvent
        from prompt_toolkit.document import Document

        if self._completer is None:
            from ptpython.completer import PythonCompleter

            from repl.completion import RouteCompleter

            def names() -> dict[str, Any]:
                return self.console.namespace

            self._completer = RouteCompleter(names, PythonCompleter(names, names, lambda: True))
        event = CompleteEvent(completion_requested=True)
        items: list[list[Any]] = []
        for item in self._completer.get_completions(Document(text, len(text)), event):
            items.append(
                [item.text, item.start_position, item.display_text, item.display_meta_text]
            )
            if len(items) >= 500:
                break
        return items

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.send_toolbar()

    async def _run(self, ident: Any, source: str) -> Outcome:
        _Router.ensure()
        outcome = await self.console.run(source)
        self.flush()
        frame: dict[str, Any] = {"type": "outcome", "id": ident, "names": self._names()}
        if outcome.exit_code is not None:
            frame["exit"] = True
        elif outcome.cancelled:
            frame["cancelled"] = outcome.format_error()
        elif outcome.error is not None:
            frame["error"] = outcome.format_error()
        elif outcome.has_value:
            try:
                frame["value"] = repr(outcome.value)
                frame["plain"] = isinstance(outcome.value, _plain_types())
            except Exception as exc:
                frame["error"] = f"repr() failed: {type(exc).__name__}: {exc}\n"
        self.conn.send(frame)
        self.send_toolbar()
        await self.conn.drain()
        return outcome


class AttachService:
    """The control socket of a running server: console sessions and inspector commands."""

    def __init__(self, host: Hosted, control: Any, options: RunOptions) -> None:
        from runtime.inspector import inspector_for

        self.host = host
        self.control = control
        self.options = options
        self.inspector = inspector_for(host, control)
        self._numbers = itertools.count(1)
        self.server = wire.ControlServer(
            on_session=self._session, on_command=self._command, welcome=self._welcome
        )
        self.sessions: set[AttachedSession] = set()

    def _welcome(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "app": self.host.name,
            "url": getattr(self.control, "url", None),
            "version": wire.PROTOCOL,
        }

    async def _command(self, frame: dict[str, Any]) -> Any:
        args = frame.get("args") or {}
        if not isinstance(args, dict):
            raise TypeError("'args' must be an object")
        return await self.inspector.run(str(frame.get("action") or "info"), args)

    async def _session(self, conn: wire.Connection, hello: dict[str, Any]) -> None:
        session = AttachedSession(self, conn, next(self._numbers), bool(hello.get("colour")))
        self.sessions.add(session)
        wire.logger.info("Console attached (%s)", conn.peer)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            wire.logger.info("Console detached (%s)", conn.peer)

    async def start(self) -> None:
        path = self.server.start_unix()
        print(f"Attach: vivace attach --pid {os.getpid()}  (control socket {path})", flush=True)
        tcp = getattr(self.options, "attach_tcp", None)
        if tcp:
            host, _, port = str(tcp).rpartition(":")
            context = None
            cert, key = self.options.tls_cert, self.options.tls_key
            if self.options.auto_tls and not cert:  # --auto-tls: the certificate it made
                from runtime import tls

                made = tls.auto_tls()
                cert, key = made.cert, made.key
            if cert and key:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(cert, key)
            where = self.server.start_tcp(
                host.strip("[]") or "127.0.0.1", int(port), context=context
            )
            print(
                f"Attach over TCP{' (TLS)' if context else ''}: vivace attach --tcp "
                f"{where[0]}:{where[1]} --token-file {self.server.token_file}\n"
                f"  token (shown once): {self.server.token}",
                flush=True,
            )

    async def close(self) -> None:
        await self.server.close()


def attach_enabled(options: RunOptions) -> bool:
    """Under ``--dev`` unless ``--no-attach``; otherwise with ``--attach`` or ``--attach-tcp``
    (``RunOptions.attach_enabled``)."""
    return options.attach_enabled


def with_attach(options: RunOptions, hook: Any) -> Any:
    """The console hook with the control socket around it (when attach is on)."""
    if not attach_enabled(options):
        return hook

    async def attached(host: Hosted, control: Any = None, *, url: str | None = None) -> int | None:
        if control is None:  # --single-process: no supervisor to attach to
            print("vivace attach is not available with --single-process.", flush=True)
            return None if hook is None else await hook(host, control, url=url)
        service = AttachService(host, control, options)
        try:
            await service.start()
        except (OSError, wire.AttachError) as exc:
            print(f"vivace attach is not available: {exc}", flush=True)
            return None if hook is None else await hook(host, control, url=url)
        try:
            if hook is None:
                await asyncio.Event().wait()
                return None
            result: int | None = await hook(host, control, url=url)
            return result
        finally:
            await service.close()

    return attached


# --- the client side ------------------------------------------------------------------------------


class Gone(Exception):
    """The server closed the connection."""


class RemoteConsole:
    """A console session in a server's main process, seen from here (``vivace attach``,
    ``vivace mcp``): ``await run(source)`` returns the outcome frame; output, toolbar and questions
    go to the callbacks."""

    def __init__(
        self,
        conn: wire.Connection,
        welcome: dict[str, Any],
        *,
        on_output: Callable[[str], None] = lambda text: None,
        on_toolbar: Callable[[list[Any]], None] = lambda parts: None,
        on_gone: Callable[[], None] = lambda: None,
    ) -> None:
        self.conn = conn
        self.welcome = welcome
        self.pid = int(welcome.get("pid") or 0)
        self.on_output = on_output
        self.on_toolbar = on_toolbar
        self.on_gone = on_gone
        self.on_ask: Callable[[str], None] = lambda text: self.answer(False)
        self.names: dict[str, Any] = {}
        self.banner = ""
        self.gone = False
        self.stopping = False
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pump: asyncio.Task[None] | None = None
        self._completions: dict[int, asyncio.Future[list[Any]]] = {}

    async def start(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(self._read())
        frame = await self._next()
        if frame.get("type") != "banner":
            raise wire.ProtocolError(f"expected the banner, got {frame.get('type')!r}")
        self.banner = str(frame.get("text") or "")
        self._set_names(frame.get("names"))

    def _set_names(self, names: Any) -> None:
        if isinstance(names, list):
            self.names = {str(name): None for name in names}

    async def _read(self) -> None:
        try:
            while True:
                frame = await self.conn.recv()
                kind = frame.get("type")
                if kind == "output":
                    self.on_output(str(frame.get("text") or ""))
                elif kind == "toolbar":
                    parts = frame.get("parts")
                    self.on_toolbar(parts if isinstance(parts, list) else [])
                elif kind == "ask":
                    self.on_ask(str(frame.get("text") or ""))
                elif kind == "stopping":
                    self.stopping = True
                elif kind == "completions":
                    waiter = self._completions.pop(int(frame.get("id") or 0), None)
                    items = frame.get("items")
                    if waiter is not None and not waiter.done():
                        waiter.set_result(items if isinstance(items, list) else [])
                else:
                    await self._inbox.put(frame)
        except (EOFError, wire.ProtocolError, ConnectionError):
            pass
        finally:
            self.gone = True
            await self._inbox.put({"type": "gone"})
            self.on_gone()

    async def _next(self) -> dict[str, Any]:
        frame = await self._inbox.get()
        if frame.get("type") == "gone":
            await self._inbox.put(frame)  # every later wait sees it too
            raise Gone()
        return frame

    async def run(self, source: str) -> dict[str, Any]:
        """Run one input in the server's console; the ``outcome`` frame (raises ``Gone``)."""
        if self.gone:
            raise Gone()
        ident = next(self._ids)
        self.conn.send({"type": "run", "id": ident, "source": source})
        await self.conn.drain()
        while True:
            frame = await self._next()
            if frame.get("type") == "outcome" and frame.get("id") == ident:
                self._set_names(frame.get("names"))
                return frame
            if frame.get("type") == "error":
                return {"type": "outcome", "id": ident, "error": str(frame.get("text")) + "\n"}

    async def complete(self, text: str, timeout: float = 10.0) -> list[Any]:
        """The completions the server's console offers after ``text`` (``[]`` if none in time).

        The editor asks asynchronously and drops a request when the text changes, so a slow
        answer (jedi on a loaded server) never holds the prompt; ``timeout`` only ends the wait
        for a server that does not answer."""
        if self.gone:
            return []
        ident = next(self._ids)
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._completions[ident] = waiter
        self.conn.send({"type": "complete", "id": ident, "text": text})
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return []
        finally:
            self._completions.pop(ident, None)

    def lost(self) -> bool:
        """Has the server closed the connection?"""
        return self.gone

    def cancel(self) -> None:
        self.conn.send({"type": "cancel"})

    def answer(self, yes: bool) -> None:
        self.conn.send({"type": "answer", "yes": yes})

    async def detach(self) -> None:
        if not self.gone:
            self.conn.send({"type": "detach"})
            await self.conn.drain()
        self.close()

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self.conn.close()


class _Value:
    """A remote value: its repr as the server made it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Plain(_Value):
    """A remote table or response: shown without Python highlighting."""


def _shown(frame: dict[str, Any]) -> Outcome | None:
    if "value" not in frame:
        return None
    cls = _Plain if frame.get("plain") else _Value
    return Outcome(value=cls(str(frame["value"])), has_value=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vivace attach",
        description="Open the console of a running vivace server (started with --dev or "
        "--attach) in this terminal. Ctrl+D or exit() detaches; the server keeps running.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", help="the server's control socket")
    where.add_argument("--pid", type=int, help="the server's main process id")
    where.add_argument("--tcp", metavar="HOST:PORT", help="a server's --attach-tcp listener")
    parser.add_argument("--token", help="the TCP listener's token")
    parser.add_argument("--token-file", help="a file holding the TCP listener's token")
    parser.add_argument("--tls", action="store_true", help="the TCP listener uses TLS")
    parser.add_argument("--tls-ca", help="CA file to verify the TCP listener's certificate")
    return parser


def _read_token(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError as exc:
        raise wire.AttachError(f"cannot read the token file: {exc}") from None


async def connect(
    opts: argparse.Namespace, mode: str, *, colour: bool = False
) -> tuple[wire.Connection, dict[str, Any]]:
    """Connect as ``vivace attach`` options say (also used by ``vivace mcp``)."""
    if opts.tcp:
        host, sep, port = str(opts.tcp).rpartition(":")
        if not sep or not port.isdigit():
            raise wire.AttachError(f"--tcp {opts.tcp}: expected HOST:PORT")
        token = opts.token
        if token is None and opts.token_file:
            token = _read_token(opts.token_file)
        if not token:
            raise wire.AttachError("--tcp needs --token or --token-file")
        context = None
        if opts.tls or opts.tls_ca:
            context = ssl.create_default_context(cafile=opts.tls_ca)
            context.check_hostname = False
        return await wire.connect_tcp(
            host.strip("[]"), int(port), token, mode, context=context, colour=colour
        )
    path = opts.socket
    if opts.pid is not None:
        path = str(wire.socket_path(opts.pid))
    if path is None:
        found = wire.live_servers()
        if not found:
            raise wire.AttachError(
                "no running vivace server of this user to attach to (start one with --dev, "
                "or with --attach)"
            )
        if len(found) > 1:
            listing = "\n".join(f"  vivace attach --pid {pid}   ({sock})" for pid, sock in found)
            raise wire.AttachError(
                f"several vivace servers of this user run; choose one:\n{listing}"
            )
        path = str(found[0][1])
    return await wire.connect_unix(path, mode, colour=colour)


def main(argv: Sequence[str]) -> int:
    """``vivace attach ...``; returns the exit code."""
    try:
        opts = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    from repl.terminal import TerminalModes, isatty

    terminal = isatty(sys.stdin) and isatty(sys.stdout)
    modes = TerminalModes(sys.stdin)
    try:
        return asyncio.run(_attach(opts, terminal))
    except KeyboardInterrupt:
        return 1
    finally:
        modes.close()


def _fail(text: str) -> int:
    print(f"vivace attach: {text}", file=sys.stderr, flush=True)
    return 1


async def _attach(opts: argparse.Namespace, terminal: bool) -> int:
    try:
        colour = terminal and not os.environ.get("NO_COLOR")
        conn, welcome = await connect(opts, "console", colour=colour)
    except wire.AttachError as exc:
        return _fail(str(exc))
    remote = RemoteConsole(conn, welcome)
    try:
        await remote.start()
    except (Gone, wire.ProtocolError):
        return _fail(f"the server (pid {remote.pid}) closed the connection")
    try:
        if terminal:
            return await _interactive(remote, await _first_frame(remote))
        return await _scripted(remote)
    finally:
        remote.close()


def _import_editor() -> None:
    """The editor's modules (imported in a thread while the first prompt is up)."""
    import importlib

    import ptpython.python_input
    import ptpython.repl  # noqa: F401

    import repl.ui  # noqa: F401

    lexers = importlib.import_module("pygments.lexers")
    lexers.Python3Lexer()  # their regular expressions, compiled once per class (~70 ms)
    lexers.BashLexer()


async def _first_frame(remote: RemoteConsole) -> Editor:
    """The banner and a prompt at once (``repl.quickprompt``, as ``--repl`` does), while the
    editor is imported in a thread; the keys typed meanwhile are handed to the editor, worker
    lines arriving meanwhile are printed above the prompt."""
    from repl.quickprompt import QuickPrompt

    print(remote.banner, flush=True)
    quick = QuickPrompt()
    quick.start()
    toolbar: list[Any] = []
    remote.on_output = lambda text: quick.print_above(text)
    remote.on_toolbar = lambda parts: toolbar.__setitem__(slice(None), parts)
    try:
        await asyncio.get_running_loop().run_in_executor(None, _import_editor)
        editor = _editor(remote)
    finally:
        typed = quick.stop()
        remote.on_output = lambda text: None
    ui, _lexers, parts = editor
    parts[:] = _toolbar_parts(toolbar)
    ui.type_ahead(typed)
    return editor


def _toolbar_parts(parts: list[Any]) -> list[tuple[str, str]]:
    return [(str(p[0]), str(p[1])) for p in parts if isinstance(p, list) and len(p) >= 2]


def _gone(remote: RemoteConsole) -> int:
    if remote.stopping:
        print("The server stopped.", flush=True)
        return 0
    return _fail(f"the server (pid {remote.pid}) exited; detached")


async def _scripted(remote: RemoteConsole) -> int:
    def on_output(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    remote.on_output = on_output
    loop = asyncio.get_running_loop()
    source = await loop.run_in_executor(None, sys.stdin.read)
    try:
        statements = split_statements(source)
    except SyntaxError as exc:
        return _fail(f"{type(exc).__name__}: {exc}")
    ok = True
    for statement in statements:
        try:
            frame = await remote.run(statement)
        except Gone:
            return _gone(remote)
        if frame.get("exit"):
            break
        for key in ("error", "cancelled"):
            if key in frame:
                ok = False
                sys.stderr.write(str(frame[key]))
                sys.stderr.flush()
        if "value" in frame:
            print(frame["value"], flush=True)
    await remote.detach()
    return 0 if ok else 1


class _LazyCodeStyles(dict[str, Any]):
    """ptpython's code styles: the two it starts with at once, pygments' many (~35 ms to build)
    only when something looks past them (the F2 menu)."""

    def __init__(self, first: dict[str, Any]) -> None:
        super().__init__(first)
        self._complete = False

    def _load_all(self) -> None:
        if not self._complete:
            self._complete = True
            from ptpython.style import get_all_code_styles

            for name, style in get_all_code_styles().items():
                self.setdefault(name, style)

    def __missing__(self, key: str) -> Any:
        self._load_all()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        if not dict.__contains__(self, key):
            self._load_all()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return dict.__iter__(self)

    def keys(self) -> Any:
        self._load_all()
        return dict.keys(self)

    def items(self) -> Any:
        self._load_all()
        return dict.items(self)


def _first_code_styles() -> dict[str, Any]:
    from prompt_toolkit.styles import Style
    from ptpython import style

    return _LazyCodeStyles(
        {
            "default-ansi": Style.from_dict(style.default_ansi_code_style),
            "win32": Style.from_dict(style.win32_code_style),
        }
    )


class _DeferredLexer:
    """ptpython's input lexer, compiled (~70 ms of pygments regular expressions) once the prompt
    is on the screen instead of before it."""

    def __init__(self, python_lexer: Any = None) -> None:
        self._given = python_lexer
        self._real: Any = None

    def build(self) -> Any:
        if self._real is None:
            from ptpython.lexer import PtpythonLexer

            self._real = PtpythonLexer(self._given)
        return self._real

    def lex_document(self, document: Any) -> Any:
        if self._real is None and not document.text:
            return lambda lineno: []
        return self.build().lex_document(document)

    def invalidation_hash(self) -> Any:
        return id(self._real)


@contextlib.contextmanager
def _light_editor() -> Iterator[list[_DeferredLexer]]:
    """While the editor is built: ptpython's code styles and input lexer made lazily."""
    from ptpython import python_input

    made: list[_DeferredLexer] = []

    def lexer(python_lexer: Any = None) -> _DeferredLexer:
        made.append(_DeferredLexer(python_lexer))
        return made[-1]

    saved = python_input.__dict__["get_all_code_styles"], python_input.__dict__["PtpythonLexer"]
    python_input.__dict__["get_all_code_styles"] = _first_code_styles
    python_input.__dict__["PtpythonLexer"] = lexer
    try:
        yield made
    finally:
        python_input.__dict__["get_all_code_styles"], python_input.__dict__["PtpythonLexer"] = saved


class _RemoteCompleter:
    """Tab in the attached editor: the server's console completes on its live namespace (names,
    attributes through jedi, route paths in request strings). Runs on prompt_toolkit's completion
    thread; waits for the answer at most a few seconds."""

    def __init__(self, remote: RemoteConsole, loop: asyncio.AbstractEventLoop) -> None:
        self.remote = remote
        self.loop = loop

    def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
        from prompt_toolkit.completion import Completion

        text = document.text_before_cursor
        future = asyncio.run_coroutine_threadsafe(self.remote.complete(text), self.loop)
        try:
            items = future.result(5.0)
        except Exception:
            return
        for item in items:
            if isinstance(item, list) and len(item) == 4:
                completion_text, start, display, meta = item
                yield Completion(
                    str(completion_text),
                    int(start),
                    display=str(display),
                    display_meta=str(meta) or None,
                )

    async def get_completions_async(self, document: Any, complete_event: Any) -> Any:
        from prompt_toolkit.completion import Completion

        items = await self.remote.complete(document.text_before_cursor)  # on the client's loop
        for item in items:
            if isinstance(item, list) and len(item) == 4:
                text, start, display, meta = item
                yield Completion(str(text), int(start), display=str(display), display_meta=meta)


Editor = tuple[Any, list[_DeferredLexer], list[tuple[str, str]]]


def _editor(remote: RemoteConsole) -> Editor:
    """The attached console's editor (``repl.ui.ConsoleUI``): names from the remote namespace,
    the toolbar the server sends."""
    from repl.ui import ConsoleUI, history_path

    toolbar: list[tuple[str, str]] = []
    with _light_editor() as lexers:
        ui = ConsoleUI(
            lambda: remote.names,
            toolbar=lambda: list(toolbar),
            history_file=history_path(),
            plain_types=(_Plain,),
        )
    return ui, lexers, toolbar


async def _interactive(remote: RemoteConsole, editor: Editor) -> int:
    from repl.ui import routed_output

    ui, lexers, toolbar = editor
    ui.repl.completer = _RemoteCompleter(remote, asyncio.get_running_loop())

    def set_toolbar(parts: list[Any]) -> None:
        toolbar[:] = _toolbar_parts(parts)
        ui.invalidate()

    def build_lexers() -> None:
        for lexer in lexers:
            lexer.build()

    asyncio.get_running_loop().call_later(0.05, build_lexers)  # once the prompt is drawn

    def on_output(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    loop = asyncio.get_running_loop()
    finished = False

    def on_gone() -> None:
        """End the prompt; between two prompts (a result being shown), end the next one."""
        if finished:
            return
        app = ui.repl.app
        if app.is_running and not app.is_done:
            with contextlib.suppress(Exception):
                app.exit(exception=Gone())
                return
        loop.call_later(0.05, on_gone)

    remote.on_output = on_output
    remote.on_toolbar = set_toolbar
    remote.on_gone = on_gone
    asking: list[bool] = []

    def on_ask(text: str) -> None:
        asking.append(True)
        sys.stdout.write(text)
        sys.stdout.flush()

    remote.on_ask = on_ask
    if remote.lost():  # while the editor was being built
        on_gone()
    try:
        return await _prompts(remote, ui, asking, routed_output)
    finally:
        finished = True


async def _prompts(
    remote: RemoteConsole, ui: Any, asking: list[bool], routed_output: Callable[[], Any]
) -> int:
    """Read, run remotely and show, until the user detaches or the server goes."""
    with routed_output(), ui.held_raw():
        while True:
            await ui.drain()
            try:
                text = await ui.read()
            except EOFError:
                await remote.detach()
                return 0
            except Gone:
                return _gone(remote)
            if remote.lost():
                return _gone(remote)
            with _keys_while_running(ui, remote, asking):
                try:
                    frame = await remote.run(text)
                except Gone:
                    return _gone(remote)
            if frame.get("exit"):
                await remote.detach()
                return 0
            if "cancelled" in frame:
                ui.print(str(frame["cancelled"]))
            elif "error" in frame:
                ui.show_error(str(frame["error"]))
            else:
                outcome = _shown(frame)
                if outcome is not None:
                    ui.show(outcome)


@contextlib.contextmanager
def _keys_while_running(ui: Any, remote: RemoteConsole, asking: list[bool]) -> Any:
    """While a remote statement runs: Ctrl+C cancels it; a question takes one key (y = yes);
    other keys wait for the prompt."""
    from prompt_toolkit.keys import Keys

    def keys_ready() -> None:
        for key in ui.input.read_keys():
            if asking:
                if key.key == Keys.CPRResponse:
                    continue
                asking.clear()
                yes = key.key in ("y", "Y")
                sys.stdout.write(("y" if yes else "n") + "\n")
                sys.stdout.flush()
                remote.answer(yes)
            elif key.key == Keys.ControlC:
                remote.cancel()
            elif key.key != Keys.CPRResponse:
                ui._typeahead.append(key)

    with ui.input.raw_mode(), ui.input.attach(keys_ready):
        yield
