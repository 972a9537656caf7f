"""Exception handlers: which function answers which exception.

``@app.exception(NotFound, KeyError)`` registers ``handler(request, exception)`` (sync or async,
returning a response). Lookup walks the exception's MRO, so a handler for ``Exception`` catches
everything not handled more specifically. Blueprint handlers apply only to that blueprint's routes
and win over app handlers for the same class.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from runtime.errorpages import plain_500, render
from runtime.exceptions import HTTPException
from runtime.log import error_logger
from runtime.middleware import Middleware, run_response_middleware
from runtime.response import BaseHTTPResponse
from runtime.signals import Event, SignalRouter

if TYPE_CHECKING:
    from runtime.config import Config
    from runtime.request import Request

ErrorHandlerFn = Callable[..., Any]


class ExceptionHandler(NamedTuple):
    fn: ErrorHandlerFn
    exception: type[BaseException]
    blueprint: str | None
    is_async: bool


class ErrorHandler:
    """The exception → handler table of one app (``app.error_handler``)."""

    def __init__(self) -> None:
        #: the app's config (set by ``App``), for ``default``'s error page
        self.config: Config | None = None
        self._handlers: dict[tuple[type[BaseException], str | None], ExceptionHandler] = {}
        self._cache: dict[tuple[type[BaseException], str | None], ExceptionHandler | None] = {}

    def add(
        self,
        exception: type[BaseException] | Iterable[type[BaseException]],
        handler: ErrorHandlerFn,
        *,
        blueprint: str | None = None,
    ) -> None:
        """Register ``handler`` for one exception class or several."""
        classes = [exception] if isinstance(exception, type) else list(exception)
        if not classes:
            raise TypeError("Give at least one exception class: @app.exception(NotFound)")
        if not callable(handler):
            raise TypeError(f"Exception handler must be callable, got {handler!r}")
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise TypeError(
                    f"@app.exception takes exception classes, got {cls!r}; "
                    "write @app.exception(ValueError, KeyError)"
                )
            self._handlers[(cls, blueprint)] = ExceptionHandler(
                handler, cls, blueprint, inspect.iscoroutinefunction(handler)
            )
        self._cache.clear()

    def lookup(
        self, exception: BaseException, blueprint: str | None = None
    ) -> ExceptionHandler | None:
        """The handler for ``exception`` raised by a route of ``blueprint``, or ``None``."""
        key = (type(exception), blueprint)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found: ExceptionHandler | None = None
        handlers = self._handlers
        for cls in type(exception).__mro__:
            if blueprint is not None and (cls, blueprint) in handlers:
                found = handlers[(cls, blueprint)]
                break
            if (cls, None) in handlers:
                found = handlers[(cls, None)]
                break
        self._cache[key] = found
        return found

    def __len__(self) -> int:
        return len(self._handlers)

    def default(self, request: Request, exception: BaseException) -> Any:
        """The answer for an exception no handler takes: log it (unless quiet) and render the
        error page. Override it in a subclass given as ``App(error_handler=...)`` to watch every
        unhandled exception (Sanic's ``ErrorHandler.default``); may return an awaitable."""
        config = self.config
        noisy = bool(config.get("NOISY_EXCEPTIONS", False)) if config is not None else False
        log_exception(request, exception, noisy=noisy)
        route = getattr(request, "route", None)
        return render(
            exception,
            request,
            debug=bool(config.get("DEBUG", False)) if config is not None else False,
            route_format=route.extra.get("error_format") if route is not None else None,
            fallback=str(config.get("FALLBACK_ERROR_FORMAT", "auto")) if config else "auto",
        )


def log_exception(request: Request, exc: BaseException, *, noisy: bool = False) -> None:
    """Log ``exc`` with its traceback on ``vivace.error``; quiet ones only when ``noisy``."""
    if isinstance(exc, HTTPException) and exc.quiet and not noisy:
        return
    try:
        where = f"{request.method} {request.path}"
    except Exception:  # a request too broken to describe
        where = "a request"
    error_logger.error("Exception while handling %s", where, exc_info=exc)


def _describe(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


async def error_response(
    request: Request,
    exc: Exception,
    *,
    handlers: ErrorHandler,
    signals: SignalRouter,
    config: Config,
    blueprint: str | None,
    error_format: str | None,
    response_chain: tuple[Middleware, ...],
) -> BaseHTTPResponse:
    """The response for ``exc``: its exception handler's (from ``handlers``), else the rendered
    error page (as ``config`` says: ``DEBUG``, ``NOISY_EXCEPTIONS``, ``FALLBACK_ERROR_FORMAT``).

    Order (signals.md section 7): ``server.exception.report`` (a task, for exceptions that are not
    quiet), ``http.lifecycle.exception``, then the handler or the error page, then
    ``response_chain`` (response middleware); ``signals`` dispatches the signals. Never raises,
    except ``CancelledError``: whatever fails here ends in a plain 500.
    """
    noisy = bool(config.get("NOISY_EXCEPTIONS", False))
    debug = bool(config.get("DEBUG", False))
    try:
        quiet = isinstance(exc, HTTPException) and exc.quiet
        if not quiet and signals.report(exc) is not None:
            await asyncio.sleep(0)  # as a non-inline dispatch: the task has started
        guards: Any = signals.guards
        if guards.HTTP_LIFECYCLE_EXCEPTION:
            try:
                await signals.dispatch_builtin(
                    Event.HTTP_LIFECYCLE_EXCEPTION, {"request": request, "exception": exc}
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                error_logger.exception("Exception in an http.lifecycle.exception handler")
        handler = handlers.lookup(exc, blueprint)
        if handler is not None:
            try:
                result = handler.fn(request, exc)
                if handler.is_async or inspect.isawaitable(result):
                    result = await result
                if not isinstance(result, BaseHTTPResponse):
                    raise TypeError(
                        f"Exception handler {_describe(handler.fn)} returned "
                        f"{type(result).__name__}; return a response"
                    )
                response: BaseHTTPResponse = result
            except asyncio.CancelledError:
                raise
            except Exception:
                error_logger.exception(
                    "Exception handler %s raised while handling %r", _describe(handler.fn), exc
                )
                return plain_500()
        elif type(handlers).default is not ErrorHandler.default:  # App(error_handler=...)
            result = handlers.default(request, exc)
            if inspect.isawaitable(result):
                result = await result
            if not isinstance(result, BaseHTTPResponse):
                raise TypeError(
                    f"{type(handlers).__name__}.default returned {type(result).__name__}; "
                    "return a response (e.g. super().default(request, exception))"
                )
            response = result
        else:
            log_exception(request, exc, noisy=noisy)
            response = render(
                exc,
                request,
                debug=debug,
                route_format=error_format,
                fallback=str(config.get("FALLBACK_ERROR_FORMAT", "auto")),
            )
        if response_chain:
            try:
                response = await run_response_middleware(
                    request, response, response_chain, guards, signals.dispatch_builtin
                )
            except asyncio.CancelledError:
                raise
            except Exception as mw_exc:
                log_exception(request, mw_exc, noisy=noisy)
                response = render(mw_exc, request, debug=debug)
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        error_logger.exception("Error handling failed while handling %r", exc)
        return plain_500()


__all__ = ["ErrorHandler", "ExceptionHandler", "error_response", "log_exception"]
