"""The declaration surface ``App`` and ``Blueprint`` share: ``@x.get``, ``@x.middleware``, ...

``Declarations`` is the decorator sugar (``@x.get``, ``@x.middleware``, ``@x.before_server_start``,
``@x.signal``, ``@x.exception`` ...) written once on top of five abstract hooks (``_register_*``).
``App`` implements them by registering at once; ``Blueprint`` (``runtime.blueprints``) records each
declaration and replays it onto every app it is attached to, through the app's public
registration methods (``runtime.blueprints.Registrar``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from pathlib import PurePath
from typing import Any, NamedTuple, TypeVar, overload

from runtime.errorpages import check_format
from runtime.lifecycle import normalize_event
from runtime.middleware import normalize_attach_to

F = TypeVar("F", bound=Callable[..., Any])
EventName = str | Enum

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: Sanic's default static ``pattern`` (the only one vivace takes)
DEFAULT_PATTERN = r"/?.+"
#: the name of a static directory's own route (index, listing): ``"static" + this``
STATIC_ROOT_SUFFIX = "_dir"


def _as_view(handler: Any) -> Any:
    """A class-based view class given where a handler goes is its ``as_view()``."""
    as_view = getattr(handler, "as_view", None)
    if isinstance(handler, type) and callable(as_view):
        return as_view()
    return handler


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
    host: tuple[str, ...] | None = None  # virtual hosts: the Host values the route answers


def check_hosts(host: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``host="example.com"`` or ``host=["a.com", "b.com:8000"]``: lower-cased, checked."""
    if host is None:
        return None
    hosts = (host,) if isinstance(host, str) else tuple(host)
    if not hosts:
        raise ValueError("host= needs at least one host name, e.g. host='example.com'")
    checked: list[str] = []
    for name in hosts:
        if not isinstance(name, str) or not name or any(c in name for c in "/ \t@?#"):
            raise ValueError(
                f"host= takes host names such as 'example.com' or 'example.com:8000', got {name!r}"
            )
        checked.append(name.lower())
    return tuple(dict.fromkeys(checked))


def _view_methods(handler: Any) -> tuple[str, ...] | None:
    """The methods a class-based view defines (``HTTPMethodView.as_view()``), else ``None``."""
    view_class = getattr(handler, "view_class", None)
    if view_class is None:
        return None
    methods = tuple(
        m for m in HTTP_METHODS if m != "HEAD" and callable(getattr(view_class, m.lower(), None))
    )
    if callable(getattr(view_class, "head", None)):
        methods += ("HEAD",)
    if not methods:
        raise TypeError(
            f"The view {view_class.__name__} defines no method handler: add e.g. "
            "'async def get(self, request)'"
        )
    return methods


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


class Declarations(ABC):
    """The decorator surface shared by ``App`` and ``Blueprint``, over five abstract hooks."""

    # -- the hooks: App registers at once, Blueprint records and replays ---------------------

    @abstractmethod
    def _register_route(
        self, handler: Callable[..., Any], uri: str, methods: tuple[str, ...], options: RouteOptions
    ) -> None: ...

    @abstractmethod
    def _register_listener(
        self, listener: Callable[..., Any], event: str, priority: int
    ) -> None: ...

    @abstractmethod
    def _register_middleware(
        self, fn: Callable[..., Any], attach_to: str, priority: int
    ) -> None: ...

    @abstractmethod
    def _register_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
    ) -> None: ...

    @abstractmethod
    def _register_exception(
        self, exceptions: tuple[type[BaseException], ...], handler: Callable[..., Any]
    ) -> None: ...

    # -- routes --------------------------------------------------------------------------------

    def add_route(
        self,
        handler: F,
        uri: str,
        methods: Iterable[str] | str | None = None,
        *,
        host: str | Iterable[str] | None = None,
        name: str | None = None,
        strict_slashes: bool | None = None,
        stream: bool = False,
        version: int | str | float | None = None,
        version_prefix: str = "/v",
        error_format: str | None = None,
    ) -> F:
        """Register ``handler(request, **params)`` for ``uri`` and ``methods`` (``GET`` by
        default; a class-based view's own methods for ``View.as_view()`` or the class itself)."""
        handler = _as_view(handler)
        if not callable(handler):
            raise TypeError(f"Route handler must be callable, got {handler!r}")
        if not isinstance(uri, str):
            raise TypeError(f"Route path must be a str such as '/items/<id:int>', got {uri!r}")
        if error_format is not None:
            check_format(error_format, where="error_format")
        view_methods = _view_methods(handler)
        if view_methods is not None:
            stream = stream or bool(getattr(handler, "is_stream", False))
        options = RouteOptions(
            name=name,
            strict_slashes=strict_slashes,
            stream=stream,
            version=version,
            version_prefix=version_prefix,
            error_format=error_format,
            host=check_hosts(host),
        )
        if methods is None:
            methods = view_methods or ("GET",)
        self._register_route(handler, uri, _methods(methods), options)
        return handler

    def route(
        self,
        uri: str,
        methods: Iterable[str] | str = ("GET",),
        *,
        host: str | Iterable[str] | None = None,
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
        check_hosts(host)

        def decorator(handler: F) -> F:
            return self.add_route(
                handler,
                uri,
                methods,
                host=host,
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

    def static(
        self,
        uri: str,
        file_or_directory: str | PurePath,
        pattern: str = DEFAULT_PATTERN,
        use_modified_since: bool = True,
        use_content_range: bool = False,
        stream_large_files: bool | int = False,
        name: str = "static",
        host: str | Iterable[str] | None = None,
        strict_slashes: bool | None = None,
        content_type: str | None = None,
        apply: bool = True,
        resource_type: str | None = None,
        index: str | Sequence[str] | None = None,
        directory_view: bool = False,
        directory_handler: Any = None,
    ) -> None:
        """Serve a file, or the files under a directory, at ``uri`` (``GET`` and ``HEAD``).

        Sanic's arguments (docs/static-files.md): ``name`` for ``url_for("static", name=...,
        filename=...)``, ``index`` file(s) and ``directory_view`` for directories, validators
        and 304 (``use_modified_since``), ranges (``use_content_range``), ``content_type`` for
        every file. Nothing outside the directory is ever served (``runtime.static``).
        """
        from runtime.static import static_handler, static_options

        if not isinstance(uri, str) or not uri.startswith("/"):
            raise ValueError(f"static() needs a URI starting with '/', got {uri!r}")
        options = static_options(
            file_or_directory,
            pattern=pattern,
            use_modified_since=use_modified_since,
            use_content_range=use_content_range,
            stream_large_files=stream_large_files,
            content_type=content_type,
            apply=apply,
            resource_type=resource_type,
            index=index,
            directory_view=directory_view,
            directory_handler=directory_handler,
        )
        handler = static_handler(options)
        handler.__name__ = name
        methods = ("GET", "HEAD")
        if options.is_file:
            self.add_route(
                handler, uri, methods, host=host, name=name, strict_slashes=strict_slashes
            )
            return
        base = uri.rstrip("/")
        self.add_route(
            handler,
            f"{base}/<filename:path>",
            methods,
            host=host,
            name=name,
            strict_slashes=strict_slashes,
        )
        if options.indexes or options.directory_view:
            self.add_route(
                handler,
                f"{base}/",
                methods,
                host=host,
                name=f"{name}{STATIC_ROOT_SUFFIX}",
                strict_slashes=strict_slashes,
            )

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


__all__ = [
    "DEFAULT_PATTERN",
    "HTTP_METHODS",
    "STATIC_ROOT_SUFFIX",
    "Declarations",
    "EventName",
    "ListenerShorthand",
    "RouteOptions",
    "check_hosts",
    "check_name",
]
