"""``App``: the application a user declares, and the one entry point the server calls.

``App`` owns its parts and delegates to them: a ``Router`` (routing), a ``ListenerRegistry``
(lifecycle), a ``SignalRouter`` (signals), a ``MiddlewareRegistry`` (middleware), an
``ErrorHandler`` (exception handlers), a ``Config`` and a ``ctx`` namespace. The decorator sugar it
shares with ``Blueprint`` lives in ``runtime.blueprints.Declarations``.

``await app.handle(request)`` runs one request through routing, body reading, middleware, the
handler and error handling, firing the built-in ``http.*`` signals; it never raises (except
``CancelledError``). Each built-in signal is guarded by a boolean computed when signals change, so
an app without signal handlers pays one attribute test per signal.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from runtime.blueprints import (
    AttachOptions,
    Blueprint,
    BlueprintGroup,
    Declarations,
    EventName,
    RouteOptions,
    check_name,
)
from runtime.config import Config
from runtime.console import CONSOLE_NAMES, ReplContext, ReplEntry
from runtime.exceptions import PayloadTooLarge
from runtime.handlers import ErrorHandler, error_response
from runtime.hosting import MainStage, ServeStage, on_forked_worker
from runtime.lifecycle import ListenerEvent, ListenerRegistry, run_listeners, run_listeners_sync
from runtime.log import error_logger
from runtime.middleware import (
    Middleware,
    MiddlewareRegistry,
    run_request_middleware,
    run_response_middleware,
)
from runtime.response import BaseHTTPResponse
from runtime.routing import Route, Router
from runtime.shared import SharedContext
from runtime.signals import Event, SignalRouter

if TYPE_CHECKING:
    from runtime.request import Request
    from runtime.websocket import WebSocketProtocol


def _peer_closed(exc: BaseException) -> bool:
    """Is ``exc`` a ``websockets`` ``ConnectionClosed``? (By name: importing websockets is slow.)"""
    return any(
        cls.__name__ == "ConnectionClosed" and cls.__module__.startswith("websockets")
        for cls in type(exc).__mro__
    )


_PLAN = "vivace.plan"


@dataclass(slots=True)
class _Plan:
    """What ``handle`` needs for one route, computed once (per middleware change)."""

    handler: Callable[..., Any]
    is_async: bool
    stream: bool
    blueprint: str | None
    error_format: str | None
    request_mw: tuple[Middleware, ...]
    response_mw: tuple[Middleware, ...]
    version: int


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _describe(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


class App(Declarations):
    """A vivace application. Names are unique per process (``App.get_app(name)``)."""

    _registry: ClassVar[dict[str, App]] = {}

    def __init__(
        self,
        name: str,
        *,
        config: Config | Mapping[str, Any] | None = None,
        ctx: Any = None,
        strict_slashes: bool | None = None,
    ) -> None:
        check_name("App", name)
        if name in App._registry:
            raise ValueError(
                f"An app named {name!r} already exists in this process ({App._registry[name]!r}); "
                f"use App.get_app({name!r}) to get it, or give the new app another name"
            )
        self.name = name
        self.config: Config = config if isinstance(config, Config) else Config(config)
        self.ctx: Any = ctx if ctx is not None else SimpleNamespace()
        self.strict_slashes = strict_slashes
        self.router = Router()
        self.listeners = ListenerRegistry()
        self.signal_router = SignalRouter(self, self.listeners)
        self.middleware_registry = MiddlewareRegistry()
        self.error_handler = ErrorHandler()
        self.blueprints: dict[str, Blueprint] = {}
        self.shared_ctx = SharedContext()
        self.repl_ctx = ReplContext()
        self._multiplexer: Any = None
        self._manager: Any = None
        self._stop_hook: Callable[[], Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending_tasks: list[tuple[Any, str | None]] = []
        # one boolean attribute per built-in request-path event (see runtime.signals)
        self._guards: Any = self.signal_router.guards
        self._plan_version = 0
        self._finalized = False
        App._registry[name] = self

    def __repr__(self) -> str:
        return f"<App {self.name!r}>"

    @classmethod
    def get_app(cls, name: str | None = None) -> App:
        """The app called ``name``; with no name, the only app of the process."""
        if name is None:
            if len(cls._registry) == 1:
                return next(iter(cls._registry.values()))
            names = ", ".join(sorted(cls._registry)) or "none"
            raise LookupError(
                f"App.get_app() needs a name when there is not exactly one app ({names})"
            )
        try:
            return cls._registry[name]
        except KeyError:
            names = ", ".join(sorted(cls._registry)) or "none"
            raise LookupError(f"No app named {name!r}; apps in this process: {names}") from None

    # -- settings

    @property
    def debug(self) -> bool:
        return bool(self.config.get("DEBUG", False))

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config.DEBUG = bool(value)

    @property
    def auto_reload(self) -> bool:
        return bool(self.config.get("AUTO_RELOAD", False))

    @auto_reload.setter
    def auto_reload(self, value: bool) -> None:
        self.config.AUTO_RELOAD = bool(value)

    # -- processes

    @property
    def multiplexer(self) -> Any:
        """The worker's ``Multiplexer`` (``app.m``); only inside multi-process server workers."""
        if self._multiplexer is None:
            raise AttributeError(
                "app.m (the multiplexer) exists only in server workers of a multi-process server; "
                "it is not available in the main process, in single-process mode or under ASGI"
            )
        return self._multiplexer

    @multiplexer.setter
    def multiplexer(self, value: Any) -> None:
        self._multiplexer = value

    @property
    def m(self) -> Any:
        return self.multiplexer

    @property
    def manager(self) -> Any:
        """The ``WorkerManager``, in the main process from ``main_process_ready`` on."""
        if self._manager is None:
            raise RuntimeError(
                "app.manager is not available here: it exists only in the main process of a "
                "multi-process server, from the main_process_ready listeners on "
                "(use @app.main_process_ready)"
            )
        return self._manager

    @manager.setter
    def manager(self, value: Any) -> None:
        self._manager = value

    def set_stop_hook(self, hook: Callable[[], Any] | None) -> None:
        """The server installs the function ``app.stop()`` calls outside multi-process workers."""
        self._stop_hook = hook

    def stop(self) -> None:
        """Stop serving gracefully (in a worker: terminate the whole server)."""
        if self._multiplexer is not None:
            self._multiplexer.terminate()
        elif self._stop_hook is not None:
            self._stop_hook()
        else:
            raise RuntimeError(f"app.stop(): {self!r} is not being served in this process")

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Serve the app: ``app.run(host="127.0.0.1", port=8000, ...)`` (``runtime.launch``).

        The one upward call of the app model: a local import of the composition root, made only
        when a script serves its app itself (docs/architecture.md, "Layers").
        """
        from runtime.launch import run_app

        return run_app(self, *args, **kwargs)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The app as an ASGI 3 application (``runtime.asgi``)."""
        from runtime.asgi import handle_asgi

        await handle_asgi(self, scope, receive, send)

    # -- the hosting interface (runtime.hosting.Hosted): what vivace's processes call

    interface: ClassVar[Literal["vivace"]] = "vivace"
    framework: ClassVar[str] = "vivace"

    @property
    def target(self) -> App:
        """The object the console shows as ``app``: the App itself."""
        return self

    async def serve_stage(self, stage: ServeStage) -> None:
        """Run the worker listeners of ``stage`` (a start stage re-raises the first failure)."""
        await run_listeners(self, ListenerEvent(stage.value))

    async def cancel_tasks(self) -> None:
        await self.shutdown_tasks()

    def main_stage(self, stage: MainStage, loop: asyncio.AbstractEventLoop) -> None:
        """Run the main-process listeners of ``stage`` on ``loop`` (not running)."""
        run_listeners_sync(self, ListenerEvent(stage.value), loop)

    def reload_stage(
        self, event: str, loop: asyncio.AbstractEventLoop, changed: set[str] | None
    ) -> None:
        """Run the reloader process's listeners of ``event`` (reload.md section 4)."""
        if changed is None:
            run_listeners_sync(self, ListenerEvent(event), loop)
        else:
            run_listeners_sync(self, ListenerEvent(event), loop, changed=changed)

    def shared_items(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self.shared_ctx).items() if not k.startswith("_")}

    def install_shared(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            setattr(self.shared_ctx, key, value)
        self.shared_ctx.lock()

    def attach_process(self, *, manager: Any = None, multiplexer: Any = None) -> None:
        """The launcher hands over ``app.manager`` (main process) or ``app.m`` (a worker)."""
        if manager is not None:
            self._manager = manager
        if multiplexer is not None:
            self._multiplexer = multiplexer

    # -- background tasks

    def add_task(
        self,
        task: Coroutine[Any, Any, Any] | Callable[..., Any],
        *,
        name: str | None = None,
    ) -> asyncio.Task[Any] | None:
        """Run a coroutine (or a function of ``app`` returning one) in the background.

        Before the loop runs, the task is queued and started when the server starts. Tasks are
        tracked and cancelled at shutdown (``await app.shutdown_tasks()``).
        """
        if not (inspect.iscoroutine(task) or callable(task)):
            raise TypeError(f"add_task takes a coroutine or a function, got {task!r}")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._pending_tasks.append((task, name))
            return None
        return self._start_task(task, name)

    def _start_task(self, task: Any, name: str | None) -> asyncio.Task[Any]:
        if not inspect.iscoroutine(task):
            try:
                params = inspect.signature(task).parameters
            except (TypeError, ValueError):
                params = {}  # type: ignore[assignment]
            task = task(self) if params else task()
            if not inspect.isawaitable(task):
                raise TypeError(f"add_task: the function returned {task!r}, not a coroutine")
        created = asyncio.get_running_loop().create_task(
            task if inspect.iscoroutine(task) else _await(task)
        )
        if name is not None:
            created.set_name(name)
        self._tasks.add(created)
        created.add_done_callback(self._tasks.discard)
        return created

    def start_pending_tasks(self) -> None:
        """Start tasks queued by ``add_task`` before the loop ran (needs a running loop)."""
        pending, self._pending_tasks = self._pending_tasks, []
        for task, name in pending:
            self._start_task(task, name)

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    async def shutdown_tasks(self, timeout: float | None = None) -> None:
        """Cancel every background task and wait (at most ``timeout``) for them to end."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task, _ in self._pending_tasks:
            if inspect.iscoroutine(task):
                task.close()
        self._pending_tasks.clear()

    # -- registration primitives (see Declarations) ------------------------------------------------

    def _register_route(
        self, handler: Callable[..., Any], uri: str, methods: tuple[str, ...], options: RouteOptions
    ) -> None:
        self._add_route(handler, uri, methods, options, blueprint=None)

    def _add_route(
        self,
        handler: Callable[..., Any],
        uri: str,
        methods: tuple[str, ...],
        options: RouteOptions,
        *,
        blueprint: str | None,
    ) -> Route:
        strict = options.strict_slashes
        if strict is None:
            strict = self.strict_slashes
        if strict is None:
            strict = bool(self.config.get("STRICT_SLASHES", False))
        route = self.router.add(
            uri,
            methods,
            handler,
            name=options.name or str(getattr(handler, "__name__", "handler")),
            strict_slashes=strict,
            stream=options.stream,
            websocket=options.websocket,
            subprotocols=options.subprotocols,
            version=options.version,
            version_prefix=options.version_prefix,
            blueprint=blueprint,
        )
        route.extra["error_format"] = options.error_format
        if self._finalized:
            self.router.finalize()
        return route

    def _register_listener(self, listener: Callable[..., Any], event: str, priority: int) -> None:
        self.listeners.add(listener, event, priority=priority, origin=0)

    def _register_middleware(self, fn: Callable[..., Any], attach_to: str, priority: int) -> None:
        self._add_middleware(fn, attach_to, priority, blueprint=None)

    def _add_middleware(
        self, fn: Callable[..., Any], attach_to: str, priority: int, *, blueprint: str | None
    ) -> None:
        self.middleware_registry.add(fn, attach_to, priority=priority, blueprint=blueprint)
        self._plan_version += 1

    def _register_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
    ) -> None:
        self._add_signal(handler, event, condition, exclusive, priority, blueprint=None)

    def _add_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
        *,
        blueprint: str | None,
    ) -> None:
        self.signal_router.add(
            handler,
            event,
            condition=dict(condition) if condition else None,
            exclusive=exclusive,
            priority=priority,
            blueprint=blueprint,
        )
        if self._finalized:
            self.signal_router.finalize()

    def _register_exception(
        self, exceptions: tuple[type[BaseException], ...], handler: Callable[..., Any]
    ) -> None:
        self.error_handler.add(exceptions, handler)

    # -- blueprints

    def blueprint(
        self,
        blueprint: Blueprint | BlueprintGroup | Iterable[Blueprint | BlueprintGroup],
        *,
        url_prefix: str | None = None,
        version: int | str | float | None = None,
        strict_slashes: bool | None = None,
        version_prefix: str = "/v",
    ) -> None:
        """Attach a blueprint, a group, or a list of them, with optional overrides."""
        options = AttachOptions(url_prefix, version, strict_slashes, version_prefix)
        if isinstance(blueprint, BlueprintGroup):
            pairs = blueprint.attachments(options)
        elif isinstance(blueprint, Blueprint):
            pairs = [(blueprint, options)]
        elif isinstance(blueprint, (list, tuple, set, frozenset)):
            for item in blueprint:
                self.blueprint(
                    item,
                    url_prefix=url_prefix,
                    version=version,
                    strict_slashes=strict_slashes,
                    version_prefix=version_prefix,
                )
            return
        else:
            raise TypeError(
                f"app.blueprint takes a Blueprint or a BlueprintGroup, got {blueprint!r}"
            )
        for bp, bp_options in pairs:
            existing = self.blueprints.get(bp.name)
            if existing is not None:
                what = "this blueprint is" if existing is bp else "another one with that name is"
                raise ValueError(
                    f"Blueprint name {bp.name!r} is already registered on {self!r} ({what} "
                    "attached); blueprint names must be unique per app"
                )
            self.blueprints[bp.name] = bp
            bp._attach(self, bp_options)

    # -- signals

    async def dispatch(
        self,
        event: EventName,
        *,
        context: Mapping[str, Any] | None = None,
        condition: Mapping[str, Any] | None = None,
        fail_not_found: bool = True,
        inline: bool = False,
        reverse: bool = False,
    ) -> Any:
        """Run the handlers of ``event`` (see docs/signals.md)."""
        return await self.signal_router.dispatch(
            event,
            context=dict(context) if context is not None else None,
            condition=dict(condition) if condition is not None else None,
            fail_not_found=fail_not_found,
            inline=inline,
            reverse=reverse,
        )

    async def event(
        self,
        event: EventName,
        timeout: float | None = None,
        *,
        condition: Mapping[str, Any] | None = None,
        exclusive: bool = True,
    ) -> dict[str, Any]:
        """Wait for the next dispatch of ``event``; returns a copy of its context."""
        return await self.signal_router.wait_for(
            event,
            timeout,
            condition=dict(condition) if condition is not None else None,
            exclusive=exclusive,
        )

    def report_exception(
        self, handler: Callable[[App, Exception], Any]
    ) -> Callable[[App, Exception], Any]:
        """Register ``handler(app, exception)`` for every unhandled exception."""
        app = self

        async def report(exception: Exception) -> None:
            result = handler(app, exception)
            if inspect.isawaitable(result):
                await result

        report.__name__ = getattr(handler, "__name__", "report")
        self._add_signal(report, Event.SERVER_EXCEPTION_REPORT, None, True, 0, blueprint=None)
        return handler

    catch_exception = report_exception

    # -- finalize and routing

    def finalize(self) -> None:
        """Prepare routes and signals for serving; idempotent. Starts queued tasks in a loop."""
        self.router.finalize()
        self.signal_router.finalize()
        self._finalized = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.start_pending_tasks()

    def url_for(self, view_name: str, **kwargs: Any) -> str:
        """The URL of the route named ``view_name`` (``"handler"`` or ``"blueprint.handler"``)."""
        return self.router.url_for(view_name, **kwargs)

    def _plan(self, route: Route) -> _Plan:
        plan: _Plan | None = route.extra.get(_PLAN)
        if plan is not None and plan.version == self._plan_version:
            return plan
        chain = self.middleware_registry.chain(route.blueprint)
        handler = route.handler
        plan = _Plan(
            handler=handler,
            is_async=inspect.iscoroutinefunction(handler),
            stream=route.stream,
            blueprint=route.blueprint,
            error_format=route.extra.get("error_format"),
            request_mw=chain.request,
            response_mw=chain.response,
            version=self._plan_version,
        )
        route.extra[_PLAN] = plan
        return plan

    # -- the request pipeline

    async def handle(self, request: Request) -> BaseHTTPResponse:
        """Answer one request. Never raises, except ``CancelledError``."""
        guards = self._guards
        plan: _Plan | None = None
        in_response_mw = False
        try:
            if (
                guards.HTTP_LIFECYCLE_REQUEST
                or guards.HTTP_LIFECYCLE_HANDLE
                or guards.HTTP_ROUTING_BEFORE
            ):
                await self._early_signals(request)
            route, params = self.router.resolve(request.path, request.method)
            request.route = route
            request.match_info = params
            plan = route.extra.get(_PLAN)
            if plan is None or plan.version != self._plan_version:
                plan = self._plan(route)
            if guards.HTTP_ROUTING_AFTER:
                await self._signal(
                    Event.HTTP_ROUTING_AFTER,
                    {
                        "request": request,
                        "route": route,
                        "kwargs": params,
                        "handler": route.handler,
                    },
                )
            if plan.stream:
                request.stream = request.body_channel
            elif guards.HTTP_LIFECYCLE_READ_BODY:
                await self._read_body_with_signal(request)
            elif not request._body_received and not request.body_channel.at_eof:
                # (a GET: the server marked it bodyless, nothing to await or build)
                await request.receive_body()
            response: Any = None
            if plan.request_mw:
                response = await run_request_middleware(
                    request, plan.request_mw, guards, self._signal
                )
            if response is None:
                if guards.HTTP_HANDLER_BEFORE:
                    await self._signal(Event.HTTP_HANDLER_BEFORE, {"request": request})
                response = plan.handler(request, **params)
                if plan.is_async or inspect.isawaitable(response):
                    response = await response
                if not isinstance(response, BaseHTTPResponse):
                    raise TypeError(
                        f"Handler {_describe(plan.handler)} returned {type(response).__name__} "
                        f"({response!r:.60}); return a response, e.g. text(...) or json(...)"
                    )
                if guards.HTTP_HANDLER_AFTER:
                    await self._signal(Event.HTTP_HANDLER_AFTER, {"request": request})
            if plan.response_mw:
                in_response_mw = True
                response = await run_response_middleware(
                    request, response, plan.response_mw, guards, self._signal
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            response = await self._error_response(request, exc, plan, not in_response_mw)
        if guards.HTTP_LIFECYCLE_RESPONSE:
            try:
                await self._signal(
                    Event.HTTP_LIFECYCLE_RESPONSE, {"request": request, "response": response}
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                error_logger.exception("Exception in an http.lifecycle.response signal handler")
        return response  # type: ignore[no-any-return]

    async def _signal(
        self,
        event: Event,
        context: dict[str, Any],
        condition: dict[str, Any] | None = None,
        *,
        reverse: bool = False,
    ) -> Any:
        return await self.signal_router.dispatch(
            event,
            context=context,
            condition=condition,
            inline=True,
            fail_not_found=False,
            reverse=reverse,
        )

    async def _early_signals(self, request: Request) -> None:
        guards = self._guards
        context = {"request": request}
        if guards.HTTP_LIFECYCLE_REQUEST:
            await self._signal(Event.HTTP_LIFECYCLE_REQUEST, context)
        if guards.HTTP_LIFECYCLE_HANDLE:
            await self._signal(Event.HTTP_LIFECYCLE_HANDLE, context)
        if guards.HTTP_ROUTING_BEFORE:
            await self._signal(Event.HTTP_ROUTING_BEFORE, context)

    async def _read_body_with_signal(self, request: Request) -> None:
        channel = request.body_channel
        chunks: list[bytes] = []
        limit = int(self.config.get("REQUEST_MAX_SIZE", 0) or 0)
        size = 0
        while True:
            chunk = await channel.read()
            if chunk is None:
                break
            size += len(chunk)
            if limit and size > limit:
                raise PayloadTooLarge(f"Request body exceeds REQUEST_MAX_SIZE ({limit} bytes)")
            await self._signal(Event.HTTP_LIFECYCLE_READ_BODY, {"body": chunk})
            chunks.append(chunk)
        request.body = b"".join(chunks)

    # -- errors

    async def _error_response(
        self, request: Request, exc: Exception, plan: _Plan | None, run_response_mw: bool
    ) -> BaseHTTPResponse:
        if plan is None:  # routing failed: app-wide response middleware only
            blueprint, error_format = None, None
            chain = self.middleware_registry.chain(None).response
        else:
            blueprint, error_format, chain = plan.blueprint, plan.error_format, plan.response_mw
        return await error_response(
            self,
            request,
            exc,
            blueprint=blueprint,
            error_format=error_format,
            response_chain=chain if run_response_mw else (),
        )

    # -- websockets

    def match_websocket(self, request: Request) -> Route:
        """The websocket route for the request's path (``NotFound`` if none)."""
        route, params = self.router.resolve_websocket(request.path)
        request.route = route
        request.match_info = params
        return route

    async def handle_websocket(self, request: Request, ws: WebSocketProtocol) -> None:
        """Run the websocket handler with the ``websocket.handler.*`` signals.

        A handler exception is logged, dispatched as ``websocket.handler.exception`` and re-raised
        so the server can close with 1011. Cancellation and a peer that closed dispatch nothing.
        """
        route = request.route
        if route is None:
            route = self.match_websocket(request)
        params = request.match_info or {}
        guards = self._guards
        context = {"request": request, "websocket": ws}
        if guards.WEBSOCKET_HANDLER_BEFORE:
            await self._signal(Event.WEBSOCKET_HANDLER_BEFORE, context)
        try:
            result = route.handler(request, ws, **params)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _peer_closed(exc):  # the peer went away: nothing to report
                return
            error_logger.error(
                "Exception in websocket handler %s", _describe(route.handler), exc_info=exc
            )
            if guards.WEBSOCKET_HANDLER_EXCEPTION:
                await self._signal(
                    Event.WEBSOCKET_HANDLER_EXCEPTION, {**context, "exception": exc}, reverse=True
                )
            raise
        if guards.WEBSOCKET_HANDLER_AFTER:
            await self._signal(Event.WEBSOCKET_HANDLER_AFTER, context, reverse=True)


# a worker forked from the main process loads its own app: forget the main process's apps
on_forked_worker(App._registry.clear)

__all__ = ["CONSOLE_NAMES", "App", "ReplContext", "ReplEntry", "SharedContext"]
