"""Small real apps of each framework for the console tests (a fresh app per call).

No ``from __future__ import annotations``: FastAPI and Litestar read the handlers' annotations.
"""

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, WebSocket
from litestar import Litestar, Router, get, post, websocket
from litestar import WebSocket as LitestarWebSocket
from litestar.params import FromPath

from runtime.foreign import ForeignApp
from runtime.hosting import Interface


def hosted(target: object, interface: Interface, name: str = "main:app") -> ForeignApp:
    """The ``Hosted`` vivace's loader makes of ``target`` (``runtime.foreign.ForeignApp``)."""
    return ForeignApp(target, interface, name=name)


def fastapi_app(events: list[str]) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        app.state.db = {"users": ["ada", "grace"], "loop": asyncio.get_running_loop()}
        events.append("startup")
        yield {"token": "from-lifespan"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/users/{user_id}", name="user")
    async def user(user_id: int, request: Request) -> dict[str, Any]:
        db = request.app.state.db
        same_loop = db["loop"] is asyncio.get_running_loop()
        return {
            "user": db["users"][user_id],
            "token": request.state.token,
            "same_loop": same_loop,
        }

    @app.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return {"got": payload}

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.close()

    admin = APIRouter(prefix="/admin")

    @admin.delete("/cache", name="clear_cache")
    async def clear_cache() -> None:
        return None

    app.include_router(admin)
    return app


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route, Router, WebSocketRoute

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["id"])

    async def feed(socket: Any) -> None:
        await socket.close()

    api = Router(routes=[Route("/items/{id}", item, methods=["GET", "PUT"], name="item")])
    return Starlette(
        routes=[
            Route("/", home),
            Mount("/api", app=api, name="api"),
            WebSocketRoute("/feed", feed),
        ]
    )


def litestar_app() -> Any:
    @get("/items/{item_id:int}", name="item")
    async def item(item_id: FromPath[int]) -> dict[str, int]:
        return {"id": item_id}

    @post("/items")
    async def create() -> dict[str, bool]:
        return {"created": True}

    @websocket("/ws")
    async def ws(socket: LitestarWebSocket[Any, Any, Any]) -> None:
        await socket.close()

    @get("/health")
    async def health() -> str:
        return "ok"

    return Litestar([item, create, ws, Router(path="/v1", route_handlers=[health])])


def flask_app() -> Any:
    from flask import Flask, jsonify, request

    app = Flask("flask_console_demo")

    @app.get("/hello/<name>")
    def hello(name: str) -> Any:
        return jsonify(hello=name, agent=request.headers.get("x-agent"))

    @app.route("/form", methods=["GET", "POST"])
    def form() -> Any:
        return jsonify(method=request.method, body=request.get_data(as_text=True))

    return app


def quart_app() -> Any:
    from quart import Quart

    app = Quart("quart_console_demo")

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    @app.websocket("/ws")
    async def ws() -> None:
        return None

    return app


# --- Django: settings once per process, the URLconf is this module's ``urlpatterns`` ------------


def django_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"path": request.path, "method": request.method})


def _django_urls() -> list[Any]:
    from django.urls import include, path
    from django.views import View
    from django.views.decorators.cache import never_cache

    class ArticleView(View):
        def get(self, request: Any, pk: int) -> Any:
            return django_view(request)

        def post(self, request: Any, pk: int) -> Any:
            return django_view(request)

    class FeedView(View):
        def get(self, request: Any) -> Any:
            return django_view(request)

    def bare(view: Any) -> Any:  # a decorator that sets __wrapped__ only (no functools.wraps)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            return view(request, *args, **kwargs)

        return functools.update_wrapper(wrapper, view, assigned=(), updated=())

    blog = (
        [
            path("articles/<int:pk>/", ArticleView.as_view(), name="article"),
            path("feed/", never_cache(FeedView.as_view()), name="feed"),
            path("raw-feed/", bare(FeedView.as_view()), name="raw-feed"),
        ],
        "blog",
    )
    return [
        path("", django_view, name="home"),
        path("blog/", include(blog, namespace="blog")),
    ]


def django_handler(kind: str = "asgi") -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["localhost", "127.0.0.1"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="console-tests",
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
        )
        django.setup()
    if kind == "asgi":
        from django.core.handlers.asgi import ASGIHandler

        return ASGIHandler()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":  # built on first use, once Django is configured
        return _django_urls()
    raise AttributeError(name)
