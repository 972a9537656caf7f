"""The console's native parts in process (issue 17): application contexts around statements,
``openapi``, and the console-name providers' configuration. The real-process sessions are in
tests/test_frameworks_console.py and tests/test_console_names.py."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from repl.evaluate import Evaluator, LoopRunner, Outcome, Runner, ThreadRunner
from repl.native import Scopes, describe_object, framework_object
from repl.native.fastapi import OpenAPI
from repl.native.flask import flask_scopes, quart_scopes
from repl.native.providers import call_provider, configured, find_pyproject


def _runner(kind: str, ns: dict[str, Any], scopes: Scopes) -> Runner:
    evaluator = Evaluator(ns)
    evaluator.plain_scope = scopes.plain
    evaluator.task_scope = scopes.task
    return ThreadRunner(evaluator) if kind == "thread" else LoopRunner(evaluator)


async def _value(runner: Runner, source: str) -> object:
    outcome: Outcome = await runner.run(source)
    assert outcome.ok, outcome.format_error()
    return outcome.value


def _flask_app() -> tuple[Any, list[str]]:
    flask = pytest.importorskip("flask")
    app = flask.Flask("native_flask")
    ended: list[str] = []

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        ended.append(str(flask.g.get("mark")))

    return app, ended


@pytest.mark.parametrize("kind", ["thread", "loop"])
async def test_flask_statements_run_in_one_application_context(kind: str) -> None:
    app, ended = _flask_app()
    scopes = flask_scopes(lambda: app)
    ns: dict[str, Any] = {"app": app}
    runner = _runner(kind, ns, scopes)
    try:
        await _value(runner, "from flask import current_app, g")
        assert await _value(runner, "current_app._get_current_object() is app") is True
        await _value(runner, 'g.mark = "plain"')
        assert await _value(runner, "import asyncio; await asyncio.sleep(0); g.mark") == "plain"
        await _value(runner, 'g.mark = "awaited"; await asyncio.sleep(0)')
        assert await _value(runner, "g.mark") == "awaited"
        # a plain statement shows what the proxy stands for, not "<LocalProxy unbound>"
        assert type(await _value(runner, "g")).__name__ == "_AppCtxGlobals"
        assert ended == []  # popped after each statement, ended only once, at the close
    finally:
        runner.close()
    assert scopes.close is not None
    scopes.close()
    assert ended == ["awaited"]
    scopes.close()  # twice is harmless
    assert ended == ["awaited"]
    # nothing is left pushed where the statements ran
    flask = pytest.importorskip("flask")
    assert not flask.has_app_context()


async def test_flask_context_follows_the_console_app_after_refresh() -> None:
    first, ended_first = _flask_app()
    second, _ = _flask_app()
    current = [first]
    scopes = flask_scopes(lambda: current[0])
    runner = _runner("thread", {}, scopes)
    try:
        await _value(runner, 'from flask import current_app, g; g.mark = "first"')
        current[0] = second  # what refresh() does to the console's app
        assert await _value(runner, "current_app._get_current_object()") is second
        assert ended_first == ["first"]  # the old app's context ended when the new one began
    finally:
        runner.close()
        assert scopes.close is not None
        scopes.close()


async def test_quart_statements_run_in_its_async_application_context() -> None:
    quart = pytest.importorskip("quart")
    app = quart.Quart("native_quart")
    ended: list[str] = []

    @app.teardown_appcontext
    async def teardown(exc: BaseException | None) -> None:
        ended.append(str(quart.g.get("mark")))

    scopes = quart_scopes(lambda: app)
    runner = _runner("thread", {}, scopes)
    try:
        await _value(runner, "from quart import current_app, g")
        # a plain statement: on the console's thread, in a copy of the task's context
        assert await _value(runner, "current_app.name") == "native_quart"
        assert await _value(runner, "import threading; threading.current_thread().name") == (
            "vivace-console"
        )
        await _value(runner, 'g.mark = "kept"')
        assert await _value(runner, "import asyncio; await asyncio.sleep(0); g.mark") == "kept"
        assert ended == []
        assert scopes.close is not None
        await asyncio.to_thread(scopes.close)  # on the console's loop, before it stops
        assert ended == ["kept"]
    finally:
        runner.close()


async def test_runner_call_runs_where_plain_statements_run_in_their_scope() -> None:
    app, _ = _flask_app()
    scopes = flask_scopes(lambda: app)
    runner = _runner("thread", {}, scopes)
    try:

        def probe() -> tuple[str, str]:
            from flask import current_app

            return threading.current_thread().name, current_app.name

        assert await runner.call(probe) == ("vivace-console", "native_flask")
        with pytest.raises(ZeroDivisionError):
            await runner.call(lambda: 1 / 0)
    finally:
        runner.close()
        assert scopes.close is not None
        scopes.close()


# --- openapi -----------------------------------------------------------------------------------


FASTAPI_APP = """
from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    name: str


app = FastAPI(title="T", version="9")


@app.get("/items", response_model=list[Item])
async def list_items() -> list[Item]:
    return []


@app.post("/items", status_code=201, response_model=Item)
async def add_item(item: Item) -> Item:
    return item


@app.delete("/items/{name}", status_code=204)
async def remove(name: str) -> None:
    return None
"""


def test_openapi_summarises_operations_and_leaves_fastapi_cache_alone() -> None:
    pytest.importorskip("fastapi")
    ns: dict[str, Any] = {}
    # compiled without this module's postponed annotations: pydantic resolves Item at once
    exec(compile(FASTAPI_APP, "<fastapi app>", "exec", dont_inherit=True), ns)
    app = ns["app"]
    openapi = OpenAPI(lambda: app)
    rows = {(r.method, r.path): r for r in openapi}
    assert rows["GET", "/items"].response == "200 list[Item]"
    assert rows["POST", "/items"].request == "Item"
    assert rows["POST", "/items"].response == "201 Item"
    assert rows["DELETE", "/items/{name}"].response == "204"
    assert openapi["add_item_items_post"].method == "POST"
    with pytest.raises(KeyError, match="operation ids: list_items_items_get"):
        openapi["nope"]
    text = repr(openapi)
    assert text.splitlines()[0].split() == [
        *("method", "path", "operation", "id", "request", "response")
    ]
    assert text.endswith("3 operations (OpenAPI 3.1.0, T 9)")
    assert app.openapi_schema is None  # FastAPI still generates it afresh for /openapi.json

    @app.get("/late")
    async def late() -> dict[str, str]:
        return {}

    assert len(openapi) == 4  # read again at each use
    assert "not a FastAPI app" in repr(OpenAPI(lambda: object()))


# --- providers' configuration ------------------------------------------------------------------


def test_the_nearest_pyproject_upwards_and_its_console_list(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.vivace]
            console = ["pkg.console:names", "pkg.console:Names.build", "no_colon", 3, "a b:c"]
            """
        )
    )
    assert find_pyproject(str(deep)) == project / "pyproject.toml"
    path, refs, problems = configured(str(deep))
    assert path == project / "pyproject.toml"
    assert refs == ["pkg.console:names", "pkg.console:Names.build"]
    assert len(problems) == 3
    assert all('is not "module:function"' in p for p in problems)
    assert "'no_colon'" in problems[0] and "3 is not" in problems[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[project]\nname = 'x'\n", ([], [])),
        ("[tool.vivace]\nport = 1\n", ([], [])),
        ('[tool.vivace]\nconsole = "m:f"\n', ([], ["must be a list"])),
        ("[tool.vivace\n", ([], ["could not be read"])),
    ],
)
def test_console_list_absent_or_wrong(
    tmp_path: Path, text: str, expected: tuple[list[str], list[str]]
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    _, refs, problems = configured(str(tmp_path))
    assert refs == expected[0]
    assert len(problems) == len(expected[1])
    for problem, words in zip(problems, expected[1], strict=True):
        assert words in problem and "\n" not in problem


def test_call_provider_passes_the_app_when_asked_and_checks_what_comes_back() -> None:
    app = object()
    assert call_provider(lambda: {"a": 1}, app) == {"a": 1}
    assert call_provider(lambda the_app: {"app_seen": the_app}, app) == {"app_seen": app}
    with pytest.raises(TypeError, match="returned a list, not a mapping"):
        call_provider(lambda: [1], app)
    with pytest.raises(ValueError, match="'not a name'"):
        call_provider(lambda: {"not a name": 1}, app)


def test_describe_object_and_framework_object() -> None:
    class Wrapper:
        def __init__(self, app: object) -> None:
            self.app = app

    flask = pytest.importorskip("flask")
    inner = flask.Flask("wrapped")
    assert framework_object(Wrapper(Wrapper(inner)), "flask") is inner
    assert framework_object(Wrapper(object()), "flask") is None
    assert describe_object(Path) == "class pathlib.Path"
    assert describe_object(42) == "int 42"
    assert len(describe_object("x" * 200)) < 60
    assert describe_object(textwrap) == "module textwrap"


async def test_a_loop_that_hosts_the_app_outlives_a_statement_left_behind() -> None:
    """The app's lifespan and ``do()`` live on the console's loop: when a statement stuck in C on
    that loop is left behind, statements move to a new loop and the old one keeps running for the
    app once the statement ends; ``close()`` stops it."""
    import time

    ns: dict[str, Any] = {}
    runner = ThreadRunner(Evaluator(ns))
    runner.hosts_app = True
    app_loop = runner.loop
    app_thread = runner._lane.thread
    try:
        await runner.run("import asyncio, time")
        task = asyncio.create_task(runner.run("await asyncio.sleep(0); time.sleep(2); later = 1"))
        await asyncio.sleep(0.2)
        runner.cancel()
        outcome = await asyncio.wait_for(task, 10)
        assert outcome.detached and runner.loop is not app_loop
        deadline = time.monotonic() + 10
        while "later" not in ns and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert app_loop.is_running() and app_thread.is_alive()  # kept for the app
        done = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, result="served"), app_loop)
        assert await asyncio.wrap_future(done) == "served"
    finally:
        runner.close()
    app_thread.join(5)
    assert not app_thread.is_alive()
