"""console.md §6 in single-process mode: Ctrl+C stops gracefully, a second Ctrl+C forces it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support import free_port

VIVACE = [sys.executable, "-m", "runtime"]
SLOW_TEARDOWN_APP = """
import asyncio
from runtime import App, text

app = App("slow_teardown")

@app.before_server_stop
async def slow(app):
    print("teardown begins", flush=True)
    await asyncio.sleep(30)
    print("teardown finished", flush=True)

@app.get("/")
async def index(request):
    return text("ok")
"""


def _read_until(proc: subprocess.Popen[bytes], needle: bytes, timeout: float) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in time; output so far: {seen.decode()}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"process ended before {needle!r}: {seen.decode()}"
            seen += chunk
    return seen


def test_second_sigint_cancels_a_slow_teardown(tmp_path: Path) -> None:
    (tmp_path / "slow_teardown.py").write_text(SLOW_TEARDOWN_APP)
    port = free_port()
    proc = subprocess.Popen(
        [*VIVACE, "slow_teardown:app", "--single-process", "-p", str(port), "--no-motd"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _read_until(proc, b"Starting worker", 20)
        proc.send_signal(signal.SIGINT)
        _read_until(proc, b"teardown begins", 10)
        forced_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert time.monotonic() - forced_at < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert b"teardown finished" not in out
    assert b"Shutdown interrupted" in out
    assert proc.returncode == 0
