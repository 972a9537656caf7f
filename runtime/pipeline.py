"""``Pipeline``: one request (or websocket) through an app's parts; a part the ``App`` owns.

``await pipeline.handle(request)`` runs routing, body reading, middleware, the handler and error
handling, firing the built-in ``http.*`` signals; it never raises (except ``CancelledError``). Each
built-in signal is guarded by a boolean the ``SignalRouter`` recomputes when signals change, so an
app without signal handlers pays one attribute test per signal.

The pipeline is given the parts it works with (router, middleware, signals, exception handlers,
config) and never calls back into the ``App``; the app binds ``handle``, ``handle_websocket`` and
``match_websocket`` onto itself, so the server's per-request call has no extra layer.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.exceptions import PayloadTooLarge
from runtime.handlers import ErrorHandler, error_response
from runtime.log import error_logger
from runtime.middleware import (
    Middleware,
    MiddlewareRegistry,
    run_request_middleware,
    run_response_middleware,
)
from runtime.response import BaseHTTPResponse
from runtime.routing import Route, Router
from runtime.signals import Event, SignalRouter

if TYPE_CHECKING:
    from runtime.config import Config
    from runtime.request import Request
    from runtime.websocket import WebSocketProtocol


def _peer_closed(exc: BaseException) -> bool:
    """Is ``exc`` a ``websockets`` ``ConnectionClosed``? (By name: importing websockets is slow.)"""
    return any(
        cls.__name__ == "ConnectionClosed" and cls.__module__.startswith("websockets")
        for cls in type(exc).__mro__
    )


_PLAN = "vivace.plan"


class _Plan:
    """What ``handle`` needs for one route, computed once (per middleware change). (A plain
    slotted class: a dataclass costs ~0.25 ms to build at every start.)"""

    __slots__ = (
        "blueprint",
        "error_format",
        "handler",
        "is_async",
        "request_mw",
        "response_mw",
        "stream",
        "version",
    )

    def __init__(
        self,
        handler: Callable[..., Any],
        is_async: bool,
        stream: bool,
        blueprint: str | None,
        error_format: str | None,
        request_mw: tuple[Middleware, ...],
        response_mw: tuple[Middleware, ...],
        version: int,
    ) -> None:
        self.handler = handler
        self.is_async = is_async
        self.stream = stream
        self.blueprint = blueprint
        self.error_format = error_format
        self.request_mw = request_mw
        self.response_mw = response_mw
        self.version = version


def _describe(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


class Pipeline:
    """Answers requests and runs websocket handlers with the parts of one app."""

    def __init__(
        self,
        *,
        router: Router,
        middleware: MiddlewareRegistry,
        signals: SignalRouter,
        errors: ErrorHandler,
        config: Config,
    ) -> None:
        self.router = router
        self.middleware = middleware
        self.signals = signals
        self.errors = errors
        self.config = config
        # one boolean attribute per built-in request-path event (see runtime.signals)
        self._guards: Any = signals.guards
        self._signal = signals.dispatch_builtin
        self._plan_version = 0

    def middleware_changed(self) -> None:
        """Middleware was added: every route's plan is computed again on its next request."""
        self._plan_version += 1

    def _plan(self, route: Route) -> _Plan:
        plan: _Plan | None = route.extra.get(_PLAN)
        if plan is not None and plan.version == self._plan_version:
            return plan
        chain = self.middleware.chain(route.blueprint)
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
            route, params = self.router.resolve(
                request.path, request.method, request.host if self.router.has_hosts else None
            )
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

    async def _error_response(
        self, request: Request, exc: Exception, plan: _Plan | None, run_response_mw: bool
    ) -> BaseHTTPResponse:
        if plan is None:  # routing failed: app-wide response middleware only
            blueprint, error_format = None, None
            chain = self.middleware.chain(None).response
        else:
            blueprint, error_format, chain = plan.blueprint, plan.error_format, plan.response_mw
        return await error_response(
            request,
            exc,
            handlers=self.errors,
            signals=self.signals,
            config=self.config,
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


__all__ = ["Pipeline"]
