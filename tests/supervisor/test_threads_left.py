"""Non-daemon threads the app leaves running (an SDK's poller started at import time, a
``threading.Timer``) do not keep vivace from exiting: after the graceful shutdown every worker and
the main process end, exit code 0, with one warning naming the threads (docs/workers.md, "Signals
and exit codes"). Real ``python -m runtime`` processes: the command line's own way out."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from tests.supervisor.conftest import ROOT
from tests.support import free_port

WARNING = (
    "Not waiting for 2 non-daemon thread(s) left running by the app: 'sdk-poller', 'sdk-timer'"
)


def _lines(proc: subprocess.Popen[str], into: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.put(line.rstrip("\n"))
    into.put(None)


@pytest.mark.parametrize(
    ("mode", "warnings"),
    [(["-w", "2"], 3), (["--single-process"], 1)],  # two workers and the main process; one
)
def test_sigterm_exits_0_promptly_although_the_app_left_threads(
    mode: list[str], warnings: int
) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT="3")
    cmd = [sys.executable, "-m", "runtime", "tests.supervisor.threads_app:app"]
    cmd += [*mode, "-H", "127.0.0.1", "-p", str(port), "--no-motd"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(proc, lines), daemon=True).start()
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 20
        served: set[str] = set()
        while len(served) < (2 if "-w" in mode else 1):  # every worker serves
            assert time.monotonic() < deadline, "the server did not serve"
            assert proc.poll() is None, "the server exited"
            try:
                served.add(httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text)
            except httpx.HTTPError:
                time.sleep(0.1)
        family = psutil.Process(proc.pid).children(recursive=True)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # without the fix: each worker waits for the threads until the manager kills it after
        # GRACEFUL_SHUTDOWN_TIMEOUT + 5 s (8 s), and the main process never exits
        code = proc.wait(6)
        took = time.monotonic() - began
        out = []
        while (line := lines.get(timeout=5)) is not None:
            out.append(line)
        text = "\n".join(out)
        assert code == 0, text
        assert took < 4, text
        assert text.count(WARNING) == warnings, text
        assert "The main process exits now" in text
        assert "Worker shutdown timed out" not in text
        if "-w" in mode:
            for name in ("Vivace-Server-0-0", "Vivace-Server-1-0"):
                assert f"{name} [" in text  # each worker said it, once
        _, alive = psutil.wait_procs(family, timeout=5)
        running = []
        for child in alive:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    running.append(child)
            except psutil.NoSuchProcess:
                pass
        assert running == [], f"left running: {running}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for child in family:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        if proc.stdout is not None:
            proc.stdout.close()
