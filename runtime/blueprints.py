"""Blueprints, blueprint groups, and the declaration surface they share with ``App``.

``Declarations`` is the decorator sugar (``@x.get``, ``@x.middleware``, ``@x.before_server_start``,
``@x.signal``, ``@x.exception`` ...) written once on top of five primitive ``_register_*`` methods.
``App`` implements them by registering at once; ``Blueprint`` records each declaration and replays
it on every app it is attached to (declarations made after attaching apply immediately).

A blueprint's routes get the name ``"<blueprint>.<handler>"``, its middleware and exception
handlers apply only to its own routes, its listeners sort after the app's of equal priority, and its
signal handlers carry the condition ``{"__blueprint__": name}``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from runtime.errorpages import check_format
from runtime.lifecycle import ListenerRegistry, normalize_event
from runtime.middleware import normalize_attach_to

if TYPE_CHECKING:
    from runtime.app import App
    from runtime.routing import Route

F = TypeVar("F", bound=Callable[..., Any])
EventName = str | Enum

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def check_name(kind: str, name: object) -> str:
    """App and blueprint names: a letter, then letters, digits, ``_`` or ``-``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid: start with a letter and use only letters, "
            "digits, '_' and '-' (for example 'my_app')"
        )
    return name


class RouteOptions(NamedTuple):
    """Everything a route declaration says besides handler, path and methods."""

    name: str | None = None
    strict_slashes: bool | None = None
    stream: bool = False
    version: int | str | float | None = None
    version_prefix: str = "/v"
    websocket: bool = False
    subprotocols: tuple[str, ...] | None = None
    error_format: str | None = None


def _methods(methods: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    result = tuple(dict.fromkeys(m.upper() for m in methods))
    if not result:
        raise ValueError("A route needs at least one HTTP method, e.g. methods=['GET']")
    for method in result:
        if not method.isalpha():
            raise ValueError(f"Invalid HTTP method {method!r}")
    return result


class _BoundShorthand:
    __slots__ = ("_event", "_owner")

    def __init__(self, owner: Declarations, event: str) -> None:
        self._owner = owner
        self._event = event

    @overload
    def __call__(self, listener: F, /) -> F: ...
    @overload
    def __call__(self, listener: None = None, /, *, priority: int = 0) -> Callable[[F], F]: ...
    @overload
    def __call__(self, listener: F, /, *, priority: int = 0) -> F: ...

    def __call__(self, listener: Any = None, /, *, priority: int = 0) -> Any:
        owner, event = self._owner, self._event
        if listener is None:

            def decorator(fn: F) -> F:
                return owner.register_listener(fn, event, priority=priority)

            return decorator
        return owner.register_listener(listener, event, priority=priority)

    def __repr__(self) -> str:
        return f"<listener decorator {self._event!r} of {self._owner!r}>"


class ListenerShorthand:
    """``@x.before_server_start``: usable bare, called ``()`` and with ``priority=``."""

    def __init__(self, event: str) -> None:
        self.event = event

    def __get__(self, owner: Any, objtype: Any = None) -> _BoundShorthand:
        return _BoundShorthand(owner, self.event)


class Declarations:
    """The decorator surface shared by ``App`` and ``Blueprint``."""

    # -- primitives, implemented by App and Blueprint -----------------------------------------

    def _register_route(
        self, handler: Callable[..., Any], uri: str, methods: tuple[str, ...], options: RouteOptions
    ) -> None:
        raise NotImplementedError

    def _register_listener(self, listener: Callable[..., Any], event: str, priority: int) -> None:
        raise NotImplementedError

    def _register_middleware(self, fn: Callable[..., Any], attach_to: str, priority: int) -> None:
        raise NotImplementedError

    def _register_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
    ) -> None:
        raise NotImplementedError

    def _register_exception(
        self, exceptions: tuple[type[BaseException], ...], handler: Callable[..., Any]
    ) -> None:
        raise NotImplementedError

    # -- routes --------------------------------------------------------------------------------

    def add_route(
        self,
        handler: F,
        uri: str,
        methods: Iterable[str] | str = ("GET",),
        *,
        name: str | None = None,
        strict_slashes: bool | None = None,
        stream: bool = False,
        version: int | str | float | None = None,
        version_prefix: str = "/v",
        error_format: str | None = None,
    ) -> F:
        """Register ``handler(request, **params)`` for ``uri`` and ``methods``."""
        if not callable(handler):
            raise TypeError(f"Route handler must be callable, got {handler!r}")
        if not isinstance(uri, str):
            raise TypeError(f"Route path must be a str such as '/items/<id:int>', got {uri!r}")
        if error_format is not None:
            check_format(error_format, where="error_format")
        options = RouteOptions(
            name=name,
            strict_slashes=strict_slashes,
            stream=stream,
            version=version,
            version_prefix=version_prefix,
            error_format=error_format,
        )
        self._register_route(handler, uri, _methods(methods), options)
        return handler

    def route(
        self,
        uri: str,
        methods: Iterable[str] | str = ("GET",),
        *,
        name: str | None = None,
        strict_slashes: bool | None = None,
        stream: bool = False,
        version: int | str | float | None = None,
        version_prefix: str = "/v",
        error_format: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of ``add_route``: ``@app.route("/items", methods=["GET", "POST"])``."""
        if callable(uri):
            raise TypeError("@route needs a path: write @app.route('/path'), not bare @app.route")
        # Check what can be checked now, so the error points at the decorator line.
        methods = _methods(methods)
        if error_format is not None:
            check_format(error_format, where="error_format")

        def decorator(handler: F) -> F:
            return self.add_route(
                handler,
                uri,
                methods,
                name=name,
                strict_slashes=strict_slashes,
                stream=stream,
                version=version,
                version_prefix=version_prefix,
                error_format=error_format,
            )

        return decorator

    def _method_route(self, method: str, uri: str, **kwargs: Any) -> Callable[[F], F]:
        return self.route(uri, (method,), **kwargs)

    def get(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        """``@app.get("/path")``; keyword options as ``route``."""
        return self._method_route("GET", uri, **kwargs)

    def post(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        """``@app.post("/path", stream=False)``; keyword options as ``route``."""
        return self._method_route("POST", uri, **kwargs)

    def put(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        return self._method_route("PUT", uri, **kwargs)

    def patch(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        return self._method_route("PATCH", uri, **kwargs)

    def delete(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        return self._method_route("DELETE", uri, **kwargs)

    def head(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        return self._method_route("HEAD", uri, **kwargs)

    def options(self, uri: str, **kwargs: Any) -> Callable[[F], F]:
        return self._method_route("OPTIONS", uri, **kwargs)

    def add_websocket_route(
        self,
        handler: F,
        uri: str,
        *,
        subprotocols: Iterable[str] | None = None,
        name: str | None = None,
        strict_slashes: bool | None = None,
        version: int | str | float | None = None,
        version_prefix: str = "/v",
    ) -> F:
        """Register ``handler(request, ws, **params)`` as the websocket endpoint at ``uri``."""
        if not callable(handler):
            raise TypeError(f"Websocket handler must be callable, got {handler!r}")
        if isinstance(subprotocols, str):
            raise TypeError("subprotocols must be a list of names, e.g. subprotocols=['chat']")
        options = RouteOptions(
            name=name,
            strict_slashes=strict_slashes,
            version=version,
            version_prefix=version_prefix,
            websocket=True,
            subprotocols=tuple(subprotocols) if subprotocols is not None else None,
        )
        self._register_route(handler, uri, ("GET",), options)
        return handler

    def websocket(
        self,
        uri: str,
        *,
        subprotocols: Iterable[str] | None = None,
        name: str | None = None,
        strict_slashes: bool | None = None,
        version: int | str | float | None = None,
        version_prefix: str = "/v",
    ) -> Callable[[F], F]:
        """``@app.websocket("/ws")`` on ``async def handler(request, ws)``."""

        def decorator(handler: F) -> F:
            return self.add_websocket_route(
                handler,
                uri,
                subprotocols=subprotocols,
                name=name,
                strict_slashes=strict_slashes,
                version=version,
                version_prefix=version_prefix,
            )

        return decorator

    # -- listeners -----------------------------------------------------------------------------

    def register_listener(self, listener: F, event: str | Enum, *, priority: int = 0) -> F:
        """Run ``listener`` at ``event`` (one of the eleven lifecycle events)."""
        name = event.value if isinstance(event, Enum) else event
        self._register_listener(listener, name, priority)
        return listener

    @overload
    def listener(self, listener_or_event: str | Enum, *, priority: int = 0) -> Callable[[F], F]: ...
    @overload
    def listener(self, listener_or_event: F, event: str | Enum, *, priority: int = 0) -> F: ...

    def listener(
        self,
        listener_or_event: Any,
        event: str | Enum | None = None,
        *,
        priority: int = 0,
    ) -> Any:
        """``@app.listener("before_server_start", priority=0)`` or ``app.listener(fn, event)``."""
        if callable(listener_or_event) and not isinstance(listener_or_event, (str, Enum)):
            if event is None:
                name = getattr(listener_or_event, "__name__", repr(listener_or_event))
                raise TypeError(
                    f"@listener on {name} needs the event: write "
                    '@app.listener("before_server_start") or use a shorthand such as '
                    "@app.before_server_start"
                )
            return self.register_listener(listener_or_event, event, priority=priority)
        the_event = listener_or_event
        # Validate the event name now, not when the decorator is applied.
        normalize_event(the_event.value if isinstance(the_event, Enum) else the_event)

        def decorator(fn: F) -> F:
            return self.register_listener(fn, the_event, priority=priority)

        return decorator

    main_process_start = ListenerShorthand("main_process_start")
    main_process_ready = ListenerShorthand("main_process_ready")
    main_process_stop = ListenerShorthand("main_process_stop")
    reload_process_start = ListenerShorthand("reload_process_start")
    reload_process_stop = ListenerShorthand("reload_process_stop")
    before_reload_trigger = ListenerShorthand("before_reload_trigger")
    after_reload_trigger = ListenerShorthand("after_reload_trigger")
    before_server_start = ListenerShorthand("before_server_start")
    after_server_start = ListenerShorthand("after_server_start")
    before_server_stop = ListenerShorthand("before_server_stop")
    after_server_stop = ListenerShorthand("after_server_stop")

    # -- middleware ----------------------------------------------------------------------------

    def register_middleware(
        self, middleware: F, attach_to: str = "request", *, priority: int = 0
    ) -> F:
        """``fn(request)`` on the way in, or ``fn(request, response)`` on the way out."""
        self._register_middleware(middleware, normalize_attach_to(attach_to), priority)
        return middleware

    @overload
    def middleware(self, middleware_or_request: F, /) -> F: ...
    @overload
    def middleware(
        self, middleware_or_request: F, attach_to: str = "request", *, priority: int = 0
    ) -> F: ...
    @overload
    def middleware(
        self,
        middleware_or_request: str | None = None,
        attach_to: str = "request",
        *,
        priority: int = 0,
    ) -> Callable[[F], F]: ...

    def middleware(
        self,
        middleware_or_request: Any = None,
        attach_to: str = "request",
        *,
        priority: int = 0,
    ) -> Any:
        """``@app.middleware`` (request), ``@app.middleware("response", priority=1)``."""
        if callable(middleware_or_request):
            return self.register_middleware(middleware_or_request, attach_to, priority=priority)
        where = normalize_attach_to(
            attach_to if middleware_or_request is None else middleware_or_request
        )

        def decorator(fn: F) -> F:
            return self.register_middleware(fn, where, priority=priority)

        return decorator

    @overload
    def on_request(self, middleware: F, /) -> F: ...
    @overload
    def on_request(self, middleware: None = None, /, *, priority: int = 0) -> Callable[[F], F]: ...

    def on_request(self, middleware: Any = None, /, *, priority: int = 0) -> Any:
        """``@app.on_request``: request middleware, bare or with ``priority=``."""
        if middleware is not None:
            return self.register_middleware(middleware, "request", priority=priority)
        return self.middleware("request", priority=priority)

    @overload
    def on_response(self, middleware: F, /) -> F: ...
    @overload
    def on_response(self, middleware: None = None, /, *, priority: int = 0) -> Callable[[F], F]: ...

    def on_response(self, middleware: Any = None, /, *, priority: int = 0) -> Any:
        """``@app.on_response``: response middleware, bare or with ``priority=``."""
        if middleware is not None:
            return self.register_middleware(middleware, "response", priority=priority)
        return self.middleware("response", priority=priority)

    # -- signals -------------------------------------------------------------------------------

    def add_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None = None,
        exclusive: bool = True,
        priority: int = 0,
    ) -> Callable[..., Any] | None:
        """Register ``handler(**context)`` for ``event``; ``None`` registers a no-op handler."""
        self._register_signal(handler, event, condition, exclusive, priority)
        return handler

    def signal(
        self,
        event: EventName,
        *,
        condition: Mapping[str, Any] | None = None,
        exclusive: bool = True,
        priority: int = 0,
    ) -> Callable[[F], F]:
        """``@app.signal("order.item.<item_id:int>")``."""
        if not isinstance(event, (str, Enum)):
            raise TypeError(
                '@signal needs an event name: write @app.signal("user.account.created")'
            )

        def decorator(handler: F) -> F:
            self._register_signal(handler, event, condition, exclusive, priority)
            return handler

        return decorator

    # -- exceptions ----------------------------------------------------------------------------

    def exception(
        self, *exceptions: type[BaseException] | Iterable[type[BaseException]]
    ) -> Callable[[F], F]:
        """``@app.exception(NotFound, KeyError)`` on ``handler(request, exception)``."""
        classes: list[type[BaseException]] = []
        for item in exceptions:
            if isinstance(item, type):
                classes.append(item)
            elif isinstance(item, Iterable):
                classes.extend(item)
            else:
                raise TypeError(f"@exception takes exception classes, got {item!r}")
        if not classes:
            raise TypeError("@exception needs at least one class: @app.exception(NotFound)")
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise TypeError(f"@exception takes exception classes, got {cls!r}")

        def decorator(handler: F) -> F:
            self._register_exception(tuple(classes), handler)
            return handler

        return decorator


def join_uri(prefix: str | None, uri: str) -> str:
    """Sanic's rule: ``"/api" + "/items" == "/api/items"``, ``"/api/" + "/x" == "/api/x"``."""
    if not prefix:
        return uri
    joined = prefix + uri[1:] if uri.startswith("/") and prefix.endswith("/") else prefix + uri
    return joined[1:] if joined.startswith("//") else joined


class AttachOptions(NamedTuple):
    """How one blueprint is attached to one app (``app.blueprint(bp, url_prefix=...)``)."""

    url_prefix: str | None = None
    version: int | str | float | None = None
    strict_slashes: bool | None = None
    version_prefix: str = "/v"


Declaration = Callable[["App", AttachOptions], None]


class Blueprint(Declarations):
    """A named group of routes, middleware, listeners, signals and exception handlers."""

    def __init__(
        self,
        name: str,
        url_prefix: str | None = None,
        version: int | str | float | None = None,
        strict_slashes: bool | None = None,
        version_prefix: str = "/v",
    ) -> None:
        self.name = check_name("Blueprint", name)
        if url_prefix is not None and not isinstance(url_prefix, str):
            raise TypeError(f"url_prefix must be a str such as '/api', got {url_prefix!r}")
        self.url_prefix = url_prefix
        self.version = version
        self.strict_slashes = strict_slashes
        self.version_prefix = version_prefix
        self.ctx = SimpleNamespace()
        self._declarations: list[Declaration] = []
        self._attached: list[tuple[App, AttachOptions]] = []
        self.routes: list[Route] = []

    def __repr__(self) -> str:
        return f"Blueprint(name={self.name!r}, url_prefix={self.url_prefix!r})"

    @property
    def apps(self) -> list[App]:
        """The apps this blueprint is attached to."""
        return [app for app, _ in self._attached]

    @property
    def registered(self) -> bool:
        return bool(self._attached)

    def _declare(self, declaration: Declaration) -> None:
        self._declarations.append(declaration)
        for app, options in self._attached:
            declaration(app, options)

    def _attach(self, app: App, options: AttachOptions) -> None:
        """Called by ``app.blueprint``: replay every declaration on ``app``."""
        merged = AttachOptions(
            url_prefix=self.url_prefix if options.url_prefix is None else options.url_prefix,
            version=self.version if options.version is None else options.version,
            strict_slashes=(
                self.strict_slashes if options.strict_slashes is None else options.strict_slashes
            ),
            version_prefix=options.version_prefix
            if options.version_prefix != "/v"
            else self.version_prefix,
        )
        self._attached.append((app, merged))
        for declaration in self._declarations:
            declaration(app, merged)

    # -- primitives ----------------------------------------------------------------------------

    def _register_route(
        self, handler: Callable[..., Any], uri: str, methods: tuple[str, ...], options: RouteOptions
    ) -> None:
        route_name = f"{self.name}.{options.name or getattr(handler, '__name__', 'handler')}"

        def declaration(app: App, attach: AttachOptions) -> None:
            route_options = options._replace(
                name=route_name,
                version=options.version if options.version is not None else attach.version,
                version_prefix=options.version_prefix
                if options.version_prefix != "/v"
                else attach.version_prefix,
                strict_slashes=options.strict_slashes
                if options.strict_slashes is not None
                else attach.strict_slashes,
            )
            route = app._add_route(
                handler,
                join_uri(attach.url_prefix, uri),
                methods,
                route_options,
                blueprint=self.name,
            )
            self.routes.append(route)

        self._declare(declaration)

    def _register_listener(self, listener: Callable[..., Any], event: str, priority: int) -> None:
        # Check the event name and the signature now, so mistakes show at declaration time.
        ListenerRegistry().add(listener, event, priority=priority, origin=1)

        def declaration(app: App, attach: AttachOptions) -> None:
            app.listeners.add(listener, event, priority=priority, origin=1)

        self._declare(declaration)

    def _register_middleware(self, fn: Callable[..., Any], attach_to: str, priority: int) -> None:
        def declaration(app: App, attach: AttachOptions) -> None:
            app._add_middleware(fn, attach_to, priority, blueprint=self.name)

        self._declare(declaration)

    def _register_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
    ) -> None:
        def declaration(app: App, attach: AttachOptions) -> None:
            app._add_signal(handler, event, condition, exclusive, priority, blueprint=self.name)

        self._declare(declaration)

    def _register_exception(
        self, exceptions: tuple[type[BaseException], ...], handler: Callable[..., Any]
    ) -> None:
        def declaration(app: App, attach: AttachOptions) -> None:
            app.error_handler.add(exceptions, handler, blueprint=self.name)

        self._declare(declaration)

    # -- signals across apps -------------------------------------------------------------------

    def _require_apps(self, what: str) -> list[App]:
        apps = self.apps
        if not apps:
            raise RuntimeError(
                f"Blueprint {self.name!r} is not attached to an app; call app.blueprint(bp) "
                f"before bp.{what}()"
            )
        return apps

    async def dispatch(
        self,
        event: EventName,
        *,
        context: Mapping[str, Any] | None = None,
        condition: Mapping[str, Any] | None = None,
        fail_not_found: bool = True,
        inline: bool = False,
        reverse: bool = False,
    ) -> list[Any]:
        """Dispatch on every attached app; only this blueprint's handlers run."""
        full = {**(condition or {}), "__blueprint__": self.name}
        results = []
        for app in self._require_apps("dispatch"):
            results.append(
                await app.dispatch(
                    event,
                    context=context,
                    condition=full,
                    fail_not_found=fail_not_found,
                    inline=inline,
                    reverse=reverse,
                )
            )
        return results

    async def event(
        self,
        event: EventName,
        timeout: float | None = None,
        *,
        condition: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Wait for the next ``bp.dispatch(event)`` or unconditioned ``app.dispatch(event)``."""
        full = {**(condition or {}), "__blueprint__": self.name}
        apps = self._require_apps("event")
        if len(apps) == 1:  # the common case: waiting starts before this coroutine first yields
            return await apps[0].event(event, timeout, condition=full, exclusive=False)
        waiters = [
            asyncio.ensure_future(app.event(event, timeout, condition=full, exclusive=False))
            for app in apps
        ]
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for waiter in waiters:
                waiter.cancel()

    # -- groups --------------------------------------------------------------------------------

    @staticmethod
    def group(
        *blueprints: Blueprint | BlueprintGroup,
        url_prefix: str | None = None,
        version: int | str | float | None = None,
        strict_slashes: bool | None = None,
        version_prefix: str = "/v",
    ) -> BlueprintGroup:
        """``Blueprint.group(bp1, bp2, url_prefix="/api")``."""
        return BlueprintGroup(
            *blueprints,
            url_prefix=url_prefix,
            version=version,
            strict_slashes=strict_slashes,
            version_prefix=version_prefix,
        )


class BlueprintGroup:
    """Several blueprints attached together under one prefix / version.

    ``group.middleware``, ``on_request``, ``on_response`` and ``exception`` apply to every member.
    """

    def __init__(
        self,
        *blueprints: Blueprint | BlueprintGroup,
        url_prefix: str | None = None,
        version: int | str | float | None = None,
        strict_slashes: bool | None = None,
        version_prefix: str = "/v",
    ) -> None:
        self.url_prefix = url_prefix
        self.version = version
        self.strict_slashes = strict_slashes
        self.version_prefix = version_prefix
        self._items: list[Blueprint | BlueprintGroup] = []
        for item in blueprints:
            self.append(item)

    def append(self, item: Blueprint | BlueprintGroup) -> None:
        if not isinstance(item, (Blueprint, BlueprintGroup)):
            raise TypeError(f"A BlueprintGroup holds blueprints or groups, got {item!r}")
        self._items.append(item)

    def extend(self, items: Iterable[Blueprint | BlueprintGroup]) -> None:
        for item in items:
            self.append(item)

    def __iter__(self) -> Iterator[Blueprint | BlueprintGroup]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Blueprint | BlueprintGroup:
        return self._items[index]

    @property
    def blueprints(self) -> list[Blueprint]:
        """Every blueprint in the group, nested groups flattened."""
        found: list[Blueprint] = []
        for item in self._items:
            if isinstance(item, Blueprint):
                found.append(item)
            else:
                found.extend(item.blueprints)
        return found

    def attachments(self, outer: AttachOptions) -> list[tuple[Blueprint, AttachOptions]]:
        """``(blueprint, options)`` for each member: prefixes join, the innermost version wins."""
        here = AttachOptions(
            url_prefix=join_uri(outer.url_prefix, self.url_prefix or "") or None,
            version=self.version if self.version is not None else outer.version,
            strict_slashes=(
                self.strict_slashes if self.strict_slashes is not None else outer.strict_slashes
            ),
            version_prefix=self.version_prefix
            if self.version_prefix != "/v"
            else outer.version_prefix,
        )
        result: list[tuple[Blueprint, AttachOptions]] = []
        for item in self._items:
            if isinstance(item, BlueprintGroup):
                result.extend(item.attachments(here))
            else:
                result.append(
                    (
                        item,
                        AttachOptions(
                            url_prefix=join_uri(here.url_prefix, item.url_prefix or "") or None,
                            version=item.version if item.version is not None else here.version,
                            strict_slashes=item.strict_slashes
                            if item.strict_slashes is not None
                            else here.strict_slashes,
                            version_prefix=here.version_prefix,
                        ),
                    )
                )
        return result

    def middleware(self, *args: Any, **kwargs: Any) -> Any:
        """As ``Blueprint.middleware``, on every member."""
        if args and callable(args[0]):
            for bp in self.blueprints:
                bp.middleware(*args, **kwargs)
            return args[0]

        def decorator(fn: F) -> F:
            for bp in self.blueprints:
                bp.middleware(fn, *args, **kwargs)
            return fn

        return decorator

    def on_request(self, middleware: Any = None, *, priority: int = 0) -> Any:
        if middleware is not None:
            return self.middleware(middleware, "request", priority=priority)
        return self.middleware("request", priority=priority)

    def on_response(self, middleware: Any = None, *, priority: int = 0) -> Any:
        if middleware is not None:
            return self.middleware(middleware, "response", priority=priority)
        return self.middleware("response", priority=priority)

    def exception(self, *exceptions: type[BaseException]) -> Callable[[F], F]:
        def decorator(handler: F) -> F:
            for bp in self.blueprints:
                bp.exception(*exceptions)(handler)
            return handler

        return decorator


__all__ = [
    "AttachOptions",
    "Blueprint",
    "BlueprintGroup",
    "Declarations",
    "ListenerShorthand",
    "RouteOptions",
    "check_name",
    "join_uri",
]
