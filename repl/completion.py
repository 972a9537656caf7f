"""Tab inside the path string of ``client.get("``, ``do("``, ... completes the app's route paths.

The paths come from the same place as ``routes`` (``repl.routes``: every framework vivace knows),
read again at each Tab, so a route added in the console or by ``refresh()`` is there. Each
completion shows the whole path with its parameters (``/items/<item_id:int>``) and, beside it,
the methods and the route's name; what is inserted stops before the first parameter, where the
value is typed (typed up to there, Tab inserts the placeholder to type over). ``client.get``
offers the routes that take GET, ``client.websocket`` the websocket routes, ``do(`` and
``client.request(`` every route. Anywhere else, ptpython's own completer runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

__all__ = ["RouteCompleter", "path_context", "route_completions"]

_CALL = re.compile(
    r"""(?:\bclient\s*\.\s*(?P<verb>get|post|put|patch|delete|head|options|stream|websocket)\s*\(
        |\bclient\s*\.\s*request\s*\(\s*(?P<q0>['"])(?P<method>[A-Za-z]+)(?P=q0)\s*,
        |\b(?P<do>do)\s*\()
        \s*(?:path\s*=\s*|url\s*=\s*)?(?P<quote>['"])(?P<prefix>[^'"]*)$""",
    re.VERBOSE,
)

#: the methods a route must take for each ``client`` verb (None: any route but websockets)
_WANTED = {
    "get": "GET",
    "post": "POST",
    "put": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "head": "GET",  # a GET route answers HEAD
    "options": None,
    "stream": None,
}

_PARAMETER = re.compile(r"[<{:]")  # vivace/Flask <x>, Starlette/FastAPI/Litestar {x}, Django <x>


def path_context(text: str) -> tuple[str | None, str] | None:
    """``(method wanted or None, typed prefix)`` when ``text`` ends inside a path string of a
    request call; ``"WS"`` for ``client.websocket``; None elsewhere."""
    match = _CALL.search(text)
    if match is None:
        return None
    prefix = match.group("prefix")
    if match.group("do") is not None:
        return None, prefix
    if match.group("method") is not None:
        return match.group("method").upper(), prefix
    verb = match.group("verb")
    if verb == "websocket":
        return "WS", prefix
    return _WANTED[verb], prefix


def _takes(route_method: str, wanted: str | None) -> bool:
    methods = {m.strip().upper() for m in route_method.split(",")}
    if wanted == "WS":
        return "WS" in methods
    if "WS" in methods:
        return False
    return wanted is None or wanted in methods or "ANY" in methods


def _static_part(path: str) -> str:
    """``/items/`` of ``/items/<item_id:int>``: what is inserted (the value is typed)."""
    found = _PARAMETER.search(path)
    return path if found is None else path[: found.start()]


def route_completions(
    routes: Iterable[Any], wanted: str | None, prefix: str
) -> Iterable[Completion]:
    seen: set[str] = set()
    for route in routes:
        path = str(route.path)
        if not _takes(str(route.method), wanted) or path in seen:
            continue
        if not path.startswith(prefix):
            continue
        inserted = _static_part(path)
        if not inserted.startswith(prefix) or inserted == prefix:
            inserted = path  # typed up to (or into) a parameter: the path with its parameters
        seen.add(path)
        meta = f"{route.method} {route.name}".strip()
        yield Completion(inserted, start_position=-len(prefix), display=path, display_meta=meta)


class RouteCompleter(Completer):
    """Route paths inside a request call's string; ``fallback`` (ptpython's) elsewhere."""

    def __init__(self, get_namespace: Callable[[], dict[str, Any]], fallback: Completer) -> None:
        self._namespace = get_namespace
        self.fallback = fallback

    def _routes(self) -> list[Any]:
        routes = self._namespace().get("routes")
        if not callable(routes):
            return []
        try:
            return list(routes())
        except Exception:  # a half-built app: no completions, never an error while typing
            return []

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        context = path_context(document.text_before_cursor)
        if context is None:
            yield from self.fallback.get_completions(document, complete_event)
            return
        wanted, prefix = context
        yield from route_completions(self._routes(), wanted, prefix)
