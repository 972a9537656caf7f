"""Request and response middleware: forms, order, short-circuit, replacement, scope, errors."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import App, Blueprint, Request, json, text
from runtime.response import BaseHTTPResponse
from runtime.testing import AsyncTestClient


def _app_with_trace(name: str) -> tuple[App, list[str]]:
    app = App(name)
    seen: list[str] = []

    @app.get("/")
    async def home(request: Request) -> Any:
        seen.append("handler")
        return text("home")

    return app, seen


async def test_every_registration_form_and_the_order_rules() -> None:
    app, seen = _app_with_trace("forms")

    def req(label: str) -> Any:
        async def mw(request: Request) -> None:
            seen.append(label)

        return mw

    def resp(label: str) -> Any:
        def mw(request: Request, response: BaseHTTPResponse) -> None:  # sync works too
            seen.append(label)

        return mw

    app.middleware(req("bare"))  # bare: request
    app.middleware("request")(req("called"))
    app.middleware(attach_to="request", priority=5)(req("p5"))
    app.on_request(req("on_request"))
    app.on_request(priority=2)(req("on_request_p2"))
    app.register_middleware(req("registered"), "request")
    app.middleware("response")(resp("r1"))
    app.on_response(resp("r2"))
    app.on_response(priority=9)(resp("r_p9"))
    app.middleware(resp("r3"), "response")

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).text == "home"
    assert seen == [
        "p5",
        "on_request_p2",
        "bare",
        "called",
        "on_request",
        "registered",
        "handler",
        "r_p9",  # priority first
        "r3",  # then reverse registration order
        "r2",
        "r1",
    ]


async def test_request_middleware_returning_a_response_short_circuits() -> None:
    app, seen = _app_with_trace("short")

    @app.on_request
    async def gate(request: Request) -> Any:
        if request.headers.get("x-token") != "ok":
            seen.append("denied")
            return json({"error": "no token"}, status=401)
        return None

    @app.on_request
    async def later(request: Request) -> None:
        seen.append("later")

    @app.on_response
    async def stamp(request: Request, response: BaseHTTPResponse) -> None:
        response.headers["x-stamped"] = "1"

    async with AsyncTestClient(app) as client:
        denied = await client.get("/")
        assert denied.status_code == 401 and denied.json() == {"error": "no token"}
        assert denied.headers["x-stamped"] == "1"  # response middleware still runs
        assert seen == ["denied"]
        seen.clear()
        allowed = await client.get("/", headers={"x-token": "ok"})
        assert allowed.text == "home" and seen == ["later", "handler"]


async def test_response_middleware_can_replace_the_response() -> None:
    app, _ = _app_with_trace("replace")

    @app.on_response
    async def wrap(request: Request, response: BaseHTTPResponse) -> Any:
        return json({"wrapped": response.body.decode(), "status": response.status})  # type: ignore[attr-defined]

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).json() == {"wrapped": "home", "status": 200}


async def test_blueprint_middleware_applies_only_to_its_routes_and_app_wraps_it() -> None:
    app = App("scoped")
    bp = Blueprint("api", url_prefix="/api")
    seen: list[str] = []

    def req(label: str) -> Any:
        def mw(request: Request) -> None:
            seen.append(label)

        return mw

    def resp(label: str) -> Any:
        def mw(request: Request, response: BaseHTTPResponse) -> None:
            seen.append(label)

        return mw

    bp.on_request(req("bp request"))  # declared first: origin still puts the app first
    bp.on_response(resp("bp response"))
    app.on_request(req("app request"))
    app.on_response(resp("app response"))

    @bp.get("/x")
    async def in_bp(request: Request) -> Any:
        seen.append("bp handler")
        return text("bp")

    @app.get("/y")
    async def in_app(request: Request) -> Any:
        seen.append("app handler")
        return text("app")

    app.blueprint(bp)
    async with AsyncTestClient(app) as client:
        await client.get("/api/x")
        assert seen == [
            "app request",
            "bp request",
            "bp handler",
            "bp response",
            "app response",
        ]
        seen.clear()
        await client.get("/y")
        assert seen == ["app request", "app handler", "app response"]


async def test_middleware_added_after_the_first_request_takes_effect() -> None:
    app, seen = _app_with_trace("late")
    async with AsyncTestClient(app) as client:
        await client.get("/")

        @app.on_request
        def late(request: Request) -> None:
            seen.append("late")

        await client.get("/")
    assert seen == ["handler", "late", "handler"]


async def test_app_response_middleware_runs_for_404_and_errors() -> None:
    app, _ = _app_with_trace("on_errors")

    @app.get("/fail")
    async def fail(request: Request) -> Any:
        raise RuntimeError("x")

    @app.on_response
    def cors(request: Request, response: BaseHTTPResponse) -> None:
        response.headers["access-control-allow-origin"] = "*"

    async with AsyncTestClient(app) as client:
        for path, status in (("/missing", 404), ("/fail", 500), ("/", 200)):
            response = await client.get(path)
            assert response.status_code == status
            assert response.headers["access-control-allow-origin"] == "*"


async def test_middleware_exceptions_and_bad_return_values_become_responses() -> None:
    app, _ = _app_with_trace("mw_errors")
    app.debug = True

    @app.on_request
    async def check(request: Request) -> Any:
        if request.args.get("mode") == "raise":
            raise PermissionError("nope")
        if request.args.get("mode") == "value":
            return "a string"
        return None

    @app.on_response
    async def broken(request: Request, response: BaseHTTPResponse) -> Any:
        if request.args.get("mode") == "resp":
            return 42
        return None

    async with AsyncTestClient(app) as client:
        raised = await client.get("/?mode=raise")
        assert raised.status_code == 500 and "PermissionError: nope" in raised.text
        value = await client.get("/?mode=value")
        assert value.status_code == 500
        assert "Request middleware" in value.text and "returned str" in value.text
        bad = await client.get("/?mode=resp")
        assert bad.status_code == 500 and "Response middleware" in bad.text
        assert (await client.get("/")).text == "home"


async def test_middleware_signals_carry_the_attach_to_condition() -> None:
    app, _ = _app_with_trace("mw_signals")
    seen: list[tuple[str, str, bool]] = []

    for where in ("request", "response"):

        @app.signal("http.middleware.before", condition={"attach_to": where})
        async def before(request: Request, response: Any, _w: str = where) -> None:
            seen.append(("before", _w, response is None))

    @app.signal("http.middleware.before")  # no condition: never matches a conditioned dispatch
    async def unconditioned(**context: Any) -> None:
        seen.append(("unconditioned", "", False))

    @app.on_request
    def mw1(request: Request) -> None: ...

    @app.on_response
    def mw2(request: Request, response: BaseHTTPResponse) -> None: ...

    async with AsyncTestClient(app) as client:
        await client.get("/")
    assert seen == [("before", "request", True), ("before", "response", False)]


def test_bad_middleware_declarations_raise_clear_errors() -> None:
    app = App("bad_mw")
    with pytest.raises(ValueError, match="attach to 'request' or 'response'"):
        app.middleware("resp")
    with pytest.raises(ValueError, match="attach to 'request' or 'response'"):
        app.register_middleware(lambda r: None, "after")
    with pytest.raises(TypeError, match="priority must be an int"):
        app.middleware("request", priority="high")(lambda r: None)  # type: ignore[arg-type]
