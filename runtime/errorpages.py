"""Rendering an exception as an error response: JSON, HTML or plain text.

The format is the first of these that decides:

1. the route's ``error_format`` (``@app.get("/x", error_format="json")``), unless ``"auto"``;
2. the ``FALLBACK_ERROR_FORMAT`` setting, unless ``"auto"`` (the default);
3. the request's ``Accept`` header, best quality first: ``application/json`` (or any ``+json``
   type) gives JSON, ``text/html`` gives HTML, ``text/plain`` gives text; ``*/*`` decides nothing;
4. a request sent with ``Content-Type: application/json`` gets JSON;
5. otherwise plain text (readable in a terminal, small for scripts).

Only ``HTTPException`` messages are shown to clients. Any other exception is a 500 whose details
(message and traceback) appear only when the app runs in debug mode.
"""

from __future__ import annotations

import json as json_lib
import traceback
from typing import TYPE_CHECKING, Any, Literal

from runtime.exceptions import HTTPException
from runtime.response import HTTPResponse

if TYPE_CHECKING:
    from runtime.request import Request

ErrorFormat = Literal["json", "html", "text"]
FORMATS: tuple[str, ...] = ("auto", "json", "html", "text")

INTERNAL_MESSAGE = "The server encountered an internal error and cannot complete your request."


def check_format(value: str, *, where: str) -> str:
    """Validate an error format name; ``where`` says what to fix in the message."""
    if value not in FORMATS:
        raise ValueError(f"{where} must be one of {', '.join(FORMATS)}; got {value!r}")
    return value


def _from_accept(accept: str) -> ErrorFormat | None:
    ranges: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranges.append((-quality, index, media.strip().lower()))
    for _, _, media in sorted(ranges):
        if media == "application/json" or media.endswith("+json"):
            return "json"
        if media in ("text/html", "application/xhtml+xml"):
            return "html"
        if media == "text/plain":
            return "text"
    return None


def choose_format(
    request: Request | None, *, route_format: str | None = None, fallback: str = "auto"
) -> ErrorFormat:
    """Pick JSON, HTML or text for an error response (rules in the module docstring)."""
    for configured in (route_format, fallback):
        if configured in ("json", "html", "text"):
            return configured  # type: ignore[return-value]
    if request is not None:
        headers = request.headers
        accept = headers.get("accept")
        if accept:
            chosen = _from_accept(accept)
            if chosen is not None:
                return chosen
        content_type = headers.get("content-type") or ""
        if content_type.split(";")[0].strip().lower() == "application/json":
            return "json"
    return "text"


def describe(exception: BaseException, *, debug: bool) -> tuple[int, str, str]:
    """``(status, title, message)`` for an exception, hiding internals unless ``debug``."""
    if isinstance(exception, HTTPException):
        status = exception.status_code
        message = exception.message
    else:
        status = 500
        message = f"{type(exception).__name__}: {exception}" if debug else INTERNAL_MESSAGE
    from http import HTTPStatus  # imported on the first error, not at start-up

    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return status, title, message


def _traceback_text(exception: BaseException) -> str:
    return "".join(traceback.format_exception(exception))


def render(
    exception: BaseException,
    request: Request | None,
    *,
    debug: bool = False,
    route_format: str | None = None,
    fallback: str = "auto",
) -> HTTPResponse:
    """The error response for ``exception`` (status, ``HTTPException.headers``, chosen format)."""
    status, title, message = describe(exception, debug=debug)
    fmt = choose_format(request, route_format=route_format, fallback=fallback)
    context: dict[str, Any] = {}
    if isinstance(exception, HTTPException) and exception.context:
        context = exception.context
    tb = _traceback_text(exception) if debug else None
    headers = dict(exception.headers) if isinstance(exception, HTTPException) else {}
    if fmt == "json":
        data: dict[str, Any] = {"description": title, "status": status, "message": message}
        if context:
            data["context"] = context
        if tb is not None:
            data["path"] = request.path if request is not None else None
            data["traceback"] = tb
        body = json_lib.dumps(data, default=repr, ensure_ascii=False).encode()
        content_type = "application/json"
    elif fmt == "html":
        import html as html_lib  # imported on the first HTML error page, not at start-up

        parts = [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{status} \u2014 {html_lib.escape(title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}"
            "pre{background:#f4f4f4;padding:1rem;overflow:auto}</style></head><body>",
            f"<h1>{status} \u2014 {html_lib.escape(title)}</h1>",
            f"<p>{html_lib.escape(message)}</p>",
        ]
        if context:
            items = "".join(
                f"<dt>{html_lib.escape(str(k))}</dt><dd>{html_lib.escape(repr(v))}</dd>"
                for k, v in context.items()
            )
            parts.append(f"<dl>{items}</dl>")
        if tb is not None:
            parts.append(f"<pre>{html_lib.escape(tb)}</pre>")
        parts.append("</body></html>")
        body = "".join(parts).encode()
        content_type = "text/html; charset=utf-8"
    else:
        lines = [f"{status} \u2014 {title}", "", message]
        if context:
            lines.append("")
            lines.extend(f"{key}: {value!r}" for key, value in context.items())
        if tb is not None:
            lines.extend(["", tb.rstrip("\n")])
        body = ("\n".join(lines) + "\n").encode()
        content_type = "text/plain; charset=utf-8"
    return HTTPResponse(body, status=status, headers=headers, content_type=content_type)


def plain_500() -> HTTPResponse:
    """The last-resort answer when even error handling failed."""
    return HTTPResponse(
        f"500 \u2014 Internal Server Error\n\n{INTERNAL_MESSAGE}\n".encode(),
        status=500,
        content_type="text/plain; charset=utf-8",
    )


__all__ = [
    "FORMATS",
    "ErrorFormat",
    "check_format",
    "choose_format",
    "describe",
    "plain_500",
    "render",
]
