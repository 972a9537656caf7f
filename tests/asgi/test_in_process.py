"""The app as an ASGI callable without a socket (httpx.ASGITransport): the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from runtime import App, json, text
from runtime.response import StreamingResponse


def make_app() -> App:
    app = App("asgi_in_process")
    app.config.REQUEST_MAX_SIZE = 10

    @app.post("/echo")
    async def echo(request):  # type: ignore[no-untyped-def]
        return text(request.body.decode())

    @app.post("/count", stream=True)
    async def count(request):  # type: ignore[no-untyped-def]
        total = 0
        while (chunk := await request.stream.read()) is not None:
            total += len(chunk)
        return json({"bytes": total})

    @app.get("/stream")
    async def stream(request):  # type: ignore[no-untyped-def]
        async def parts() -> AsyncIterator[str]:
            for i in range(3):
                yield f"part{i};"
                await asyncio.sleep(0)

        return StreamingResponse(parts())

    return app


async def test_streaming_buffered_and_limited_bodies_in_process() -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await asyncio.wait_for(client.get("/stream"), 5)
        assert response.text == "part0;part1;part2;"
        assert (await client.post("/echo", content=b"0123456789")).text == "0123456789"
        too_big = await client.post("/echo", content=b"0123456789a")
        assert too_big.status_code == 413
        assert "REQUEST_MAX_SIZE" in too_big.text
        streamed_too_big = await client.post("/count", content=b"x" * 11)
        assert streamed_too_big.status_code == 413
        assert (await client.post("/count", content=b"x" * 10)).json() == {"bytes": 10}
