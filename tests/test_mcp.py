"""``vivace mcp`` driven by the official MCP SDK's client over stdio, against a real server."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attach.support import Server

pytestmark = pytest.mark.slow

mcp = pytest.importorskip("mcp")

TOOLS = {"request", "eval", "workers", "restart", "reload", "scale", "logs", "routes"}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, "--dev")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _text(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


async def _session(
    srv: Server, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[set[str], list[Any]]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "runtime", "mcp", "--pid", str(srv.pid)],
        env=srv.env,
        cwd=str(srv.tmp),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        names = {tool.name for tool in listed.tools}
        results = [await session.call_tool(name, args) for name, args in calls]
    return names, results


def test_an_mcp_client_lists_the_tools_and_calls_request_and_eval(srv: Server) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("request", {"method": "GET", "path": "/"}),
        ("eval", {"code": "import os; answer = 6 * 7"}),
        ("eval", {"code": "print('printed'); answer, os.getpid()"}),
        ("eval", {"code": "os.getpid()", "worker": "Vivace-Server-0-0"}),
        ("eval", {"code": "1 / 0"}),
        ("workers", {}),
        ("routes", {}),
        ("logs", {"n": 5}),
        ("eval", {"code": "stop()"}),
    ]
    names, results = asyncio.run(asyncio.wait_for(_session(srv, calls), 60))
    assert names >= TOOLS
    request, bind, show, in_worker, fails, workers, routes, logs, stop = results
    assert "200 OK" in _text(request) and '"hello": "world"' in _text(request)
    assert not bind.is_error
    assert _text(show) == f"printed\n(42, {srv.pid})"
    worker_pid = int(_text(in_worker))
    assert worker_pid != srv.pid and worker_pid in srv.worker_pids().values()
    assert fails.is_error and "ZeroDivisionError: division by zero" in _text(fails)
    assert "Vivace-Server-1-0" in _text(workers)
    assert "/spam" in _text(routes)
    assert not logs.is_error
    assert "not stopped" in _text(stop)  # an agent cannot stop the server
    assert srv.proc.poll() is None and srv.serves()
    log = srv.log()
    assert "Console attached" in log and "Console detached" in log


def test_vivace_mcp_without_a_server_exits_with_one_line(tmp_path: Path) -> None:
    import subprocess

    from tests.attach.support import env_for

    done = subprocess.run(
        [sys.executable, "-m", "runtime", "mcp"],
        input="",
        capture_output=True,
        text=True,
        env=env_for(tmp_path),
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "vivace mcp: no running vivace server of this user to attach to (start one with "
        "--dev, or with --attach)"
    )
    assert os.path.isdir(tmp_path / ".run")  # env_for's runtime directory
