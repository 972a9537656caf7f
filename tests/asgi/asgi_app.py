"""The app the ASGI tests serve with uvicorn (imported by uvicorn in its own process)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from runtime import App, json, text
from runtime.response import StreamingResponse

app = App("asgi_under_uvicorn")
TRACE = Path(os.environ.get("ASGI_TRACE_FILE", os.devnull))


def trace(line: str) -> None:
    with TRACE.open("a") as fh:
        fh.write(line + "\n")


@app.main_process_start
def never(app: App) -> None:
    trace("main_process_start")  # must never run under an ASGI server


@app.before_server_start
async def open_resources(app: App) -> None:
    app.ctx.token = "from-before-server-start"
    trace("before_server_start")


@app.after_server_start
def started(app: App) -> None:
    trace("after_server_start")


@app.before_server_stop
def stopping(app: App) -> None:
    trace("before_server_stop")


@app.after_server_stop
async def stopped(app: App) -> None:
    trace("after_server_stop")


@app.get("/")
async def index(request):  # type: ignore[no-untyped-def]
    return json({"hello": "world", "token": request.app.ctx.token})


@app.post("/echo")
async def echo(request):  # type: ignore[no-untyped-def]
    return text(request.body.decode(), headers={"x-length": str(len(request.body))})


@app.post("/count", stream=True)
async def count(request):  # type: ignore[no-untyped-def]
    total = chunks = 0
    while (chunk := await request.stream.read()) is not None:
        total += len(chunk)
        chunks += 1
    return json({"bytes": total})


@app.get("/stream")
async def stream(request):  # type: ignore[no-untyped-def]
    async def parts():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield f"part{i}\n"
            await asyncio.sleep(0)

    return StreamingResponse(parts())


@app.get("/boom")
async def boom(request):  # type: ignore[no-untyped-def]
    raise RuntimeError("handler exploded")


@app.get("/items/<item_id:int>")
async def item(request, item_id: int):  # type: ignore[no-untyped-def]
    return json({"id": item_id, "q": request.args.getlist("q")})


@app.websocket("/ws", subprotocols=["chat.v2", "chat.v1"])
async def ws_echo(request, ws):  # type: ignore[no-untyped-def]
    async for message in ws:
        if message == "close-me":
            await ws.close(4001, "asked to")
            return
        if message == "raise":
            raise ValueError("websocket handler exploded")
        await ws.send(message)
