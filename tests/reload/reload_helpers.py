"""Helpers for the reload tests: a reloader process run for real, read line by line."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


APP_MODULE = textwrap.dedent(
    """
    import json, os

    import helpers
    from runtime import App

    app = App("ReloadTest")
    VERSION = 1

    def emit(**kw):
        print(json.dumps({"pid": os.getpid(), **kw}), flush=True)

    @app.reload_process_start
    def started(app):
        emit(event="reload_process_start")

    @app.before_reload_trigger
    def before(app):
        emit(event="before_reload_trigger")

    @app.after_reload_trigger
    async def after(_, changed):
        emit(event="after_reload_trigger", changed=sorted(changed))

    @app.reload_process_stop
    def stopped(app):
        emit(event="reload_process_stop")
    """
)

RUNNER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.getcwd())
    from runtime.loader import AppRef
    from runtime.supervisor.reloader import reloader_main

    def send(request):
        if os.environ.get("RELOAD_TEST_SEND_FAILS"):
            raise BrokenPipeError("the manager is gone")
        print(json.dumps({"pid": os.getpid(), "event": "request",
                          "changed": list(request.changed), "all_workers": request.all_workers,
                          "names": list(request.names)}), flush=True)

    def ready(watch_set):
        print(json.dumps({"pid": os.getpid(), "event": "watching",
                          "files": sorted(watch_set.module_files)}), flush=True)

    script = os.environ.get("RELOAD_TEST_SCRIPT")
    ref = AppRef(path=script, cwd=os.getcwd()) if script else AppRef(module="app", cwd=os.getcwd())
    sys.exit(reloader_main(ref, send, reload_dirs=sys.argv[1:], on_watching=ready))
    """
)


class ReloaderProcess:
    """A reloader subprocess whose JSON stdout lines are read with deadlines."""

    def __init__(
        self,
        cwd: Path,
        reload_dirs: list[str],
        script: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **(env or {}))
        if script:
            env["RELOAD_TEST_SCRIPT"] = script
        self.proc = subprocess.Popen(
            [sys.executable, "run_reloader.py", *reload_dirs],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b""
        self._err = ""
        self.lines: list[dict[str, Any]] = []

    def _read_line(self, deadline: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            return {"event": "text", "text": line.decode(errors="replace")}
        self.lines.append(record)
        return record

    def wait_for(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            record = self._read_line(deadline)
            if record is None:
                raise AssertionError(f"no {event!r} within {timeout}s; saw {self.lines}")
            if record.get("event") == event:
                return record

    def wait_for_change(self, path: str, timeout: float = 10.0) -> list[str]:
        """The next ``after_reload_trigger`` whose ``changed`` includes ``path``.

        One save can reach the reloader as two batches when its events straddle a watchfiles
        step (a create, then the write), so an earlier batch may repeat a path already seen.
        """
        deadline = time.monotonic() + timeout
        while True:
            record = self.wait_for("after_reload_trigger", max(0.0, deadline - time.monotonic()))
            changed: list[str] = record["changed"]
            if path in changed:
                return changed

    def collect(self, seconds: float) -> list[dict[str, Any]]:
        """Every record that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        got = []
        while (record := self._read_line(deadline)) is not None:
            got.append(record)
        return got

    def stop(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self._err = self.proc.stderr.read().decode(errors="replace")
        self._sel.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def stderr(self) -> str:
        """Everything the process wrote to stderr (waits for it to exit)."""
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.proc.wait(10)
            self._err = self.proc.stderr.read().decode(errors="replace")
        return self._err
