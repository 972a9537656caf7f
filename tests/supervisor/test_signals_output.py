"""Signals at every moment, in-flight requests at SIGTERM, orphans, prefixed untorn output, and the
nine-listener example of lifecycle.md section 7.3."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psutil
import pytest

from tests.supervisor.conftest import ROOT, Served


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_request_finish(serve: Any) -> None:
    s = serve(workers=1)
    result: dict[str, Any] = {}

    def slow() -> None:
        result["response"] = s.get("/slow")

    thread = threading.Thread(target=slow)
    thread.start()
    s.wait_line(r"slow request started")
    s.signal(signal.SIGTERM)
    thread.join(10)
    assert result["response"].status_code == 200
    assert result["response"].text == "slow done"
    assert s.wait() == 0
    assert any("Received signal SIGTERM. Shutting down." in line for line in s.lines)


def test_sigint_right_after_start_up_exits_0(serve: Any) -> None:
    s = serve(workers=2, wait=False)
    s.wait_line(r"before_server_start")  # the first worker is starting; acks may be pending
    began = time.monotonic()
    s.signal(signal.SIGINT)
    assert s.wait(10) == 0
    assert time.monotonic() - began < 5
    assert s.lines[-1].endswith("Server Stopped")


def test_sigint_during_slow_start_exits_0_promptly(serve: Any) -> None:
    s = serve(workers=1, flags="never-ack", env={"VIVACE_WORKER_ACK_TIMEOUT": "30"}, wait=False)
    s.wait_line(r"EVENT before_server_start")
    began = time.monotonic()
    s.signal(signal.SIGINT)
    assert s.wait(10) == 0  # does not wait for the 30 s ack limit
    assert time.monotonic() - began < 5


def test_second_signal_kills(serve: Any) -> None:
    s = serve(workers=1)
    thread = threading.Thread(target=lambda: s.poke("/block", timeout=5))
    thread.start()
    time.sleep(0.2)
    s.signal(signal.SIGINT)
    s.wait_line(r"Received signal SIGINT")
    s.signal(signal.SIGINT)
    s.wait_line(r"Shutdown interrupted. Killing.")
    assert s.wait(10) == 0
    thread.join(10)


@pytest.mark.slow
def test_no_orphans_after_sigkill_of_main(serve: Any) -> None:
    s = serve(workers=2, flags="manage-forever")
    children = psutil.Process(s.proc.pid).children(recursive=True)
    assert len(children) >= 3  # fork server + 2 workers (+ custom process)
    s.proc.kill()
    s.proc.wait(5)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"orphans: {alive}"


@pytest.mark.slow
def test_no_orphans_after_sigkill_of_main_while_workers_start(serve: Any) -> None:
    # the workers are still in before_server_start (they arm PR_SET_PDEATHSIG only once serving)
    s = serve(workers=2, flags="never-ack", wait=False)
    for _ in range(2):
        s.wait_line(r"EVENT before_server_start")
    children = psutil.Process(s.proc.pid).children(recursive=True)
    assert len(children) >= 2
    s.proc.kill()
    s.proc.wait(5)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"orphans: {alive}"


def test_worker_output_is_prefixed_and_untorn(serve: Any) -> None:
    s = serve(workers=2)
    for _ in range(6):
        s.get("/spam")
    s.stop()
    pattern = re.compile(r"^(Vivace-Server-[01]-0)\s*\| (Vivace-Server-[01]-0):x{200}:(\d+)$")
    counts: dict[str, list[int]] = {}
    for line in s.lines:
        if ":xxxx" not in line:
            continue
        found = pattern.match(line)
        assert found, f"torn or unprefixed line: {line!r}"
        assert found.group(1) == found.group(2)
        counts.setdefault(found.group(1), []).append(int(found.group(3)))
    total = sum(len(v) for v in counts.values())
    assert total == 6 * 200
    for numbers in counts.values():  # order kept per process
        for start in range(0, len(numbers), 200):
            assert numbers[start : start + 200] == list(range(200))


def test_children_run_in_their_own_session(serve: Any) -> None:
    s = serve(workers=1)
    pid = s.json("/pid")["pid"]
    assert os.getsid(pid) == pid
    assert os.getsid(pid) != os.getsid(s.proc.pid)
    assert s.stop() == 0


def test_nine_listener_example_with_two_workers() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.supervisor.serve", "tests.supervisor.demo9", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served.__new__(Served)
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if sum("Starting worker" in x for x in lines) == 2:
                break
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        lines += out.splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    del served
    assert proc.returncode == 0
    events = [
        (m.group(1) or "main", m.group(2))
        for m in (
            re.match(
                r"^(?:(Vivace-Server-\d-0)\s*\| )?.*\[INFO\] "
                r"(listener_\d|Starting worker|Stopping worker|Server Stopped)",
                x,
            )
            for x in lines
        )
        if m
    ]
    main = [e for who, e in events if who == "main"]
    assert main == ["listener_0", "listener_9", "Server Stopped"]
    expected = [f"listener_{i}" for i in (1, 2, 3, 4)] + ["Starting worker", "Stopping worker"]
    expected += [f"listener_{i}" for i in (6, 5, 8, 7)]
    for worker in ("Vivace-Server-0-0", "Vivace-Server-1-0"):
        assert [e for who, e in events if who == worker] == expected
    assert events[0] == ("main", "listener_0")
    assert events[-2:] == [("main", "listener_9"), ("main", "Server Stopped")]
