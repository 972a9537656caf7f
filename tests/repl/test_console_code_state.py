"""The console and the state of the code: the toolbar's "workers run newer code" only when they do,
a restart that cannot start the code on disk says that the running workers keep serving, and a
forced shutdown (``Killing``: a second Ctrl+C) does not wait for the console's app to shut down.

A ``FakeControl`` stands for the worker manager; its listeners get the manager's events.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeControl
from framework_apps import hosted

from repl.session import Console
from runtime.exceptions import WorkerBootError
from runtime.loader import AppRef
from runtime.options import RunOptions
from runtime.supervisor.manager import Killing, Progress

# --- "workers run newer code: refresh()" --------------------------------------------------------


def _toolbar(console: Console) -> str:
    return "".join(text for _, text, *_ in console.toolbar())


async def test_the_toolbar_says_newer_code_only_when_the_workers_run_other_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"stale_demo_{uuid.uuid4().hex[:8]}"
    module = tmp_path / f"{name}.py"
    source = f'from runtime.app import App\napp = App("{name}")\nVERSION = {{v}}\n'
    module.write_text(source.format(v=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    app = importlib.import_module(name).app
    control = FakeControl(asyncio.get_running_loop())
    options = RunOptions(target=AppRef(module=name, attr="app", cwd=str(tmp_path)))
    console = Console(app, control, options, exit_hint="stop")
    (listener,) = control.listeners
    worker = control.table["Vivace-Server-0-0"]

    def reload(*, replaced: bool = True) -> None:
        listener(Progress("reload"))
        if replaced:  # the new worker took over (a failed reload leaves the old one)
            worker["pid"] += 1000
        listener(Progress(None))

    try:
        reload()  # reload() with nothing changed
        assert not console.stale and "newer code" not in _toolbar(console)
        module.write_text(source.format(v=1))  # saved again, the same text
        reload()
        assert not console.stale
        module.write_text(source.format(v=2))  # a change whose reload failed
        reload(replaced=False)
        assert not console.stale
        reload()  # now the workers run it
        assert console.stale and "workers run newer code: refresh()" in _toolbar(console)
        outcome = await console.run("refresh()")
        assert outcome.ok, outcome.format_error()
        assert not console.stale
        reload()  # the console's code is the workers' again
        assert not console.stale and "newer code" not in _toolbar(console)
    finally:
        console.close()


# --- restart() that cannot start the code on disk -----------------------------------------------


class BrokenCodeControl(FakeControl):
    """A start-first restart whose replacement fails: the old worker keeps its pid and serves."""

    async def restart(self, *names: str, zero_downtime: bool = False) -> str:
        raise WorkerBootError("Vivace-Server-0-0 failed to start: exit code 1")


async def test_a_restart_that_cannot_start_says_the_running_workers_keep_serving() -> None:
    from runtime.app import App

    control = BrokenCodeControl(asyncio.get_running_loop())
    options = RunOptions(target=AppRef(module="demo_app", attr="app"))
    console = Console(App(f"Broken{uuid.uuid4().hex[:8]}"), control, options, exit_hint="stop")
    try:
        outcome = await console.run("restart()")
        assert isinstance(outcome.error, WorkerBootError)
        text = str(outcome.error)
        assert text.startswith("Vivace-Server-0-0 failed to start: exit code 1. ")
        assert "worker Vivace-Server-0-0 keeps serving the code it started with" in text
        # the workers it would have replaced are gone (shutdown-first): nothing is added
        control.table["Vivace-Server-0-0"]["pid"] = 999
        control.table["Vivace-Server-0-0"]["state"] = "FAILED"
        outcome = await console.run("restart()")
        assert str(outcome.error) == "Vivace-Server-0-0 failed to start: exit code 1"
    finally:
        console.close()


# --- a forced shutdown does not wait for the console's app --------------------------------------


def _slow_shutdown_app(events: list[str]) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown begins")
        await asyncio.sleep(60)

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


async def _console_with_started_app(events: list[str]) -> tuple[Console, FakeControl]:
    control = FakeControl(asyncio.get_running_loop())
    options = RunOptions(target=AppRef(module="main", attr="app"))
    console = Console(
        hosted(_slow_shutdown_app(events), "asgi3"), control, options, exit_hint="stop"
    )
    outcome = await console.run('(await do("/")).response.text')
    assert outcome.ok and outcome.value == "home", outcome.format_error()
    assert events == ["startup"]
    return console, control


@pytest.mark.parametrize("when", ["before the console closes", "while it closes"])
async def test_a_forced_shutdown_cuts_the_wait_for_the_console_apps_shutdown(when: str) -> None:
    events: list[str] = []
    console, control = await _console_with_started_app(events)
    (listener,) = control.listeners
    if when == "before the console closes":
        listener(Killing())  # the second Ctrl+C came while the workers were stopping
    else:  # the second Ctrl+C comes while close() waits for the lifespan shut-down

        def second_ctrl_c() -> None:
            deadline = time.monotonic() + 5
            while "shutdown begins" not in events and time.monotonic() < deadline:
                time.sleep(0.01)
            listener(Killing())

        threading.Thread(target=second_ctrl_c, daemon=True).start()
    began = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, console.close)
    took = time.monotonic() - began
    assert took < 3.0, f"close() waited {took:.1f} s after the shutdown was forced"
    assert console.forced


async def test_without_a_forced_shutdown_close_waits_for_the_console_apps_shutdown() -> None:
    """The graceful path is unchanged: close() waits for the lifespan shut-down (bounded)."""
    from repl import asgi

    events: list[str] = []
    console, _ = await _console_with_started_app(events)
    saved = asgi.SHUTDOWN_TIMEOUT
    asgi.SHUTDOWN_TIMEOUT = 1.0  # the lifespan's own bound, read when the shut-down runs
    try:
        began = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, console.close)
        took = time.monotonic() - began
    finally:
        asgi.SHUTDOWN_TIMEOUT = saved
    assert "shutdown begins" in events and 0.9 < took < 10, took
