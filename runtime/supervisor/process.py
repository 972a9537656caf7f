"""One child process as the manager sees it, and how children are created (fork server or spawn)."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from runtime.supervisor.messages import ProcessKind

# Imported once by the fork server so that each forked worker starts with them loaded.
PRELOAD = [
    "runtime.supervisor.worker",
    "runtime.app",
    "runtime.server",
    "runtime.lifecycle",
    "runtime.loader",
    "httptools",
    "uvloop",
    "ctypes",  # the parent-death signal
    "websockets",
    "runtime.supervisor.fork_preload",  # last: the app's libraries (runtime.supervisor.preload)
]


def fork_is_safe() -> bool:
    """Forking is only safe on Linux (macOS system frameworks and Windows cannot fork safely)."""
    return sys.platform.startswith("linux")


def make_context(method: str = "auto", preload: list[str] | None = None) -> BaseContext:
    """A fork server preloaded with vivace where forking is safe; ``spawn`` elsewhere.

    The method becomes the process-wide default, so that ``multiprocessing.Value`` & co. created by
    the app in ``main_process_start`` (for ``shared_ctx``) share the workers' context.
    """
    if method not in ("auto", "forkserver", "spawn"):
        raise ValueError(
            f"WORKER_START_METHOD must be 'auto', 'forkserver' or 'spawn', not {method!r}"
        )
    if method == "auto" or (method == "forkserver" and not fork_is_safe()):
        method = "forkserver" if fork_is_safe() else "spawn"
    multiprocessing.set_start_method(method, force=True)
    if method == "forkserver":
        multiprocessing.set_forkserver_preload(PRELOAD if preload is None else preload)
    return multiprocessing.get_context(method)


def start_early(ctx: BaseContext) -> None:
    """Start the fork server now, so its imports overlap with the main process's start-up."""
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


@dataclass(eq=False)
class ChildProcess:
    """One OS process. A restart creates a new ``ChildProcess`` under the same name."""

    name: str
    kind: ProcessKind
    process: BaseProcess
    conn: Connection
    loop: asyncio.AbstractEventLoop
    ident: str | None = None
    replies: Connection | None = None  # a server worker's reply pipe (``Handled``), write end
    pid: int = 0
    expected_stop: bool = False  # the manager asked it to stop: never "replaced"
    hung: bool = False
    manual_restart: bool = False  # started by restart(): a failed start is not healed
    last_beat: float = field(default_factory=time.monotonic)
    early_reason: str = ""
    exitcode: int | None = None
    acked: asyncio.Future[None] = field(init=False)
    serving: asyncio.Future[None] = field(init=False)  # after_server_start done, accepting
    exited: asyncio.Future[int] = field(init=False)
    output_done: asyncio.Future[None] | None = None
    calls: dict[int, asyncio.Future[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.acked = self.loop.create_future()
        self.serving = self.loop.create_future()
        self.exited = self.loop.create_future()

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def signal(self, signum: int) -> None:
        import os

        if self.alive and self.pid:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass
