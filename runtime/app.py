"""``App``: the application a user declares, and the object vivace's processes serve.

``App`` owns its parts and delegates to them in one line each (Starlette's ``applications.py``):
``Router``, ``ListenerRegistry``, ``SignalRouter``, ``MiddlewareRegistry``, ``ErrorHandler``,
``TaskSet`` (background tasks), ``ProcessHandles`` (``app.manager``, ``app.m``) and ``Pipeline``
(one request through all of them; ``app.handle`` is its bound method, no extra call layer). Its
decorator sugar is ``runtime.declarations.Declarations``; its ``add_*_entry`` methods are the
``runtime.blueprints.Registrar`` protocol blueprints replay onto; its stage hooks are the
``runtime.hosting.Hosted`` interface the server and the supervisor call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from runtime.blueprints import AttachOptions, Blueprint, BlueprintGroup, attachments
from runtime.config import ENV_PREFIX, Config
from runtime.console import CONSOLE_NAMES, ReplContext, ReplEntry
from runtime.declarations import (
    STATIC_ROOT_SUFFIX,
    Declarations,
    EventName,
    RouteOptions,
    check_name,
)
from runtime.handlers import ErrorHandler
from runtime.hosting import MainStage, ServeStage, on_forked_worker
from runtime.lifecycle import ListenerEvent, ListenerRegistry, run_listeners, run_listeners_sync
from runtime.middleware import MiddlewareRegistry
from runtime.pipeline import Pipeline
from runtime.processes import ProcessHandles
from runtime.routing import Route, Router
from runtime.shared import SharedContext
from runtime.signals import Event, SignalRouter
from runtime.tasks import TaskSet, TaskSource

if TYPE_CHECKING:
    from runtime.request import Request
    from runtime.response import BaseHTTPResponse
    from runtime.websocket import WebSocketProtocol


_UNSUPPORTED = {
    "router": "vivace builds its own Router (app.router); add routes with app.add_route",
    "signal_router": "vivace builds its own SignalRouter (app.signal_router); use @app.signal",
    "dumps": "pass dumps= to json(...) for the responses that need another serialiser",
    "loads": "parse request.body yourself (e.g. orjson.loads(request.body))",
    "inspector": "vivace has a console instead: run with --console (docs/console.md)",
    "inspector_class": "vivace has a console instead: run with --console (docs/console.md)",
    "certloader_class": "vivace takes TLS settings from the command line (docs/serving.md)",
}


def _refuse_unsupported(**given: Any) -> None:
    for name, value in given.items():
        if value is not None and value is not False:
            raise TypeError(f"App({name}=...) is not supported by vivace: {_UNSUPPORTED[name]}")


class App(Declarations):
    """A vivace application. Names are unique per process (``App.get_app(name)``)."""

    _registry: ClassVar[dict[str, App]] = {}

    # The request path, bound per instance to the app's Pipeline (runtime.pipeline):
    #: ``await app.handle(request)``: answer one request; never raises, except CancelledError
    handle: Callable[[Request], Awaitable[BaseHTTPResponse]]
    #: ``app.match_websocket(request)``: the websocket route of the request (``NotFound`` if none)
    match_websocket: Callable[[Request], Route]
    #: ``await app.handle_websocket(request, ws)``: run the websocket handler with its signals
    handle_websocket: Callable[[Request, WebSocketProtocol], Awaitable[None]]

    def __init__(
        self,
        name: str,
        *,
        config: Config | Mapping[str, Any] | None = None,
        ctx: Any = None,
        router: Any = None,
        signal_router: Any = None,
        error_handler: ErrorHandler | None = None,
        env_prefix: str | None = ENV_PREFIX,
        request_class: type[Request] | None = None,
        strict_slashes: bool | None = None,
        log_config: Mapping[str, Any] | None = None,
        configure_logging: bool = True,
        dumps: Any = None,
        loads: Any = None,
        inspector: bool = False,
        inspector_class: Any = None,
        certloader_class: Any = None,
    ) -> None:
        """Sanic's constructor arguments, as far as they fit (docs/routing.md, "The App"):
        ``config`` (a ``Config`` or a mapping), ``ctx``, ``error_handler`` (an ``ErrorHandler``,
        e.g. a subclass overriding ``default``), ``env_prefix`` (``VIVACE_`` by default),
        ``request_class`` (a ``Request`` subclass the server builds), ``strict_slashes``,
        ``log_config`` (a ``logging.config.dictConfig`` dict, applied now unless
        ``configure_logging=False``). The others raise a ``TypeError`` that says what to do."""
        check_name("App", name)
        _refuse_unsupported(
            router=router,
            signal_router=signal_router,
            dumps=dumps,
            loads=loads,
            inspector=inspector,
            inspector_class=inspector_class,
            certloader_class=certloader_class,
        )
        if error_handler is not None and not isinstance(error_handler, ErrorHandler):
            raise TypeError(
                f"App(error_handler=...) takes an instance of runtime.handlers.ErrorHandler (or a "
                f"subclass), got {error_handler!r}"
            )
        if request_class is not None:
            from runtime.request import Request

            if not (isinstance(request_class, type) and issubclass(request_class, Request)):
                raise TypeError(
                    f"App(request_class=...) takes a subclass of runtime.Request, "
                    f"got {request_class!r}"
                )
        if log_config is not None and not isinstance(log_config, Mapping):
            raise TypeError(
                f"App(log_config=...) takes a logging.config.dictConfig dict, got {log_config!r}"
            )
        if name in App._registry:
            raise ValueError(
                f"An app named {name!r} already exists in this process ({App._registry[name]!r}); "
                f"use App.get_app({name!r}) to get it, or give the new app another name"
            )
        self.name = name
        self.config: Config = (
            config if isinstance(config, Config) else Config(config, env_prefix=env_prefix)
        )
        self.ctx: Any = ctx if ctx is not None else SimpleNamespace()
        self.strict_slashes = strict_slashes
        #: the ``Request`` subclass the server builds for this app (``None``: ``Request``)
        self.request_class = request_class
        self.log_config = log_config
        if log_config is not None and configure_logging:
            import logging.config

            logging.config.dictConfig(dict(log_config))
        self.router = Router()
        self.listeners = ListenerRegistry()
        self.signal_router = SignalRouter(self, self.listeners)
        self.middleware_registry = MiddlewareRegistry()
        self._errors = error_handler if error_handler is not None else ErrorHandler()
        self._errors.config = self.config
        self.blueprints: dict[str, Blueprint] = {}
        self.shared_ctx = SharedContext()
        self.repl_ctx = ReplContext()
        self._processes = ProcessHandles()
        self._tasks = TaskSet(self)
        self._pipeline = pipeline = Pipeline(
            router=self.router,
            middleware=self.middleware_registry,
            signals=self.signal_router,
            errors=self._errors,
            config=self.config,
        )
        self.handle = pipeline.handle
        self.match_websocket = pipeline.match_websocket
        self.handle_websocket = pipeline.handle_websocket
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
    def error_handler(self) -> ErrorHandler:
        """The exception -> handler table (``@app.exception`` adds to it). Assigning another
        ``ErrorHandler`` (Sanic's ``app.error_handler = CustomHandler()``) replaces it, with the
        handlers registered on it."""
        return self._errors

    @error_handler.setter
    def error_handler(self, value: ErrorHandler) -> None:
        if not isinstance(value, ErrorHandler):
            raise TypeError(
                f"app.error_handler takes an instance of runtime.handlers.ErrorHandler (or a "
                f"subclass), got {value!r}"
            )
        value.config = self.config
        self._errors = value
        self._pipeline.errors = value

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

    # -- processes (runtime.processes.ProcessHandles)

    @property
    def multiplexer(self) -> Any:
        """The worker's ``Multiplexer`` (``app.m``); only inside multi-process server workers."""
        return self._processes.multiplexer

    @multiplexer.setter
    def multiplexer(self, value: Any) -> None:
        self._processes.multiplexer = value

    @property
    def m(self) -> Any:
        return self._processes.multiplexer

    @property
    def manager(self) -> Any:
        """The ``WorkerManager``, in the main process from ``main_process_ready`` on."""
        return self._processes.manager

    @manager.setter
    def manager(self, value: Any) -> None:
        self._processes.manager = value

    def set_stop_hook(self, hook: Callable[[], Any] | None) -> None:
        """The server installs the function ``app.stop()`` calls outside multi-process workers."""
        self._processes.stop_hook = hook

    def stop(self) -> None:
        """Stop serving gracefully (in a worker: terminate the whole server)."""
        if not self._processes.stop():
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
    forkable: ClassVar[bool] = True  # workers may be forks of the main process (hosting.Hosted)

    @property
    def target(self) -> App:
        """The object the console shows as ``app``: the App itself."""
        return self

    async def serve_stage(self, stage: ServeStage) -> None:
        """Run the worker listeners of ``stage`` (a start stage re-raises the first failure)."""
        await run_listeners(self, ListenerEvent(stage.value))

    async def cancel_tasks(self) -> None:
        await self._tasks.shutdown()

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
        self._processes.attach(manager=manager, multiplexer=multiplexer)

    # -- background tasks (runtime.tasks.TaskSet)

    def add_task(self, task: TaskSource, *, name: str | None = None) -> asyncio.Task[Any] | None:
        """Run a coroutine (or a function of ``app`` returning one) in the background.

        Before the loop runs, the task is queued and started when the server starts. Tasks are
        tracked and cancelled at shutdown (``await app.shutdown_tasks()``).
        """
        return self._tasks.add(task, name=name)

    def start_pending_tasks(self) -> None:
        """Start tasks queued by ``add_task`` before the loop ran (needs a running loop)."""
        self._tasks.start_pending()

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return self._tasks.running

    async def shutdown_tasks(self, timeout: float | None = None) -> None:
        """Cancel every background task and wait (at most ``timeout``) for them to end."""
        await self._tasks.shutdown(timeout)

    # -- registration: the Declarations hooks, and the Registrar protocol blueprints replay onto

    def _register_route(
        self, handler: Callable[..., Any], uri: str, methods: tuple[str, ...], options: RouteOptions
    ) -> None:
        self.add_route_entry(handler, uri, methods, options, blueprint=None)

    def _register_listener(self, listener: Callable[..., Any], event: str, priority: int) -> None:
        self.add_listener_entry(listener, event, priority, blueprint=None)

    def _register_middleware(self, fn: Callable[..., Any], attach_to: str, priority: int) -> None:
        self.add_middleware_entry(fn, attach_to, priority, blueprint=None)

    def _register_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
    ) -> None:
        self.add_signal_entry(handler, event, condition, exclusive, priority, blueprint=None)

    def _register_exception(
        self, exceptions: tuple[type[BaseException], ...], handler: Callable[..., Any]
    ) -> None:
        self.add_exception_entry(exceptions, handler, blueprint=None)

    def add_route_entry(
        self,
        handler: Callable[..., Any],
        uri: str,
        methods: tuple[str, ...],
        options: RouteOptions,
        *,
        blueprint: str | None,
    ) -> Route:
        """Add one route now (``blueprint``: the blueprint it comes from, or ``None``)."""
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
            hosts=options.host,
        )
        route.extra["error_format"] = options.error_format
        if self._finalized:
            self.router.finalize()
        return route

    def add_listener_entry(
        self, listener: Callable[..., Any], event: str, priority: int, *, blueprint: str | None
    ) -> None:
        """Add one listener now; a blueprint's sort after the app's of equal priority."""
        self.listeners.add(listener, event, priority=priority, origin=0 if blueprint is None else 1)

    def add_middleware_entry(
        self, fn: Callable[..., Any], attach_to: str, priority: int, *, blueprint: str | None
    ) -> None:
        """Add one middleware now (a blueprint's runs only for that blueprint's routes)."""
        self.middleware_registry.add(fn, attach_to, priority=priority, blueprint=blueprint)
        self._pipeline.middleware_changed()

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
        """Add one signal handler now (see docs/signals.md)."""
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

    def add_exception_entry(
        self,
        exceptions: tuple[type[BaseException], ...],
        handler: Callable[..., Any],
        *,
        blueprint: str | None,
    ) -> None:
        """Add one exception handler now (a blueprint's applies to that blueprint's routes)."""
        self.error_handler.add(exceptions, handler, blueprint=blueprint)

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
        for bp, bp_options in attachments(blueprint, options):
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
        self.add_signal_entry(report, Event.SERVER_EXCEPTION_REPORT, None, True, 0, blueprint=None)
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
        """The URL of the route named ``view_name`` (``"handler"`` or ``"blueprint.handler"``).

        ``url_for("static", name="static", filename="css/site.css")`` is the URL of a file of the
        static registration ``name`` (``"static"`` by default; ``"bp.static"`` for a blueprint's).
        """
        if view_name == "static":
            target = str(kwargs.pop("name", "static"))
            route = self.router.find_route_by_name(target)
            if route is not None and route.params and "filename" not in kwargs:
                target += STATIC_ROOT_SUFFIX  # the directory itself (index or listing)
            return self.router.url_for(target, **kwargs)
        return self.router.url_for(view_name, **kwargs)


# a worker forked from the main process loads its own app: forget the main process's apps
on_forked_worker(App._registry.clear)

__all__ = ["CONSOLE_NAMES", "App", "ReplContext", "ReplEntry", "SharedContext"]
