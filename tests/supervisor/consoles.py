"""Consoles for the Control API tests: each prints ``CONSOLE <what> <value>`` lines."""

from __future__ import annotations

import os
from typing import Any

from runtime.exceptions import WorkerBootError
from runtime.supervisor.control import Control, Progress


def getpid() -> int:
    return os.getpid()


def say(what: str, value: Any) -> None:
    print(f"CONSOLE {what} {value!r}", flush=True)


async def exercise(app: Any, control: Control) -> int:
    events: list[Any] = []
    remove = control.add_listener(events.append)
    await control.wait_ready(timeout=10)
    say("url", control.url)
    say("expected", control.expected_workers)
    snap = control.snapshot()
    say("names", sorted(snap))
    name = "Vivace-Server-0-0"
    say("eval", await control.eval_in(name, "app.m.name"))
    say("eval_await", await control.eval_in(name, "asyncio.sleep(0, result=41 + 1)"))
    say("eval_repr", await control.eval_in(name, "app.m"))
    say("call", await control.call_in(name, getpid) == snap[name]["pid"])
    try:
        await control.eval_in(name, "1/0")
    except RuntimeError as exc:
        say("eval_error", str(exc))
    try:
        await control.eval_in("Vivace-Nope-0", "1")
    except LookupError as exc:
        say("lookup", str(exc))
    say("restart", await control.restart(name))
    say("restarted_pid_changed", control.snapshot()[name]["pid"] != snap[name]["pid"])
    say("zero", await control.restart(zero_downtime=True))
    say("reload", await control.reload())
    say("starts", control.snapshot()[name]["starts"])
    say("scale", await control.scale(2))
    say("expected2", control.expected_workers)
    say("scale_down", await control.scale(1))
    say("expected3", control.expected_workers)
    say("scale_up_again", await control.scale(2))
    try:
        await control.scale(0)
    except ValueError as exc:
        say("scale0", str(exc))
    say("progress", [e.text for e in events if isinstance(e, Progress)][:2])
    remove()
    say("tail", any("Starting worker" in line for line in control.logs.tail(name, 50)))
    control.logs.mute()
    control.logs.unmute()
    return 3


async def failing_restart(app: Any, control: Control) -> int:
    await control.wait_ready(timeout=10)
    # the replacement, forked from this process, sees the flag: it never acknowledges, so the
    # timeout (not a start-up failure, which a fast worker can report within 10 ms) decides
    os.environ["SUPTEST"] = "never-ack"
    try:
        await control.restart(timeout=0.01)
    except WorkerBootError as exc:
        say("boot_error", str(exc))
    await control.stop()
    return 0


async def last_worker_fails(app: Any, control: Control) -> int:
    """The only worker crashes (``WORKER_CRASH_LIMIT=1``: left FAILED at once); the console is
    open, so the server keeps running and the worker is restarted from here."""
    import asyncio

    import httpx

    await control.wait_ready(timeout=10)
    name = "Vivace-Server-0-0"
    async with httpx.AsyncClient() as client:
        try:
            await client.get(control.url + "/crash", timeout=5)
        except httpx.HTTPError:
            pass
        for _ in range(200):  # at most 10 s
            if control.snapshot()[name].get("state") == "FAILED":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the give-up (after the crash report) and its decision
        say("failed_then_alive", control.snapshot()[name].get("state") == "FAILED")
        await control.restart(name, timeout=10)
        say("served", (await client.get(control.url + "/pid", timeout=5)).status_code)
    await control.stop()
    return 0
