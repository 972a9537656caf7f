"""The console for apps of other frameworks: ``app``, the banner, ``routes`` and ``do()``.

Real FastAPI, Starlette, Litestar, Quart, Flask and Django apps, hosted as vivace's loader hosts
them (``runtime.foreign.ForeignApp``), driven through the console with scripted input.
"""

from __future__ import annotations

import asyncio
import io
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeControl
from framework_apps import (
    django_handler,
    fastapi_app,
    flask_app,
    hosted,
    litestar_app,
    quart_app,
    starlette_app,
)

from repl.asgi import InProcessApp
from repl.routes import Route, routes_of
from repl.session import Console, run_scripted
from runtime.hosting import ServeStage
from runtime.loader import AppRef, load_app
from runtime.options import RunOptions


def _options(module: str = "main", cwd: str | None = None) -> RunOptions:
    return RunOptions(target=AppRef(module=module, attr="app", cwd=cwd))


async def _scripted(host: Any, control: Any, *lines: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_scripted(
        host, control, _options(), commands=["\n".join(lines)], stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


def _rows(target: object) -> set[tuple[str, str, str]]:
    found = routes_of(target)
    assert found is not None
    return {(r.method, r.path, r.name) for r in found}


# --- the namespace and the banner ---------------------------------------------------------------


async def test_app_is_the_framework_object_and_the_banner_names_the_framework() -> None:
    events: list[str] = []
    target = fastapi_app(events)
    control = FakeControl(asyncio.get_running_loop())
    console = Console(hosted(target, "asgi3"), control, _options(), exit_hint="stop")
    try:
        assert console.namespace["app"] is target
        text = console.banner()
        assert text.startswith("vivace console for FastAPI app 'main:app' at http://127.0.0.1:1")
        assert "  routes " in text and "lifespan start-up here, once" in text
        assert 'workers[0].eval("os.getpid()")' in text and "app.ctx" not in text
        assert console.namespace["client"].base_url == "http://127.0.0.1:1"
        assert events == []  # nothing started before the console opens
    finally:
        console.close()
    flask = flask_app()
    console = Console(hosted(flask, "wsgi"), None, _options(), exit_hint="stop", url="http://h:9")
    try:
        assert console.namespace["app"] is flask
        assert console.banner().startswith("vivace console for Flask app 'main:app' at http://h:9")
        assert console.url == "http://h:9"  # handed over by the server: no socket scan
    finally:
        console.close()


async def test_a_vivace_app_keeps_its_banner_and_repl_ctx_names() -> None:
    from runtime.app import App

    app = App("VivaceStill")
    app.repl_ctx.add(5, name="five")
    console = Console(app, None, _options(), exit_hint="stop")
    try:
        assert console.namespace["app"] is app and console.namespace["five"] == 5
        assert console.banner().startswith("vivace console for VivaceStill")
        assert "app.ctx" in console.banner()
    finally:
        console.close()


# --- routes -------------------------------------------------------------------------------------


def test_routes_of_a_vivace_app() -> None:
    from runtime.app import App
    from runtime.response import text

    app = App("RoutesDemo")

    @app.get("/items/<item_id:int>", name="item")
    async def item(request: Any, item_id: int) -> Any:
        return text("x")

    @app.route("/form", methods=["GET", "POST"])
    async def form(request: Any) -> Any:
        return text("x")

    @app.websocket("/ws")
    async def ws(request: Any, socket: Any) -> None:
        return None

    found = routes_of(app)
    assert found is not None and found.framework == "vivace"
    rows = {(r.method, r.path, r.endpoint.rsplit(".", 1)[-1]) for r in found}
    assert rows == {("GET", "/items/<item_id:int>", "item"), ("GET,POST", "/form", "form")} | {
        ("WS", "/ws", "ws")
    }


def test_routes_of_fastapi_include_routers_websockets_and_the_docs() -> None:
    rows = _rows(fastapi_app([]))
    assert {
        ("GET", "/users/{user_id}", "user"),
        ("POST", "/echo", "echo"),
        ("WS", "/ws", "ws"),
        ("DELETE", "/admin/cache", "clear_cache"),
        ("GET", "/openapi.json", "openapi"),
        ("GET", "/docs", "swagger_ui_html"),
    } <= rows
    endpoint = {r.name: r.endpoint for r in routes_of(fastapi_app([])) or []}["user"]
    assert endpoint == "framework_apps.fastapi_app.<locals>.user"


def test_routes_of_starlette_flatten_mounts() -> None:
    assert _rows(starlette_app()) == {
        ("GET", "/", "home"),
        ("GET,PUT", "/api/items/{id}", "api:item"),  # app.url_path_for("api:item", id=1)
        ("WS", "/feed", "feed"),
    }


def test_routes_of_starlette_and_fastapi_name_mounts_and_hosts_as_url_path_for_does() -> None:
    """Names under a named ``Mount``/``Host`` are namespaced (``m:deep:b``, what
    ``app.url_path_for`` takes); a ``Host``'s routes show their host, never ``None``."""
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Host, Mount, Route, Router, WebSocketRoute

    async def h(request: Any) -> PlainTextResponse:
        return PlainTextResponse("h")

    async def w(websocket: Any) -> None:
        await websocket.close()

    def routes() -> list[Any]:
        return [
            Mount(
                "/m",
                routes=[
                    Route("/a", h, name="a", methods=["GET", "PUT"]),
                    Mount(
                        "/deep",
                        routes=[Route("/b", h, name="b"), WebSocketRoute("/w", w, name="w")],
                        name="deep",
                    ),
                ],
                name="m",
            ),
            Host("api.example.com", Router(routes=[Route("/h", h, name="hh")]), name="api"),
            Mount("/raw", routes=[Route("/r", h, name="r")]),  # unnamed: names unchanged
        ]

    expected = {
        ("GET,PUT", "/m/a", "m:a"),
        ("GET", "/m/deep/b", "m:deep:b"),
        ("WS", "/m/deep/w", "m:deep:w"),
        ("GET", "//api.example.com/h", "api:hh"),
        ("GET", "/raw/r", "r"),
    }
    star = Starlette(routes=routes())
    assert _rows(star) == expected
    fast = FastAPI(openapi_url=None)
    fast.router.routes.extend(routes())
    sub = FastAPI(openapi_url=None)

    @sub.get("/ping", name="ping")
    async def ping() -> str:
        return "pong"

    fast.mount("/v2", sub, name="v2")
    assert _rows(fast) == expected | {("GET", "/v2/ping", "v2:ping")}
    for target in (star, fast):
        for row in routes_of(target) or []:
            assert target.url_path_for(row.name).host in ("", "api.example.com")
            assert target.url_path_for(row.name) == row.path.removeprefix("//api.example.com")


def test_routes_look_through_middleware_wrapping_the_app() -> None:
    from starlette.middleware.cors import CORSMiddleware

    wrapped = CORSMiddleware(starlette_app(), allow_origins=["*"])
    assert ("GET", "/", "home") in _rows(wrapped)


def test_routes_of_litestar_without_the_automatic_options_handlers() -> None:
    found = routes_of(litestar_app())
    assert found is not None and found.framework == "Litestar"
    mine = [r for r in found if not r.path.startswith("/schema")]  # Litestar's OpenAPI routes
    assert {(r.method, r.path, r.name) for r in mine} == {
        ("GET", "/items/{item_id:int}", "item"),
        ("POST", "/items", ""),
        ("WS", "/ws", ""),
        ("GET", "/v1/health", ""),
    }
    assert {r.endpoint.rsplit(".", 1)[-1] for r in mine} == {"item", "create", "ws", "health"}
    assert ("GET", "/schema/openapi.json") in {(r.method, r.path) for r in found}


def test_routes_of_flask_and_quart() -> None:
    assert _rows(flask_app()) == {
        ("GET", "/hello/<name>", "hello"),
        ("GET,POST", "/form", "form"),
        ("GET", "/static/<path:filename>", "static"),
    }
    assert _rows(quart_app()) == {
        ("GET", "/ping", "ping"),
        ("WS", "/ws", "ws"),
        ("GET", "/static/<path:filename>", "static"),
    }


def test_routes_of_django_walk_includes_with_namespaces() -> None:
    from django.test.utils import override_settings

    handler = django_handler("wsgi")
    with override_settings(ROOT_URLCONF="framework_apps"):
        found = routes_of(handler)
        assert found is not None and found.framework == "Django"
        views = "framework_apps._django_urls.<locals>."
        assert set(found) == {
            ("ANY", "/", "home", "framework_apps.django_view"),
            ("GET,POST", "/blog/articles/<int:pk>/", "blog:article", views + "ArticleView"),
            # a class-based view by its class, through decorators (functools.wraps or not)
            ("GET", "/blog/feed/", "blog:feed", views + "FeedView"),
            ("GET", "/blog/raw-feed/", "blog:raw-feed", views + "FeedView"),
        }
        assert routes_of(django_handler("asgi")) == found


async def test_routes_renders_as_a_table_and_plain_asgi_is_not_known() -> None:
    async def raw(scope: Any, receive: Any, send: Any) -> None:
        return None

    code, out, err = await _scripted(hosted(starlette_app(), "asgi3"), None, "routes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["method", "path", "name", "endpoint"]
    assert lines[1].startswith("------")
    assert any(line.split()[:3] == ["GET,PUT", "/api/items/{id}", "api:item"] for line in lines)
    assert lines[-1] == "3 routes (Starlette)"
    code, out, err = await _scripted(hosted(raw, "asgi3"), None, "routes", "list(routes)")
    assert code == 0, err
    assert out.splitlines() == ["routes: not known for a plain ASGI app", "[]"]
    assert Route("GET", "/", "n", "e").method == "GET"


# --- do() ---------------------------------------------------------------------------------------


async def test_do_through_fastapi_runs_the_lifespan_once_and_shuts_it_down_at_close() -> None:
    events: list[str] = []
    target = fastapi_app(events)
    control = FakeControl(asyncio.get_running_loop())
    code, out, err = await _scripted(
        hosted(target, "asgi3"),
        control,
        "r = await do('/users/1')",
        "r.response.status_code, r.response.json()",
        "(await do('/echo', method='post', json={'a': 1})).response.json()",
        "sorted(app.state.db['users'])",
        "events_seen = list(app.state.db)",
    )
    assert code == 0, err
    assert out.splitlines() == [
        "(200, {'user': 'grace', 'token': 'from-lifespan', 'same_loop': True})",
        "{'got': {'a': 1}}",
        "['ada', 'grace']",
    ]
    assert events == ["startup", "shutdown"]  # started once, shut down when the console stopped


async def test_do_result_repr_and_app_errors_come_out_of_do() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("no such thing")

    @app.get("/hi")
    async def hi() -> dict[str, str]:
        return {"hi": "there"}

    code, out, err = await _scripted(
        hosted(app, "asgi3"), FakeControl(asyncio.get_running_loop()), "await do('/hi')"
    )
    assert code == 0, err
    assert out.strip() == 'Result(GET /hi -> 200 application/json): {"hi":"there"}'
    code, out, err = await _scripted(
        hosted(app, "asgi3"), FakeControl(asyncio.get_running_loop()), "await do('/boom')"
    )
    assert code == 1 and "LookupError: no such thing" in err


async def test_a_failing_lifespan_start_up_is_reported_and_do_says_why() -> None:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        raise ConnectionError("database is down")
        yield

    code, _, err = await _scripted(
        hosted(FastAPI(lifespan=lifespan), "asgi3"),
        FakeControl(asyncio.get_running_loop()),
        "await do('/')",
    )
    assert code == 1
    assert "lifespan start-up of FastAPI app 'main:app' failed" in err
    assert "database is down" in err


async def test_do_through_a_wsgi_flask_app() -> None:
    code, out, err = await _scripted(
        hosted(flask_app(), "wsgi"),
        FakeControl(asyncio.get_running_loop()),
        "(await do('/hello/ada', headers={'x-agent': 'console'})).response.json()",
        "(await do('/form', method='POST', body='a=1')).response.json()",
        "(await do('/nope')).response.status_code",
    )
    assert code == 0, err
    assert out.splitlines() == [
        "{'agent': 'console', 'hello': 'ada'}",
        "{'body': 'a=1', 'method': 'POST'}",
        "404",
    ]


async def test_do_through_django_asgi_which_has_no_lifespan() -> None:
    from django.test.utils import override_settings

    handler = django_handler("asgi")  # configures Django: before override_settings needs it
    with override_settings(ROOT_URLCONF="framework_apps"):
        code, out, err = await _scripted(
            hosted(handler, "asgi3"),
            FakeControl(asyncio.get_running_loop()),
            "(await do('/blog/articles/3/', method='POST')).response.json()",
        )
    assert code == 0, err
    assert out.strip() == "{'path': '/blog/articles/3/', 'method': 'POST'}"


async def test_in_the_serving_process_do_uses_the_servers_lifespan_state() -> None:
    events: list[str] = []
    host = hosted(fastapi_app(events), "asgi3")
    await host.serve_stage(ServeStage.BEFORE_START)  # what the single-process server does
    try:
        code, out, err = await _scripted(
            host, None, "(await do('/users/0')).response.json()['token']"
        )
        assert code == 0, err
        assert out.strip() == "'from-lifespan'"
        assert events == ["startup"]  # the console started nothing of its own
    finally:
        await host.serve_stage(ServeStage.AFTER_STOP)
    assert events == ["startup", "shutdown"]


async def test_in_process_app_without_lifespan_support() -> None:
    seen: list[Any] = []

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("only http")
        seen.append(scope.get("state"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    runner = InProcessApp(raw, label="raw")
    try:
        response = await runner.request("GET", "/", headers=[], content=b"")
        assert response.status_code == 204 and seen == [None] and runner.state is None
    finally:
        runner.close()


# --- refresh() ----------------------------------------------------------------------------------


async def test_refresh_reimports_a_fastapi_app_and_restarts_its_lifespan(tmp_path: Path) -> None:
    module = tmp_path / "refresh_fastapi_app.py"
    source = textwrap.dedent(
        """
        from contextlib import asynccontextmanager
        from fastapi import FastAPI

        EVENTS = []

        @asynccontextmanager
        async def lifespan(app):
            EVENTS.append("startup")
            yield
            EVENTS.append("shutdown")

        app = FastAPI(lifespan=lifespan)

        @app.get("/v1")
        async def v1():
            return {"v": 1}
        """
    )
    module.write_text(source)
    ref = AppRef(module="refresh_fastapi_app", attr="app", cwd=str(tmp_path))
    try:
        host = load_app(ref)
        options = RunOptions(target=ref)
        console = Console(host, FakeControl(asyncio.get_running_loop()), options, exit_hint="x")
        try:
            first = sys.modules["refresh_fastapi_app"]

            async def value(source: str) -> Any:
                outcome = await console.run(source)
                assert outcome.ok, outcome.format_error()
                return outcome.value

            assert (await value("await do('/v1')")).response.json() == {"v": 1}
            module.write_text(source + '\n@app.get("/v2")\nasync def v2():\n    return {"v": 2}\n')
            console.stale = True
            assert await value("refresh()") == "app re-imported from refresh_fastapi_app"
            assert console.stale is False
            assert first.EVENTS == ["startup", "shutdown"]  # the old app's lifespan ended
            assert (await value("await do('/v2')")).response.json() == {"v": 2}
            assert ("GET", "/v2", "v2") in {tuple(r)[:3] for r in await value("list(routes)")}
            assert console.namespace["app"] is sys.modules["refresh_fastapi_app"].app
        finally:
            console.close()
        assert sys.modules["refresh_fastapi_app"].EVENTS == ["startup", "shutdown"]
    finally:
        sys.modules.pop("refresh_fastapi_app", None)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_django_handlers_are_known_by_their_module(kind: str) -> None:
    from runtime.foreign import framework_name

    assert framework_name(django_handler(kind)) == "Django"
