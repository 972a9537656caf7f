"""The exceptions of vivace.

The tree::

    VivaceException                      base of everything raised by vivace
    ├── HTTPException                    ends a request with an HTTP status (handlers raise these)
    │   ├── BadRequest (400)
    │   │   ├── InvalidJSON              malformed JSON body
    │   │   └── HeaderNotFound
    │   ├── Unauthorized (401)
    │   ├── Forbidden (403)
    │   ├── NotFound (404)
    │   ├── MethodNotAllowed (405)      carries the allowed methods (``Allow`` header)
    │   ├── RequestTimeout (408)
    │   ├── PayloadTooLarge (413)
    │   ├── RangeNotSatisfiable (416)
    │   ├── ExpectationFailed (417)
    │   ├── HeaderFieldsTooLarge (431)
    │   ├── ServerError (500)
    │   ├── NotImplementedByServer (501)
    │   └── ServiceUnavailable (503)
    ├── ConfigError(ValueError)          a bad configuration value
    ├── LoadError                        an application target that cannot be loaded
    ├── WorkerBootError                  a worker process that could not start
    ├── InvalidSignal(ValueError)        a signal name that cannot be registered
    ├── SignalNotFound(LookupError)      dispatching or waiting on an event with no signal
    └── RouteExists(ValueError)          a duplicate route at registration

Registration-time errors are ``ValueError`` or ``TypeError`` subclasses so that ordinary Python code
can catch them as such. The wire has no exceptions: the sans-I/O parser (``runtime.proto.h1``)
answers a peer that breaks HTTP/1.1 with a ``Reject`` event carrying the status to send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class VivaceException(Exception):
    """Base class of every exception vivace raises on purpose."""


class HTTPException(VivaceException):
    """Ends the current request with ``status``; the error handler renders it.

    ``quiet`` exceptions (most 4xx) are not logged with a traceback unless NOISY_EXCEPTIONS is set.
    ``headers`` are added to the error response; ``context`` is shown in the rendered error body.
    """

    status_code: ClassVar[int] = 500
    quiet: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        context: Mapping[str, Any] | None = None,
        quiet: bool | None = None,
    ) -> None:
        if message is None:
            from http import HTTPStatus

            try:
                message = HTTPStatus(status_code or self.status_code).phrase
            except ValueError:
                message = "Error"
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code  # type: ignore[misc]
        self.headers: dict[str, str] = dict(headers or {})
        self.context: dict[str, Any] = dict(context or {})
        if quiet is not None:
            self.quiet = quiet  # type: ignore[misc]

    @property
    def status(self) -> int:
        return self.status_code


class BadRequest(HTTPException):
    status_code = 400
    quiet = True


class InvalidJSON(BadRequest):
    pass


class HeaderNotFound(BadRequest):
    pass


class Unauthorized(HTTPException):
    status_code = 401
    quiet = True

    def __init__(self, message: str | None = None, *, scheme: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        if scheme:
            self.headers.setdefault("WWW-Authenticate", scheme)


class Forbidden(HTTPException):
    status_code = 403
    quiet = True


class NotFound(HTTPException):
    status_code = 404
    quiet = True


class MethodNotAllowed(HTTPException):
    status_code = 405
    quiet = True

    def __init__(
        self,
        message: str | None = None,
        *,
        method: str = "",
        allowed_methods: Iterable[str] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.method = method
        self.allowed_methods = tuple(sorted(set(allowed_methods)))
        if self.allowed_methods:
            self.headers.setdefault("Allow", ", ".join(self.allowed_methods))


class RequestTimeout(HTTPException):
    status_code = 408
    quiet = True


class PayloadTooLarge(HTTPException):
    status_code = 413
    quiet = True


class RangeNotSatisfiable(HTTPException):
    status_code = 416
    quiet = True


class ExpectationFailed(HTTPException):
    status_code = 417
    quiet = True


class HeaderFieldsTooLarge(HTTPException):
    status_code = 431
    quiet = True


class ServerError(HTTPException):
    status_code = 500


class NotImplementedByServer(HTTPException):
    status_code = 501
    quiet = True


class ServiceUnavailable(HTTPException):
    status_code = 503
    quiet = True


class ConfigError(VivaceException, ValueError):
    """A configuration value that cannot be used; the message says which key and why."""


class LoadError(VivaceException):
    """An application target that cannot be loaded; the message says what to type instead."""


class WorkerBootError(VivaceException):
    """A worker process failed to start (import error, listener exception, ack timeout)."""


class InvalidSignal(VivaceException, ValueError):
    """A signal name that is malformed or reserved."""


class SignalNotFound(VivaceException, LookupError):
    """No signal is registered for the event that was dispatched or awaited."""


class RouteExists(VivaceException, ValueError):
    """A route with the same path, methods and host is already registered."""


__all__ = [
    "BadRequest",
    "ConfigError",
    "ExpectationFailed",
    "Forbidden",
    "HTTPException",
    "HeaderFieldsTooLarge",
    "HeaderNotFound",
    "InvalidJSON",
    "InvalidSignal",
    "LoadError",
    "MethodNotAllowed",
    "NotFound",
    "NotImplementedByServer",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "RequestTimeout",
    "RouteExists",
    "ServerError",
    "ServiceUnavailable",
    "SignalNotFound",
    "Unauthorized",
    "VivaceException",
    "WorkerBootError",
]
