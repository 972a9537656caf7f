"""Serve an app with a real ASGI server subprocess on 127.0.0.1 (free port, readiness by polling).

uvicorn is a test dependency; hypercorn is used when it is installed (the tests that run under
every server skip it otherwise).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import free_port

HERE = Path(__file__).resolve().parent
UVICORN = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--lifespan", "on"]
START_TIMEOUT = 15.0
#: every ASGI server the shared tests run under
SERVERS = ("uvicorn", "hypercorn")


def installed(server: str) -> bool:
    return importlib.util.find_spec(server) is not None


def wait_until_serving(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the ASGI server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the ASGI server did not start listening in time")


class Served:
    """A running ASGI server process; ``stop()`` interrupts it and returns what it printed."""

    def __init__(
        self, kind: str, port: int, proc: subprocess.Popen[bytes], trace: Path, log: Path
    ) -> None:
        self.kind = kind
        self.port = port
        self.proc = proc
        self.trace = trace
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        return self.output()

    def output(self) -> str:
        """What uvicorn printed so far (stdout and stderr go to a file: a pipe could fill up)."""
        return self.log.read_text(errors="replace")


def serve(
    tmp_path: Path,
    module: str = "asgi_app:app",
    *,
    app_dir: Path = HERE,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    server: str = "uvicorn",
) -> Served:
    """Start ``server`` serving ``module`` and return once it accepts connections."""
    port = free_port()
    trace = tmp_path / "trace.txt"
    full_env = {
        **os.environ,
        "ASGI_TRACE_FILE": str(trace),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if server == "uvicorn":
        command = [*UVICORN, module, "--app-dir", str(app_dir), "--port", str(port)]
    elif server == "hypercorn":
        python_path = os.pathsep.join(filter(None, [str(app_dir), full_env.get("PYTHONPATH")]))
        full_env["PYTHONPATH"] = python_path
        command = [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", module]
    else:
        raise ValueError(f"unknown ASGI server {server!r}; use one of {SERVERS}")
    log = tmp_path / f"{server}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--log-level", "warning", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    try:
        wait_until_serving(port, proc, START_TIMEOUT)
    except BaseException:
        proc.kill()
        proc.wait(timeout=5)
        raise
    return Served(server, port, proc, trace, log)
