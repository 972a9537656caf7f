"""End to end: ``vivace app:app --reload`` in real processes (needs the manager integration)."""

from __future__ import annotations

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

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import os
    from runtime import App, text

    app = App("E2E")
    VERSION = "v1"

    @app.get("/")
    async def index(request):
        return text(f"{VERSION} {os.getpid()} {request.app.config.get('RELOADED_FILES', '')}")

    @app.reload_process_start
    def started(app):
        print("LISTENER reload_process_start", os.getpid(), flush=True)

    @app.after_reload_trigger
    def after(app, changed):
        print("LISTENER after_reload_trigger", os.getpid(), sorted(changed), flush=True)

    @app.reload_process_stop
    def stopped(app):
        print("LISTENER reload_process_stop", os.getpid(), flush=True)
    """
)


def http_get(path: str, timeout: float = 2.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"unexpected response {head[:40]!r}")
    return body.decode()


class Server:
    def __init__(self, cwd: Path, *args: str) -> None:
        self.sock = str(cwd / "s.sock")
        self.out_path = cwd / "out.txt"
        self.out = self.out_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", "app:app", "-u", self.sock, *args],
            cwd=cwd,
            env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: set[int] = set()

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_body(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                last = http_get(self.sock)
                if re.search(pattern, last):
                    return last
            except OSError:
                pass
            time.sleep(0.02)  # no readiness signal for "serves new code" other than asking
        raise AssertionError(f"no {pattern!r} within {timeout}s (last {last!r}):\n{self.output()}")

    def wait_output(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output()}")
            time.sleep(0.02)

    def leftovers(self, timeout: float = 5.0) -> list[int]:
        """Child pids still alive ``timeout`` seconds after the main process exited."""
        procs = []
        for pid in self.pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]

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
            return self.proc.wait(15)
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "templates").mkdir()
    return tmp_path


@pytest.fixture
def server(project: Path) -> Iterator[Server]:
    srv = Server(project, "--reload", "-R", "templates")
    try:
        srv.wait_body("^v1 ")
        # the reloader's watchers are live once reload_process_start ran
        srv.wait_output("LISTENER reload_process_start")
        srv.pids |= srv.children()
        yield srv
    finally:
        srv.stop()


def save(project: Path, version: str) -> None:
    app = project / "app.py"
    text = re.sub(r'VERSION = ".*"', f'VERSION = "{version}"', app.read_text())
    app.write_text(text)


def test_a_save_serves_new_code_and_the_listeners_run_in_the_reloader(
    project: Path, server: Server
) -> None:
    first = server.wait_body("^v1 ")
    save(project, "v2")
    body = server.wait_body("^v2 ")
    assert body.split()[1] != first.split()[1]  # a new worker
    assert str(project / "app.py") in body  # RELOADED_FILES
    out = server.output()
    line = next(ln for ln in out.splitlines() if "LISTENER after_reload_trigger" in ln)
    assert "Vivace-Reloader-0" in line and str(project / "app.py") in line
    assert server.stop() == 0
    assert "LISTENER reload_process_stop" in server.output()
    assert server.leftovers() == []


def test_no_request_fails_while_polling_every_5_ms_through_reloads(
    project: Path, server: Server
) -> None:
    failures: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                seen.add(http_get(server.sock).split()[0])
            except OSError as exc:
                failures.append(repr(exc))
            time.sleep(0.005)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for version in ("v2", "v3", "v4"):
            save(project, version)
            server.wait_body(f"^{version} ")
        deadline = time.monotonic() + 5  # the poller's own next request sees the last version too
        while "v4" not in seen and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        stop.set()
        thread.join(10)
    assert failures == []
    assert {"v2", "v3", "v4"} <= seen


CUSTOM = textwrap.dedent(
    """

    import time

    def job(config=None):
        print("CUSTOM job", os.getpid(), repr(config), flush=True)
        time.sleep(3600)

    def keep(**kwargs):
        print("CUSTOM keep", os.getpid(), repr(kwargs.get("config")), flush=True)
        time.sleep(3600)

    @app.main_process_ready
    def launch(app):
        app.manager.manage("JOB", job, transient=True)
        app.manager.manage("KEEP", keep, transient=False, restartable=True)
    """
)


def test_transient_custom_processes_restart_with_the_files_and_durable_ones_do_not(
    project: Path,
) -> None:
    app = project / "app.py"
    app.write_text(APP + CUSTOM)
    srv = Server(project, "--reload")
    try:
        srv.wait_body("^v1 ")
        srv.wait_output("LISTENER reload_process_start")
        srv.wait_output("CUSTOM keep")
        srv.wait_output("CUSTOM job")
        save(project, "v2")
        srv.wait_body("^v2 ")
        srv.wait_output(f"'RELOADED_FILES': '{app}'")
        lines = srv.output().splitlines()
        jobs = [ln for ln in lines if "CUSTOM job" in ln]
        keeps = [ln for ln in lines if "CUSTOM keep" in ln]
        pids = [re.search(r"CUSTOM job (\d+)", ln).group(1) for ln in jobs]  # type: ignore[union-attr]
        assert len(jobs) == 2 and pids[0] != pids[1]
        assert jobs[0].endswith("None")
        assert len(keeps) == 1
        srv.pids |= srv.children()
    finally:
        assert srv.stop() == 0
    assert srv.leftovers() == []
