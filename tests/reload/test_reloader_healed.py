"""The reloader process killed (the OOM killer, a stray ``kill``) is reported and started again,
as a crashed server worker is: before, nothing was logged and saves never reloaded again. A real
``vivace --reload`` process on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.live_vivace import serves, write
from tests.reload.test_reload_project_modules import edit, reloading

pytestmark = pytest.mark.slow


def _reloader_pid(output: str) -> int:
    pids = re.findall(r"^Vivace-Reloader-0 \| \[[^]]*\] \[(\d+)\]", output, re.MULTILINE)
    assert pids, output
    return int(pids[-1])


def test_a_killed_reloader_is_started_again_and_saves_reload(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    write(
        main,
        """
        from runtime import App, text

        app = App("Healed")

        @app.get("/")
        async def index(request):
            return text("version 1")
        """,
    )
    server, port = reloading(tmp_path, "main:app")
    try:
        serves(server, port, "version 1")
        first = _reloader_pid(server.wait_output("Watching "))
        os.kill(first, signal.SIGKILL)
        server.wait_output(f"Vivace-Reloader-0 [{first}] died unexpectedly")
        server.wait_until(
            lambda: _reloader_pid(server.output()) != first or None, "a new reloader", 20
        )
        server.wait_until(lambda: server.output().count("Watching ") >= 2 or None, "its watch")
        edit(main, "version 1", "version 2")
        serves(server, port, "version 2")
    finally:
        assert server.stop() == 0
