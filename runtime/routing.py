"""Routes and the router: pure path matching, no asyncio and no app.

Rules:

1. A path starts with ``/``; its segments are static text or typed parameters ``<name:type>``
   (types in ``runtime.params``; ``<name>`` is ``str``). ``path`` parameters may span segments.
2. Static routes resolve with one dict lookup on the exact request path. Dynamic routes are grouped
   by segment count and tried most specific first: static text, then int, float, uuid, ymd, alpha,
   slug, str, segment by segment; routes with a ``path`` parameter are tried last. Dynamic hits
   are remembered in a bounded cache (``CACHE_SIZE``) that every registration empties.
3. Trailing slash: a route with ``strict_slashes=False`` answers both ``/a`` and ``/a/``; with
   ``True`` only the form it was registered with.
4. A path that matches but has no route for the method gives ``MethodNotAllowed`` (405) listing the
   allowed methods; no match at all gives ``NotFound`` (404). ``HEAD`` falls back to the ``GET``
   route of the path. ``OPTIONS`` has no automatic answer: without an ``OPTIONS`` route it is a 405
   whose ``Allow`` header lists what the path accepts (like Sanic without sanic-ext).
5. Registration errors are raised at ``add``: a bad path or unknown type is a ``ValueError``; the
   same path and an overlapping method, or one name for two different paths, is ``RouteExists``.
6. WebSocket routes live in their own table (``resolve_websocket``); ``resolve`` never returns one.
7. ``resolve`` takes the percent-decoded path (``request.path``).
8. Virtual hosts: a route added with ``hosts`` lives in a table of its own per host and answers
   only a request whose ``Host`` is one of them (compared without case, first as sent, then
   without its port). A request for a host with routes tries that host's table first, then the
   routes without a host; a request for any other host sees only the routes without a host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

from runtime.exceptions import MethodNotAllowed, NotFound, RouteExists
from runtime.params import PARAM_TYPES, ParamType, parse_segment

__all__ = ["Route", "Router"]

HTTP_METHODS = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
)
_METHOD_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]+")

# lower sorts first: the order in which dynamic segments are tried at one position
_TYPE_RANK = {
    name: rank
    for rank, name in enumerate(("int", "float", "uuid", "ymd", "alpha", "slug", "str", "path"))
}
_STATIC_RANK = -1
#: dynamic resolutions remembered (the cache is emptied when full and on every change)
CACHE_SIZE = 1024
_UNSAFE_PATH = re.compile(r"[\x00-\x20\x7f?#]")


class Route:
    """One registered route. ``extra`` and ``ctx`` are free for the app and the user."""

    __slots__ = (
        "_converters",
        "_regex",
        "_segments",
        "blueprint",
        "ctx",
        "extra",
        "handler",
        "hosts",
        "methods",
        "name",
        "params",
        "path",
        "stream",
        "strict_slashes",
        "subprotocols",
        "version",
        "websocket",
    )

    def __init__(
        self,
        path: str,
        methods: frozenset[str],
        handler: Callable[..., Any],
        name: str,
        *,
        params: tuple[str, ...] = (),
        stream: bool = False,
        websocket: bool = False,
        subprotocols: tuple[str, ...] | None = None,
        strict_slashes: bool = False,
        version: int | float | str | None = None,
        blueprint: str | None = None,
        hosts: tuple[str, ...] | None = None,
    ) -> None:
        self.path = path
        self.hosts = hosts
        self.methods = methods
        self.handler = handler
        self.name = name
        self.params = params
        self.stream = stream
        self.websocket = websocket
        self.subprotocols = subprotocols
        self.strict_slashes = strict_slashes
        self.version = version
        self.blueprint = blueprint
        self.ctx = SimpleNamespace()
        self.extra: dict[str, Any] = {}
        self._regex: re.Pattern[str] | None = None
        self._converters: tuple[tuple[str, ParamType], ...] = ()
        self._segments: tuple[tuple[str, ParamType | None], ...] = ()

    @property
    def is_dynamic(self) -> bool:
        return bool(self.params)

    def __repr__(self) -> str:
        methods = ",".join(sorted(self.methods))
        return f"<Route {self.name!r} {methods} {self.path}>"


class _Group:
    """Routes sharing one path shape (same statics and types), keyed by method per slash form."""

    __slots__ = ("by_method", "rank", "regex", "shape")

    def __init__(self, shape: str, regex: re.Pattern[str] | None, rank: tuple[int, ...]) -> None:
        self.shape = shape
        self.regex = regex
        self.rank = rank
        # index 0: request without trailing slash, 1: with one
        self.by_method: tuple[dict[str, Route], dict[str, Route]] = ({}, {})


class _Table:
    __slots__ = ("cache", "dynamic", "groups", "multi", "plan", "static")

    def __init__(self) -> None:
        # (path, method) -> (route, params) for dynamic hits; bounded, cleared on change
        self.cache: dict[tuple[str, str], tuple[Route, dict[str, Any]]] = {}
        # exact request path -> method -> route
        self.static: dict[str, dict[str, Route]] = {}
        # segment count -> groups, most specific first (sorted at finalize)
        self.dynamic: dict[int, list[_Group]] = {}
        # groups with a multi-segment (path) parameter, tried after the others
        self.multi: list[_Group] = []
        self.groups: dict[str, _Group] = {}
        # segment count -> what to try in order: that count's groups, then the multi groups
        self.plan: dict[int, list[_Group]] = {}


def _strip(path: str) -> str:
    return path[:-1] if len(path) > 1 and path[-1] == "/" else path


class Router:
    """Holds routes; ``resolve`` finds the route and its typed parameters for a request."""

    def __init__(self) -> None:
        self._http = _Table()
        self._ws = _Table()
        self._by_host: dict[str, _Table] = {}  # virtual hosts (rule 8)
        #: True once a route was added for a virtual host (``resolve`` then needs the Host)
        self.has_hosts = False
        self._names: dict[str, Route] = {}
        self._routes: list[Route] = []
        self._dirty = False

    @property
    def routes(self) -> list[Route]:
        """Every route in registration order (HTTP and WebSocket)."""
        return list(self._routes)

    @property
    def routes_by_name(self) -> dict[str, Route]:
        return dict(self._names)

    # -- registration --------------------------------------------------------------------------

    def add(
        self,
        path: str,
        methods: Iterable[str],
        handler: Callable[..., Any],
        *,
        name: str,
        strict_slashes: bool = False,
        stream: bool = False,
        websocket: bool = False,
        subprotocols: Iterable[str] | None = None,
        version: int | float | str | None = None,
        version_prefix: str = "/v",
        blueprint: str | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Route:
        """Register ``handler`` for ``path`` and ``methods``; see the module rules for errors."""
        if not isinstance(path, str):
            raise TypeError(f"Route path must be a str, got {type(path).__name__}")
        if not path.startswith("/"):
            raise ValueError(f"Route path {path!r} must start with '/', e.g. '/{path}'")
        if _UNSAFE_PATH.search(path):
            raise ValueError(
                f"Route path {path!r} contains a space, control character, '?' or '#'; "
                "put query strings in url_for arguments, not in the route"
            )
        if "//" in path:
            raise ValueError(f"Route path {path!r} has an empty segment ('//'); remove it")
        if version is not None:
            path = self._versioned(path, version, version_prefix)
        if isinstance(methods, str):
            methods = [methods]
        method_set = frozenset(m.upper() for m in methods)
        if not method_set:
            raise ValueError(f"Route {path!r} needs at least one HTTP method")
        for method in method_set:
            if _METHOD_TOKEN.fullmatch(method) is None:
                raise ValueError(f"Invalid HTTP method {method!r} for route {path!r}")
        if websocket:
            method_set = frozenset({"GET"})
        if not name or not isinstance(name, str):
            raise ValueError(f"Route {path!r} needs a non-empty name")

        segments, params = self._parse(path)
        route = Route(
            path,
            method_set,
            handler,
            name,
            params=tuple(params),
            stream=stream,
            websocket=websocket,
            subprotocols=tuple(subprotocols) if subprotocols is not None else None,
            strict_slashes=strict_slashes,
            version=version,
            blueprint=blueprint,
            hosts=tuple(h.lower() for h in hosts) if hosts else None,
        )
        if route.hosts and websocket:
            raise ValueError(f"Route {path!r}: websocket routes take no host= (yet)")
        route._segments = tuple(segments)
        existing = self._names.get(name)
        if existing is not None and existing.path != path:
            raise RouteExists(
                f"Route name {name!r} is already used by {existing!r}; give {path!r} another name"
            )
        if route.hosts:
            tables = [self._by_host.get(host) or _Table() for host in route.hosts]
        else:
            tables = [self._ws if websocket else self._http]
        for table in tables:
            if params:
                self._add_dynamic(table, route)
            else:
                self._add_static(table, route)
        for host, table in zip(route.hosts or (), tables, strict=False):
            self._by_host[host] = table
            self.has_hosts = True
        self._names.setdefault(name, route)
        self._routes.append(route)
        return route

    @staticmethod
    def _versioned(path: str, version: int | float | str, prefix: str) -> str:
        text = str(version).strip()
        if text.lower().startswith("v"):
            text = text[1:]
        if not text or "/" in text:
            raise ValueError(f"Invalid route version {version!r}: use a number like 1 or 1.1")
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        return f"{prefix}{text}{path}" if path != "/" else f"{prefix}{text}/"

    @staticmethod
    def _parse(path: str) -> tuple[list[tuple[str, ParamType | None]], list[str]]:
        body = path[1:]
        if body.endswith("/"):
            body = body[:-1]
        parts = body.split("/") if body else []
        segments: list[tuple[str, ParamType | None]] = []
        names: list[str] = []
        for part in parts:
            if "<" in part or ">" in part:
                parsed = parse_segment(part)
                if parsed is None:
                    raise ValueError(
                        f"Route path {path!r}: segment {part!r} mixes text and a parameter; "
                        "a parameter must be a whole segment like <name:type>"
                    )
                pname, ptype = parsed
                if pname in names:
                    raise ValueError(f"Route path {path!r} uses parameter {pname!r} twice")
                if pname.startswith("_"):
                    raise ValueError(
                        f"Route path {path!r}: parameter names may not start with '_' "
                        f"({pname!r}); url_for reserves them"
                    )
                names.append(pname)
                segments.append((pname, ptype))
            else:
                segments.append((part, None))
        return segments, names

    def _add_static(self, table: _Table, route: Route) -> None:
        path = route.path
        stripped = _strip(path)
        if route.strict_slashes:
            keys = [path]
        else:
            keys = [stripped] if stripped == "/" else [stripped, stripped + "/"]
        for key in keys:
            self._check_free(table.static.get(key, {}), route, key)
        table.cache.clear()
        for key in keys:
            by_method = table.static.setdefault(key, {})
            for method in route.methods:
                by_method[method] = route

    def _add_dynamic(self, table: _Table, route: Route) -> None:
        shape_parts: list[str] = []
        regex_parts: list[str] = []
        rank: list[int] = []
        converters: list[tuple[str, ParamType]] = []
        multi = False
        for text, ptype in route._segments:
            if ptype is None:
                shape_parts.append(text)
                regex_parts.append(re.escape(text))
                rank.append(_STATIC_RANK)
            else:
                shape_parts.append(f"<:{ptype.name}>")
                regex_parts.append(f"({ptype.pattern})")
                rank.append(_TYPE_RANK.get(ptype.name, len(_TYPE_RANK)))
                converters.append((text, ptype))
                multi = multi or ptype.multi_segment
        shape = "/" + "/".join(shape_parts)
        route._converters = tuple(converters)
        group = table.groups.get(shape)
        if group is None:
            regex = re.compile("/" + "/".join(regex_parts))
            group = _Group(shape, regex, tuple(rank))
            table.groups[shape] = group
            if multi:
                table.multi.append(group)
            else:
                table.dynamic.setdefault(len(shape_parts), []).append(group)
        route._regex = group.regex
        slash = 1 if route.path.endswith("/") else 0
        forms = [slash] if route.strict_slashes else [0, 1]
        for form in forms:
            self._check_free(group.by_method[form], route, route.path)
        for form in forms:
            for method in route.methods:
                group.by_method[form][method] = route
        self._dirty = True

    @staticmethod
    def _check_free(by_method: dict[str, Route], route: Route, path: str) -> None:
        for method in sorted(route.methods):
            other = by_method.get(method)
            if other is not None:
                raise RouteExists(
                    f"{method} {path} is already handled by {other!r}; cannot add {route!r}. "
                    "Use another path or method, or remove one of them"
                )

    def finalize(self) -> None:
        """Order dynamic routes most specific first. Called automatically when needed."""
        for table in (self._http, self._ws, *self._by_host.values()):
            for groups in table.dynamic.values():
                groups.sort(key=lambda g: g.rank)
            table.multi.sort(key=lambda g: (-len(g.rank), g.rank))
            table.plan = {count: groups + table.multi for count, groups in table.dynamic.items()}
            table.cache.clear()
        self._dirty = False

    # -- resolution ----------------------------------------------------------------------------

    def resolve(
        self, path: str, method: str, host: str | None = None
    ) -> tuple[Route, dict[str, Any]]:
        """The route for ``method`` on ``path`` (and the ``Host`` ``host``, rule 8) and its
        converted parameters. Raises ``NotFound`` or ``MethodNotAllowed`` (with
        ``allowed_methods``).
        """
        if host is not None and self._by_host:
            table = self._host_table(host)
            if table is not None:
                try:
                    return self._resolve_in(table, path, method)
                except (NotFound, MethodNotAllowed) as miss:
                    try:
                        return self._resolve_in(self._http, path, method)
                    except NotFound:
                        raise miss from None
        by_method = self._http.static.get(path)  # the hot path, written out (no extra call)
        if by_method is not None:
            route = by_method.get(method)
            if route is not None:
                return route, {}
            if method == "HEAD":
                route = by_method.get("GET")
                if route is not None:
                    return route, {}
        return self._resolve_slow(self._http, path, method, by_method)

    def _host_table(self, host: str) -> _Table | None:
        host = host.lower()
        table = self._by_host.get(host)
        if table is None and ":" in host and not host.endswith("]"):
            table = self._by_host.get(host.rpartition(":")[0])
        return table

    def _resolve_in(self, table: _Table, path: str, method: str) -> tuple[Route, dict[str, Any]]:
        by_method = table.static.get(path)
        if by_method is not None:
            route = by_method.get(method)
            if route is not None:
                return route, {}
            if method == "HEAD":
                route = by_method.get("GET")
                if route is not None:
                    return route, {}
        return self._resolve_slow(table, path, method, by_method)

    def resolve_websocket(self, path: str) -> tuple[Route, dict[str, Any]]:
        """The WebSocket route for ``path``; raises ``NotFound`` when there is none."""
        by_method = self._ws.static.get(path)
        if by_method is not None:
            return by_method["GET"], {}
        try:
            return self._resolve_slow(self._ws, path, "GET", None)
        except (NotFound, MethodNotAllowed):  # (websocket tables only hold GET)
            raise NotFound(f"No WebSocket route for {path}") from None

    def _resolve_slow(
        self, table: _Table, path: str, method: str, static_hit: dict[str, Route] | None
    ) -> tuple[Route, dict[str, Any]]:
        if self._dirty:
            self.finalize()
        key = (path, method)
        cached = table.cache.get(key)
        if cached is not None:
            return cached[0], cached[1].copy()
        allowed: set[str] | None = set(static_hit) if static_hit else None
        if len(path) > 1 and path[-1] == "/":
            stripped, slash = path[:-1], 1
        else:
            stripped, slash = path, 0
        count = stripped.count("/") if len(stripped) > 1 else 0
        for group in table.plan.get(count, table.multi):
            match = group.regex.fullmatch(stripped)  # type: ignore[union-attr]
            if match is None:
                continue
            by_method = group.by_method[slash]
            route = by_method.get(method)
            if route is None and method == "HEAD":
                route = by_method.get("GET")
            if route is None:
                if by_method:
                    allowed = allowed or set()
                    allowed.update(by_method)
                continue
            params = self._convert(route, match)
            if params is not None:
                cache = table.cache
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                cache[key] = (route, params)
                return route, params.copy()
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(
                f"Method {method} not allowed for URL {path}",
                method=method,
                allowed_methods=allowed,
            )
        raise NotFound(f"Requested URL {path} not found")

    @staticmethod
    def _convert(route: Route, match: re.Match[str]) -> dict[str, Any] | None:
        converters = route._converters
        if len(converters) == 1:
            name, ptype = converters[0]
            try:
                return {name: ptype.convert(match.group(1))}
            except (ValueError, OverflowError):
                return None
        params: dict[str, Any] = {}
        for (name, ptype), text in zip(converters, match.groups(), strict=True):
            try:
                params[name] = ptype.convert(text)
            except (ValueError, OverflowError):  # e.g. 2023-02-30 for ymd
                return None
        return params

    # -- reverse -------------------------------------------------------------------------------

    def find_route_by_name(self, name: str) -> Route | None:
        return self._names.get(name)

    def url_for(self, name: str, /, **params: Any) -> str:
        """Build the URL of route ``name``.

        Route parameters are checked against their type and quoted; other keyword arguments
        become the query string (lists give repeated keys). ``_anchor`` adds ``#anchor``;
        ``_external=True`` (or ``_server``) gives ``scheme://server/path`` with ``_scheme``
        (default ``http``) and ``_server`` (required for external URLs).
        """
        route = self._names.get(name)
        if route is None:
            known = ", ".join(sorted(self._names)) or "none registered"
            raise NotFound(f"No route named {name!r} for url_for (known names: {known})")
        anchor = params.pop("_anchor", None)
        external = bool(params.pop("_external", False))
        scheme = params.pop("_scheme", None)
        server = params.pop("_server", None)
        if server:
            external = True
        if scheme and not external:
            raise ValueError("url_for: _scheme needs _external=True (and a _server)")
        parts: list[str] = []
        for text, ptype in route._segments:
            if ptype is None:
                parts.append(quote(text, safe="/:@!$&'()*+,;=-._~"))
                continue
            if text not in params:
                raise ValueError(
                    f"url_for({name!r}) needs the route parameter {text!r} "
                    f"(route path {route.path})"
                )
            value = params.pop(text)
            as_text = _param_text(value, ptype)
            if ptype.regex.fullmatch(as_text) is None:
                raise ValueError(
                    f"url_for({name!r}): {text}={value!r} is not a valid {ptype.name} "
                    f"for route path {route.path}"
                )
            parts.append(quote(as_text, safe="/" if ptype.multi_segment else ""))
        path = "/" + "/".join(parts)
        if route.path.endswith("/") and path != "/":
            path += "/"
        url = path
        query = {k: v for k, v in params.items() if not k.startswith("_")}
        if query:
            url += "?" + urlencode(query, doseq=True)
        if anchor:
            url += "#" + quote(str(anchor), safe="")
        if external:
            if not server:
                raise ValueError(f"url_for({name!r}, _external=True) needs _server='host[:port]'")
            url = f"{scheme or 'http'}://{server}{url}"
        return url


def _param_text(value: Any, ptype: ParamType) -> str:
    if ptype.name == "ymd" and hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d"))
    if isinstance(value, bool):
        return str(int(value)) if ptype.name in ("int", "float") else str(value)
    return str(value)


# used by the docs/tests to list supported types
SUPPORTED_TYPES = tuple(sorted(PARAM_TYPES))
