"""Scripted mode's ``--json``: one JSON object per statement, for scripts and coding agents.

``vivace app:app --repl-command 'client.get("/").status_code' --json`` (or ``--repl --json`` with
statements on stdin) prints, for each statement, one line::

    {"statement": "client.get(\\"/\\").status_code", "ok": true, "value": "200", "stdout": "",
     "error": null, "elapsed_ms": 3.1}

``value`` is the ``repr()`` of the statement's value (null when it has none), ``stdout`` what the
statement printed (with what the console's background tasks, such as a followed websocket,
printed since the previous statement ended), ``error`` null or ``{"type", "message",
"traceback"}``. Nothing else goes to stdout: when the console is made, the process's standard
output (file descriptor 1, which the workers inherit) is pointed at standard error, so the
server's and the workers' log lines go there, and the JSON lines are written to a copy of the
original standard output. The exit code is 0 when every statement succeeded, 1 otherwise, or the
code ``exit(n)`` gave.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from repl.evaluate import split_statements

__all__ = ["JSON_NEEDS_SCRIPT", "json_stdout", "run_json"]

JSON_NEEDS_SCRIPT = (
    "--json applies to the scripted console: add --repl-command CODE, or --repl with the "
    "statements on stdin; serving without a console."
)


def json_stdout() -> TextIO:
    """A copy of this process's stdout for the JSON lines; fd 1 then points at stderr."""
    sys.stdout.flush()
    copy = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(copy, "w", encoding="utf-8", buffering=1)


class _Capture(io.TextIOBase):
    """``sys.stdout`` while a statement runs: what the statement's threads write is kept; what
    another thread writes (the main process's loop relaying worker output) goes on to ``real``."""

    def __init__(self, real: TextIO, passthrough: int | None) -> None:
        self.real = real
        self.passthrough = passthrough
        self.parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if self.passthrough is not None and threading.get_ident() == self.passthrough:
            return self.real.write(text)
        with self._lock:
            self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        if self.passthrough is not None and threading.get_ident() == self.passthrough:
            self.real.flush()

    def isatty(self) -> bool:
        return False

    def take(self) -> str:
        """What was written since the last call."""
        with self._lock:
            text = "".join(self.parts)
            self.parts.clear()
        return text


def _emit(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


def _error(exc: BaseException, formatted: str) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc), "traceback": formatted}


async def run_json(
    console: Any, commands: list[str] | None, stdin: TextIO, out: TextIO, err: TextIO
) -> int:
    """Run the statements with one JSON line each on ``out`` (see the module's docstring)."""
    console.start_app()
    for problem in await console.prepare():
        err.write(problem + "\n")
        err.flush()
    if commands is None:
        text = await asyncio.get_running_loop().run_in_executor(None, stdin.read)
        commands = [text]
    statements: list[str] = []
    for command in commands:
        try:
            statements += split_statements(command)
        except SyntaxError as exc:
            from repl.evaluate import format_exception

            failed: dict[str, Any] = {"statement": command, "ok": False, "value": None}
            failed.update(stdout="", error=_error(exc, format_exception(exc)), elapsed_ms=0.0)
            _emit(out, failed)
            return 1
    # with workers, statements run on the console's threads and the loop here relays the
    # workers' output: what this thread writes is not the statement's
    passthrough = threading.get_ident() if console.control is not None else None
    real = sys.stdout
    capture = _Capture(real, passthrough)
    sys.stdout = capture
    try:
        return await _run_statements(console, statements, capture, out)
    finally:
        sys.stdout = real


async def _run_statements(
    console: Any, statements: list[str], capture: _Capture, out: TextIO
) -> int:
    """One record per statement. The capture stays in place between statements: what the
    console's tasks print then (a followed websocket's message) goes to the next record."""
    ok = True
    for statement in statements:
        started = time.perf_counter()
        outcome = await console.run(statement)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        record: dict[str, Any] = {"statement": statement, "ok": outcome.ok}
        value = None
        if outcome.has_value:
            try:
                value = repr(outcome.value)
            except Exception as exc:
                record["ok"] = False
                outcome.error = exc
        record["value"] = value
        record["stdout"] = capture.take()
        error = outcome.error
        if outcome.cancelled:
            record["error"] = {"type": "KeyboardInterrupt", "message": "", "traceback": ""}
        else:
            record["error"] = None if error is None else _error(error, outcome.format_error())
        record["elapsed_ms"] = elapsed
        if outcome.exit_code is not None:
            record["exit_code"] = outcome.exit_code
            _emit(out, record)
            return int(outcome.exit_code)
        _emit(out, record)
        if not record["ok"]:
            ok = False
    return 0 if ok else 1
