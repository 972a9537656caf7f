"""workers.md sections 4, 8 and 9: failed start-up, crashes, crash loops, hangs."""

from __future__ import annotations

import time
from typing import Any

import pytest


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


def test_crash_loop_gives_up_and_keeps_running(serve: Any) -> None:
    s = serve(workers=1, env={"VIVACE_WORKER_CRASH_LIMIT": "2", "VIVACE_WORKER_CRASH_WINDOW": "60"})
    s.poke("/crash")
    s.wait_line(r"died unexpectedly")
    s.wait_line(r"Vivace-Server-0-0\s*\| .*Starting worker")
    s.poke("/crash")
    s.wait_line(r"crashed 2 times within 60 s; leaving it FAILED")
    time.sleep(0.3)
    assert s.proc.poll() is None  # the manager keeps running
    assert not any("Replacing worker" in line for line in s.lines[s._seen :])
    assert s.stop() == 0


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
