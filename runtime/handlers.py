"""Exception handlers: which function answers which exception.

``@app.exception(NotFound, KeyError)`` registers ``handler(request, exception)`` (sync or async,
returning a response). Lookup walks the exception's MRO, so a handler for ``Exception`` catches
everything not handled more specifically. Blueprint handlers apply only to that blueprint's routes
and win over app handlers for the same class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ErrorHandlerFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ExceptionHandler:
    fn: ErrorHandlerFn
    exception: type[BaseException]
    blueprint: str | None
    is_async: bool


class ErrorHandler:
    """The exception → handler table of one app (``app.error_handler``)."""

    def __init__(self) -> None:
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


__all__ = ["ErrorHandler", "ExceptionHandler"]
