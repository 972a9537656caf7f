"""The app served by ``test_shared_table.py`` (no tests here): reads and writes of the state table
through ``app.m``, each answer naming the worker that served it."""

from __future__ import annotations

import os
from typing import Any

from runtime import App, Request, json

app = App("SharedTable")


@app.before_server_start
async def booted(app: App) -> None:
    app.m.state["booted"] = os.getpid()  # a replacement writes before it takes over


def _me(request: Request, **extra: Any) -> Any:
    return json({"name": request.app.m.name, "pid": os.getpid(), **extra})


@app.get("/me")
async def me(request: Request) -> Any:
    return _me(request)


@app.get("/set")
async def set_key(request: Request) -> Any:
    request.app.m.state[request.args.get("k", "k")] = request.args.get("v", "")
    return _me(request)


@app.get("/big")
async def big(request: Request) -> Any:
    size = int(request.args.get("size", "0"))
    request.app.m.state["big"] = "x" * size
    return _me(request)


@app.get("/update")
async def update(request: Request) -> Any:
    request.app.m.state.update({k: v for k, v in request.args.items()})
    return _me(request)


@app.get("/del")
async def delete(request: Request) -> Any:
    try:
        del request.app.m.state[request.args.get("k", "k")]
    except KeyError as exc:
        return _me(request, error=f"KeyError: {exc}")
    return _me(request)


@app.get("/entry")
async def entry(request: Request) -> Any:
    """One entry of the table as this worker reads it now (``name``, else its own)."""
    name = request.args.get("name") or request.app.m.name
    found = request.app.m.workers.get(name)
    return _me(
        request, entry={k: str(v) for k, v in (found or {}).items()}, found=found is not None
    )


@app.get("/own")
async def own(request: Request) -> Any:
    return _me(request, state={k: str(v) for k, v in request.app.m.state.items()})


@app.get("/storm")
async def storm(request: Request) -> Any:
    """``n`` writes of distinct keys, one after the other, as fast as they return."""
    n = int(request.args.get("n", "100"))
    m = request.app.m
    for i in range(n):
        m.state[f"w{i}"] = i
    return _me(request)


@app.get("/restart-zero")
async def restart_zero(request: Request) -> Any:
    """A zero-downtime restart of ``name``: its replacement takes over once it serves."""
    request.app.m.restart(request.args["name"], zero_downtime=True)
    return _me(request)


@app.get("/restart-other")
async def restart_other(request: Request) -> Any:
    """Restart ``name`` (shutdown-first) and read its entry right after ``restart()`` returned."""
    m = request.app.m
    name = request.args["name"]
    before = dict(m.workers[name])
    m.restart(name)
    after = dict(m.workers[name])
    return _me(
        request,
        before={k: str(v) for k, v in before.items()},
        after={k: str(v) for k, v in after.items()},
    )
