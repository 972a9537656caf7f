"""A FastAPI app with the corpus every framework app of this directory serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import common
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, Response, StreamingResponse


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
    common.record("fastapi-startup")
    yield {"token": common.token()}
    common.record("fastapi-shutdown")


app = FastAPI(lifespan=lifespan)


@app.api_route("/", methods=["GET", "HEAD"])
async def index() -> dict[str, str]:
    return {"hello": "fastapi"}


@app.get("/items/{item_id}")
async def items(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"id": item_id, "q": q}


@app.post("/echo")
async def echo(request: Request) -> Response:
    body = await request.body()
    headers = {"x-length": str(len(body))}
    return Response(body, media_type="application/octet-stream", headers=headers)


@app.get("/stream")
async def stream() -> StreamingResponse:
    return StreamingResponse(common.achunks(), media_type="application/octet-stream")


@app.get("/state")
async def state(request: Request) -> dict[str, object]:
    return common.state_body(request.state.token)


@app.get("/headers")
async def headers(request: Request) -> dict[str, object]:
    return common.scope_summary(request.scope)


@app.get("/disconnect-probe")
async def disconnect_probe(request: Request, key: str) -> PlainTextResponse:
    common.probe_started(key)
    for _ in range(600):  # 30 s at most
        if await request.is_disconnected():
            common.disconnected(key)
            break
        await asyncio.sleep(0.05)
    return PlainTextResponse("never seen by the client")


@app.post("/signup")
async def signup(key: str, background: BackgroundTasks) -> dict[str, str]:
    async def welcome_mail() -> None:  # Starlette runs it after the response is complete
        try:
            await asyncio.sleep(3)
        except asyncio.CancelledError:  # the stop's deadline passed
            common.record(f"background-{key}", "cancelled")
            raise
        common.record(f"background-{key}", "sent")

    background.add_task(welcome_mail)
    return {"signed up": key}


@app.post("/echo-stream")
async def echo_stream(request: Request) -> StreamingResponse:
    """A stream that reads the request body as it answers: Starlette's disconnect listener
    (spec_version 2.3) calls receive() beside it."""

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            yield chunk
        yield b"[end]"

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@app.get("/feed")
async def feed(key: str) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await asyncio.sleep(30)  # idle until the next event (a pub/sub feed)
            yield b"data: late\n\n"
        except asyncio.CancelledError:  # the server saw the client leave
            common.record(f"feed-{key}", "cancelled")
            raise

    return StreamingResponse(events(), media_type="text/event-stream")


@app.websocket("/ws")
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


FAILURE = common.FASTAPI_STARTUP_FAILURE


@asynccontextmanager
async def failing_lifespan(app: FastAPI) -> AsyncIterator[None]:
    raise RuntimeError(FAILURE)
    yield  # pragma: no cover  (makes this a generator)


#: a FastAPI app whose lifespan startup raises (Starlette answers ``lifespan.startup.failed``)
failing_app = FastAPI(lifespan=failing_lifespan)
