"""A served test app in a real subprocess, with its output collected line by line."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


class Served:
    def __init__(
        self, workers: int = 1, flags: str = "", env: dict[str, str] | None = None
    ) -> None:
        environ = dict(os.environ)
        environ.update(
            SUPTEST=flags,
            PYTHONPATH=str(ROOT),
            VIVACE_WORKER_ACK_TIMEOUT="10",
            VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT="3",
            NO_COLOR="1",
        )
        environ.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.supervisor.serve", "tests.supervisor.apps", str(workers)],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._seen = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""
        self.descendants: list[psutil.Process] = []

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The next line (after those already matched) that matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._seen, len(self.lines)):
                found = regex.search(self.lines[i])
                if found:
                    self._seen = i + 1
                    return found
            self._seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines)
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"process ended before {pattern!r}; output:\n" + "\n".join(self.lines)
                )
            self.lines.append(line)

    def rewind(self) -> None:
        """Let the next wait_line search from the first line again."""
        self._seen = 0

    def drain(self, timeout: float = 0.3) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if line is None:
                return
            self.lines.append(line)

    def start(self, workers: int = 1) -> Served:
        self.url = self.wait_line(r"Goin' Fast @ (\S+)").group(1)
        for _ in range(workers):
            self.wait_line(r"Starting worker \[")
        self.descendants = psutil.Process(self.proc.pid).children(recursive=True)
        return self

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout)

    def poke(self, path: str, timeout: float = 2.0) -> bytes:
        """One raw request on one connection, no retries; returns what came back before close."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except OSError:
                pass
            return data

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def signal(self, signum: int = signal.SIGINT) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout)
        self.drain(0.2)
        return code

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGINT)
        return self.wait(timeout)

    def cleanup(self) -> None:
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for child in family + self.descendants:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def factory(
        workers: int = 1, flags: str = "", env: dict[str, str] | None = None, wait: bool = True
    ) -> Served:
        served = Served(workers, flags, env)
        started.append(served)
        return served.start(workers) if wait else served

    yield factory
    for served in started:
        served.cleanup()
