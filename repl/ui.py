"""The editor: ptpython's ``PythonRepl`` run on the main loop, with vivace's toolbar and history.

Input and output are constructor parameters, so tests drive the editor with
``prompt_toolkit.input.create_pipe_input()`` and ``DummyOutput``. While the console is open,
``routed_output()`` wraps everything in ``patch_stdout(raw=True)``: whatever the supervisor writes
to ``sys.stdout`` (looked up at write time) and what logging handlers print lands above the prompt,
batched, without tearing the line being typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prompt_toolkit.filters import is_done
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.input import Input, create_input
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout.containers import ConditionalContainer, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.output import Output, create_output
from prompt_toolkit.patch_stdout import StdoutProxy
from ptpython.repl import PythonRepl
from pygments import highlight  # type: ignore[import-untyped]
from pygments.formatters import TerminalFormatter  # type: ignore[import-untyped]
from pygments.lexers.python import (  # type: ignore[import-untyped]
    PythonLexer,
    PythonTracebackLexer,
)

from repl.evaluate import Outcome


class _Repl(PythonRepl):
    """ptpython's REPL without the per-keystroke signature lookup when nothing shows it.

    ptpython runs jedi in a thread after every change to find signatures, even when neither the
    signature nor the docstring pane is on; under worker output that costs keystroke latency.
    """

    def _on_input_timeout(self, buff: Any) -> None:
        if self.show_signature or self.show_docstring:
            super()._on_input_timeout(buff)


def history_path(project_dir: str | os.PathLike[str] | None = None) -> Path:
    """Per-project history file: ``VIVACE_HISTORY_FILE``, else under the user's state directory."""
    override = os.environ.get("VIVACE_HISTORY_FILE")
    if override:
        return Path(override).expanduser()
    project = Path(project_dir or os.getcwd()).resolve()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    digest = hashlib.sha1(str(project).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", project.name) or "root"
    return Path(state) / "vivace" / "history" / f"{slug}-{digest}"


class ConsoleUI:
    """Read one input at a time from the editor; show values and errors below it."""

    def __init__(
        self,
        get_namespace: Callable[[], dict[str, Any]],
        *,
        toolbar: Callable[[], StyleAndTextTuples | str] | None = None,
        history_file: Path | None = None,
        input: Input | None = None,
        output: Output | None = None,
        plain_types: tuple[type, ...] = (),
    ) -> None:
        self.input = input or create_input(sys.stdin)
        from repl.quickprompt import real_stdout  # built while the quick prompt is shown

        self.output = output or create_output(real_stdout())
        self._toolbar = toolbar
        self._plain_types = plain_types
        self._typeahead: list[KeyPress] = []
        history_name: str | None = None
        if history_file is not None:
            try:
                history_file.parent.mkdir(parents=True, exist_ok=True)
                history_file.touch(exist_ok=True)
                history_name = str(history_file)
            except OSError as exc:
                print(f"console history disabled: cannot write {history_file}: {exc}")
        toolbars: list[Any] = []
        if toolbar is not None:
            toolbars.append(
                ConditionalContainer(
                    Window(
                        FormattedTextControl(self._toolbar_text),
                        height=1,
                        style="class:status-toolbar",
                    ),
                    filter=~is_done,
                )
            )
        self.repl = _Repl(
            get_globals=get_namespace,
            history_filename=history_name,
            input=self.input,
            output=self.output,
            _extra_toolbars=toolbars,
        )
        from repl.completion import RouteCompleter  # route paths in client.get(" (issue 14)

        self.repl.completer = RouteCompleter(get_namespace, self.repl.completer)
        self.repl.confirm_exit = False
        self.repl.complete_while_typing = False
        self.repl.show_status_bar = False
        self.repl.enable_open_in_editor = False
        self.repl.title = ""
        self.repl.insert_blank_line_after_output = False
        self.repl.app.refresh_interval = 0.5

    def type_ahead(self, data: bytes) -> None:
        """Keys typed before the editor existed (``repl.quickprompt``), handled as typed now."""
        if not data:
            return
        from prompt_toolkit.input.vt100_parser import Vt100Parser

        keys: list[KeyPress] = []
        parser = Vt100Parser(keys.append)
        parser.feed(data.decode("utf-8", "replace"))
        parser.flush()
        self._typeahead += keys

    def _toolbar_text(self) -> StyleAndTextTuples:
        if self._toolbar is None:
            return []
        text = self._toolbar()
        if isinstance(text, str):
            return [("class:status-toolbar", text)]
        return text

    def invalidate(self) -> None:
        app = self.repl.app
        if app.is_running:
            app.invalidate()

    async def read(self) -> str:
        """The next input (a whole, possibly multi-line, statement). Ctrl+D raises EOFError."""
        app = self.repl.app
        while True:
            typeahead, self._typeahead = self._typeahead, []

            def pre_run(keys: list[KeyPress] = typeahead) -> None:
                proxy = sys.stdout
                # the app is set: a write that found none ends before the first drawing (see
                # ConsoleStdout.direct); bounded, so a terminal that stopped reading cannot hold
                # the main loop
                if isinstance(proxy, ConsoleStdout) and proxy.direct.acquire(timeout=1.0):
                    proxy.direct.release()
                if keys:  # typed while the last statement ran: handled as if typed now
                    app.key_processor.feed_multiple(keys)
                    asyncio.get_running_loop().call_soon(app.key_processor.process_keys)

            try:
                text: str = await app.run_async(pre_run=pre_run, handle_sigint=False)
            except KeyboardInterrupt:
                self.repl.default_buffer.reset()
                continue
            if text.lstrip().startswith("\x1a"):
                raise EOFError
            if text and not text.isspace():
                return text

    @contextlib.contextmanager
    def held_raw(self) -> Iterator[None]:
        """Raw mode for a whole console session, not only while a prompt or a statement runs.

        The editor leaves raw mode when a statement is entered and :meth:`interruptible` enters
        it again: a key typed in that moment (typing ahead) was echoed by the terminal itself
        where the cursor stood, and the prompt drawn after it was shifted or overwritten. Held
        here, each of those puts back raw mode when it ends, so no key is ever echoed; it is
        read by whichever comes next (kept for the next prompt while a statement runs).
        """
        with self.input.raw_mode():
            yield

    @contextlib.contextmanager
    def interruptible(self, on_interrupt: Callable[[], None]) -> Iterator[None]:
        """While a statement runs: Ctrl+C calls ``on_interrupt``; other keys wait for the prompt.

        The terminal stays in raw mode, so Ctrl+C is a key press, not a SIGINT to the process group.
        """

        def keys_ready() -> None:
            for key in self.input.read_keys():
                if key.key == Keys.ControlC:
                    on_interrupt()
                elif key.key != Keys.CPRResponse:
                    self._typeahead.append(key)

        with self.input.raw_mode(), self.input.attach(keys_ready):
            yield

    def _write(self, text: str) -> None:
        """Console output goes through the same ordered stream as everything printed meanwhile.

        With ``routed_output()`` active, ``sys.stdout`` is prompt_toolkit's proxy: what a statement
        printed is still queued there, so results go into that queue after it, never before.
        """
        if isinstance(sys.stdout, StdoutProxy):
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        self.output.write_raw(text.replace("\r\n", "\n").replace("\n", "\r\n"))
        self.output.flush()

    async def drain(self) -> None:
        """Wait (off the loop) until console output queued so far is on the terminal."""
        proxy = sys.stdout
        if isinstance(proxy, ConsoleStdout):
            await asyncio.get_running_loop().run_in_executor(None, proxy.drain, 2.0)

    def _colour(self) -> bool:
        return self.repl.enable_syntax_highlighting and not os.environ.get("NO_COLOR")

    def show(self, outcome: Outcome) -> None:
        if outcome.cancelled:
            self._write(outcome.format_error())
        elif outcome.error is not None:
            self.show_error(outcome.format_error())
        elif outcome.has_value:
            value = outcome.value
            try:
                text = repr(value)
            except Exception as exc:
                self.show_error(f"repr() failed: {type(exc).__name__}: {exc}\n")
                return
            if not isinstance(value, self._plain_types) and self._colour():
                text = highlight(text, PythonLexer(), TerminalFormatter()).rstrip("\n")
            self._write(text + "\n")

    def show_error(self, text: str) -> None:
        if self._colour():
            text = highlight(text, PythonTracebackLexer(), TerminalFormatter())
        self._write(text if text.endswith("\n") else text + "\n")

    def print(self, text: str) -> None:
        self._write(text if text.endswith("\n") else text + "\n")


class _Mark(str):
    """A position in the output queue: ``drain()`` waits until everything before it is written."""

    number = 0


class ConsoleStdout(StdoutProxy):
    """prompt_toolkit's ``StdoutProxy`` (raw) with ``drain()``.

    Everything printed while the console is open (worker lines, ``print()`` in a statement, the
    statement's result) goes through one queue and one writer thread, in order; above the prompt
    while it is shown, straight to the terminal otherwise. ``drain()`` waits until what is queued
    so far was written, so that a result is on screen before the next prompt is drawn.
    """

    def __init__(self) -> None:
        #: held by the writer while it finds no prompt shown and writes straight to the terminal;
        #: the editor takes it once it is the running app, before its first drawing (``read``'s
        #: ``pre_run``). Without it a line found "no prompt" just before the prompt was drawn
        #: landed after it, on the prompt's line, which was then never drawn again.
        self.direct = threading.Lock()
        self._drained = threading.Condition()
        self._marks_sent = 0
        self._marks_written = 0
        super().__init__(raw=True)

    def drain(self, timeout: float = 2.0) -> bool:
        self.flush()
        with self._drained:
            self._marks_sent += 1
            mark = _Mark("")
            mark.number = self._marks_sent
        self._flush_queue.put(mark)
        with self._drained:
            return self._drained.wait_for(lambda: self._marks_written >= mark.number, timeout)

    def _write_thread(self) -> None:  # prompt_toolkit's loop, plus marks
        done = False
        while not done:
            batch = [self._flush_queue.get()]
            while True:
                try:
                    batch.append(self._flush_queue.get_nowait())
                except queue.Empty:
                    break
            text: list[str] = []
            written = 0
            for item in batch:
                if isinstance(item, _Mark):
                    written = max(written, item.number)
                elif isinstance(item, str):
                    text.append(item)
                else:  # _Done
                    done = True
            joined = "".join(text)
            app_loop = None
            if joined:
                with self.direct:
                    app_loop = self._get_app_loop()
                    self._write_and_flush(app_loop, joined)
            if written:
                with self._drained:
                    self._marks_written = max(self._marks_written, written)
                    self._drained.notify_all()
            if app_loop is not None:
                time.sleep(self.sleep_between_writes)  # batch bursts while the prompt is shown

    def _write_and_flush(self, loop: asyncio.AbstractEventLoop | None, text: str) -> None:
        if loop is None:
            super()._write_and_flush(None, text)  # no prompt shown: straight to the terminal
        else:
            loop.call_soon_threadsafe(self._above_prompt, text)

    def _above_prompt(self, text: str) -> None:
        """On the editor's loop: erase the prompt, write ``text``, draw the prompt again below it.

        prompt_toolkit's ``run_in_terminal`` (``StdoutProxy``'s way) also puts the terminal back
        in cooked mode for the write, so that the function it runs could read a line. Text needs
        no such thing, and a key typed in that moment was echoed by the terminal itself where the
        cursor stood (a Tab as eight columns), the prompt then drawn shifted around it. Here the
        terminal stays in raw mode: every key reaches the editor, none is echoed.
        """
        app = self.app_session.app
        if (
            app is None
            or not app.is_running
            or app.is_done
            or getattr(app, "_running_in_terminal", True)  # something else has the terminal
            or not hasattr(app, "_redraw")
        ):
            super()._write_and_flush(app.loop if app is not None else None, text)
            return
        output = self._output
        app.renderer.erase()  # back to where the prompt began; erased down to the screen's end
        output.enable_autowrap()
        output.write_raw(text)
        output.flush()
        app.renderer.reset()
        app._request_absolute_cursor_position()
        app._redraw()  # at once, as run_in_terminal does: no moment without a prompt


@contextlib.contextmanager
def routed_output() -> Iterator[ConsoleStdout]:
    """Like ``patch_stdout(raw=True)``; logging handlers bound to the terminal write through it."""
    before = (sys.stdout, sys.stderr)
    proxy = ConsoleStdout()
    with proxy:
        sys.stdout = sys.stderr = proxy
        moved: list[tuple[logging.StreamHandler[Any], Any]] = []
        terminals = {id(s) for s in (*before, sys.__stdout__, sys.__stderr__) if s is not None}
        for handler in _stream_handlers():
            if id(handler.stream) in terminals:
                moved.append((handler, handler.stream))
                handler.setStream(proxy)
        try:
            yield proxy
        finally:
            sys.stdout, sys.stderr = before
            for handler, stream in moved:
                handler.setStream(stream)


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    for item in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(item, logging.Logger):
            loggers.append(item)
    found: dict[int, logging.StreamHandler[Any]] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                found[id(handler)] = handler
    return list(found.values())
