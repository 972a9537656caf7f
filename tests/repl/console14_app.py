"""The app of the issue-14 console tests: listeners with resources, JSON, a websocket, streams."""

from __future__ import annotations

import asyncio
import os

from runtime import App, json, text
from runtime.response import StreamingResponse

app = App("Console14")

MARKS = os.environ.get("CONSOLE14_MARKS")


def _mark(line: str) -> None:
    if MARKS:
        with open(MARKS, "a") as handle:
            handle.write(f"{os.getpid()} {line}\n")


@app.before_server_start
async def setup(app: App) -> None:
    app.ctx.hits = 0
    app.ctx.queue = asyncio.Queue()  # bound to the loop the listeners ran on
    _mark("before_server_start")


@app.after_server_start
async def started(app: App) -> None:
    _mark("after_server_start")


@app.before_server_stop
async def stopping(app: App) -> None:
    _mark("before_server_stop")


@app.after_server_stop
async def stopped(app: App) -> None:
    _mark("after_server_stop")


@app.get("/")
async def index(request):
    return json({"hello": "world"})


@app.get("/items/<item_id:int>")
async def item(request, item_id: int):
    return json({"id": item_id, "q": request.args.get("q")})


@app.post("/echo")
async def echo(request):
    return json({"json": request.json, "token": request.headers.get("x-token")})


@app.get("/stats")
async def stats(request):
    request.app.ctx.hits += 1
    await request.app.ctx.queue.put(request.app.ctx.hits)
    return json({"pid": os.getpid(), "hits": request.app.ctx.hits})


@app.websocket("/ws")
async def ws_echo(request, ws):
    async for message in ws:
        await ws.send(f"echo: {message}")


@app.get("/events")
async def events(request):
    count = int(request.args.get("n", "3"))
    delay = float(request.args.get("delay", "0.01"))

    async def produce():
        for i in range(count):
            yield f'event: tick\nid: {i}\ndata: {{"n": {i}}}\n\n'
            await asyncio.sleep(delay)

    return StreamingResponse(produce(), content_type="text/event-stream")


@app.get("/chunks")
async def chunks(request):
    async def produce():
        for i in range(3):
            yield f"chunk {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(produce())


@app.get("/forever")
async def forever(request):
    async def produce():
        i = 0
        while True:
            yield f"data: {i}\n\n"
            i += 1
            await asyncio.sleep(0.05)

    return StreamingResponse(produce(), content_type="text/event-stream")


@app.get("/plain")
async def plain(request):
    return text("plain")
