"""``history`` and ``replay()``: the requests made in a console session, kept and sent again.

Every request made with ``client`` (over the network, to the live server) or ``do()`` (in process)
is recorded as an ``Exchange`` in the session's ``History`` (bounded: the last ``LIMIT``). The
history belongs to the console session, not to the app: ``refresh()``, reloads and worker restarts
leave it as it is.

* ``history`` shows one line per request: index, method, URL, status, size and time.
* ``history[-1]`` is an ``Exchange``: ``.request`` and ``.response`` are what the request was
  made with (``httpx.Request``/``httpx.Response`` for ``client``, the ``do()`` ``Result``'s parts
  for ``do()``), ``.curl()`` the equivalent command line.
* ``replay(i, **changes)`` sends request ``i`` again the way it was made, with ``json=``,
  ``headers=`` (merged), ``params=`` (merged), ``body=``, ``method=`` or ``url=`` changed.
"""

from __future__ import annotations

import json as jsonlib
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["Exchange", "History", "curl_command"]

LIMIT = 500
#: response bodies kept in all (bytes): past it, the oldest items let go of their response
#: (``.response`` becomes None; the line, ``.curl()`` and ``replay()`` stay)
BODY_BUDGET = 64 * 1024 * 1024

#: headers every HTTP client adds by itself: left out of ``.curl()`` (curl adds its own)
_CLIENT_HEADERS = frozenset(
    ("host", "user-agent", "accept", "accept-encoding", "connection", "content-length")
)


def curl_command(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    unix_socket: str | None = None,
) -> str:
    """The ``curl`` command line that sends this request (arguments shell-quoted)."""
    parts = ["curl"]
    if unix_socket:
        parts += ["--unix-socket", unix_socket]
    if method.upper() == "HEAD":
        parts.append("--head")
    elif method.upper() != "GET" or body:
        parts += ["-X", method.upper()]
    parts.append(url)
    for name, value in headers:
        if name.lower() not in _CLIENT_HEADERS:
            parts += ["-H", f"{name}: {value}"]
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "\x00" not in text:
            parts += ["--data-raw", text]
        else:
            parts += ["--data-binary", f"<{len(body)} bytes>"]
    return " ".join(shlex.quote(part) for part in parts)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


@dataclass
class Exchange:
    """One request of the session and its response (or its error)."""

    via: str  # "client" or "do"
    method: str
    url: str  # what was asked for: "/items/1?q=x" (client: the URL given, params applied)
    status: int | None
    size: int
    elapsed_ms: float
    request: Any  # httpx.Request (client) or the request the app saw (do)
    response: Any  # httpx.Response (client), the app's response (do), None after an error
    headers: list[tuple[str, str]] = field(default_factory=list)  # the request's, as sent
    body: bytes = b""  # the request's body, as sent
    #: what the request was made with, for ``replay()``: ``client.request(method, url, **call)``
    #: or ``do(path, **call)``
    call: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    at: float = field(default_factory=time.time)
    base_url: str = "http://127.0.0.1:8000"
    unix_socket: str | None = None

    def curl(self) -> str:
        """The ``curl`` command line sending this request to the live server."""
        url = self.url if "://" in self.url else self.base_url.rstrip("/") + self.url
        return curl_command(self.method, url, self.headers, self.body, unix_socket=self.unix_socket)

    def line(self, index: int) -> str:
        status = str(self.status) if self.status is not None else "error"
        size = _size(self.size) if self.status is not None else (self.error or "")[:40]
        return (
            f"{index:>4}  {self.via:6} {self.method:7} {_short(self.url, 44):44} "
            f"{status:>6} {size:>9} {self.elapsed_ms:9.1f} ms"
        )

    def __repr__(self) -> str:
        status = self.status if self.status is not None else f"error: {self.error}"
        return (
            f"<{self.via} {self.method} {self.url} -> {status}, {_size(self.size)}, "
            f"{self.elapsed_ms:.1f} ms: .request, .response, .curl()>"
        )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class History:
    """The session's requests, oldest first; ``history[-1]`` is the last one."""

    def __init__(self, limit: int = LIMIT, body_budget: int = BODY_BUDGET) -> None:
        self._items: deque[Exchange] = deque(maxlen=limit)
        self._dropped = 0  # how many fell off the front (indexes stay the user's own)
        self._lock = threading.Lock()
        self._budget = body_budget

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            if self._items.maxlen is not None and len(self._items) == self._items.maxlen:
                self._dropped += 1
            self._items.append(exchange)
            held = sum(item.size for item in self._items if item.response is not None)
            for item in self._items:
                if held <= self._budget or item is exchange:
                    break
                if item.response is not None:
                    item.response = None  # its body is let go; the rest of the item stays
                    held -= item.size

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._dropped += len(self._items)
            self._items.clear()

    def _snapshot(self) -> tuple[list[Exchange], int]:
        with self._lock:
            return list(self._items), self._dropped

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self._snapshot()[0])

    def __getitem__(self, index: int) -> Exchange:
        items, dropped = self._snapshot()
        if not isinstance(index, int):
            raise TypeError(f"history[i] takes an int index, e.g. history[-1], not {index!r}")
        if not items:
            raise IndexError("the history is empty: make a request with client.get('/') or do()")
        position = index if index < 0 else index - dropped
        if index >= 0 and position < 0:
            raise IndexError(
                f"request {index} fell off the history (it keeps the last {self._items.maxlen})"
            )
        try:
            return items[position]
        except IndexError:
            first, last = dropped, dropped + len(items) - 1
            raise IndexError(
                f"no request {index} in the history: it holds {first}..{last} (or -1 for the last)"
            ) from None

    def __repr__(self) -> str:
        items, dropped = self._snapshot()
        if not items:
            return "(no requests yet: client.get('/') or do('/') are recorded here)"
        head = f"{'#':>4}  {'via':6} {'method':7} {'url':44} {'status':>6} {'size':>9} {'time':>12}"
        lines = [head] + [item.line(dropped + i) for i, item in enumerate(items)]
        return "\n".join(lines)


def _merged(old: Any, new: Any) -> Any:
    """``headers=``/``params=`` of a replay: merged into the original's (a new value wins)."""
    if old is None or not isinstance(new, Mapping):
        return new
    merged: dict[str, Any] = {}
    if isinstance(old, Mapping):
        merged.update(old)
    else:
        merged.update(dict(old))
    lowered = {str(k).lower(): k for k in merged}
    for key, value in new.items():
        existing = lowered.get(str(key).lower())
        if existing is not None:
            del merged[existing]
        merged[key] = value
    return merged


REPLAY_CHANGES = ("json", "headers", "params", "body", "content", "data", "method", "url")


def replay_call(exchange: Exchange, changes: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(method, url, kwargs)`` to send ``exchange`` again with ``changes``."""
    unknown = sorted(set(changes) - set(REPLAY_CHANGES))
    if unknown:
        allowed = ", ".join(f"{name}=" for name in REPLAY_CHANGES)
        raise TypeError(f"replay() cannot change {', '.join(unknown)}; it takes {allowed}")
    call = dict(exchange.call)
    method = str(changes.pop("method", call.pop("method", exchange.method))).upper()
    url = str(changes.pop("url", call.pop("url", exchange.url)))
    if "json" in changes:  # a new body replaces the old one whatever its kind
        for name in ("body", "content", "data"):
            call.pop(name, None)
    if any(name in changes for name in ("body", "content", "data")):
        call.pop("json", None)
    for name in ("headers", "params"):
        if name in changes:
            changes[name] = _merged(call.get(name), changes[name])
    call.update(changes)
    return method, url, call


def with_params(url: str, params: Mapping[str, Any] | None) -> str:
    """``url`` with ``params`` merged into its query string (for ``do()``, which has no params=)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({str(k): str(v) for k, v in params.items()})
    return urlunsplit(parts._replace(query=urlencode(query)))


def json_body(value: Any) -> bytes:
    return jsonlib.dumps(value).encode()


Recorder = Callable[[Exchange], None]

#: the live server's URL, for ``.curl()`` of a ``do()`` request (set by the console)
server: dict[str, str | None] = {"url": "http://127.0.0.1:8000", "unix_socket": None}


def set_server(url: str, unix_socket: str | None) -> None:
    server["url"], server["unix_socket"] = url, unix_socket


def do_exchange(
    result: Any,
    call: dict[str, Any],
    elapsed: float,
    error: BaseException | None = None,
) -> Exchange:
    """The ``Exchange`` of one ``do()`` call (``result`` None after an error)."""
    path = str(call.get("url", "/"))
    method = str(call.get("method", "GET")).upper()
    headers = _pairs(call.get("headers"))
    body = b""
    if call.get("json") is not None:
        body = json_body(call["json"])
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", "application/json"))
    elif call.get("body") is not None:
        raw = call["body"]
        body = raw.encode() if isinstance(raw, str) else bytes(raw)
    status: int | None = None
    size = 0
    request = response = None
    if result is not None:
        request, response = result.request, result.response
        if hasattr(response, "status_code"):  # httpx.Response (an app served through ASGI)
            status, content = response.status_code, response.content
        else:
            status, content = getattr(response, "status", None), getattr(response, "body", b"")
        size = len(content) if isinstance(content, (bytes, bytearray, str)) else 0
    return Exchange(
        via="do",
        method=method,
        url=path,
        status=status,
        size=size,
        elapsed_ms=elapsed * 1000,
        request=request,
        response=response,
        headers=headers,
        body=body,
        call=dict(call),
        error=None if error is None else f"{type(error).__name__}: {error}",
        base_url=server["url"] or "http://127.0.0.1:8000",
        unix_socket=server["unix_socket"],
    )


def _pairs(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def bind_replay(history: History, client: Any, do: Callable[..., Any]) -> Callable[..., Any]:
    """``replay(i=-1, **changes)`` for a console whose requests ``history`` keeps."""

    def replay(index: int = -1, **changes: Any) -> Any:
        """Send request ``index`` of ``history`` again, changed by ``json=``, ``headers=``,
        ``params=``, ``body=``, ``method=`` or ``url=``."""
        exchange = history[index]
        method, url, call = replay_call(exchange, changes)
        if exchange.via == "do":
            params = call.pop("params", None)
            body = call.pop("body", None)
            for name in ("content", "data"):
                if call.get(name) is not None:
                    body = call.pop(name)
                call.pop(name, None)
            return do(
                with_params(url, params),
                method=method,
                headers=call.get("headers"),
                json=call.get("json"),
                body=body,
            )
        if exchange.via == "ws":
            return client.websocket(url, headers=call.get("headers"))
        if exchange.via == "stream":
            return client.stream(url, method, **call)
        return client.request(method, url, **call)

    return replay
