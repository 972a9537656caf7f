"""A Quart app with the corpus every framework app of this directory serves.

Quart cancels a request's handler when the client goes away: ``GET /disconnect-probe`` sees the
disconnect as a ``CancelledError``.
"""

from __future__ import annotations

import asyncio

import common
from quart import Quart, Response, request, websocket

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    common.record("quart-startup")
    app.config["TOKEN"] = common.token()


@app.after_serving
async def shutdown() -> None:
    common.record("quart-shutdown")


@app.get("/")
async def index() -> Response:
    return Response("hello from quart", content_type="text/plain")


@app.get("/items/<int:item_id>")
async def items(item_id: int) -> dict[str, object]:
    return {"id": item_id, "q": request.args.get("q")}


@app.post("/echo")
async def echo() -> Response:
    body = await request.get_data()
    assert isinstance(body, bytes)
    headers = {"x-length": str(len(body))}
    return Response(body, content_type="application/octet-stream", headers=headers)


@app.get("/stream")
async def stream() -> Response:
    return Response(common.achunks(), content_type="application/octet-stream")


@app.get("/state")
async def state() -> dict[str, object]:
    return common.state_body(app.config["TOKEN"])


@app.get("/headers")
async def headers() -> dict[str, object]:
    return common.scope_summary(request.scope)


@app.get("/disconnect-probe")
async def disconnect_probe() -> str:
    key = request.args["key"]
    common.probe_started(key)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        common.disconnected(key)
        raise
    return "never seen by the client"


@app.websocket("/ws")
async def ws_echo() -> None:
    while True:
        data = await websocket.receive()
        await websocket.send(data)
