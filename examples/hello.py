"""The README's demo app: ``vivace examples.hello:app --dev``.

A few routes (text, JSON, a typed path parameter, a query argument), a ``before_server_start``
listener that puts a shared value in ``app.ctx``, and a websocket echo. Try, once it runs::

    curl http://127.0.0.1:8000/
    curl http://127.0.0.1:8000/items/42?q=shoes
    curl http://127.0.0.1:8000/hello/Ada
    curl http://127.0.0.1:8000/stats
"""

from __future__ import annotations

import os
import time

from runtime import App, json, text

app = App("hello")


@app.before_server_start
async def setup(app: App) -> None:
    # Runs in every server worker before it accepts connections: the place to open pools and
    # clients. Handlers (and the console, with --single-process) find them in app.ctx.
    app.ctx.started = time.time()
    app.ctx.hits = 0


@app.get("/")
async def index(request):
    return json({"hello": "world"})


@app.get("/items/<item_id:int>")
async def item(request, item_id: int):
    return json({"id": item_id, "q": request.args.get("q")})


@app.get("/hello/<name>")
async def hello(request, name: str):
    request.app.ctx.hits += 1
    return text(f"Hello, {name}!")


@app.get("/stats")
async def stats(request):
    ctx = request.app.ctx
    return json(
        {"pid": os.getpid(), "uptime": round(time.time() - ctx.started, 3), "hellos": ctx.hits}
    )


@app.websocket("/ws")
async def echo(request, ws):
    async for message in ws:
        await ws.send(message)
