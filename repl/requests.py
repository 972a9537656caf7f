"""``do()``: a request through the console's own ``app``, in process, without the network.

Routes and middleware defined in the console are used; workers are not involved. For a vivace
``App`` the request goes through ``App.handle`` (routing, middleware, signals, handler, error
handling) as a real one does; for an app served through ASGI it goes through the hosted ASGI
callable (``repl.asgi.InProcessApp``: the app's lifespan start-up runs once first).
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from repl.asgi import InProcessApp
    from runtime.app import App

Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None


class Result(NamedTuple):
    """What ``do()`` returns: the request the app saw and the response it made."""

    request: Any
    response: Any

    def __repr__(self) -> str:
        response = self.response
        if hasattr(response, "status_code"):  # httpx.Response (an app served through ASGI)
            status = response.status_code
            ctype = response.headers.get("content-type")
            body = response.content
            path = self.request.url.raw_path.decode("ascii", "replace")
        else:
            status = getattr(response, "status", "?")
            ctype = getattr(response, "content_type", None)
            body = getattr(response, "body", b"")
            path = getattr(self.request, "path", "")
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else repr(body)
        if len(text) > 500:
            text = text[:500] + f"... ({len(text) - 500} more characters)"
        method = getattr(self.request, "method", "")
        return f"Result({method} {path} -> {status} {ctype or ''}): {text}".rstrip()

    def curl(self) -> str:
        """The ``curl`` command line sending this request to the live server."""
        from repl.history import server

        request = self.request
        if hasattr(request, "url") and hasattr(request.url, "raw_path"):  # httpx.Request
            method, path = request.method, request.url.raw_path.decode("ascii", "replace")
            headers, body = list(request.headers.items()), request.content
        else:
            method, path = request.method, request.path
            query = getattr(request, "query_string", "")
            path = f"{path}?{query}" if query else path
            headers, body = list(request.headers.items()), bytes(getattr(request, "body", b""))
        from repl.history import curl_command

        base = str(server["url"] or "").rstrip("/")
        return curl_command(method, base + path, headers, body, unix_socket=server["unix_socket"])


def _header_pairs(headers: Headers) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def _prepare(
    path: str, headers: Headers, json: Any, body: str | bytes | None
) -> tuple[list[tuple[str, str]], bytes]:
    """Header pairs and body bytes of a ``do()`` request; ``ValueError`` says what to fix."""
    if not path.startswith("/"):
        raise ValueError(f"do() takes a path starting with '/', e.g. do('/health'), not {path!r}")
    if json is not None and body is not None:
        raise ValueError("do() takes json= or body=, not both")
    pairs = _header_pairs(headers)
    payload = b""
    if json is not None:
        payload = jsonlib.dumps(json).encode()
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("content-type", "application/json"))
    elif body is not None:
        payload = body.encode() if isinstance(body, str) else bytes(body)
    if payload:
        pairs.append(("content-length", str(len(payload))))
    return pairs, payload


async def do(
    app: App,
    path: str = "/",
    method: str = "GET",
    headers: Headers = None,
    json: Any = None,
    body: str | bytes | None = None,
) -> Result:
    """Send one request through ``app.handle`` in this process and return ``Result``."""
    from runtime.datastructures import ConnInfo
    from runtime.datastructures import Headers as HeaderMap
    from runtime.request import Request

    pairs, payload = _prepare(path, headers, json, body)
    if not any(k.lower() == "host" for k, _ in pairs):
        pairs.append(("host", "console"))
    finalize = getattr(app, "finalize", None)
    if callable(finalize) and not getattr(app, "finalized", True):
        finalize()
    request = Request(
        app,
        method.upper(),
        path.encode(),
        HeaderMap(pairs),
        version="1.1",
        conn_info=ConnInfo("127.0.0.1", 0, "console", 0),
    )
    channel = request.body_channel
    if payload:
        channel.feed(payload)
    channel.feed_eof()
    response = await app.handle(request)
    return Result(request, response)


async def do_asgi(
    app: InProcessApp,
    path: str = "/",
    method: str = "GET",
    headers: Headers = None,
    json: Any = None,
    body: str | bytes | None = None,
) -> Result:
    """Send one request through an ASGI app in this process.

    Returns ``Result(httpx.Request, httpx.Response)``; an exception the app raises comes out here.
    """
    pairs, payload = _prepare(path, headers, json, body)
    pairs = [(k, v) for k, v in pairs if k.lower() != "content-length"]  # httpx sets it
    response = await app.request(method.upper(), path, headers=pairs, content=payload)
    return Result(response.request, response)


def bind_do(
    app_ref: Any,
    runner: Callable[[], InProcessApp | None] | None = None,
    *,
    record: Callable[[Any], None] | None = None,
    before: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """``do(path, method=..., headers=..., json=..., body=...)`` bound to the console's current app.

    ``app_ref`` is a zero-argument callable returning the app (``refresh()`` rebinds ``app``);
    ``runner`` one returning the ``InProcessApp`` of an app served through ASGI (None: vivace).
    ``record`` gets each call's ``repl.history.Exchange``; ``before`` is awaited before each
    call to a vivace app (the app's server listeners, run once: ``repl.listeners``).
    """

    async def bound(
        path: str = "/",
        method: str = "GET",
        headers: Headers = None,
        json: Any = None,
        body: str | bytes | None = None,
    ) -> Result:
        """Fake a request to the console's app, in process: ``await do("/health")``."""
        if record is None:
            return await send(path, method, headers, json, body)
        import time

        from repl.history import do_exchange

        call = {"url": path, "method": method, "headers": headers, "json": json, "body": body}
        started = time.perf_counter()
        try:
            result = await send(path, method, headers, json, body)
        except Exception as exc:
            record(do_exchange(None, call, time.perf_counter() - started, exc))
            raise
        record(do_exchange(result, call, time.perf_counter() - started))
        return result

    async def send(
        path: str, method: str, headers: Headers, json: Any, body: str | bytes | None
    ) -> Result:
        inprocess = runner() if runner is not None else None
        if inprocess is not None:
            return await do_asgi(inprocess, path, method, headers, json, body)
        if before is not None:
            await before()
        return await do(app_ref(), path, method, headers, json, body)

    bound.__name__ = "do"
    bound.__qualname__ = "do"
    return bound
