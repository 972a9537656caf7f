"""The framework apps of ``apps/`` and what each of them can do."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Framework:
    name: str
    target: str
    #: what ``GET /`` answers (a JSON value for FastAPI, text for the others)
    hello: str
    #: the app runs a lifespan startup that puts a token where ``GET /state`` finds it
    lifespan: bool = True
    websocket: bool = True
    #: ``GET /disconnect-probe?key=K`` records ``disconnect-K`` when the client goes away
    disconnect: bool = True
    wsgi: bool = False

    @property
    def uvicorn_args(self) -> tuple[str, ...]:
        """uvicorn's ``auto`` takes a WSGI app for ASGI 2: it must be told."""
        return ("--interface", "wsgi") if self.wsgi else ()


FRAMEWORKS = [
    Framework("fastapi", "fastapi_app:app", '{"hello":"fastapi"}'),
    Framework("starlette", "starlette_app:app", "hello from starlette"),
    Framework("litestar", "litestar_app:app", "hello from litestar"),
    Framework("quart", "quart_app:app", "hello from quart"),
    Framework("raw-asgi3", "raw_asgi:app", "hello from raw asgi"),
    Framework("asgi2", "raw_asgi:ASGI2App", "hello from raw asgi"),
    Framework(
        "django-asgi",
        "djproj.asgi:application",
        "hello from django",
        lifespan=False,
        websocket=False,
    ),
    Framework(
        "django-wsgi",
        "djproj.wsgi:application",
        "hello from django",
        lifespan=False,
        websocket=False,
        disconnect=False,
        wsgi=True,
    ),
    Framework(
        "flask",
        "flask_app:app",
        "hello from flask",
        lifespan=False,
        websocket=False,
        disconnect=False,
        wsgi=True,
    ),
]

BY_NAME = {framework.name: framework for framework in FRAMEWORKS}


def params(*names: str) -> list[object]:
    """``pytest.param`` for each framework (all of them when no name is given)."""
    chosen = [BY_NAME[name] for name in names] if names else FRAMEWORKS
    return [pytest.param(framework, id=framework.name) for framework in chosen]
