"""The parts App is composed of, each on its own: the Registrar protocol blueprints replay onto,
the abstract Declarations hooks, the TaskSet, ProcessHandles and the Pipeline bound onto the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from runtime import App, Blueprint, text
from runtime.blueprints import AttachOptions, Registrar
from runtime.declarations import Declarations, EventName, RouteOptions
from runtime.pipeline import Pipeline
from runtime.processes import ProcessHandles
from runtime.tasks import TaskSet


class RecordingRegistrar:
    """A Registrar that is not an App: what a blueprint replays, and nothing else."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []

    def add_route_entry(
        self,
        handler: Callable[..., Any],
        uri: str,
        methods: tuple[str, ...],
        options: RouteOptions,
        *,
        blueprint: str | None,
    ) -> Any:
        self.entries.append(("route", uri, methods, options.name, blueprint))
        return object()

    def add_listener_entry(
        self, listener: Callable[..., Any], event: str, priority: int, *, blueprint: str | None
    ) -> None:
        self.entries.append(("listener", event, priority, blueprint))

    def add_middleware_entry(
        self, fn: Callable[..., Any], attach_to: str, priority: int, *, blueprint: str | None
    ) -> None:
        self.entries.append(("middleware", attach_to, priority, blueprint))

    def add_signal_entry(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
        *,
        blueprint: str | None,
    ) -> None:
        self.entries.append(("signal", event, blueprint))

    def add_exception_entry(
        self,
        exceptions: tuple[type[BaseException], ...],
        handler: Callable[..., Any],
        *,
        blueprint: str | None,
    ) -> None:
        self.entries.append(("exception", exceptions, blueprint))

    async def dispatch(self, event: EventName, **kwargs: Any) -> Any:
        return None

    async def event(self, event: EventName, timeout: float | None = None, **kwargs: Any) -> Any:
        return {}


def test_a_blueprint_replays_onto_any_registrar_through_its_public_methods() -> None:
    bp = Blueprint("shop", url_prefix="/shop")

    @bp.get("/items")
    async def items(request: Any) -> Any:
        return text("items")

    @bp.before_server_start(priority=2)
    async def start(app: Any) -> None:
        pass

    @bp.on_request
    async def mw(request: Any) -> None:
        pass

    @bp.signal("shop.order.placed")
    async def placed(**context: Any) -> None:
        pass

    @bp.exception(KeyError)
    async def missing(request: Any, exc: Exception) -> Any:
        return text("missing", status=404)

    registrar = RecordingRegistrar()
    target: Registrar = registrar
    bp._attach(target, AttachOptions())
    assert registrar.entries == [
        ("route", "/shop/items", ("GET",), "shop.items", "shop"),
        ("listener", "before_server_start", 2, "shop"),
        ("middleware", "request", 0, "shop"),
        ("signal", "shop.order.placed", "shop"),
        ("exception", (KeyError,), "shop"),
    ]
    assert bp.apps == [registrar]


def test_the_declarations_hooks_are_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Declarations()

    class OnlyRoutes(Declarations):
        def _register_route(self, *args: Any) -> None:
            pass

    with pytest.raises(TypeError, match="_register_listener"):
        OnlyRoutes()


def test_app_handle_is_its_pipelines_bound_method() -> None:
    app = App("bound")
    assert isinstance(app._pipeline, Pipeline)
    assert app.handle == app._pipeline.handle
    assert app.handle_websocket == app._pipeline.handle_websocket
    assert app.match_websocket == app._pipeline.match_websocket
    assert "handle" not in vars(App)  # no call layer between the server and the pipeline


async def test_a_taskset_passes_its_owner_to_a_task_function_of_one_argument() -> None:
    owner = object()
    tasks = TaskSet(owner)
    seen: list[object] = []

    async def with_owner(app: object) -> None:
        seen.append(app)

    async def without() -> None:
        seen.append(None)

    tasks.add(with_owner)
    tasks.add(without)
    await asyncio.gather(*tasks.running)
    assert seen == [owner, None]
    assert tasks.running == []
    await tasks.shutdown()


def test_process_handles_say_where_each_handle_exists() -> None:
    handles = ProcessHandles()
    with pytest.raises(AttributeError, match="only in server workers"):
        _ = handles.multiplexer
    with pytest.raises(RuntimeError, match="only in the main process"):
        _ = handles.manager
    assert handles.stop() is False
    stopped: list[bool] = []
    handles.stop_hook = lambda: stopped.append(True)
    assert handles.stop() is True
    assert stopped == [True]
