"""The console's Control API, driven by a console coroutine on the main loop."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from tests.supervisor.conftest import ROOT


def run_console(console: str, workers: int = 1) -> tuple[int, dict[str, object], str]:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        NO_COLOR="1",
        SUPTEST="",
        VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT="3",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.supervisor.serve",
            "tests.supervisor.apps",
            str(workers),
            console,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    values: dict[str, object] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("CONSOLE "):
            _, key, raw = line.split(" ", 2)
            values[key] = ast.literal_eval(raw)
    return proc.returncode, values, proc.stdout + proc.stderr


def test_control_api() -> None:
    code, v, out = run_console("tests.supervisor.consoles:exercise")
    assert code == 3, out  # the console's return value is the exit code
    assert str(v["url"]).startswith("http://127.0.0.1:")
    assert v["expected"] == 1
    assert v["names"] == ["Vivace-Main", "Vivace-Server-0-0"]
    assert v["eval"] == "Vivace-Server-0-0"
    assert v["eval_await"] == 42
    assert str(v["eval_repr"]).startswith("<runtime.supervisor.multiplexer.Multiplexer")
    assert v["call"] is True
    assert "ZeroDivisionError" in str(v["eval_error"])
    assert "No live server worker named 'Vivace-Nope-0'" in str(v["lookup"])
    assert str(v["restart"]).startswith("restart: Vivace-Server-0-0 ready in")
    assert v["restarted_pid_changed"] is True
    assert str(v["zero"]).startswith("restart: Vivace-Server-0-0 ready in")
    assert str(v["reload"]).startswith("reload: Vivace-Server-0-0 ready in")
    assert v["starts"] == 4
    assert str(v["scale"]).startswith("scale 1 -> 2: Vivace-Server-1-0 ready in")
    assert v["expected2"] == 2
    assert re.fullmatch(r"scale 2 -> 1: stopped Vivace-Server-[01]-0", str(v["scale_down"]))
    assert v["expected3"] == 1
    assert str(v["scale_up_again"]).startswith("scale 1 -> 2: Vivace-Server-2-0 ready in")
    assert "integer >= 1" in str(v["scale0"])
    assert v["progress"] == ["restart", None]
    assert v["tail"] is True
    assert out.rstrip().endswith("Server Stopped")


def test_control_restart_timeout_raises_worker_boot_error() -> None:
    code, v, out = run_console("tests.supervisor.consoles:failing_restart")
    assert code == 0, out
    assert "did not become ready within 0.01 s" in str(v["boot_error"])
