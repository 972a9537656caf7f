"""Real processes for the attach tests: a vivace server started with no terminal (in the
background, its output to a file) and ``vivace attach`` in a pseudo-terminal (pexpect + pyte)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pexpect
import psutil
import pyte

from tests.support import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COLS, ROWS = 110, 40
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\r")


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    # hidden: the reloader of a --dev server whose project is tmp_path never walks into it (a
    # directory vivace makes there at start would be reported while the test types)
    runtime_dir = tmp_path / ".run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]),
        XDG_RUNTIME_DIR=str(runtime_dir),
        VIVACE_HISTORY_FILE=str(tmp_path / "history"),
        PROMPT_TOOLKIT_NO_CPR="1",  # pyte does not answer cursor position requests
        TERM="xterm",
    )
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Server:
    """``python -m runtime attach_app:app ARGS`` with stdin from /dev/null and output to a file:
    no terminal at all, as under an IDE's run window or docker compose."""

    def __init__(
        self, tmp_path: Path, *args: str, env: dict[str, str] | None = None, workers: int = 2
    ) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = env if env is not None else env_for(tmp_path)
        command = [
            sys.executable,
            "-m",
            "runtime",
            "attach_app:app",
            "-p",
            str(self.port),
            "-w",
            str(workers),
            *args,
        ]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(tmp_path),
                env=self.env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str = "/") -> httpx.Response:
        return httpx.get(self.url(path), timeout=5)

    def serves(self) -> bool:
        try:
            return self.get().status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 30.0, attach: bool = True) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}):\n{self.log()}")
            return (not attach or "vivace attach --pid" in self.log()) and self.serves()

        wait_for(ready, timeout, f"the server to serve; log:\n{self.log()}")

    def inspect(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``vivace inspect ARGS`` as this user (it finds the server by its control socket)."""
        return subprocess.run(
            [sys.executable, "-m", "runtime", "inspect", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=str(self.tmp),
            timeout=60,
        )

    def worker_pids(self) -> dict[str, int]:
        """Name of each process -> its pid, from the server's state table."""
        done = self.inspect("--pid", str(self.pid), "--json")
        assert done.returncode == 0, done.stderr
        table = json.loads(done.stdout)["result"]["workers"]
        return {name: int(row["pid"]) for name, row in table.items() if row.get("pid")}

    def children(self) -> set[int]:
        return {p.pid for p in psutil.Process(self.pid).children(recursive=True)}

    def socket_path(self) -> Path:
        return Path(self.env["XDG_RUNTIME_DIR"]) / "vivace" / f"{self.pid}.sock"

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            os.killpg(self.pid, signal.SIGKILL)  # nothing of it may outlive the test
        except (ProcessLookupError, PermissionError):
            pass
        return int(self.proc.returncode)


class AttachTerm:
    """``vivace attach ARGS`` inside bash in a pty, its screen kept by pyte; ``stty -g`` is
    recorded before and after, so a test can check the terminal was restored."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str, tag: str = "a") -> None:
        self.tmp = tmp_path
        self.tag = tag
        command = " ".join([sys.executable, "-m", "runtime", "attach", *args])
        script = (
            f"stty -g > {tmp_path}/stty-{tag}.before; {command}; rc=$?; "
            f"stty -g > {tmp_path}/stty-{tag}.after; echo EXIT=$rc; sleep 0.2"
        )
        self.started = time.monotonic()
        self.child = pexpect.spawn(
            "bash",
            ["--norc", "--noprofile", "-c", script],
            cwd=str(tmp_path),
            env=env,
            dimensions=(ROWS, COLS),
            encoding="utf-8",
            codec_errors="replace",
            timeout=5,
        )
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""
        self.text = ""

    def pump(self, seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                data = ""
            except pexpect.EOF:
                return
            if data:
                self.raw += data
                self.text = ANSI.sub("", self.raw)
                self.stream.feed(data)
            if time.monotonic() >= end:
                return

    def wait(self, check: str | Callable[[], bool], timeout: float = 20.0) -> None:
        if isinstance(check, str):
            needle = check
            start = len(self.text)

            def predicate() -> bool:
                return needle in self.text[max(0, start - len(needle) - 8192) :]

        else:
            predicate = check
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {check!r}; screen:\n{self.display()}")
            self.pump(0.05)

    def display(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def prompt_line(self) -> str:
        return self.screen.display[self.screen.cursor.y].rstrip()

    def wait_prompt(self, timeout: float = 20.0) -> None:
        self.wait(lambda: self.prompt_line() == ">>>", timeout)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def run(self, statement: str, expect: str, timeout: float = 20.0) -> str:
        """Type a statement; wait for ``expect`` after it and for the next empty prompt."""
        mark = len(self.text)
        self.send(statement + "\r")
        self.wait(lambda: expect in self.text[mark:], timeout)
        self.wait_prompt(timeout)
        return self.text[mark:]

    def exit_code(self, timeout: float = 20.0) -> int:
        self.wait(lambda: "EXIT=" in self.text, timeout)
        match = re.search(r"EXIT=(\d+)", self.text)
        assert match is not None
        return int(match.group(1))

    def stty_restored(self) -> bool:
        before = (self.tmp / f"stty-{self.tag}.before").read_text().strip()
        after_path = self.tmp / f"stty-{self.tag}.after"
        wait_for(after_path.exists, 10, "stty -g after vivace attach")
        return bool(before) and before == after_path.read_text().strip()

    def close(self) -> None:
        try:
            procs = psutil.Process(self.child.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=5)
        self.child.close(force=True)
