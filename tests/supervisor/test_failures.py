"""workers.md sections 4, 8 and 9: failed start-up, crashes, crash loops, hangs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.supervisor.conftest import ROOT


def test_failing_before_server_start_exits_1_promptly(serve: Any) -> None:
    began = time.monotonic()
    s = serve(workers=2, flags="fail-start", wait=False)
    assert s.wait(15) == 1
    assert time.monotonic() - began < 8
    text = "\n".join(s.lines)
    assert "before_server_start failed on purpose" in text
    assert "Start-up failed" in text
    assert "EVENT main_process_stop" in text
    assert s.lines[-1].endswith("Server Stopped")


@pytest.mark.slow
def test_ack_timeout_exits_1(serve: Any) -> None:
    s = serve(workers=1, flags="never-ack", env={"VIVACE_WORKER_ACK_TIMEOUT": "1"}, wait=False)
    assert s.wait(15) == 1
    assert any("did not acknowledge start-up within 1 s" in line for line in s.lines)


def test_main_process_ready_raising_exits_1(serve: Any) -> None:
    s = serve(workers=1, flags="main-ready-raises", wait=False)
    assert s.wait(15) == 1
    text = "\n".join(s.lines)
    assert "main_process_ready failed on purpose" in text
    assert "EVENT main_process_stop" in text


def test_crashed_worker_is_replaced_others_keep_serving(serve: Any) -> None:
    s = serve(workers=2)
    table = s.json("/workers")
    pids = {n: int(table[n]["pid"]) for n in ("Vivace-Server-0-0", "Vivace-Server-1-0")}
    s.poke("/crash")
    found = s.wait_line(r"Worker (Vivace-Server-\d-0) \[(\d+)\] died unexpectedly \(exit code 3\)")
    crashed = found.group(1)
    s.wait_line(r"about to crash")  # the last output lines are part of the report
    s.wait_line(rf"{crashed}\s*\| .*Starting worker")
    table = s.json("/workers")
    assert table[crashed]["state"] == "ACKED"
    assert table[crashed]["starts"] == "2"
    assert int(table[crashed]["pid"]) != pids[crashed]
    assert s.stop() == 0


def test_crash_loop_gives_up_and_keeps_running_while_another_worker_serves(serve: Any) -> None:
    s = serve(workers=2, env={"VIVACE_WORKER_CRASH_LIMIT": "1"})
    s.poke("/crash")
    found = s.wait_line(r"Worker (Vivace-Server-\d-0) crashed 1 times within 60 s; leaving it")
    s.drain(0.5)
    assert s.proc.poll() is None  # the manager keeps running: the other worker serves
    assert s.json("/pid")["name"] != found.group(1)
    rest = "\n".join(s.lines[s._seen :])
    assert "Replacing worker" not in rest and "No server worker is left" not in rest
    assert s.stop() == 0


def _report(lines: list[str], pid: int) -> list[str]:
    """The "Last output" lines of the crash report of ``pid``."""
    start = next(i for i, line in enumerate(lines) if f"[{pid}] died unexpectedly" in line)
    report = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        report.append(line)
    return report


def test_crash_loop_of_the_last_worker_stops_the_server_with_exit_1(serve: Any) -> None:
    s = serve(workers=1, env={"VIVACE_WORKER_CRASH_LIMIT": "2"})
    first = s.json("/pid")["pid"]
    s.poke("/crash")
    s.wait_line(rf"\[{first}\] died unexpectedly")
    second = int(s.wait_line(r"Vivace-Server-0-0\s*\| .*Starting worker \[(\d+)\]").group(1))
    s.poke("/crash")
    s.wait_line(r"crashed 2 times within 60 s; leaving it FAILED")
    s.wait_line(r"No server worker is left to serve .*Stopping the server with exit code 1")
    # without a worker the port would be held and connections never answered: it exits
    assert s.wait(10) == 1
    assert s.lines[-1].endswith("Server Stopped")
    assert any("EVENT main_process_stop" in line for line in s.lines)
    # each crash report shows the output of the process that crashed, not its predecessors'
    report = _report(s.lines, second)
    assert any(f"Starting worker [{second}]" in line for line in report), report
    assert any("about to crash" in line for line in report), report
    assert not any(str(first) in line for line in report), report


def test_last_worker_failed_with_the_console_open_keeps_running(serve: Any) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        NO_COLOR="1",
        SUPTEST="",
        VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT="3",
        VIVACE_WORKER_CRASH_LIMIT="1",
    )
    console = "tests.supervisor.consoles:last_worker_fails"
    cmd = [sys.executable, "-m", "tests.supervisor.serve", "tests.supervisor.apps", "1", console]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "No server worker is left to serve (Vivace-Server-0-0 crashed 1 times" in out
    assert "The server keeps running because the console is open" in out
    assert "CONSOLE failed_then_alive True" in out  # the server did not stop meanwhile
    assert "CONSOLE served 200" in out  # restarted from the console, it serves again


@pytest.mark.slow
def test_blocked_worker_is_detected_and_replaced(serve: Any) -> None:
    env = {"VIVACE_WORKER_HEARTBEAT_INTERVAL": "0.1", "VIVACE_WORKER_HEARTBEAT_TIMEOUT": "0.6"}
    s = serve(workers=1, env=env)
    old = s.json("/pid")["pid"]
    s.poke("/block", timeout=0.3)
    s.wait_line(rf"Worker Vivace-Server-0-0 \[{old}\]: event loop blocked for more than 0.6 s")
    s.wait_line(r"Starting worker")
    assert s.json("/pid")["pid"] != old
    assert s.stop() == 0
