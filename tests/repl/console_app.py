"""The app the console's terminal tests drive (``console_app:app``)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from runtime.app import App
from runtime.response import json

app = App("ConsoleDemo")
app.repl_ctx.add(42, name="answer", desc="a name from app.repl_ctx")


@app.before_server_start
async def setup(app: Any) -> None:
    app.ctx.token = f"token-{os.getpid()}"


@app.get("/")
async def index(request: Any) -> Any:
    return json({"hello": "world", "pid": os.getpid()})


@app.get("/spam")
async def spam(request: Any) -> Any:
    count = int(request.args.get("n", "200"))
    delay = float(request.args.get("delay", "0.5"))

    async def later() -> None:
        await asyncio.sleep(delay)
        for i in range(count):
            print(f"spam line {i}", flush=True)

    request.app.ctx.spam_task = asyncio.get_running_loop().create_task(later())
    return json({"scheduled": count})


@app.get("/restart-all")
async def restart_all(request: Any) -> Any:
    delay = float(request.args.get("delay", "0.5"))

    def restart() -> None:
        request.app.m.restart(all_workers=True)

    asyncio.get_running_loop().call_later(delay, restart)
    return json({"restarting": True})


@app.get("/crash")
async def crash(request: Any) -> Any:
    print("about to crash", flush=True)
    asyncio.get_running_loop().call_later(0.3, os._exit, 3)
    return json({"crashing": True})
