"""The four servers of the throughput benchmark; each serves ``GET / -> {"hello": "world"}``.

Run one with ``python apps.py NAME PORT`` (the harness does this; Sanic runs in its own venv).
"""

from __future__ import annotations

import sys


def vivace(port: int) -> None:
    from runtime import App, json
    from runtime.server import serve_single

    app = App("bench")

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return json({"hello": "world"})

    raise SystemExit(serve_single(app, port=port, motd=False, access_log=False))


def sanic(port: int) -> None:
    from sanic import Sanic
    from sanic.response import json

    app = Sanic("bench")

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return json({"hello": "world"})

    app.run(
        host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False, debug=False
    )


async def bare(scope, receive, send):  # type: ignore[no-untyped-def]
    """A bare ASGI callable: no routing, no framework."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b'{"hello":"world"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"17")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _starlette_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def index(request):  # type: ignore[no-untyped-def]
        return JSONResponse({"hello": "world"})

    return Starlette(routes=[Route("/", index)])


def uvicorn_serve(app: object, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    name, port = sys.argv[1], int(sys.argv[2])
    if name == "vivace":
        vivace(port)
    elif name == "sanic":
        sanic(port)
    elif name == "uvicorn-bare":
        uvicorn_serve(bare, port)
    elif name == "uvicorn-starlette":
        uvicorn_serve(_starlette_app(), port)
    else:
        raise SystemExit(f"unknown server {name!r}")
