"""A real ``vivace`` process for the end-to-end tests of issue 15 (options, TLS, proxies, logs).

``Vivace(cwd, *args)`` runs ``python -m runtime *args`` in ``cwd`` with its output in a file;
``wait_output`` / ``wait_until`` poll with deadlines; ``stop()`` sends SIGINT, waits, and kills
the process group and every child it saw if anything is left.

For the tests that write a project and serve it (``tests/frameworks``, ``tests/reload``):
``write`` a project file, ``start`` vivace on a free port of 127.0.0.1, ``get`` a page, wait
until it ``serves`` a text, and ``save_until_seen`` a file the reloader watches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


class Vivace:
    def __init__(
        self,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        drop_env: tuple[str, ...] = (),
    ) -> None:
        self.cwd = cwd
        self.out_path = cwd / f"vivace-{time.monotonic_ns()}.out"
        self.out = self.out_path.open("wb")
        environ = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        for name in [n for n in environ if n.startswith("VIVACE_")] + list(drop_env):
            environ.pop(name, None)
        environ.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", *args],
            cwd=cwd,
            env=environ,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pids: set[int] = set()

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in (out := self.output()):
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before {text!r}:\n{out}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{out}")
            time.sleep(0.02)
        self.pids |= self.children()
        return out

    def wait_until(self, probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
        """Poll ``probe`` (exceptions count as not yet) until it returns something."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}:\n{self.output()}")
            try:
                result = probe()
            except Exception as exc:  # not serving yet, or not the new code yet
                last = exc
            else:
                if result is not None:
                    return result
                last = result
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout}s (last: {last!r}):\n{self.output()}")

    def exit_code(self, timeout: float = 20.0) -> int:
        """For a run that is expected to end by itself (a start-up error)."""
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def children(self) -> set[int]:
        try:
            return {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    def stop(self) -> int:
        self.pids |= self.children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            for pid in self.pids:
                try:
                    psutil.Process(pid).kill()
                except psutil.NoSuchProcess:
                    pass
            self.out.close()


def start(
    cwd: Path,
    target: str,
    *args: str,
    env: dict[str, str] | None = None,
    drop_env: tuple[str, ...] = (),
) -> tuple[Vivace, int]:
    """``vivace target --host 127.0.0.1 -p <a free port> *args`` in ``cwd``, and that port."""
    port = free_port()
    server = Vivace(
        cwd, target, "--host", "127.0.0.1", "-p", str(port), *args, env=env, drop_env=drop_env
    )
    return server, port


def write(path: Path, text: str) -> None:
    """Write ``text`` (dedented) to ``path``, making its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def get(port: int, path: str = "/") -> str:
    """The body of ``path``; an HTTP error status raises ``OSError`` (e.g. a 404 before a router
    is wired: not yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        exc.close()
        raise OSError(f"HTTP {exc.code}") from None


def serves(server: Vivace, port: int, text: str, path: str = "/", timeout: float = 20.0) -> str:
    """Poll ``path`` (bounded) until its body contains ``text``; return that body."""

    def probe() -> str | None:
        body = get(port, path)
        return body if text in body else None

    return server.wait_until(probe, f"{text!r} at {path}", timeout)


def save_until_seen(path: Path, text: str, output: Callable[[], str]) -> None:
    """Save ``text`` and wait for the reloader to log the change in ``output()``; save again if the
    watcher, just started, missed it (watchfiles sees changes from when its watch is in place)."""
    seen = output().count("Change detected")
    for _ in range(10):
        path.write_text(text)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if output().count("Change detected") > seen:
                return
            time.sleep(0.05)
    raise AssertionError(f"the reloader never saw {path} change:\n{output()}")
