"""do(): a request through the console's app, in process; console_for(): which console runs."""

from __future__ import annotations

import io

import pytest

from repl import console_for
from repl.requests import bind_do, do
from runtime.app import App
from runtime.loader import AppRef
from runtime.options import RunOptions
from runtime.response import json


def _app() -> App:
    app = App("DoDemo")

    @app.get("/health")
    async def health(request: object) -> object:
        return json({"ok": True})

    @app.post("/echo")
    async def echo(request: object) -> object:
        return json({"got": request.json})  # type: ignore[attr-defined]

    return app


async def test_do_runs_the_app_in_process() -> None:
    app = _app()
    result = await do(app, "/health")
    assert result.response.status == 200
    assert result.request.path == "/health"
    assert "200" in repr(result) and '"ok":true' in repr(result).replace(" ", "")
    posted = await do(app, "/echo", method="post", json={"a": 1})
    assert posted.response.status == 200 and b'"a"' in posted.response.body
    assert (await do(app, "/missing")).response.status == 404


async def test_do_sees_routes_added_in_the_console_and_says_what_to_fix() -> None:
    holder = {"app": _app()}
    bound = bind_do(lambda: holder["app"])

    @holder["app"].get("/new")
    async def new(request: object) -> object:
        return json({"new": True})

    assert (await bound("/new")).response.status == 200
    with pytest.raises(ValueError, match="starting with '/'"):
        await bound("health")
    with pytest.raises(ValueError, match="not both"):
        await bound("/echo", json={}, body="x")


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _opts(repl: str, commands: list[str] | None = None) -> RunOptions:
    return RunOptions(target=AppRef(module="m"), repl=repl, repl_commands=tuple(commands or ()))  # type: ignore[arg-type]


def test_console_for_modes() -> None:
    tty, pipe = _Stream(True), _Stream(False)
    assert console_for(_opts("off"), stdin=tty, stdout=tty) is None
    # --repl's console opens while the workers boot; --dev's ENTER line and scripts wait for them
    early = console_for(_opts("open"), stdin=tty, stdout=tty)
    assert type(early).__name__ == "OpensEarly" and getattr(early, "opens_early", False)
    enter = console_for(_opts("enter"), stdin=tty, stdout=tty)
    assert enter.__name__ == "interactive" and not hasattr(enter, "opens_early")  # type: ignore[union-attr]
    assert not hasattr(console_for(_opts("open"), stdin=pipe, stdout=tty), "opens_early")
    assert console_for(_opts("open"), stdin=pipe, stdout=tty).__name__ == "scripted_stdin"  # type: ignore[union-attr]
    assert console_for(_opts("open"), stdin=tty, stdout=pipe).__name__ == "scripted_stdin"  # type: ignore[union-attr]
    hook = console_for(_opts("off", ["1"]), stdin=tty, stdout=tty)
    assert hook is not None and hook.__name__ == "scripted_commands"
    out = _Stream(False)
    assert console_for(_opts("enter"), stdin=pipe, stdout=out) is None
    assert out.getvalue().count("\n") == 1 and "terminal" in out.getvalue()
