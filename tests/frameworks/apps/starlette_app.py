"""A Starlette app with the corpus every framework app of this directory serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import common
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    common.record("starlette-startup")
    yield {"token": common.token()}
    common.record("starlette-shutdown")


async def index(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def items(request: Request) -> Response:
    item_id: int = request.path_params["item_id"]
    return JSONResponse({"id": item_id, "q": request.query_params.get("q")})


async def echo(request: Request) -> Response:
    body = await request.body()
    headers = {"x-length": str(len(body))}
    return Response(body, media_type="application/octet-stream", headers=headers)


async def stream(request: Request) -> Response:
    return StreamingResponse(common.achunks(), media_type="application/octet-stream")


async def state(request: Request) -> Response:
    return JSONResponse(common.state_body(request.state.token))


async def headers(request: Request) -> Response:
    return JSONResponse(common.scope_summary(request.scope))


async def disconnect_probe(request: Request) -> Response:
    key = request.query_params["key"]
    common.probe_started(key)
    for _ in range(600):  # 30 s at most
        if await request.is_disconnected():
            common.disconnected(key)
            break
        await asyncio.sleep(0.05)
    return PlainTextResponse("never seen by the client")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


ROUTES = [
    Route("/", index),
    Route("/items/{item_id:int}", items),
    Route("/echo", echo, methods=["POST"]),
    Route("/stream", stream),
    Route("/state", state),
    Route("/headers", headers),
    Route("/disconnect-probe", disconnect_probe),
    WebSocketRoute("/ws", ws_echo),
]


def create_app() -> Starlette:
    """A factory (``starlette_app:create_app()`` or ``--factory``)."""
    return Starlette(routes=ROUTES, lifespan=lifespan)


app = create_app()
