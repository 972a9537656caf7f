"""Entry modes, scripted mode and exit semantics of the console.

``console_for(options)`` returns the hook the launcher runs on the main process's loop once the
workers are ready (``hook(app, control)``), or on the serving loop in ``--single-process`` mode
(``hook(app, None)``). When the hook returns an int, the server stops with that exit code.

* ``--repl``: the console opens at once, while the workers boot (``OpensEarly``); its first
  statement waits for them. Ctrl+D / ``exit()`` stop the server (exit code 0).
* ``--dev``: ``Press ENTER to open the console``; an empty line opens it, other lines are ignored;
  closing it keeps the server running and ENTER reopens it.
* scripted (``--repl-command CODE``, or ``--repl`` with stdin or stdout not a terminal): statements
  run one after another, results printed as plain text; exit code 0, or 1 if a statement raised.

The terminal's modes are saved when the hook starts and restored on every way out
(``repl.terminal``); one session's state is a ``repl.console.Console``.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable
from typing import Any, Protocol, TextIO

from repl.console import Console
from repl.evaluate import split_statements
from repl.requests import Result
from repl.routes import Routes, RoutesView
from repl.terminal import (
    TerminalModes,
    in_background,
    isatty,
    no_job_control_stops,
    wait_for_enter,
)
from repl.workers import Logs, Row, Summary, Worker, Workers
from runtime.hosting import Hosted
from runtime.options import RunOptions

__all__ = ["Console", "ConsoleHook", "console_for", "run_interactive", "run_scripted"]


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
    from repl.history import Exchange, History
    from repl.native.fastapi import OpenAPI
    from repl.streams import Stream
    from repl.wsclient import ConsoleWebSocket

    plain = (LiveResponse, Summary, Workers, Worker, Logs, Result, Row, Routes, RoutesView, OpenAPI)
    return (*plain, History, Exchange, Stream, ConsoleWebSocket)  # issue 14


def console_for(
    options: RunOptions, *, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> ConsoleHook | None:
    """The console hook for these options, or None (after one info line) when none should run."""
    stdin = stdin if stdin is not None else sys.stdin
    json_out: TextIO | None = None
    if options.repl_json:  # --json (issue 14): see repl.scripted
        from repl.scripted import JSON_NEEDS_SCRIPT, json_stdout

        if not options.repl_commands and options.repl != "open":
            print(JSON_NEEDS_SCRIPT, file=sys.stderr, flush=True)
            return None
        json_out = stdout if stdout is not None else json_stdout()
    stdout = stdout if stdout is not None else sys.stdout
    if options.repl_commands:
        commands = list(options.repl_commands)

        async def scripted_commands(
            host: Hosted, control: Any = None, *, url: str | None = None
        ) -> int | None:
            return await run_scripted(
                host, control, options, commands=commands, url=url, json_out=json_out
            )

        return scripted_commands
    if options.repl == "off":
        return None
    terminal = isatty(stdin) and isatty(stdout)
    if not terminal or json_out is not None:
        if options.repl == "open":

            async def scripted_stdin(
                host: Hosted, control: Any = None, *, url: str | None = None
            ) -> int | None:
                return await run_scripted(
                    host, control, options, stdin=stdin, url=url, json_out=json_out
                )

            return scripted_stdin
        print(NO_TTY_LINE, file=stdout, flush=True)
        return None
    if in_background(stdin):
        print(BACKGROUND_LINE, file=stdout, flush=True)
        return None
    mode = options.repl

    async def interactive(
        host: Hosted, control: Any = None, *, url: str | None = None
    ) -> int | None:
        return await run_interactive(host, control, options, enter=(mode == "enter"), url=url)

    return interactive if mode == "enter" else OpensEarly(interactive)


class OpensEarly:
    """``--repl``'s hook, which the main process starts as soon as the workers are started rather
    than once they serve (``opens_early``): the banner and the prompt show while they boot, and
    the first statement waits for them (``Console.run``). A start-up that fails closes it and
    restores the terminal before the error is shown."""

    opens_early = True

    def __init__(self, hook: ConsoleHook) -> None:
        self._hook = hook

    def __call__(
        self, host: Hosted, control: Any = None, *, url: str | None = None
    ) -> Awaitable[int | None]:
        return self._hook(host, control, url=url)


# --- interactive ----------------------------------------------------------------------------------


def _warm_imports() -> None:
    """Import the editor's modules (run in a thread while the console is closed)."""
    import ptpython.repl  # noqa: F401
    import pygments.lexers.python  # type: ignore[import-untyped]  # noqa: F401

    import repl.ui  # noqa: F401


async def _make_ui(console: Console) -> Any:
    """Build the editor once; warming its imports in a thread keeps the loop free meanwhile."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _warm_imports)
    from repl.ui import ConsoleUI, history_path

    loop.run_in_executor(None, importlib.import_module, "httpx")  # client's, after the editor

    return ConsoleUI(
        lambda: console.namespace,
        toolbar=console.toolbar,
        history_file=history_path(console.options.target.cwd),
        plain_types=_plain_types(),
    )


async def _first_frame(console: Console) -> Any:
    """``--repl``: the banner and a prompt at once (``repl.quickprompt``) while the editor is
    built in a thread; the keys typed meanwhile go to the editor (issue 14).

    For a vivace app the names from providers (``[tool.vivace] console``, entry points: reading
    the installed packages' metadata costs tens of milliseconds) are collected after the prompt
    is shown; the banner's lines they add, if any, are then printed above the prompt. Other
    frameworks' names (and their lifespan, which providers may read) come before the banner."""
    from repl.quickprompt import QuickPrompt

    quick: QuickPrompt | None = None
    ui_task: asyncio.Task[Any] | None = None
    later = console.vivace
    try:
        console.start_app()
        if not later:
            await console.prepare()  # the problems it returns are in the banner too
        shown = console.banner()
        print(shown, flush=True)
        quick = QuickPrompt()
        quick.start()
        # only now: the import thread would hold the GIL against the first frame
        ui_task = asyncio.get_running_loop().create_task(_make_ui(console))
        if later:
            await console.prepare()
            added = _added_lines(shown, console.banner())
            if added:
                quick.print_above(added)
        ui = await ui_task
    finally:
        typed = quick.stop() if quick is not None else b""
        if ui_task is not None and not ui_task.done():
            ui_task.cancel()
    ui.type_ahead(typed)
    return ui


def _added_lines(before: str, after: str) -> str:
    """The lines of ``after`` that ``before`` lacks (what the providers added to the banner)."""
    import difflib

    old, new = before.splitlines(), after.splitlines()
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("insert", "replace"):
            added += new[j1:j2]
    return "\n".join(added).strip("\n")


async def _session(console: Console, ui: Any, *, first: bool) -> int:
    """One opening of the editor; returns the exit code when the user leaves."""
    from repl.ui import routed_output

    with routed_output(), ui.held_raw():
        console.on_change = ui.invalidate
        try:
            console.start_app()  # an app served through ASGI: its lifespan, for do()
            await console.prepare()  # the framework's and the providers' names (once)
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
    with no_job_control_stops():
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
            return await _session(console, await _first_frame(console), first=False)
        print(ENTER_LINE, flush=True)
        ui_task = asyncio.get_running_loop().create_task(_make_ui(console))
        first = True
        while True:
            await wait_for_enter(sys.stdin)
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
    json_out: TextIO | None = None,
) -> int:
    """Run statements from ``commands`` (or stdin) against the live server; 0 if all succeeded.

    ``json_out`` (``--json``): one JSON object per statement there instead (``repl.scripted``)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    console = Console(host, control, options, exit_hint="stop", url=url)
    if json_out is not None:
        from repl.scripted import run_json

        try:
            return await run_json(console, commands, stdin or sys.stdin, json_out, err)
        finally:
            console.close()
    try:
        console.start_app()
        for problem in await console.prepare():
            err.write(problem + "\n")
            err.flush()
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
