"""Auto-reload wired into the worker manager, end to end with real processes (reload.md, QA #4/#5).

Each test runs ``python -m runtime app:app`` on a unix socket in a temporary project and edits the
project's files; every wait is bounded and every process is stopped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import ROOT

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import json, os
    from runtime import App, text

    app = App("Wiring")
    VERSION = "v1"

    @app.get("/")
    async def index(request):
        reloaded = request.app.config.get("RELOADED_FILES", "")
        return text(f"{VERSION} {os.getpid()} {reloaded}")

    @app.get("/workers")
    async def workers(request):
        return text(json.dumps(request.app.m.workers, default=str))

    @app.get("/restart")
    async def restart(request):
        request.app.m.restart(zero_downtime=bool(request.args.get("zd")))
        return text("ok")

    @app.reload_process_start
    def started(app):
        print("LISTENER reload_process_start", os.getpid(), flush=True)

    @app.after_reload_trigger
    def after(app, changed):
        print("LISTENER after_reload_trigger", os.getpid(), json.dumps(sorted(changed)), flush=True)

    @app.reload_process_stop
    def stopped(app):
        print("LISTENER reload_process_stop", os.getpid(), flush=True)
    """
)


def request(sock: str, path: str = "/", timeout: float = 2.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"unexpected response {head[:60]!r}")
    return body.decode()


class Vivace:
    """``python -m runtime app:app -u <sock> ARGS`` in ``cwd``, output to a file."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.cwd = cwd
        self.sock = str(cwd / "s.sock")
        self.out_path = cwd / "out.txt"
        self.out = self.out_path.open("wb")
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
            VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT="3",
            VIVACE_WORKER_ACK_TIMEOUT="10",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", "app:app", "-u", self.sock, *args],
            cwd=cwd,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: set[int] = set()

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def get(self, path: str = "/") -> str:
        return request(self.sock, path)

    def table(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = json.loads(self.get("/workers"))
        return result

    def wait_table(self, name: str, starts: int, timeout: float = 10.0) -> dict[str, Any]:
        """The table once ``name`` is ACKED and serving with ``starts`` starts (a worker answers as
        soon as it listens; the table records it a moment later, once the manager hears it)."""
        deadline = time.monotonic() + timeout
        table = self.table()
        while time.monotonic() < deadline:
            entry = table[name]
            ready = entry.get("state") == "ACKED" and entry.get("serving", True) is True
            if entry.get("starts") == starts and ready:
                return table
            time.sleep(0.02)
            table = self.table()
        raise AssertionError(f"{name} not ACKED with {starts} starts: {table}")

    def wait_body(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"vivace exited {self.proc.returncode}:\n{self.output()}")
            try:
                last = self.get()
                if re.search(pattern, last):
                    return last
            except OSError:
                pass
            time.sleep(0.02)  # "serves the new code" has no other readiness signal than asking
        raise AssertionError(f"no {pattern!r} in {timeout}s (last {last!r}):\n{self.output()}")

    def wait_output(self, pattern: str, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.output())) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {count}x {pattern!r} in {timeout}s:\n{self.output()}")
            time.sleep(0.02)

    def remember_children(self) -> None:
        try:
            self.pids |= {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def stop(self, timeout: float = 15.0) -> int:
        self.remember_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            self.cleanup()

    def leftovers(self) -> list[int]:
        procs = []
        for pid in self.pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=5)
        return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        for pid in self.pids:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        self.out.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "templates").mkdir()
    return tmp_path


@pytest.fixture
def start(project: Path) -> Iterator[Any]:
    started: list[Vivace] = []

    def factory(*args: str, reloader: bool = True) -> Vivace:
        v = Vivace(project, *args)
        started.append(v)
        v.wait_body("^v1 ")
        if reloader:  # the watchers are live once reload_process_start ran
            v.wait_output("LISTENER reload_process_start")
        v.remember_children()
        return v

    yield factory
    for v in started:
        v.cleanup()


def save(project: Path, version: str) -> None:
    app = project / "app.py"
    app.write_text(re.sub(r'VERSION = ".*"', f'VERSION = "{version}"', app.read_text()))


def test_reloader_process_listeners_and_a_save(project: Path, start: Any) -> None:
    v = start("--reload", "-R", "templates")
    table = v.table()
    reloader = table["Vivace-Reloader-0"]
    assert reloader["server"] is False and reloader["kind"] == "reloader"
    assert reloader["state"] == "STARTED"  # a custom-like process: it never acks
    old_pid = v.get().split()[1]
    save(project, "v2")
    body = v.wait_body("^v2 ")
    assert body.split()[1] != old_pid
    assert body.split()[2] == str(project / "app.py")  # RELOADED_FILES
    line = re.search(r"(.*)LISTENER after_reload_trigger (\d+) (.*)", v.output())
    assert line is not None
    assert line.group(1).startswith("Vivace-Reloader-0")  # ran in the reloader process
    assert int(line.group(2)) == reloader["pid"]
    assert json.loads(line.group(3)) == [str(project / "app.py")]  # absolute paths
    after = v.wait_table("Vivace-Server-0-0", 2)
    assert after["Vivace-Reloader-0"]["pid"] == reloader["pid"]  # durable: not restarted
    # a file in a -R directory
    (project / "templates" / "page.html").write_text("<p>new</p>")
    body = v.wait_body(r"page\.html")
    assert body.split()[1] != after["Vivace-Server-0-0"]["pid"]
    # shutdown: the reloader runs reload_process_stop and exits within 0.5 s (margin for load)
    watcher = psutil.Process(reloader["pid"])
    v.remember_children()
    v.proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    watcher.wait(5)
    assert time.monotonic() - began < 1.0
    assert v.proc.wait(15) == 0
    assert "LISTENER reload_process_stop" in v.output()
    assert v.leftovers() == []


def test_broken_code_keeps_the_old_workers_serving_and_a_fix_recovers(
    project: Path, start: Any
) -> None:
    v = start("--reload", "--workers", "2")
    before = v.table()
    servers = {n: e for n, e in before.items() if e.get("server")}
    assert len(servers) == 2
    failures: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                v.get()
            except OSError as exc:
                failures.append(repr(exc))
            time.sleep(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        app = project / "app.py"
        good = app.read_text()
        app.write_text(good + "\ndef broken(:\n")
        v.wait_output("Reload failed: ")
        after = v.table()
        for name, entry in servers.items():  # the table tells the truth: nothing changed
            for key in ("pid", "starts", "restart_at", "state", "serving"):
                assert after[name].get(key) == entry.get(key), (name, key, after[name], entry)
        # an exception in before_server_start: same outcome, traceback once
        app.write_text(
            good + "\n@app.before_server_start\ndef fail(app):\n    raise RuntimeError('nope')\n"
        )
        v.wait_output("Reload failed: ", count=2)
        assert {n: v.table()[n]["pid"] for n in servers} == {
            n: e["pid"] for n, e in servers.items()
        }
        app.write_text(good.replace('VERSION = "v1"', 'VERSION = "fixed"'))
        v.wait_body("^fixed ")
    finally:
        stop.set()
        poller.join(10)
    out = v.output()
    assert failures == []
    assert out.count("SyntaxError: ") == 1  # printed once, by the failed replacement
    assert out.count("RuntimeError: nope") == 1
    assert "Last output" not in out and "died unexpectedly" not in out and "crashed" not in out
    for name in servers:
        v.wait_table(name, 2)
    assert v.stop() == 0
    assert v.leftovers() == []


def test_a_burst_of_twenty_saves_restarts_once_or_twice(project: Path, start: Any) -> None:
    v = start("--reload")
    for i in range(20):
        save(project, f"b{i}")
        time.sleep(0.008)
    v.wait_body("^b19 ")
    time.sleep(0.5)  # a trailing second batch, if any, has run by then (nothing else to wait on)
    assert 1 <= v.output().count("LISTENER after_reload_trigger") <= 2, v.output()
    assert 2 <= v.table()["Vivace-Server-0-0"]["starts"] <= 3


def test_without_the_flag_there_is_no_reloader(project: Path, start: Any) -> None:
    v = start(reloader=False)
    assert "Vivace-Reloader-0" not in v.table()
    pid = v.get().split()[1]
    save(project, "v2")
    time.sleep(1.0)  # what is tested is that nothing happens
    assert v.get().split()[:2] == ["v1", pid]
    assert v.stop() == 0


def test_shutdown_during_a_reload_is_clean(project: Path, start: Any) -> None:
    v = start("--reload", "-w", "2")
    save(project, "v2")
    v.wait_output("LISTENER after_reload_trigger")  # the replacements are starting
    v.remember_children()
    assert v.stop() == 0
    assert v.leftovers() == []
    assert "LISTENER reload_process_stop" in v.output()


def test_failed_manual_restarts_keep_the_table_truthful(project: Path, start: Any) -> None:
    v = start(reloader=False)
    before = v.wait_table("Vivace-Server-0-0", 1)["Vivace-Server-0-0"]
    app = project / "app.py"
    app.write_text(app.read_text() + "\nraise RuntimeError('broken on purpose')\n")
    # start-first: the replacement fails, the old worker keeps serving, the table is unchanged
    assert v.get("/restart?zd=1") == "ok"
    v.wait_output("Zero-downtime restart of Vivace-Server-0-0 failed")
    time.sleep(0.3)  # no respawn may follow (nothing to wait on for an absence)
    after = v.table()["Vivace-Server-0-0"]
    for key in ("pid", "starts", "restart_at", "state", "serving"):
        assert after.get(key) == before.get(key), (key, after, before)
    # shutdown-first: the old worker is gone, the broken replacement is left FAILED, not
    # respawned; it was the only worker, and nothing here can start it again (no console, no
    # auto-reload): the server stops with exit code 1 rather than hold the port unanswered
    v.remember_children()
    assert v.get("/restart") == "ok"
    try:
        code = v.proc.wait(15)
    finally:
        v.cleanup()
    out = v.output()
    assert code == 1, out
    assert "failed to start after a restart" in out
    assert (
        "No server worker is left to serve (Vivace-Server-0-0 failed to start after a restart). "
        "Stopping the server with exit code 1"
    ) in out
    assert "crashed" not in out and "died unexpectedly" not in out
    assert out.count("RuntimeError: broken on purpose") == 2  # one per failed replacement
    assert v.leftovers() == []


def test_port_in_use_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "runtime", "app:app", "-p", str(port), "-w", "2"],
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1"),
            capture_output=True,
            text=True,
            timeout=30,
        )
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 1
    assert len(lines) == 1, lines
    assert str(port) in lines[0] and "Goin' Fast" not in lines[0]
