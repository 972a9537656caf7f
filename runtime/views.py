"""Class-based views: ``HTTPMethodView``, one method per HTTP method.

``app.add_route(ItemView.as_view(), "/items/<id:int>")`` (or the class itself) registers the
methods the class defines (``get``, ``post``, ...); any other method gets a 405 whose ``Allow``
lists them (``HEAD`` comes with ``get``). Each request builds a new instance with the arguments
given to ``as_view(*args, **kwargs)``; ``decorators`` wrap the view function, first one
innermost. ``@stream`` on a method makes the route a streaming one (``request.stream``).

A subclass can register itself: ``class ItemView(HTTPMethodView, attach=app, uri="/items")``, or
be registered with ``ItemView.attach(app, "/items")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from runtime.exceptions import MethodNotAllowed

__all__ = ["HTTPMethodView", "stream"]

F = TypeVar("F", bound=Callable[..., Any])

_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


class HTTPMethodView:
    """A view whose methods (``get``, ``post`` ...) answer the HTTP methods of the same name."""

    #: applied to the view function by ``as_view()``, in order (the first is innermost)
    decorators: ClassVar[list[Callable[..., Any]]] = []

    def __init_subclass__(
        cls,
        attach: Any = None,
        uri: str = "",
        methods: Iterable[str] | None = None,
        **route_options: Any,
    ) -> None:
        super().__init_subclass__()
        if attach is not None:
            if not uri:
                raise TypeError(f"class {cls.__name__}(HTTPMethodView, attach=...) needs uri=")
            cls.attach(attach, uri, methods, **route_options)

    @classmethod
    def attach(
        cls, to: Any, uri: str, methods: Iterable[str] | None = None, **route_options: Any
    ) -> None:
        """Register the view on ``to`` (an app or a blueprint) at ``uri``: ``add_route``'s
        options (``host``, ``strict_slashes``, ``version``, ``name``, ``stream`` ...)."""
        to.add_route(cls.as_view(), uri, methods, **route_options)

    def dispatch_request(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the method named after ``request.method`` (``get`` for ``HEAD``)."""
        method = request.method.lower()
        handler = getattr(self, method, None)
        if handler is None and method == "head":
            handler = getattr(self, "get", None)
        if handler is None:
            allowed = {m.upper() for m in _METHODS if callable(getattr(self, m, None))}
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(
                f"Method {request.method} not allowed for URL {request.path}",
                method=request.method,
                allowed_methods=allowed,
            )
        return handler(request, *args, **kwargs)

    @classmethod
    def as_view(cls, *class_args: Any, **class_kwargs: Any) -> Callable[..., Any]:
        """A route handler: a new ``cls(*class_args, **class_kwargs)`` per request."""

        def view(*args: Any, **kwargs: Any) -> Any:
            return cls(*class_args, **class_kwargs).dispatch_request(*args, **kwargs)

        handler: Any = view
        for decorator in cls.decorators:
            handler = decorator(handler)
        setattr(view, "view_class", cls)  # noqa: B010 - a function attribute, as Sanic sets it
        handler.view_class = cls
        handler.is_stream = any(
            getattr(getattr(cls, m, None), "is_stream", False) for m in _METHODS
        )
        handler.__name__ = cls.__name__
        handler.__qualname__ = cls.__qualname__
        handler.__doc__ = cls.__doc__
        handler.__module__ = cls.__module__
        result: Callable[..., Any] = handler
        return result


def stream(method: F) -> F:
    """Mark a view method as reading its body as a stream (``await request.stream.read()``)."""
    setattr(method, "is_stream", True)  # noqa: B010 - a function attribute, as Sanic sets it
    return method
