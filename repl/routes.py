"""``routes``: method, path, name and endpoint of every route of the console's ``app``.

One small adapter per framework, chosen by the module of the target's class (its MRO, so a
subclass of ``FastAPI`` or ``Flask`` is recognised). A framework is never imported here: an
adapter only runs for an object whose class comes from that framework, which is imported already.

| framework | where the routes are |
|---|---|
| vivace | ``app.router.routes`` |
| Starlette, FastAPI | ``app.routes``; ``Mount`` and ``Host`` flattened into their sub-routes |
| Litestar | ``app.routes`` (``HTTPRoute.route_handlers``, the automatic OPTIONS handler left out) |
| Flask, Quart | ``app.url_map`` (werkzeug rules; ``HEAD`` and ``OPTIONS`` left out) |
| Django | ``django.urls.get_resolver()``, walked through every ``include()`` |

A Django class-based view is named by its ``view_class`` (``as_view()`` wraps ``View.dispatch``).

Names are the ones the framework resolves: Django's ``namespace:name``, and under a named Starlette
``Mount`` or ``Host`` ``mount:name`` (``app.url_path_for("m:deep:b")``). A route under a ``Host``
shows as ``//host/path``: it answers only on that host.

A middleware object wrapping one of these (``CORSMiddleware(app)``) is looked through via its
``app`` attribute. Anything else is "not known".
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, overload

__all__ = ["Route", "Routes", "RoutesView", "routes_of"]

ANY = "ANY"  # a route that takes every method (Django function views, ASGI mounts)
WS = "WS"  # a websocket route


class Route(NamedTuple):
    """One row of ``routes``."""

    method: str
    path: str
    name: str
    endpoint: str


def _table(found: list[Route]) -> str:
    header = ("method", "path", "name", "endpoint")
    body = [tuple(r) for r in found]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Routes(list[Route]):
    """The routes of one app at one moment; its repr is a table."""

    def __init__(self, rows: Iterable[Route] = (), *, framework: str = "") -> None:
        super().__init__(rows)
        self.framework = framework

    def __repr__(self) -> str:
        if not self:
            return f"no routes ({self.framework} app)" if self.framework else "no routes"
        count = f"{len(self)} route{'s' if len(self) != 1 else ''}"
        return _table(list(self)) + f"\n{count} ({self.framework})"


def _endpoint(fn: object) -> str:
    """``module.qualname`` of a handler (through ``functools.partial`` and ``__wrapped__``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    inner = getattr(fn, "__wrapped__", None)
    if inner is not None and callable(inner):
        fn = inner
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if qualname is None:  # an instance (an ASGI app mounted as a route)
        cls = type(fn)
        return f"{cls.__module__}.{cls.__qualname__}()"
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _methods(methods: Iterable[str] | None, *, drop: Iterable[str] = ()) -> str:
    """Sorted methods, ``GET`` first; ``HEAD`` left out when ``GET`` is there (it is implied)."""
    if not methods:
        return ANY
    found = {m.upper() for m in methods} - set(drop)
    if "GET" in found:
        found.discard("HEAD")
    order = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return ",".join(sorted(found, key=lambda m: (order.index(m) if m in order else 9, m))) or ANY


# --- one adapter per framework ------------------------------------------------------------------


def _vivace(app: Any) -> list[Route]:
    found = []
    for route in app.router.routes:
        method = WS if route.websocket else _methods(route.methods)
        found.append(Route(method, route.path, route.name, _endpoint(route.handler)))
    return found


def _starlette(app: Any) -> list[Route]:
    routing = sys.modules["starlette.routing"]
    # FastAPI >= 0.16x keeps an included router as one entry; its public iter_route_contexts
    # expands it into the routes as served (prefix, name, methods, endpoint)
    expand = getattr(sys.modules.get("fastapi.routing"), "iter_route_contexts", None)

    def walk(
        routes: Iterable[Any], prefix: str, host: str, spaces: tuple[str, ...]
    ) -> Iterator[Route]:
        where = f"//{host}" if host else ""  # a Host's routes answer only on that host

        def named(route: Any) -> str:
            # under a named Mount or Host the name is namespaced: app.url_path_for("m:deep:b")
            own = getattr(route, "name", None)
            return ":".join((*spaces, str(own))) if own else ""

        for route in expand(list(routes)) if expand is not None else routes:
            kind = getattr(route, "original_route", route)  # a FastAPI RouteContext, or the route
            name = named(route)
            if isinstance(kind, (routing.Mount, routing.Host)):
                subroutes = list(getattr(route, "routes", None) or [])
                if isinstance(kind, routing.Host):  # no path of its own: it matches the host
                    inner_host, path = str(kind.host), prefix
                else:
                    inner_host, path = host, prefix + str(getattr(kind, "path", "") or "")
                if subroutes:
                    inner = (*spaces, str(kind.name)) if kind.name else spaces
                    yield from walk(subroutes, path, inner_host, inner)
                else:  # an ASGI app mounted there (StaticFiles, another framework)
                    shown = f"//{inner_host}" if inner_host else ""
                    yield Route(ANY, shown + path + "/", name, _endpoint(kind.app))
            elif isinstance(kind, routing.WebSocketRoute):
                path = where + prefix + str(route.path)
                yield Route(WS, path, name, _endpoint(route.endpoint))
            else:
                methods = getattr(route, "methods", None)
                endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
                path = where + prefix + str(getattr(route, "path", "?"))
                yield Route(_methods(methods), path, name, _endpoint(endpoint))

    return list(walk(app.routes, "", "", ()))


def _litestar(app: Any) -> list[Route]:
    found = []
    for route in app.routes:
        handlers = getattr(route, "route_handlers", None)
        if handlers is None:  # WebSocketRoute, ASGIRoute: one handler
            handler = route.route_handler
            kind = type(route).__name__
            method = WS if "WebSocket" in kind else ANY
            found.append(Route(method, route.path, handler.name or "", _endpoint(handler.fn)))
            continue
        for handler in handlers:
            fn = handler.fn
            if "create_options_handler" in getattr(fn, "__qualname__", ""):
                continue  # the OPTIONS handler Litestar adds to every path
            method = _methods(handler.http_methods)
            found.append(Route(method, route.path, handler.name or "", _endpoint(fn)))
    return found


def _werkzeug(app: Any) -> list[Route]:
    """Flask and Quart: ``app.url_map`` rules, ``app.view_functions`` endpoints."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        method = WS if getattr(rule, "websocket", False) else None
        method = method or _methods(rule.methods, drop=("HEAD", "OPTIONS"))
        found.append(Route(method, rule.rule, rule.endpoint, _endpoint(view) if view else "-"))
    return found


def _view_class(callback: Any) -> type | None:
    """The class of a Django class-based view (``as_view()`` sets ``view_class``; a decorator
    made with ``functools.wraps`` copies it, others are looked through via ``__wrapped__``)."""
    fn = callback
    for _ in range(16):
        view_class = getattr(fn, "view_class", None)
        if isinstance(view_class, type):
            return view_class
        fn = getattr(fn, "__wrapped__", None)
        if fn is None:
            break
    return None


def _django_endpoint(callback: Any) -> str:
    """A class-based view by its class (``as_view()`` wraps ``View.dispatch``)."""
    view_class = _view_class(callback)
    if view_class is None:
        return _endpoint(callback)
    return f"{view_class.__module__}.{view_class.__qualname__}"


def _django_methods(callback: Any) -> str:
    view_class = _view_class(callback)
    if view_class is None:
        return ANY  # a function view: Django does not say which methods it answers
    names = getattr(view_class, "http_method_names", ())
    return _methods([m for m in names if m != "options" and hasattr(view_class, m)])


def _django(app: Any) -> list[Route]:
    urls = sys.modules["django.urls"]  # imported by django.core.handlers
    resolver = urls.get_resolver()

    def pattern_text(pattern: Any) -> str:
        text = str(pattern)
        if type(pattern).__name__ == "RegexPattern":
            text = text.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        return text

    def walk(patterns: Iterable[Any], prefix: str, spaces: tuple[str, ...]) -> Iterator[Route]:
        for entry in patterns:
            path = prefix + pattern_text(entry.pattern)
            if isinstance(entry, urls.URLResolver):
                inner = (*spaces, entry.namespace) if entry.namespace else spaces
                yield from walk(entry.url_patterns, path, inner)
            else:
                name = ":".join((*spaces, entry.name)) if entry.name else ""
                callback = entry.callback
                methods = _django_methods(callback)
                yield Route(methods, "/" + path, name, _django_endpoint(callback))

    return list(walk(resolver.url_patterns, "", ()))


#: top-level package of a class in the target's MRO -> (display name, adapter)
ADAPTERS: dict[str, tuple[str, Callable[[Any], list[Route]]]] = {
    "runtime": ("vivace", _vivace),
    "fastapi": ("FastAPI", _starlette),
    "starlette": ("Starlette", _starlette),
    "litestar": ("Litestar", _litestar),
    "quart": ("Quart", _werkzeug),
    "flask": ("Flask", _werkzeug),
    "django": ("Django", _django),
}
HAS_ROUTES: dict[str, str] = {  # what an adapter needs on the object (middleware lack it)
    "runtime": "router",
    "fastapi": "routes",
    "starlette": "routes",
    "litestar": "routes",
    "quart": "url_map",
    "flask": "url_map",
    "django": "get_response",  # the WSGI/ASGI handler; the routes come from the URLconf
}


def _adapter(obj: object) -> tuple[str, Callable[[Any], list[Route]]] | None:
    for cls in type(obj).__mro__:
        package = (cls.__module__ or "").split(".")[0]
        if package in ADAPTERS and hasattr(obj, HAS_ROUTES[package]):
            return ADAPTERS[package]
    return None


def routes_of(target: object) -> Routes | None:
    """The routes of ``target``, or ``None`` when its framework is not known."""
    obj: object = target
    for _ in range(8):  # look through middleware wrappers: CORSMiddleware(app=...)
        found = _adapter(obj)
        if found is not None:
            framework, adapter = found
            return Routes(adapter(obj), framework=framework)
        inner = getattr(obj, "app", None)
        if inner is None or inner is obj:
            break
        obj = inner
    return None


class RoutesView:
    """The console's ``routes``: the routes of the current ``app``, read again at each use."""

    def __init__(self, target: Callable[[], object], kind: Callable[[], str]) -> None:
        self._target = target
        self._kind = kind  # "ASGI", "WSGI" ...: named in the "not known" line

    def __call__(self) -> Routes:
        """A snapshot (a list of ``Route`` rows); empty when the framework is not known."""
        return routes_of(self._target()) or Routes()

    def __iter__(self) -> Iterator[Route]:
        return iter(self())

    def __len__(self) -> int:
        return len(self())

    @overload
    def __getitem__(self, index: int) -> Route: ...

    @overload
    def __getitem__(self, index: slice) -> list[Route]: ...

    def __getitem__(self, index: int | slice) -> Route | list[Route]:
        return self()[index]

    def __repr__(self) -> str:
        found = routes_of(self._target())
        if found is None:
            return f"routes: not known for a plain {self._kind()} app"
        return repr(found)
