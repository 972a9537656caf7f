"""Exception handlers and error rendering: MRO lookup, scope, failures, formats, debug, logs."""

from __future__ import annotations

import json as jsonlib
import logging
from typing import Any

import pytest

from runtime import App, Blueprint, Request, json, text
from runtime.errorpages import choose_format
from runtime.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
)
from runtime.testing import AsyncTestClient


class AppError(Exception):
    pass


class SpecificError(AppError):
    pass


def _raising_app(name: str) -> App:
    app = App(name)

    @app.get("/raise/<kind>")
    async def raise_(request: Request, kind: str) -> Any:
        errors: dict[str, BaseException] = {
            "specific": SpecificError("specific"),
            "app": AppError("generic"),
            "key": KeyError("k"),
            "runtime": RuntimeError("secret detail"),
            "forbidden": Forbidden("Keep out", context={"resource": "vault"}),
            "unauthorized": Unauthorized("Log in", scheme="Bearer"),
            "unavailable": ServiceUnavailable("Try later", headers={"Retry-After": "5"}),
        }
        raise errors[kind]

    return app


async def test_exception_handlers_are_found_by_mro() -> None:
    app = _raising_app("mro")

    @app.exception(AppError)
    async def app_error(request: Request, exc: Exception) -> Any:
        return json({"handled": type(exc).__name__}, status=418)

    @app.exception(KeyError, LookupError)
    def lookup(request: Request, exc: Exception) -> Any:  # sync handlers work
        return text("lookup", status=409)

    async with AsyncTestClient(app) as client:
        specific = await client.get("/raise/specific")
        assert specific.status_code == 418 and specific.json() == {"handled": "SpecificError"}
        assert (await client.get("/raise/app")).json() == {"handled": "AppError"}
        assert (await client.get("/raise/key")).status_code == 409
        assert (await client.get("/raise/runtime")).status_code == 500


async def test_not_found_and_the_error_handler_add_api() -> None:
    app = _raising_app("notfound")

    def missing(request: Request, exc: Exception) -> Any:
        return text(f"no page at {request.path}", status=404)

    app.error_handler.add(NotFound, missing)
    async with AsyncTestClient(app) as client:
        response = await client.get("/nowhere")
    assert response.status_code == 404 and response.text == "no page at /nowhere"


@pytest.mark.parametrize("mode", ["raises", "returns_none", "returns_string"])
async def test_a_failing_exception_handler_ends_in_a_plain_500(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _raising_app(f"failing_{mode}")

    @app.exception(AppError)
    async def handler(request: Request, exc: Exception) -> Any:
        if mode == "raises":
            raise ValueError("the handler itself is broken")
        return None if mode == "returns_none" else "oops"

    with caplog.at_level(logging.ERROR, logger="vivace.error"):
        async with AsyncTestClient(app) as client:
            response = await client.get("/raise/app")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert "Internal Server Error" in response.text
    assert any("Exception handler" in r.getMessage() for r in caplog.records)


async def test_blueprint_exception_handlers_apply_to_blueprint_routes_only() -> None:
    app = App("bp_errors")
    bp = Blueprint("bp", url_prefix="/bp")

    @bp.exception(AppError)
    async def bp_handler(request: Request, exc: Exception) -> Any:
        return text("bp handled", status=400)

    @app.exception(AppError)
    async def app_handler(request: Request, exc: Exception) -> Any:
        return text("app handled", status=400)

    @bp.get("/x")
    async def bp_route(request: Request) -> Any:
        raise AppError("x")

    @app.get("/x")
    async def app_route(request: Request) -> Any:
        raise AppError("x")

    app.blueprint(bp)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/bp/x")).text == "bp handled"
        assert (await client.get("/x")).text == "app handled"


def test_exception_decorator_validates_its_arguments() -> None:
    app = App("exc_args")
    with pytest.raises(TypeError, match="at least one class"):
        app.exception()
    with pytest.raises(TypeError, match="takes exception classes"):
        app.exception(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes exception classes"):
        app.exception("KeyError")  # type: ignore[arg-type]


# -- rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", "application/json"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "text/html; charset=utf-8"),
        ("text/plain", "text/plain; charset=utf-8"),
        ("*/*", "text/plain; charset=utf-8"),
        ("text/html;q=0.5, application/json", "application/json"),
        ("application/problem+json", "application/json"),
        ("application/json;q=0, text/html", "text/html; charset=utf-8"),
    ],
)
async def test_accept_chooses_the_error_format(accept: str, expected: str) -> None:
    app = _raising_app("accept")
    async with AsyncTestClient(app) as client:
        response = await client.get("/raise/forbidden", headers={"accept": accept})
    assert response.status_code == 403
    assert response.headers["content-type"] == expected
    assert "Keep out" in response.text


async def test_json_error_body_and_context() -> None:
    app = _raising_app("json_body")
    async with AsyncTestClient(app) as client:
        response = await client.get("/raise/forbidden", headers={"accept": "application/json"})
    assert response.json() == {
        "description": "Forbidden",
        "status": 403,
        "message": "Keep out",
        "context": {"resource": "vault"},
    }


async def test_format_precedence_route_then_config_then_request() -> None:
    app = _raising_app("precedence")

    @app.get("/html-route", error_format="html")
    async def html_route(request: Request) -> Any:
        raise BadRequest("bad")

    async with AsyncTestClient(app) as client:
        by_route = await client.get("/html-route", headers={"accept": "application/json"})
        assert by_route.headers["content-type"].startswith("text/html")
        by_body = await client.post("/missing", json={"a": 1})
        assert by_body.headers["content-type"] == "application/json"
        app.config.FALLBACK_ERROR_FORMAT = "json"
        by_config = await client.get("/raise/forbidden", headers={"accept": "text/html"})
        assert by_config.headers["content-type"] == "application/json"
        still_route = await client.get("/html-route")
        assert still_route.headers["content-type"].startswith("text/html")


def test_choose_format_without_a_request() -> None:
    assert choose_format(None) == "text"
    assert choose_format(None, fallback="html") == "html"
    assert choose_format(None, route_format="json", fallback="html") == "json"


async def test_tracebacks_and_internal_messages_only_in_debug() -> None:
    app = _raising_app("debugging")
    async with AsyncTestClient(app) as client:
        for accept in ("text/plain", "text/html", "application/json"):
            hidden = await client.get("/raise/runtime", headers={"accept": accept})
            assert hidden.status_code == 500
            assert "secret detail" not in hidden.text and "Traceback" not in hidden.text
        app.debug = True
        for accept in ("text/plain", "text/html", "application/json"):
            shown = await client.get("/raise/runtime", headers={"accept": accept})
            assert "RuntimeError: secret detail" in shown.text
            assert "Traceback" in shown.text
        data = jsonlib.loads(
            (await client.get("/raise/runtime", headers={"accept": "application/json"})).text
        )
        assert data["path"] == "/raise/runtime" and "raise errors[kind]" in data["traceback"]


async def test_html_error_pages_escape_messages() -> None:
    app = App("escaping")

    @app.get("/")
    async def home(request: Request) -> Any:
        raise BadRequest("<script>alert(1)</script>")

    async with AsyncTestClient(app) as client:
        response = await client.get("/", headers={"accept": "text/html"})
    assert "<script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


async def test_http_exception_headers_are_added() -> None:
    app = _raising_app("exc_headers")

    @app.get("/only-get")
    async def only_get(request: Request) -> Any:
        return text("ok")

    async with AsyncTestClient(app) as client:
        not_allowed = await client.delete("/only-get")
        assert not_allowed.status_code == 405
        assert set(not_allowed.headers["allow"].split(", ")) >= {"GET"}
        unauthorized = await client.get("/raise/unauthorized")
        assert unauthorized.headers["www-authenticate"] == "Bearer"
        unavailable = await client.get("/raise/unavailable")
        assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (BadRequest(), 400),
        (NotFound(), 404),
        (PayloadTooLarge(), 413),
        (ServerError(), 500),
        (HTTPException("teapot", status_code=418), 418),
    ],
)
async def test_http_exceptions_give_their_status(exc: HTTPException, status: int) -> None:
    app = App("statuses")

    @app.get("/")
    async def home(request: Request) -> Any:
        raise exc

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).status_code == status


async def test_malformed_json_body_is_a_400_not_a_500() -> None:
    app = App("bad_json")

    @app.post("/")
    async def home(request: Request) -> Any:
        return json(request.json)

    async with AsyncTestClient(app) as client:
        response = await client.post(
            "/", content=b'{"a": ', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"


async def test_quiet_exceptions_are_logged_only_when_noisy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _raising_app("noisy")
    with caplog.at_level(logging.DEBUG, logger="vivace.error"):
        async with AsyncTestClient(app) as client:
            await client.get("/missing")
            await client.get("/raise/forbidden")
            assert caplog.records == []
            await client.get("/raise/runtime")
            assert len(caplog.records) == 1
            assert caplog.records[0].exc_info is not None
            assert "GET /raise/runtime" in caplog.records[0].getMessage()
            caplog.clear()
            app.config.NOISY_EXCEPTIONS = True
            await client.get("/missing")
            assert len(caplog.records) == 1
