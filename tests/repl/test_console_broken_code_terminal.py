"""Real processes in a real terminal (the ``Term`` of test_repl_terminal.py): ``restart()`` after a
save that broke the code keeps the server up, and a second Ctrl+C does not wait for the console's
app to shut down.

Every wait has a timeout; every process started here is stopped and checked to be gone.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.repl.test_repl_terminal import Term, assert_gone

pytestmark = pytest.mark.slow


VERSIONED = textwrap.dedent(
    """
    from runtime.app import App
    from runtime.response import json

    app = App("BrokenCodeDemo")


    @app.get("/v")
    async def version(request):
        return json({"v": VERSION})


    VERSION = 1
    """
)


def test_restart_after_a_failed_reload_keeps_the_old_workers_serving(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    module = tmp_path / "main.py"
    module.write_text(VERSIONED)
    t = term("--dev", "-w", "2", target="main:app")
    t.wait("Press ENTER to open the console", 30)
    t.send("\r")
    t.wait_prompt(30)
    assert httpx.get(t.url("/v"), timeout=5).json() == {"v": 1}

    module.write_text(VERSIONED.replace("VERSION = 1", "VERSION = (2"))  # a syntax error
    t.wait("Reload failed", 30)
    t.wait_prompt(30)
    assert httpx.get(t.url("/v"), timeout=5).json() == {"v": 1}

    # restart(): the new workers cannot start; the old ones must keep serving
    mark = len(t.text)
    t.send("restart()\r")  # its output is long: the echoed line scrolls off the screen
    t.wait(lambda: "keep serving the code they started with" in t.text[mark:], 60)
    t.wait_prompt(30)
    said = t.text[mark:]
    assert "The last reload failed" in said and "start-first" in said, said
    assert "WorkerBootError" in said and "failed to start" in said, said
    for _ in range(5):
        assert httpx.get(t.url("/v"), timeout=5).json() == {"v": 1}
    t.run("workers", "2/2 server workers ready")

    # the fix is saved: the reload serves it, and a restart is as before
    module.write_text(VERSIONED.replace("VERSION = 1", "VERSION = 3"))
    deadline = time.monotonic() + 30
    while httpx.get(t.url("/v"), timeout=5).json() != {"v": 3}:
        assert time.monotonic() < deadline, t.display()
        t.pump(0.1)
    t.run("restart()", "ready in", timeout=60)
    assert httpx.get(t.url("/v"), timeout=5).json() == {"v": 3}

    processes = t.processes()
    t.send("\x04")  # close the console: the server keeps running
    t.wait("Press ENTER", 20)
    t.send("\x03")
    assert t.exit_code(40) == 0
    assert_gone(processes)


SLOW_SHUTDOWN = textwrap.dedent(
    """
    import asyncio
    import os
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route


    @asynccontextmanager
    async def lifespan(app):
        yield
        where = os.environ.get("VIVACE_WORKER_NAME", "main process")
        if WHERE == "everywhere" or where == "main process":
            print(f"slow shutdown begins in the {where}", flush=True)
            await asyncio.sleep(60)


    async def home(request):
        return PlainTextResponse("home")


    app = Starlette(routes=[Route("/", home)], lifespan=lifespan)
    """
)


@pytest.mark.parametrize("where", ["everywhere", "console"])
def test_a_second_ctrl_c_does_not_wait_for_the_consoles_lifespan_shutdown(
    term: Callable[..., Term], tmp_path: Path, where: str
) -> None:
    """``everywhere``: the workers' shut-down is slow too, the second Ctrl+C comes while they
    stop; ``console``: only the console's app is slow, the second Ctrl+C comes while the main
    process waits for it."""
    (tmp_path / "main.py").write_text(SLOW_SHUTDOWN + f"\nWHERE = {where!r}\n")
    t = term("--dev", "-w", "1", target="main:app")
    t.wait("Press ENTER to open the console", 30)
    t.send("\r")
    t.wait_prompt(30)
    t.run('(await do("/")).response.text', "'home'")  # the lifespan runs in the console's process
    processes = t.processes()
    t.send("\x04")
    t.wait("Press ENTER", 20)
    t.send("\x03")
    if where == "everywhere":
        t.wait("slow shutdown begins in the Vivace-Server-0-0", 20)
    else:
        t.wait("slow shutdown begins in the main process", 20)
    t.send("\x03")
    forced = time.monotonic()
    t.wait("Shutdown interrupted. Killing.", 10)
    t.wait("Server Stopped", 8)
    took = time.monotonic() - forced
    assert took < 4, f"Server Stopped {took:.1f} s after the second Ctrl+C"
    t.exit_code(20)  # killed children: whatever the code, the process ended
    assert_gone(processes)
