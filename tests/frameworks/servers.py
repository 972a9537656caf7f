"""Real server processes for the framework tests: vivace (``python -m runtime``) or uvicorn serving
a target of ``apps/`` on a free port of 127.0.0.1.

``start()`` returns once the server answers HTTP (or raises with what it printed); ``stop()`` sends
SIGINT, then SIGKILL after a timeout, and reports any process of its tree still alive: a test that
starts a server always stops it and asserts no orphan is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.support import free_port

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
ROOT = HERE.parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

#: how vivace is asked for each process mode
MODES: dict[str, tuple[str, ...]] = {
    "single": ("--single-process",),
    "workers": ("-w", "2"),
}


def environment(trace_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["FRAMEWORK_TRACE_DIR"] = str(trace_dir)
    for name in ("VIVACE_DEBUG", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def vivace_command(target: str, port: int, args: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "runtime",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-motd",
        *args,
    ]


def uvicorn_command(target: str, port: int, args: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--app-dir",
        str(APPS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *args,
    ]


@dataclass
class Server:
    """A server process serving one target; ``output()`` is what it printed so far."""

    kind: str
    target: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    trace_dir: Path
    orphans: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tree(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, signum: int = signal.SIGINT) -> int:
        """SIGINT (or ``signum``), wait, SIGKILL what is left; returns the exit code (orphans in
        ``orphans``)."""
        family = self.tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        _, alive = psutil.wait_procs(family, timeout=5)
        self.orphans = [p.pid for p in alive]
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        return self.proc.returncode

    def stop_cleanly(self, signum: int = signal.SIGINT) -> None:
        """Stop and assert a clean end: exit 0 and no process of the tree left behind."""
        code = self.stop(signum)
        assert not self.orphans, f"{self.kind} left processes {self.orphans}:\n{self.output()}"
        assert code == 0, f"{self.kind} exited with {code}:\n{self.output()}"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def start(
    kind: str,
    target: str,
    trace_dir: Path,
    *,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    ready_path: str = "/",
) -> Server:
    """Start ``kind`` (``vivace`` or ``uvicorn``) serving ``target``; return once it answers."""
    port = free_port()
    trace_dir.mkdir(parents=True, exist_ok=True)
    if kind == "vivace":
        command = vivace_command(target, port, args)
    elif kind == "uvicorn":
        command = uvicorn_command(target, port, args)
    else:
        raise ValueError(f"unknown server {kind!r}")
    log = trace_dir / f"{kind}-{port}.log"
    with log.open("wb") as out:  # a file, not a pipe: a pipe nobody reads can fill up
        proc = subprocess.Popen(
            command,
            cwd=APPS,
            env=environment(trace_dir, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(kind, target, port, proc, log, trace_dir)
    try:
        _wait_until_answering(server, ready_path)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_answering(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.proc.poll() is not None:
            raise AssertionError(
                f"{server.kind} {server.target} exited with {server.proc.returncode} before "
                f"answering:\n{server.output()}"
            )
        try:
            httpx.get(server.url + path, timeout=2)
            return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{server.kind} {server.target} did not answer within {START_TIMEOUT} s:\n"
                f"{server.output()}"
            )
        time.sleep(0.05)


@dataclass
class Finished:
    returncode: int
    output: str


def run_to_exit(kind: str, target: str, trace_dir: Path, args: Sequence[str] = ()) -> Finished:
    """Run a server that is expected to exit by itself (bad target, failing start-up)."""
    port = free_port()
    trace_dir.mkdir(parents=True, exist_ok=True)
    command = (vivace_command if kind == "vivace" else uvicorn_command)(target, port, args)
    proc = subprocess.Popen(
        command,
        cwd=APPS,
        env=environment(trace_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    family: list[psutil.Process] = []
    try:
        output, _ = proc.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate(timeout=5)
        for process in psutil.wait_procs(family, timeout=5)[1]:
            process.kill()
        raise AssertionError(
            f"{kind} {target} was expected to exit by itself but still ran after 45 s:\n"
            + output.decode(errors="replace")
        ) from None
    text = output.decode(errors="replace")
    left = left_behind(port)
    assert not left, f"{kind} {target} exited but left processes {left}:\n{text}"
    return Finished(proc.returncode, text)


def left_behind(port: int) -> list[int]:
    """Processes still running with ``port`` on their command line (workers of an exited main)."""
    needle = str(port)
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if needle in cmdline and process.pid != os.getpid():
            found.append(process)
    _, alive = psutil.wait_procs(found, timeout=5)
    for process in alive:
        process.kill()
    return [process.pid for process in alive]
