"""The app the ASGI tests serve with uvicorn (imported by uvicorn in its own process)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from runtime import App, json, text
from runtime import stream as stream_with
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
    async def parts() -> AsyncIterator[str]:
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


# -- routes mirroring tests/server (HTTP) -----------------------------------------------------

#: per-test state, keyed by a tag the test picks: progress counters, release events, signal traces
PROGRESS: dict[str, int] = {}
RELEASE: dict[str, asyncio.Event] = {}
SEEN: dict[str, list[str]] = {}


def _release(tag: str) -> asyncio.Event:
    return RELEASE.setdefault(tag, asyncio.Event())


@app.get("/sleep/<ms:int>")
async def sleep(request, ms: int):  # type: ignore[no-untyped-def]
    await asyncio.sleep(ms / 1000)
    return text(f"slept {ms}")


@app.post("/json")
async def parse_json(request):  # type: ignore[no-untyped-def]
    return json({"parsed": request.json})


@app.get("/cookies")
async def cookies(request):  # type: ignore[no-untyped-def]
    response = text(f"flavour={request.cookies.get('flavour')}")
    response.add_cookie("visited", "yes", httponly=True, secure=False)
    return response


@app.post("/stream-in", stream=True)
async def stream_in(request):  # type: ignore[no-untyped-def]
    sizes = []
    while (chunk := await request.stream.read()) is not None:
        sizes.append(len(chunk))
    return json({"total": sum(sizes), "chunks": len(sizes)})


@app.get("/big/<tag>")
async def big(request, tag: str):  # type: ignore[no-untyped-def]
    PROGRESS[tag] = 0

    async def produce(response):  # type: ignore[no-untyped-def]
        for _ in range(400):
            await response.write(b"x" * 65536)
            PROGRESS[tag] += 1

    return stream_with(produce)


@app.get("/endless/<tag>")
async def endless(request, tag: str):  # type: ignore[no-untyped-def]
    """A feed that only ends when the client leaves (bounded at 30 s so a bug cannot hang)."""

    async def produce(response):  # type: ignore[no-untyped-def]
        try:
            for _ in range(3000):
                await response.write(b"tick\n")
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            SEEN.setdefault(tag, []).append("cancelled")
            raise
        SEEN.setdefault(tag, []).append("ran to the end")

    return stream_with(produce)


@app.post("/early", stream=True)
async def early(request):  # type: ignore[no-untyped-def]
    first = await request.stream.read()
    return text(f"first {len(first or b'')}")


@app.get("/in-flight/<tag>/<ms:int>")
async def in_flight(request, tag: str, ms: int):  # type: ignore[no-untyped-def]
    SEEN.setdefault(tag, []).append("started")
    await asyncio.sleep(ms / 1000)
    return text(f"done after {ms}")


@app.get("/progress/<tag>")
async def progress(request, tag: str):  # type: ignore[no-untyped-def]
    return json({"progress": PROGRESS.get(tag)})


@app.post("/slow/<tag>", stream=True)
async def slow(request, tag: str):  # type: ignore[no-untyped-def]
    await _release(tag).wait()
    total = 0
    while (chunk := await request.stream.read()) is not None:
        total += len(chunk)
    return text(str(total))


@app.get("/release/<tag>")
async def release(request, tag: str):  # type: ignore[no-untyped-def]
    _release(tag).set()
    return text("released")


# -- websockets mirroring tests/server/test_websocket.py ----------------------------------------


@app.websocket("/echo")
async def echo_ws(request, ws):  # type: ignore[no-untyped-def]
    async for message in ws:
        await ws.send(message)


@app.websocket("/chat", subprotocols=["chat.v2", "chat.v1"])
async def chat(request, ws):  # type: ignore[no-untyped-def]
    await ws.send(f"protocol={ws.subprotocol}")


@app.websocket("/once")
async def once(request, ws):  # type: ignore[no-untyped-def]
    message = await ws.recv()
    await ws.send(f"got {message}")


@app.websocket("/boom")
async def boom_ws(request, ws):  # type: ignore[no-untyped-def]
    await ws.recv()
    raise RuntimeError("handler failed")


@app.websocket("/custom-close")
async def custom_close(request, ws):  # type: ignore[no-untyped-def]
    await ws.close(4001, "bye now")


@app.websocket("/timeout")
async def recv_timeout(request, ws):  # type: ignore[no-untyped-def]
    message = await ws.recv(timeout=0.1)
    await ws.send(repr(message))


@app.websocket("/until-closed/<tag>")
async def until_closed(request, ws, tag: str):  # type: ignore[no-untyped-def]
    """Read until the client closes, then note the code and reason the handler saw."""
    await ws.send("ready")
    while await ws.recv() is not None:
        pass
    SEEN.setdefault(tag, []).append(f"closed:{ws.close_code}:{ws.close_reason}")


@app.websocket("/send-after-close/<tag>")
async def send_after_close(request, ws, tag: str):  # type: ignore[no-untyped-def]
    """Keep sending, never reading, until the client is gone: the handler sees ConnectionClosed."""
    try:
        for _ in range(1000):
            await ws.send("tick")
            await asyncio.sleep(0.01)
    except Exception as exc:
        SEEN.setdefault(tag, []).append(f"send:{type(exc).__module__}.{type(exc).__name__}")
        raise
    SEEN.setdefault(tag, []).append("send:no error")


@app.get("/http-only")
async def http_only(request):  # type: ignore[no-untyped-def]
    return text("plain http")


def _tag(request) -> str:  # type: ignore[no-untyped-def]
    return str(request.args.get("tag") or "")


@app.signal("websocket.handler.before")
async def ws_before(request, websocket) -> None:  # type: ignore[no-untyped-def]
    SEEN.setdefault(_tag(request), []).append("before")


@app.signal("websocket.handler.after")
async def ws_after(request, websocket) -> None:  # type: ignore[no-untyped-def]
    SEEN.setdefault(_tag(request), []).append("after")


@app.signal("websocket.handler.exception")
async def ws_exception(request, websocket, exception) -> None:  # type: ignore[no-untyped-def]
    SEEN.setdefault(_tag(request), []).append(f"exception:{exception}")


@app.get("/seen/<tag>")
async def seen(request, tag: str):  # type: ignore[no-untyped-def]
    return json(SEEN.get(tag, []))
