"""The App facade: identity, settings, routes, listeners surface, contexts, tasks, the pipeline."""

from __future__ import annotations

import asyncio
import logging
from multiprocessing import Value
from types import SimpleNamespace
from typing import Any

import pytest

from runtime import App, Request, json, text
from runtime.config import Config
from runtime.exceptions import NotFound, RouteExists
from runtime.testing import AsyncTestClient


async def test_names_are_unique_and_the_error_names_the_existing_app() -> None:
    first = App("demo")
    with pytest.raises(ValueError, match=r"'demo' already exists.*App.get_app\('demo'\)"):
        App("demo")
    assert App.get_app("demo") is first
    assert App.get_app() is first
    with pytest.raises(LookupError, match="No app named 'other'; apps in this process: demo"):
        App.get_app("other")


@pytest.mark.parametrize("name", ["", "1app", "my app", "a.b", None])
def test_invalid_app_names_are_refused(name: Any) -> None:
    with pytest.raises(ValueError, match="start with a letter"):
        App(name)


def test_settings_config_ctx_debug_and_auto_reload() -> None:
    app = App("settings", config={"REQUEST_TIMEOUT": 3.0})
    assert isinstance(app.config, Config)
    assert app.config.REQUEST_TIMEOUT == 3.0
    assert app.config.KEEP_ALIVE is True  # defaults are kept
    assert isinstance(app.ctx, SimpleNamespace)
    assert app.name == "settings" and repr(app) == "<App 'settings'>"
    assert app.debug is False
    app.debug = True
    assert app.config.DEBUG is True and app.debug
    app.config.AUTO_RELOAD = True
    assert app.auto_reload is True
    custom = object()
    assert App("with_ctx", ctx=custom).ctx is custom


async def test_every_method_decorator_and_sync_handlers() -> None:
    app = App("methods")
    for method in ("get", "post", "put", "patch", "delete", "options"):

        def handler(request: Request, _m: str = method) -> Any:
            return text(f"{_m}:{request.method}")

        getattr(app, method)("/m", name=f"h_{method}")(handler)

    @app.head("/h")
    async def head_only(request: Request) -> Any:
        return text("ignored body", headers={"x-head": "1"})

    async with AsyncTestClient(app) as client:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            response = await client.request(method, "/m")
            assert response.status_code == 200
            assert response.text == f"{method.lower()}:{method}"
        response = await client.head("/h")
        assert response.status_code == 200 and response.headers["x-head"] == "1"
        assert response.content == b""


async def test_route_and_add_route_with_several_methods_and_typed_params() -> None:
    app = App("routes")

    @app.route("/items/<item_id:int>", methods=["GET", "POST"])
    async def item(request: Request, item_id: int) -> Any:
        return json({"id": item_id, "type": type(item_id).__name__, "method": request.method})

    def plain(request: Request) -> Any:
        return text("plain")

    app.add_route(plain, "/plain", methods=("GET",))
    async with AsyncTestClient(app) as client:
        assert (await client.post("/items/7")).json() == {"id": 7, "type": "int", "method": "POST"}
        assert (await client.get("/plain")).text == "plain"
        assert (await client.get("/items/x")).status_code == 404
        assert app.url_for("item", item_id=3) == "/items/3"
        assert app.url_for("plain", q="a b") == "/plain?q=a+b"


def test_duplicate_routes_are_refused_at_registration() -> None:
    app = App("dupes")

    @app.get("/a")
    async def first(request: Request) -> Any:
        return text("1")

    with pytest.raises(RouteExists):

        @app.get("/a", name="second")
        async def second(request: Request) -> Any:
            return text("2")


def test_bad_route_declarations_say_what_to_fix() -> None:
    app = App("bad_routes")
    with pytest.raises(TypeError, match="needs a path"):
        app.route(lambda request: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be callable"):
        app.add_route("nope", "/x")  # type: ignore[type-var]
    with pytest.raises(ValueError, match="error_format must be one of"):
        app.get("/x", error_format="xml")
    with pytest.raises(ValueError, match="at least one HTTP method"):
        app.route("/x", methods=[])


async def test_non_response_return_is_a_clear_500_in_debug_only() -> None:
    app = App("nonresponse")

    @app.get("/")
    async def home(request: Request) -> Any:
        return {"not": "a response"}

    async with AsyncTestClient(app) as client:
        hidden = await client.get("/")
        assert hidden.status_code == 500
        assert "return a response" not in hidden.text
        app.debug = True
        shown = await client.get("/")
        assert shown.status_code == 500
        assert "Handler" in shown.text and "returned dict" in shown.text
        assert "return a response" in shown.text


async def test_handlers_returning_an_awaitable_from_a_sync_function_work() -> None:
    app = App("partial")

    async def real(request: Request) -> Any:
        return text("awaited")

    @app.get("/")
    def wrapper(request: Request) -> Any:
        return real(request)

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).text == "awaited"


# -- listeners surface (ordering rules are tested in test_listeners.py) ----------------------------


def test_listener_forms_register_with_their_priority() -> None:
    app = App("listeners")

    def a(app: App) -> None: ...
    def b(app: App) -> None: ...
    def c(app: App) -> None: ...
    def d(app: App) -> None: ...
    def e(app: App, loop: Any) -> None: ...

    app.before_server_start(a)
    app.before_server_start()(b)
    app.before_server_start(priority=3)(c)
    app.listener("before_server_start", priority=2)(d)
    app.register_listener(e, "BEFORE_SERVER_START", priority=1)
    ordered = app.listeners.ordered("before_server_start")
    assert [(x.fn.__name__, x.priority) for x in ordered] == [
        ("c", 3),
        ("d", 2),
        ("e", 1),
        ("a", 0),
        ("b", 0),
    ]
    assert app.listener(a, "after_server_stop") is a


@pytest.mark.parametrize(
    "event",
    [
        "main_process_start",
        "main_process_ready",
        "main_process_stop",
        "reload_process_start",
        "reload_process_stop",
        "before_reload_trigger",
        "after_reload_trigger",
        "before_server_start",
        "after_server_start",
        "before_server_stop",
        "after_server_stop",
    ],
)
def test_every_shorthand_works_bare_called_and_with_priority(event: str) -> None:
    app = App("shorthands")

    def bare(app: App, **kwargs: Any) -> None: ...
    def called(app: App, **kwargs: Any) -> None: ...
    def prioritised(app: App, **kwargs: Any) -> None: ...

    shorthand = getattr(app, event)
    assert shorthand(bare) is bare
    assert shorthand()(called) is called
    assert shorthand(priority=5)(prioritised) is prioritised
    names = {x.fn.__name__: x.priority for x in app.listeners.ordered(event)}
    assert names == {"bare": 0, "called": 0, "prioritised": 5}


def test_listener_mistakes_raise_at_registration() -> None:
    app = App("listener_errors")

    def fine(app: App) -> None: ...

    with pytest.raises(TypeError, match="needs the event"):
        app.listener(fine)  # type: ignore[call-overload]  # bare @app.listener
    with pytest.raises(ValueError, match="Valid events: main_process_start"):
        app.listener("before_start")
    with pytest.raises(ValueError, match="Unknown listener event"):
        app.register_listener(fine, "server_start")

    def too_many(a: Any, b: Any, c: Any) -> None: ...

    with pytest.raises(TypeError, match="must accept one of"):
        app.before_server_start(too_many)


# -- contexts --------------------------------------------------------------------------------------


def test_shared_ctx_warns_about_unsafe_objects_and_locks(caplog: pytest.LogCaptureFixture) -> None:
    app = App("shared")
    with caplog.at_level(logging.WARNING, logger="vivace"):
        app.shared_ctx.counter = Value("i", 0)
        assert not caplog.records
        app.shared_ctx.plain = {"a": 1}
    assert len(caplog.records) == 1
    assert "Unsafe object plain with type <class 'dict'> was added to shared_ctx" in (
        caplog.records[0].getMessage()
    )
    assert app.shared_ctx.plain == {"a": 1}
    app.shared_ctx.lock()
    assert app.shared_ctx.is_locked()
    with pytest.raises(RuntimeError, match="read-only in server workers"):
        app.shared_ctx.counter = Value("i", 1)


def test_repl_ctx_names_descriptions_and_collisions() -> None:
    app = App("repl")

    def helper() -> None:
        """Reset the database to a known state for tests and demos."""

    app.repl_ctx.add(helper)
    app.repl_ctx.add(42, name="answer", desc="the answer")
    app.repl_ctx.db = {"rows": 1}
    entries = {entry.name: entry for entry in app.repl_ctx}
    assert entries["helper"].obj is helper
    assert entries["helper"].desc == "Reset the database to a known state for"
    assert entries["answer"].desc == "the answer"
    assert app.repl_ctx.db == {"rows": 1}
    assert "db" in app.repl_ctx and len(app.repl_ctx) == 3
    for taken in ("app", "client", "do", "workers", "stop", "refresh", "runtime"):
        with pytest.raises(ValueError, match="taken by the console"):
            app.repl_ctx.add(object(), name=taken)
    with pytest.raises(ValueError, match="taken by the console"):
        app.repl_ctx.logs = 1
    with pytest.raises(AttributeError, match="no name 'missing'"):
        _ = app.repl_ctx.missing


def test_multiplexer_and_manager_exist_only_where_set() -> None:
    app = App("processes")
    with pytest.raises(AttributeError, match="only in server workers"):
        _ = app.m
    assert not hasattr(app, "multiplexer")
    with pytest.raises(RuntimeError, match="main_process_ready"):
        _ = app.manager
    terminated: list[bool] = []
    mux = SimpleNamespace(terminate=lambda: terminated.append(True))
    app.multiplexer = mux
    assert app.m is mux
    app.stop()
    assert terminated == [True]
    manager = object()
    app.manager = manager
    assert app.manager is manager


def test_stop_uses_the_installed_hook_or_says_it_is_not_served() -> None:
    app = App("stopping")
    with pytest.raises(RuntimeError, match="not being served"):
        app.stop()
    calls: list[int] = []
    app.set_stop_hook(lambda: calls.append(1))
    app.stop()
    assert calls == [1]


# -- background tasks ------------------------------------------------------------------------------


async def test_add_task_before_the_loop_is_queued_then_started_and_cancelled() -> None:
    app = App("tasks")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def worker(app: App) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # Not inside a running loop: simulate module import time by queueing through a thread.
    result: list[Any] = []
    await asyncio.to_thread(lambda: result.append(app.add_task(worker)))
    assert result == [None] and not started.is_set()

    @app.get("/")
    async def home(request: Request) -> Any:
        return text(str(len(request.app.tasks)))

    async with AsyncTestClient(app) as client:
        await asyncio.wait_for(started.wait(), 5)
        assert (await client.get("/")).text == "1"
    assert cancelled.is_set()
    assert app.tasks == []


async def test_add_task_in_a_running_loop_returns_the_task() -> None:
    app = App("tasks_now")

    async def job() -> str:
        return "done"

    task = app.add_task(job(), name="job")
    assert task is not None and task.get_name() == "job"
    assert await asyncio.wait_for(task, 5) == "done"
    with pytest.raises(TypeError, match="coroutine or a function"):
        app.add_task(42)  # type: ignore[arg-type]


# -- the pipeline and its signals ------------------------------------------------------------------


async def test_builtin_http_signals_fire_in_the_specified_order() -> None:
    app = App("order")
    seen: list[str] = []

    def tracer(label: str) -> Any:
        async def handler(**context: Any) -> None:
            seen.append(label)

        return handler

    for event in (
        "http.lifecycle.request",
        "http.lifecycle.handle",
        "http.routing.before",
        "http.routing.after",
        "http.lifecycle.read_body",
        "http.handler.before",
        "http.handler.after",
        "http.lifecycle.exception",
        "http.lifecycle.response",
    ):
        app.add_signal(tracer(event), event)
    for where in ("request", "response"):
        app.add_signal(tracer(f"mw.before.{where}"), "http.middleware.before", {"attach_to": where})
        app.add_signal(tracer(f"mw.after.{where}"), "http.middleware.after", {"attach_to": where})
    app.add_signal(tracer("report"), "server.exception.report")

    @app.on_request
    async def req_mw(request: Request) -> None:
        seen.append("request middleware")

    @app.on_response
    async def resp_mw(request: Request, response: Any) -> None:
        seen.append("response middleware")

    @app.post("/")
    async def home(request: Request) -> Any:
        seen.append("handler")
        return text("ok")

    @app.get("/fail")
    async def fail(request: Request) -> Any:
        seen.append("handler")
        raise RuntimeError("boom")

    async with AsyncTestClient(app) as client:
        assert (await client.post("/", content=b"body")).text == "ok"
        assert seen == [
            "http.lifecycle.request",
            "http.lifecycle.handle",
            "http.routing.before",
            "http.routing.after",
            "http.lifecycle.read_body",
            "mw.before.request",
            "request middleware",
            "mw.after.request",
            "http.handler.before",
            "handler",
            "http.handler.after",
            "mw.before.response",
            "response middleware",
            "mw.after.response",
            "http.lifecycle.response",
        ]
        seen.clear()
        assert (await client.get("/fail")).status_code == 500
        await asyncio.sleep(0)  # the report runs in a task
        assert seen[: seen.index("handler") + 1][-2:] == ["http.handler.before", "handler"]
        after = seen[seen.index("handler") + 1 :]
        assert "http.handler.after" not in after
        assert after.index("report") < after.index("http.lifecycle.exception")
        assert after[-1] == "http.lifecycle.response"


async def test_routing_after_gets_route_kwargs_and_handler() -> None:
    app = App("routing_after")
    got: dict[str, Any] = {}

    @app.signal("http.routing.after")
    def routed(request: Request, route: Any, kwargs: dict[str, Any], handler: Any) -> None:
        got.update(route=route.name, kwargs=kwargs, handler=handler.__name__)

    @app.get("/u/<uid:int>")
    async def user(request: Request, uid: int) -> Any:
        return text("u")

    async with AsyncTestClient(app) as client:
        await client.get("/u/5")
    assert got == {"route": "user", "kwargs": {"uid": 5}, "handler": "user"}


async def test_read_body_signal_sees_each_chunk_and_the_body_is_complete() -> None:
    app = App("read_body")
    chunks: list[bytes] = []

    @app.signal("http.lifecycle.read_body")
    def on_chunk(body: bytes) -> None:
        chunks.append(body)

    @app.post("/")
    async def home(request: Request) -> Any:
        return text(request.body.decode())

    async def upload() -> Any:
        for part in (b"one,", b"two,", b"three"):
            yield part

    async with AsyncTestClient(app) as client:
        assert (await client.post("/", content=upload())).text == "one,two,three"
    assert b"".join(chunks) == b"one,two,three"


async def test_stream_routes_read_the_body_as_it_arrives() -> None:
    app = App("streamed_upload")

    @app.post("/upload", stream=True)
    async def upload(request: Request) -> Any:
        assert request.body == b""
        sizes = []
        while (chunk := await request.stream.read()) is not None:  # type: ignore[union-attr]
            sizes.append(len(chunk))
        return json({"total": sum(sizes)})

    async def parts() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    async with AsyncTestClient(app) as client:
        assert (await client.post("/upload", content=parts())).json() == {"total": 10000}


async def test_handle_survives_a_failing_response_signal() -> None:
    app = App("response_signal")

    @app.signal("http.lifecycle.response")
    async def broken(request: Request, response: Any) -> None:
        raise RuntimeError("signal handler bug")

    @app.get("/")
    async def home(request: Request) -> Any:
        return text("still fine")

    async with AsyncTestClient(app) as client:
        response = await client.get("/")
    assert response.status_code == 200 and response.text == "still fine"


async def test_dispatch_event_and_report_exception_through_the_app() -> None:
    app = App("signals_facade")
    reported: list[Any] = []

    @app.report_exception
    async def on_report(app_: App, exception: Exception) -> None:
        reported.append((app_, exception))

    assert app.catch_exception == app.report_exception

    @app.signal("shop.order.<oid:int>")
    async def ordered(oid: int, **context: Any) -> str:
        return f"order {oid} {context}"

    app.finalize()
    waiter = asyncio.ensure_future(app.event("shop.order.<oid:int>", timeout=5))
    await asyncio.sleep(0)
    result = await app.dispatch("shop.order.12", context={"who": "me"}, inline=True)
    assert result == "order 12 {'who': 'me'}"
    assert await waiter == {"who": "me", "oid": 12}

    @app.get("/fail")
    async def fail(request: Request) -> Any:
        raise KeyError("gone")

    async with AsyncTestClient(app) as client:
        assert (await client.get("/fail")).status_code == 500
        for _ in range(10):
            if reported:
                break
            await asyncio.sleep(0)
    assert reported and reported[0][0] is app and isinstance(reported[0][1], KeyError)


async def test_finalize_is_idempotent_and_routes_added_later_are_served() -> None:
    app = App("finalize")

    @app.get("/a/<x:int>")
    async def a(request: Request, x: int) -> Any:
        return text("a")

    app.finalize()
    app.finalize()

    @app.get("/a/<x:int>/b")
    async def b(request: Request, x: int) -> Any:
        return text("b")

    async with AsyncTestClient(app) as client:
        assert (await client.get("/a/1")).text == "a"
        assert (await client.get("/a/1/b")).text == "b"


# -- websockets (the server implements the protocol; here an in-memory peer) -----------------------


class MemoryWebSocket:
    """An in-memory ``WebSocketProtocol``: what the handler sends is recorded."""

    def __init__(self, incoming: list[str]) -> None:
        self.incoming = list(incoming)
        self.sent: list[str | bytes] = []
        self.subprotocol: str | None = None

    async def send(self, data: str | bytes) -> None:
        self.sent.append(data)

    async def recv(self, timeout: float | None = None) -> str | bytes | None:
        return self.incoming.pop(0) if self.incoming else None

    def __aiter__(self) -> Any:
        return self._iterate()

    async def _iterate(self) -> Any:
        while self.incoming:
            yield self.incoming.pop(0)

    async def ping(self, data: bytes = b"") -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


def _ws_request(app: App, path: str) -> Request:
    from runtime.datastructures import Headers

    return Request(app, "GET", path.encode(), Headers())


async def test_websocket_route_matching_handler_and_signals() -> None:
    from runtime.websocket import WebSocketProtocol

    app = App("ws")
    seen: list[str] = []

    @app.signal("websocket.handler.before")
    async def before(request: Request, websocket: Any) -> None:
        seen.append("before")

    @app.signal("websocket.handler.after")
    async def after(request: Request, websocket: Any) -> None:
        seen.append("after")

    @app.signal("websocket.handler.exception")
    async def failed(request: Request, websocket: Any, exception: Exception) -> None:
        seen.append(f"exception {exception}")

    @app.websocket("/echo/<room>", subprotocols=["chat"])
    async def echo(request: Request, ws: Any, room: str) -> None:
        async for message in ws:
            await ws.send(f"{room}:{message}")

    @app.websocket("/fail")
    async def fail(request: Request, ws: Any) -> None:
        raise ValueError("bad frame")

    app.finalize()
    ws = MemoryWebSocket(["a", "b"])
    assert isinstance(ws, WebSocketProtocol)
    request = _ws_request(app, "/echo/lobby")
    route = app.match_websocket(request)
    assert route.subprotocols == ("chat",) and request.match_info == {"room": "lobby"}
    await app.handle_websocket(request, ws)
    assert ws.sent == ["lobby:a", "lobby:b"]
    assert seen == ["before", "after"]
    seen.clear()
    with pytest.raises(ValueError, match="bad frame"):
        await app.handle_websocket(_ws_request(app, "/fail"), MemoryWebSocket([]))
    assert seen == ["before", "exception bad frame"]
    with pytest.raises(NotFound):
        app.match_websocket(_ws_request(app, "/missing"))


async def test_cancelled_websocket_handler_dispatches_nothing() -> None:
    app = App("ws_cancel")
    seen: list[str] = []
    entered = asyncio.Event()

    @app.signal("websocket.handler.after")
    async def after(request: Request, websocket: Any) -> None:
        seen.append("after")

    @app.signal("websocket.handler.exception")
    async def failed(request: Request, websocket: Any, exception: Exception) -> None:
        seen.append("exception")

    @app.websocket("/wait")
    async def wait(request: Request, ws: Any) -> None:
        entered.set()
        await asyncio.sleep(3600)

    app.finalize()
    task = asyncio.ensure_future(
        app.handle_websocket(_ws_request(app, "/wait"), MemoryWebSocket([]))
    )
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == []


async def test_a_peer_that_closed_ends_the_handler_quietly() -> None:
    from websockets.exceptions import ConnectionClosedError

    app = App("ws_peer_closed")
    seen: list[str] = []

    @app.signal("websocket.handler.exception")
    async def failed(request: Request, websocket: Any, exception: Exception) -> None:
        seen.append("exception")

    @app.websocket("/gone")
    async def gone(request: Request, ws: Any) -> None:
        raise ConnectionClosedError(None, None)

    app.finalize()
    await app.handle_websocket(_ws_request(app, "/gone"), MemoryWebSocket([]))
    assert seen == []
