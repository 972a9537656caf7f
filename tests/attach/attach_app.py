"""The app the attach, inspector and MCP tests serve (``attach_app:app``)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from runtime.app import App
from runtime.inspector import Inspector
from runtime.response import json


class Custom(Inspector):
    """One custom command: ``POST /hello`` with ``{"name": ...}``."""

    def hello(self, name: str = "world") -> str:
        return f"hello {name} from {os.getpid()}"


app = App("AttachDemo")
app.config.INSPECTOR = bool(os.environ.get("ATTACH_TEST_INSPECTOR"))
app.config.INSPECTOR_HOST = "127.0.0.1"
app.config.INSPECTOR_PORT = int(os.environ.get("ATTACH_TEST_INSPECTOR_PORT") or 6457)
app.config.INSPECTOR_API_KEY = os.environ.get("ATTACH_TEST_INSPECTOR_KEY") or None
app.config.INSPECTOR_CLASS = Custom
app.config.INSPECTOR_TLS_CERT = os.environ.get("ATTACH_TEST_INSPECTOR_TLS_CERT") or None
app.config.INSPECTOR_TLS_KEY = os.environ.get("ATTACH_TEST_INSPECTOR_TLS_KEY") or None


@app.before_server_start
async def setup(app: Any) -> None:
    app.ctx.token = f"token-{os.getpid()}"


@app.get("/")
async def index(request: Any) -> Any:
    return json({"hello": "world", "pid": os.getpid()})


@app.get("/spam")
async def spam(request: Any) -> Any:
    """Print ``n`` lines per second for ``seconds`` seconds (worker output for the console)."""
    rate = int(request.args.get("rate", "100"))
    seconds = float(request.args.get("seconds", "1"))

    async def later() -> None:
        step = 0.01
        per_step = max(1, int(rate * step))
        sent = 0
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            for _ in range(per_step):
                print(f"spam line {sent}", flush=True)
                sent += 1
            await asyncio.sleep(step)
        print(f"spam done {sent}", flush=True)

    request.app.ctx.spam_task = asyncio.get_running_loop().create_task(later())
    return json({"scheduled": rate})


@app.get("/ticks")
async def ticks(request: Any) -> Any:
    from runtime.response import StreamingResponse

    async def produce() -> Any:
        for n in range(3):
            yield f'event: tick\nid: {n}\ndata: {{"n": {n}}}\n\n'
            await asyncio.sleep(0.1)

    return StreamingResponse(produce(), content_type="text/event-stream")


@app.websocket("/chat")
async def chat(request: Any, ws: Any) -> None:
    async for message in ws:
        await ws.send(f"echo: {message}")
