"""Run ``vivace tests.repl.console14_app:app --json --repl-command ...`` as a real process.

Each statement's JSON line comes back parsed; no process of the run is left behind (a mark in
the environment finds every one of them, the workers included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
APP = "tests.repl.console14_app:app"


class Run(NamedTuple):
    code: int
    records: list[dict[str, Any]]
    stdout: str
    stderr: str

    def values(self) -> list[Any]:
        return [r["value"] for r in self.records]

    def record(self, statement: str) -> dict[str, Any]:
        for record in self.records:
            if record["statement"] == statement:
                return record
        raise AssertionError(f"no record of {statement!r}: {self.stdout}\n{self.stderr}")


def scripted(
    tmp: Path,
    *statements: str,
    args: tuple[str, ...] = (),
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    json_mode: bool = True,
    app: str = APP,
) -> Run:
    mark = uuid.uuid4().hex
    environ = dict(os.environ)
    for name in [n for n in environ if n.startswith("VIVACE_")]:
        environ.pop(name)
    environ.update(
        PYTHONPATH=os.pathsep.join([str(tmp), str(ROOT)]),
        VIVACE_HISTORY_FILE=str(tmp / "history"),
        CONSOLE14_MARK=mark,
        PYTHONUNBUFFERED="1",
        **(env or {}),
    )
    workers = () if "--single-process" in args else ("-w", "1")
    command = [sys.executable, "-m", "runtime", app, "-p", str(free_port()), *workers, *args]
    if json_mode:
        command.append("--json")
    for statement in statements:
        command += ["--repl-command", statement]
    if stdin is not None:
        command.append("--repl")
    try:
        done = subprocess.run(
            command,
            cwd=tmp,
            env=environ,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        left = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("CONSOLE14_MARK") == mark:
                    left.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        for proc in left:
            proc.kill()
        assert not left, f"processes left behind: {left}"
    records = []
    if json_mode:
        for line in done.stdout.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(
                    f"not a JSON line on stdout: {line!r}\n{done.stdout}\n{done.stderr}"
                ) from None
    return Run(done.returncode, records, done.stdout, done.stderr)
