"""An app whose module starts non-daemon threads at import time, as some SDKs' pollers do: one that
never ends and a ``threading.Timer`` far in the future. Served only in subprocesses (importing it
here would keep the test run from exiting)."""

from __future__ import annotations

import os
import threading
from typing import Any

from runtime import App, Request, text

app = App("ThreadsLeft")
_never = threading.Event()


def poll() -> None:
    while not _never.wait(0.05):
        pass


threading.Thread(target=poll, name="sdk-poller").start()
timer = threading.Timer(3600.0, lambda: None)
timer.name = "sdk-timer"
timer.start()


@app.get("/")
async def index(request: Request) -> Any:
    return text(os.environ.get("VIVACE_WORKER_NAME", "single"))
