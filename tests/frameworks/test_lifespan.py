"""ASGI lifespan under vivace: run in every worker, state copied into each request scope, a failed
startup makes vivace exit 1 showing the app's message, and an app without lifespan is served
without it, as uvicorn's ``--lifespan auto`` does (issue 12, point 2)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.frameworks.apps import common
from tests.frameworks.frameworks import Framework, params
from tests.frameworks.servers import (
    APPS,
    MODES,
    Server,
    environment,
    free_port,
    run_to_exit,
    start,
    vivace_command,
    wait_until,
)

pytestmark = pytest.mark.slow

FAILING = [
    pytest.param("raw_asgi:failing_startup", common.RAW_STARTUP_FAILURE, id="startup.failed"),
    pytest.param("raw_asgi:raising_startup", common.RAW_STARTUP_EXCEPTION, id="raises"),
    pytest.param("fastapi_app:failing_app", common.FASTAPI_STARTUP_FAILURE, id="fastapi"),
]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("target", "message"), FAILING)
def test_failed_startup_exits_1_with_the_apps_message(
    target: str, message: str, mode: str, tmp_path: Path
) -> None:
    result = run_to_exit("vivace", target, tmp_path, MODES[mode])
    assert result.returncode == 1, result.output
    assert message in result.output


def test_uvicorn_also_refuses_to_start_the_failing_apps(tmp_path: Path) -> None:
    """The reference: with ``--lifespan on`` uvicorn exits non-zero and shows the message."""
    for target, message in [
        ("raw_asgi:failing_startup", common.RAW_STARTUP_FAILURE),
        ("fastapi_app:failing_app", common.FASTAPI_STARTUP_FAILURE),
    ]:
        result = run_to_exit("uvicorn", target, tmp_path, ("--lifespan", "on"))
        assert result.returncode != 0, result.output
        assert message in result.output


def _pids(folder: Path, prefix: str) -> set[str]:
    return {path.name.removeprefix(prefix) for path in folder.glob(prefix + "*")}


def test_lifespan_runs_in_each_worker_and_shuts_down_on_sigint(tmp_path: Path) -> None:
    server = start("vivace", "raw_asgi:app", tmp_path, args=MODES["workers"])
    try:
        wait_until(lambda: len(_pids(tmp_path, "raw-startup-")) == 2, 15, "both workers' lifespan")
        started = _pids(tmp_path, "raw-startup-")
        workers = {str(p.pid) for p in server.tree()[1:]}
        assert started <= workers, f"lifespan ran in {started}, workers are {workers}"
    finally:
        server.stop_cleanly()
    assert _pids(tmp_path, "raw-shutdown-") == started


@pytest.mark.parametrize("framework", params("fastapi", "starlette", "litestar", "quart"))
def test_framework_lifespan_starts_and_stops(framework: Framework, tmp_path: Path) -> None:
    server = start("vivace", framework.target, tmp_path, args=MODES["single"])
    try:
        assert (tmp_path / f"{framework.name}-startup").exists()
        state = httpx.get(server.url + "/state", timeout=10).json()
        assert state == {"token": f"lifespan-in-{server.proc.pid}", "pid": server.proc.pid}
    finally:
        server.stop_cleanly()
    assert (tmp_path / f"{framework.name}-shutdown").exists()


@pytest.mark.parametrize("mode", list(MODES))
def test_an_app_without_lifespan_is_served_without_it(mode: str, tmp_path: Path) -> None:
    server = start("vivace", "raw_asgi:no_lifespan", tmp_path, args=MODES[mode])
    try:
        response = httpx.get(server.url + "/", timeout=10)
        assert (response.status_code, response.text) == (200, "hello from raw asgi")
        state = httpx.get(server.url + "/state", timeout=10).json()
        assert state["token"] is None
    finally:
        server.stop_cleanly()
    assert "Traceback" not in server.output()


#: a shell starts a background job (``vivace ... &``) with SIGINT ignored; the server still
#: honours ``kill -INT`` at every moment of its start-up (workers.md, lifecycle.md section 10)
IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)

STOPS = {
    "SIGINT": (signal.SIGINT, False),
    "SIGTERM": (signal.SIGTERM, False),
    "SIGINT-ignored-by-the-parent": (signal.SIGINT, True),
}


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("mode", list(MODES))
def test_a_stop_during_the_lifespan_startup_still_shuts_the_app_down(
    mode: str, stop: str, tmp_path: Path
) -> None:
    """SIGINT or SIGTERM while a worker's lifespan start-up is under way (before the worker
    serves): the app completes its start-up, then gets its shutdown, and the server exits 0 (the
    start-up was abandoned without a shutdown, leaving what the app opened, one run in a few; in
    a single process SIGTERM killed it mid-start, and a SIGINT its parent had left ignored was
    lost, the server serving on)."""
    signum, ignored = STOPS[stop]
    port = free_port()
    log = tmp_path / "vivace.log"
    command = vivace_command("raw_asgi:slow_startup", port, MODES[mode])
    if ignored:
        command = [sys.executable, "-c", IGNORING_SIGINT, *command[1:]]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=APPS, env=environment(tmp_path), stdout=out, stderr=subprocess.STDOUT
        )
    server = Server("vivace", "raw_asgi:slow_startup", port, proc, log, tmp_path)
    try:
        wait_until(lambda: bool(_pids(tmp_path, "slow-startup-")), 20, "the lifespan start-up")
    finally:
        server.stop_cleanly(signum)  # while the start-up sleeps
    assert _pids(tmp_path, "slow-shutdown-") == _pids(tmp_path, "slow-startup-"), server.output()
