"""Apps served by the supervisor tests (each test picks behaviour through SUPTEST_* variables)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from multiprocessing import Value
from typing import Any

from runtime import App, Request, json, text

log = logging.getLogger("demo")
app = App("SupTest")
FLAGS = set(filter(None, os.environ.get("SUPTEST", "").split(",")))


def say(event: str) -> None:
    print(f"EVENT {event} {os.getpid()} {os.environ.get('VIVACE_WORKER_NAME', 'main')}", flush=True)


def countdown(n: int = 3, **kwargs: Any) -> None:
    print("countdown begins", kwargs, flush=True)
    for step in range(1, n + 1):
        print(f"tick {step}/{n}", flush=True)
        time.sleep(0.05)


def forever() -> None:
    while True:
        time.sleep(0.05)


def fake_reloader() -> None:
    from runtime.supervisor.messages import RestartRequest
    from runtime.supervisor.worker import send_to_manager

    time.sleep(0.3)
    send_to_manager(RestartRequest(changed=("/srv/app/views.py", "/srv/app/models.py")))


def fails() -> None:
    raise RuntimeError("custom process failed on purpose")


@app.main_process_start
def main_start(app: App) -> None:
    say("main_process_start")
    app.shared_ctx.hits = Value("i", 0)


@app.main_process_ready
def main_ready(app: App) -> None:
    say("main_process_ready")
    if "manage" in FLAGS:
        app.manager.manage("TEST", countdown, kwargs={"n": 3}, restartable=True)
    if "manage-forever" in FLAGS:
        app.manager.manage("LOOP", forever, transient=True)
    if "manage-later" in FLAGS:
        app.manager.manage("LATER", countdown, kwargs={"n": 1}, auto_start=False, restartable=True)
    if "reloader" in FLAGS:
        app.manager.manage("Reloader", fake_reloader)
    if "manage-fails" in FLAGS:
        app.manager.manage("BAD", fails)
    if "main-ready-raises" in FLAGS:
        raise RuntimeError("main_process_ready failed on purpose")


@app.main_process_stop
def main_stop(app: App) -> None:
    say("main_process_stop")


@app.before_server_start
async def before_start(app: App) -> None:
    if "slow-start" in FLAGS and app.config.RELOADED_FILES == "" and app.m.state.get("x") is None:
        await asyncio.sleep(0.3)
    say("before_server_start")
    if "fail-start" in FLAGS:
        raise RuntimeError("before_server_start failed on purpose")
    if "never-ack" in FLAGS:
        await asyncio.sleep(60)


@app.after_server_start
async def after_start(app: App) -> None:
    say("after_server_start")


@app.before_server_stop
async def before_stop(app: App) -> None:
    say("before_server_stop")


@app.after_server_stop
async def after_stop(app: App) -> None:
    say("after_server_stop")


@app.get("/pid")
async def pid(request: Request) -> Any:
    return json(
        {
            "pid": os.getpid(),
            "name": request.app.m.name,
            "env": os.environ.get("VIVACE_WORKER_NAME"),
            "reloaded": request.app.config.RELOADED_FILES,
            "debug": request.app.config.DEBUG,
        }
    )


@app.get("/workers")
async def workers(request: Request) -> Any:
    return json(
        {k: {kk: str(vv) for kk, vv in v.items()} for k, v in request.app.m.workers.items()}
    )


@app.get("/state/set")
async def state_set(request: Request) -> Any:
    request.app.m.state["color"] = "blue"
    errors = []
    try:
        request.app.m.state["pid"] = 1
    except LookupError as exc:
        errors.append(f"LookupError: {exc}")
    try:
        request.app.m.state.pop("color")
    except NotImplementedError:
        errors.append("NotImplementedError")
    try:
        request.app.shared_ctx.other = 1
    except RuntimeError:
        errors.append("RuntimeError")
    return json({"errors": errors, "state": {k: str(v) for k, v in request.app.m.state.items()}})


@app.get("/restart")
async def restart(request: Request) -> Any:
    name = request.args.get("name", "")
    request.app.m.restart(
        name,
        all_workers=request.args.get("all") == "1",
        zero_downtime=request.args.get("zero") == "1",
    )
    return json({"from": request.app.m.name})


@app.get("/manage")
async def manage(request: Request) -> Any:
    request.app.m.manage("NEW", countdown, kwargs={"n": 2}, workers=2)
    return json({"from": request.app.m.name})


@app.get("/scale")
async def scale(request: Request) -> Any:
    raw = request.args.get("n", "")
    request.app.m.scale(int(raw))
    return json({"from": request.app.m.name})


@app.get("/terminate")
async def terminate(request: Request) -> Any:
    request.app.m.terminate()
    return json({"from": request.app.m.name})


@app.get("/crash")
async def crash(request: Request) -> Any:
    print("about to crash", flush=True)
    os._exit(3)


@app.get("/block")
async def block(request: Request) -> Any:
    time.sleep(30)
    return text("unblocked")


@app.get("/slow")
async def slow(request: Request) -> Any:
    print("slow request started", flush=True)
    await asyncio.sleep(1.0)
    return text("slow done")


@app.get("/hit")
async def hit(request: Request) -> Any:
    counter = request.app.shared_ctx.hits
    with counter.get_lock():
        counter.value += 1
        return json({"hits": counter.value, "pid": os.getpid()})


@app.get("/spam")
async def spam(request: Request) -> Any:
    line = request.app.m.name + ":" + "x" * 200
    for i in range(200):
        sys.stdout.write(f"{line}:{i}\n")
    sys.stdout.flush()
    return text("ok")
