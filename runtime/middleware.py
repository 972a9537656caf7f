"""Request and response middleware: registration, ordering and running.

Request middleware is called as ``fn(request)``; returning a response short-circuits (the route
handler is skipped, response middleware still runs). Response middleware is called as
``fn(request, response)``; returning a response replaces the current one. Both may be sync or async.

Order (Sanic's, made explicit):

* request middleware: priority descending, then app before blueprint, then registration order;
* response middleware: priority descending, then blueprint before app, then *reverse* registration
  order (the onion: the first request middleware sees the response last).

Blueprint middleware applies only to routes of that blueprint. Chains are computed once per
blueprint name and cached until another middleware is added.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from runtime.response import BaseHTTPResponse
from runtime.signals import Event

if TYPE_CHECKING:
    from runtime.request import Request

AttachTo = Literal["request", "response"]
MiddlewareFn = Callable[..., Any]
#: ``signal(event, context, condition)``: the app's inline dispatch of a built-in event.
SignalFn = Callable[[Event, dict[str, Any], dict[str, Any] | None], Awaitable[Any]]

_sequence = itertools.count()


def normalize_attach_to(value: str) -> AttachTo:
    """``"request"`` or ``"response"`` (any case); anything else is a clear ``ValueError``."""
    lowered = value.lower() if isinstance(value, str) else value
    if lowered == "request":
        return "request"
    if lowered == "response":
        return "response"
    raise ValueError(
        f"Middleware must attach to 'request' or 'response', not {value!r}: "
        'write @app.middleware("request") or @app.middleware("response")'
    )


class Middleware(NamedTuple):
    """One registered middleware function."""

    fn: MiddlewareFn
    attach_to: AttachTo
    priority: int
    seq: int
    blueprint: str | None
    is_async: bool

    @property
    def origin(self) -> int:
        return 0 if self.blueprint is None else 1


class Chain(NamedTuple):
    """The middleware that applies to one blueprint's routes (or to app routes)."""

    request: tuple[Middleware, ...]
    response: tuple[Middleware, ...]


class MiddlewareRegistry:
    """Every middleware of one app, with per-blueprint chains computed on demand."""

    def __init__(self) -> None:
        self._items: list[Middleware] = []
        self._chains: dict[str | None, Chain] = {}

    def add(
        self,
        fn: MiddlewareFn,
        attach_to: str = "request",
        *,
        priority: int = 0,
        blueprint: str | None = None,
    ) -> Middleware:
        if not callable(fn):
            raise TypeError(f"Middleware must be a callable, got {fn!r}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise TypeError(f"Middleware priority must be an int, got {priority!r}")
        item = Middleware(
            fn=fn,
            attach_to=normalize_attach_to(attach_to),
            priority=priority,
            seq=next(_sequence),
            blueprint=blueprint,
            is_async=inspect.iscoroutinefunction(fn),
        )
        self._items.append(item)
        self._chains.clear()
        return item

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(self._items)

    def chain(self, blueprint: str | None) -> Chain:
        """The ordered middleware for routes of ``blueprint`` (``None``: app routes and 404s)."""
        try:
            return self._chains[blueprint]
        except KeyError:
            pass
        applicable = [m for m in self._items if m.blueprint is None or m.blueprint == blueprint]
        request = sorted(
            (m for m in applicable if m.attach_to == "request"),
            key=lambda m: (-m.priority, m.origin, m.seq),
        )
        response = sorted(
            (m for m in applicable if m.attach_to == "response"),
            key=lambda m: (-m.priority, -m.origin, -m.seq),
        )
        chain = Chain(tuple(request), tuple(response))
        self._chains[blueprint] = chain
        return chain


def _describe(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


_REQUEST = {"attach_to": "request"}
_RESPONSE = {"attach_to": "response"}


async def run_request_middleware(
    request: Request, chain: tuple[Middleware, ...], guards: Any, signal: SignalFn
) -> BaseHTTPResponse | None:
    """Run request middleware in order; the first response returned ends the chain.

    ``guards`` tells whether the ``http.middleware.before/after`` signals have handlers.
    """
    for mw in chain:
        if guards.HTTP_MIDDLEWARE_BEFORE:
            await signal(
                Event.HTTP_MIDDLEWARE_BEFORE, {"request": request, "response": None}, _REQUEST
            )
        result = mw.fn(request)
        if mw.is_async or inspect.isawaitable(result):
            result = await result
        if guards.HTTP_MIDDLEWARE_AFTER:
            await signal(
                Event.HTTP_MIDDLEWARE_AFTER, {"request": request, "response": None}, _REQUEST
            )
        if result is not None:
            if isinstance(result, BaseHTTPResponse):
                return result
            raise TypeError(
                f"Request middleware {_describe(mw.fn)} returned {type(result).__name__}; "
                "return None to continue or a response to answer at once"
            )
    return None


async def run_response_middleware(
    request: Request,
    response: BaseHTTPResponse,
    chain: tuple[Middleware, ...],
    guards: Any,
    signal: SignalFn,
) -> BaseHTTPResponse:
    """Run response middleware in order; a returned response replaces the current one."""
    for mw in chain:
        if guards.HTTP_MIDDLEWARE_BEFORE:
            await signal(
                Event.HTTP_MIDDLEWARE_BEFORE, {"request": request, "response": response}, _RESPONSE
            )
        result = mw.fn(request, response)
        if mw.is_async or inspect.isawaitable(result):
            result = await result
        if guards.HTTP_MIDDLEWARE_AFTER:
            await signal(
                Event.HTTP_MIDDLEWARE_AFTER, {"request": request, "response": response}, _RESPONSE
            )
        if result is not None:
            if not isinstance(result, BaseHTTPResponse):
                raise TypeError(
                    f"Response middleware {_describe(mw.fn)} returned {type(result).__name__}; "
                    "return None to keep the response or a response to replace it"
                )
            response = result
    return response


__all__ = [
    "AttachTo",
    "Chain",
    "Middleware",
    "MiddlewareRegistry",
    "SignalFn",
    "normalize_attach_to",
    "run_request_middleware",
    "run_response_middleware",
]
