"""A Litestar app with the corpus every framework app of this directory serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import common
from litestar import Litestar, Request, Response, WebSocket, asgi, get, post, route, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.response import Stream
from litestar.types import Receive, Scope, Send


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    common.record("litestar-startup")
    app.state.token = common.token()
    yield
    common.record("litestar-shutdown")


@route("/", http_method=["GET", "HEAD"], media_type="text/plain")
async def index() -> str:
    return "hello from litestar"


@get("/items/{item_id:int}")
async def items(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"id": item_id, "q": q}


@post("/echo", status_code=200)
async def echo(request: Request) -> Response[bytes]:
    body = await request.body()
    headers = {"x-length": str(len(body))}
    return Response(body, media_type="application/octet-stream", headers=headers)


@get("/stream")
async def stream() -> Stream:
    return Stream(common.achunks(), media_type="application/octet-stream")


@get("/state")
async def state(request: Request) -> dict[str, object]:
    return common.state_body(request.app.state.token)


@get("/headers")
async def headers(request: Request) -> dict[str, object]:
    return common.scope_summary(request.scope)


@asgi("/disconnect-probe")
async def disconnect_probe(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI inside Litestar: wait for ``http.disconnect`` without answering."""
    key = scope["query_string"].decode().partition("key=")[2]
    common.probe_started(key)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            common.disconnected(key)
            return


@websocket("/ws")
async def ws_echo(socket: WebSocket) -> None:
    await socket.accept()
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await socket.send_text(message["text"])
            else:
                await socket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


app = Litestar(
    route_handlers=[index, items, echo, stream, state, headers, disconnect_probe, ws_echo],
    lifespan=[lifespan],
)
