"""Blueprints and blueprint groups, and the registration protocol they replay onto.

A ``Blueprint`` records each declaration (the ``runtime.declarations.Declarations`` sugar) and
replays it on every app it is attached to (declarations made after attaching apply immediately),
through the app's public registration methods: the :class:`Registrar` protocol, which ``App``
implements.

A blueprint's routes get the name ``"<blueprint>.<handler>"``, its middleware and exception
handlers apply only to its own routes, its listeners sort after the app's of equal priority, and its
signal handlers carry the condition ``{"__blueprint__": name}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from runtime.declarations import (
    Declarations,
    EventName,
    F,
    ListenerShorthand,
    RouteOptions,
    check_hosts,
    check_name,
)
from runtime.lifecycle import ListenerRegistry

if TYPE_CHECKING:
    from runtime.routing import Route


class Registrar(Protocol):
    """What a blueprint replays its declarations onto: the public registration side of ``App``.

    Each ``add_*_entry`` registers one declaration at once. ``blueprint`` names the blueprint it
    comes from (``None``: the app's own); it scopes middleware and exception handlers to that
    blueprint's routes and orders its listeners after the app's of equal priority. ``dispatch`` and
    ``event`` are the app's signal methods, which ``bp.dispatch`` and ``bp.event`` go through.
    """

    def add_route_entry(
        self,
        handler: Callable[..., Any],
        uri: str,
        methods: tuple[str, ...],
        options: RouteOptions,
        *,
        blueprint: str | None,
    ) -> Route: ...

    def add_listener_entry(
        self, listener: Callable[..., Any], event: str, priority: int, *, blueprint: str | None
    ) -> None: ...

    def add_middleware_entry(
        self, fn: Callable[..., Any], attach_to: str, priority: int, *, blueprint: str | None
    ) -> None: ...

    def add_signal_entry(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
        *,
        blueprint: str | None,
    ) -> None: ...

    def add_exception_entry(
        self,
        exceptions: tuple[type[BaseException], ...],
        handler: Callable[..., Any],
        *,
        blueprint: str | None,
    ) -> None: ...

    async def dispatch(
        self,
        event: EventName,
        *,
        context: Mapping[str, Any] | None = None,
        condition: Mapping[str, Any] | None = None,
        fail_not_found: bool = True,
        inline: bool = False,
        reverse: bool = False,
    ) -> Any: ...

    async def event(
        self,
        event: EventName,
        timeout: float | None = None,
        *,
        condition: Mapping[str, Any] | None = None,
        exclusive: bool = True,
    ) -> dict[str, Any]: ...


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


Declaration = Callable[[Registrar, AttachOptions], None]


class Blueprint(Declarations):
    """A named group of routes, middleware, listeners, signals and exception handlers."""

    def __init__(
        self,
        name: str,
        url_prefix: str | None = None,
        host: str | Iterable[str] | None = None,
        version: int | str | float | None = None,
        strict_slashes: bool | None = None,
        version_prefix: str = "/v",
    ) -> None:
        self.name = check_name("Blueprint", name)
        if url_prefix is not None and not isinstance(url_prefix, str):
            raise TypeError(f"url_prefix must be a str such as '/api', got {url_prefix!r}")
        self.url_prefix = url_prefix
        #: the virtual host(s) of every route of the blueprint that names none itself
        self.host = check_hosts(host)
        self.version = version
        self.strict_slashes = strict_slashes
        self.version_prefix = version_prefix
        self.ctx = SimpleNamespace()
        self._declarations: list[Declaration] = []
        self._attached: list[tuple[Registrar, AttachOptions]] = []
        self.routes: list[Route] = []

    def __repr__(self) -> str:
        return f"Blueprint(name={self.name!r}, url_prefix={self.url_prefix!r})"

    @property
    def apps(self) -> list[Registrar]:
        """The apps this blueprint is attached to."""
        return [app for app, _ in self._attached]

    @property
    def registered(self) -> bool:
        return bool(self._attached)

    def _declare(self, declaration: Declaration) -> None:
        self._declarations.append(declaration)
        for app, options in self._attached:
            declaration(app, options)

    def _attach(self, app: Registrar, options: AttachOptions) -> None:
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

        def declaration(app: Registrar, attach: AttachOptions) -> None:
            route_options = options._replace(
                name=route_name,
                version=options.version if options.version is not None else attach.version,
                version_prefix=options.version_prefix
                if options.version_prefix != "/v"
                else attach.version_prefix,
                strict_slashes=options.strict_slashes
                if options.strict_slashes is not None
                else attach.strict_slashes,
                host=options.host if options.host is not None else self.host,
            )
            route = app.add_route_entry(
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

        def declaration(app: Registrar, attach: AttachOptions) -> None:
            app.add_listener_entry(listener, event, priority, blueprint=self.name)

        self._declare(declaration)

    def _register_middleware(self, fn: Callable[..., Any], attach_to: str, priority: int) -> None:
        def declaration(app: Registrar, attach: AttachOptions) -> None:
            app.add_middleware_entry(fn, attach_to, priority, blueprint=self.name)

        self._declare(declaration)

    def _register_signal(
        self,
        handler: Callable[..., Any] | None,
        event: EventName,
        condition: Mapping[str, Any] | None,
        exclusive: bool,
        priority: int,
    ) -> None:
        def declaration(app: Registrar, attach: AttachOptions) -> None:
            app.add_signal_entry(
                handler, event, condition, exclusive, priority, blueprint=self.name
            )

        self._declare(declaration)

    def _register_exception(
        self, exceptions: tuple[type[BaseException], ...], handler: Callable[..., Any]
    ) -> None:
        def declaration(app: Registrar, attach: AttachOptions) -> None:
            app.add_exception_entry(exceptions, handler, blueprint=self.name)

        self._declare(declaration)

    # -- signals across apps -------------------------------------------------------------------

    def _require_apps(self, what: str) -> list[Registrar]:
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


def attachments(
    item: Blueprint | BlueprintGroup | Iterable[Blueprint | BlueprintGroup], options: AttachOptions
) -> Iterator[tuple[Blueprint, AttachOptions]]:
    """``(blueprint, options)`` for each blueprint ``app.blueprint(item, ...)`` attaches, in order
    (a group's members, a list's items one after another)."""
    if isinstance(item, BlueprintGroup):
        yield from item.attachments(options)
    elif isinstance(item, Blueprint):
        yield item, options
    elif isinstance(item, (list, tuple, set, frozenset)):
        for member in item:
            yield from attachments(member, options)
    else:
        raise TypeError(f"app.blueprint takes a Blueprint or a BlueprintGroup, got {item!r}")


__all__ = [
    "AttachOptions",
    "Blueprint",
    "BlueprintGroup",
    "Declarations",
    "ListenerShorthand",
    "Registrar",
    "RouteOptions",
    "attachments",
    "check_name",
    "join_uri",
]
