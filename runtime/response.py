"""Responses: what a handler returns. They never touch a socket; the server writes them.

``header_items()`` gives the head (headers, then Content-Type, then one Set-Cookie per cookie);
the server adds Content-Length (or chunked framing for streams), Date and Connection. A
non-streaming response has ``body: bytes``; a streaming one (``is_streaming``) has
``async stream_body(write)``. A :class:`FileResponse` (``file()``, ``file_stream()``) is a
streaming response the server sends from the file itself: ranges, validators and ``sendfile``
(``runtime.files``, ``runtime.server.respond``).
"""

from __future__ import annotations

import json as _json
import os
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import PurePath
from stat import S_ISREG
from typing import Any
from urllib.parse import quote

from runtime.cookies import CookieJar
from runtime.datastructures import Headers
from runtime.files import RequestHeaders, content_type_for, etag_for, http_date, select

__all__ = [
    "BaseHTTPResponse",
    "FileResponse",
    "HTTPResponse",
    "JSONResponse",
    "Response",
    "ResponseStream",
    "StreamingResponse",
    "empty",
    "file",
    "file_stream",
    "html",
    "json",
    "raw",
    "redirect",
    "stream",
    "text",
]

HeadersArg = Headers | Mapping[str, Any] | None
Write = Callable[[bytes], Awaitable[None]]

_CONTENT_TYPE = b"content-type"
_SET_COOKIE = b"set-cookie"
_compact_encoder = _json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
try:  # the C encoder, built per call without JSONEncoder.iterencode's Python set-up (~1 us)
    from _json import encode_basestring as _c_encode_str
    from _json import make_encoder as _c_make_encoder

    _HAVE_C_ENCODER = True
except ImportError:  # pragma: no cover - CPython always has _json
    _HAVE_C_ENCODER = False


def _compact(obj: Any) -> str:
    """``obj`` as compact JSON, the same text as ``JSONEncoder(ensure_ascii=False,
    separators=(",", ":")).encode(obj)`` (same errors: TypeError, circular ValueError)."""
    if not _HAVE_C_ENCODER:  # pragma: no cover
        return _compact_encoder.encode(obj)
    encode = _c_make_encoder(
        {}, _compact_encoder.default, _c_encode_str, None, ":", ",", False, False, True
    )
    return "".join(encode(obj, 0))


def _headers(headers: HeadersArg) -> Headers:
    if headers is None:
        return Headers()
    if isinstance(headers, Headers):
        return headers
    return Headers(headers)


def _status(status: int) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"HTTP status must be an int from 100 to 999, got {status!r}")
    return status


class BaseHTTPResponse:
    """Status, headers, content type and cookies shared by every response."""

    __slots__ = ("_cookies", "_headers", "content_type", "status")

    is_streaming = False
    is_file = False  # a FileResponse: the server sends it from the file

    def __init__(
        self, status: int = 200, headers: HeadersArg = None, content_type: str | None = None
    ) -> None:
        self.status = _status(status)
        self._headers: Headers | None = None if headers is None else _headers(headers)
        self.content_type = content_type
        self._cookies: CookieJar | None = None

    @property
    def headers(self) -> Headers:
        """Response headers (case-insensitive, multi-valued); created on first use."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers()
        return headers

    @headers.setter
    def headers(self, value: HeadersArg) -> None:
        self._headers = _headers(value)

    @property
    def cookies(self) -> CookieJar:
        """The cookies this response sets (``response.cookies.add_cookie(...)``)."""
        jar = self._cookies
        if jar is None:
            jar = self._cookies = CookieJar()
        return jar

    def add_cookie(
        self,
        key: str,
        value: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: bool = True,
        max_age: int | None = None,
        expires: datetime | None = None,
        httponly: bool = False,
        samesite: str | None = "Lax",
        partitioned: bool = False,
        comment: str | None = None,
    ) -> Any:
        """Set a cookie (validated; see ``runtime.cookies.Cookie``). Returns the ``Cookie``."""
        return self.cookies.add_cookie(
            key,
            value,
            path=path,
            domain=domain,
            secure=secure,
            max_age=max_age,
            expires=expires,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
            comment=comment,
        )

    def delete_cookie(
        self, key: str, *, path: str = "/", domain: str | None = None, secure: bool = True
    ) -> None:
        """Make the browser drop cookie ``key`` (sent with ``Max-Age=0``)."""
        self.cookies.delete_cookie(key, path=path, domain=domain, secure=secure)

    def header_items(self) -> list[tuple[bytes, bytes]]:
        """Headers, Content-Type (unless a header sets it) and Set-Cookie lines, encoded.

        A Content-Length header is left out for non-streaming responses (the server computes it
        from the body); a streaming response keeps one the handler set.
        """
        headers = self._headers
        if headers:
            items = headers.raw()
            if not self.is_streaming and "content-length" in headers:
                items = [p for p in items if p[0].lower() != b"content-length"]
            has_type = "content-type" in headers
        else:
            items = []
            has_type = False
        content_type = self.content_type
        if content_type is not None and not has_type:
            items.append((_CONTENT_TYPE, content_type.encode("latin-1")))
        jar = self._cookies
        if jar:
            for cookie in jar:
                items.append((_SET_COOKIE, cookie.encode().encode("latin-1")))
        return items

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.status} {self.content_type}>"


class HTTPResponse(BaseHTTPResponse):
    """A complete response: ``body`` is bytes (a str body is encoded as UTF-8)."""

    __slots__ = ("body",)

    def __init__(
        self,
        body: bytes | bytearray | memoryview | str | None = None,
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str | None = None,
    ) -> None:
        if status.__class__ is not int or not 100 <= status <= 999:
            _status(status)  # raises with a clear message (bool, str, out of range)
        self.status = status
        self._headers = None if headers is None else _headers(headers)
        self.content_type = content_type
        self._cookies = None
        if body is None:
            self.body = b""
        elif isinstance(body, bytes):
            self.body = body
        elif isinstance(body, str):
            self.body = body.encode()
        elif isinstance(body, (bytearray, memoryview)):
            self.body = bytes(body)
        else:
            raise TypeError(
                f"Response body must be bytes or str, got {type(body).__name__}; "
                "use json() for objects"
            )


Response = HTTPResponse


class JSONResponse(HTTPResponse):
    """A JSON response; ``raw_body`` keeps the object that was serialised."""

    __slots__ = ("raw_body",)

    def __init__(
        self,
        body: Any = None,
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str = "application/json",
        dumps: Callable[..., str | bytes] | None = None,
        **dumps_kwargs: Any,
    ) -> None:
        self.raw_body = body
        if dumps is not None:
            data = dumps(body, **dumps_kwargs)
        elif dumps_kwargs:
            dumps_kwargs.setdefault("separators", (",", ":"))
            dumps_kwargs.setdefault("ensure_ascii", False)
            data = _json.dumps(body, **dumps_kwargs)
        else:
            data = _compact(body)
        super().__init__(data, status, headers, content_type)


def json(
    body: Any,
    status: int = 200,
    headers: HeadersArg = None,
    content_type: str = "application/json",
    dumps: Callable[..., str | bytes] | None = None,
    **dumps_kwargs: Any,
) -> JSONResponse:
    """``body`` serialised as compact JSON (UTF-8). ``dumps`` swaps the serialiser (e.g. orjson)."""
    return JSONResponse(body, status, headers, content_type, dumps, **dumps_kwargs)


def text(
    body: str,
    status: int = 200,
    headers: HeadersArg = None,
    content_type: str = "text/plain; charset=utf-8",
) -> HTTPResponse:
    """A plain-text response; ``body`` must be a ``str``."""
    if not isinstance(body, str):
        raise TypeError(
            f"text() takes a str body, got {type(body).__name__}; "
            "use raw() for bytes or json() for other objects"
        )
    return HTTPResponse(body.encode(), status, headers, content_type)


def html(
    body: Any,
    status: int = 200,
    headers: HeadersArg = None,
    content_type: str = "text/html; charset=utf-8",
) -> HTTPResponse:
    """An HTML response from a str, bytes, or an object with ``__html__`` or ``_repr_html_``."""
    if not isinstance(body, (str, bytes)):
        if hasattr(body, "__html__"):
            body = body.__html__()
        elif hasattr(body, "_repr_html_"):
            body = body._repr_html_()
        else:
            raise TypeError(
                f"html() takes a str, bytes or an object with __html__, got {type(body).__name__}"
            )
    return HTTPResponse(body, status, headers, content_type)


def raw(
    body: bytes | bytearray | memoryview,
    status: int = 200,
    headers: HeadersArg = None,
    content_type: str = "application/octet-stream",
) -> HTTPResponse:
    """A response with a bytes body, sent as is."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"raw() takes bytes, got {type(body).__name__}; "
            "use text() for str or json() for objects"
        )
    return HTTPResponse(body, status, headers, content_type)


def empty(status: int = 204, headers: HeadersArg = None) -> HTTPResponse:
    """A response without a body (204 No Content by default)."""
    return HTTPResponse(b"", status, headers, None)


def redirect(
    to: str,
    headers: HeadersArg = None,
    status: int = 302,
    content_type: str = "text/html; charset=utf-8",
) -> HTTPResponse:
    """Redirect to ``to`` (a path or URL; unsafe characters are percent-encoded)."""
    if not isinstance(to, str):
        raise TypeError(f"redirect() takes a str URL, got {type(to).__name__}")
    location = quote(to, safe=":/%#?&=@[]!$&'()*+,;~")
    response = HTTPResponse(b"", status, headers, content_type)
    response.headers["Location"] = location
    return response


class _Streaming(BaseHTTPResponse):
    __slots__ = ()

    is_streaming = True

    async def stream_body(self, write: Write) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _chunk(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"Streamed data must be bytes or str, got {type(data).__name__}")


class StreamingResponse(_Streaming):
    """Streams the chunks of an async iterable (e.g. an async generator) as they come."""

    __slots__ = ("content",)

    def __init__(
        self,
        content: AsyncIterable[bytes | str],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str | None = "text/plain; charset=utf-8",
    ) -> None:
        if not hasattr(content, "__aiter__"):
            raise TypeError(
                f"StreamingResponse needs an async iterable (e.g. an async generator), "
                f"got {type(content).__name__}"
            )
        super().__init__(status, headers, content_type)
        self.content = content

    async def stream_body(self, write: Write) -> None:
        async for data in self.content:
            chunk = _chunk(data)
            if chunk:  # an empty chunk would end a chunked body early
                await write(chunk)


class ResponseStream(_Streaming):
    """Streams what ``streaming_fn(response)`` writes with ``await response.write(data)``."""

    __slots__ = ("_write", "streaming_fn")

    def __init__(
        self,
        streaming_fn: Callable[[ResponseStream], Awaitable[Any]],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str | None = "text/plain; charset=utf-8",
    ) -> None:
        if not callable(streaming_fn):
            raise TypeError(f"stream() needs an async function, got {type(streaming_fn).__name__}")
        super().__init__(status, headers, content_type)
        self.streaming_fn = streaming_fn
        self._write: Write | None = None

    async def write(self, data: bytes | str) -> None:
        """Send ``data`` now (str is encoded as UTF-8); only inside the streaming function."""
        if self._write is None:
            raise RuntimeError(
                "ResponseStream.write() called before the response is being sent; "
                "write from inside the streaming function"
            )
        chunk = _chunk(data)
        if chunk:
            await self._write(chunk)

    async def stream_body(self, write: Write) -> None:
        self._write = write
        try:
            await self.streaming_fn(self)
        finally:
            self._write = None


def stream(
    streaming_fn: Callable[[ResponseStream], Awaitable[Any]],
    status: int = 200,
    headers: HeadersArg = None,
    content_type: str = "text/plain; charset=utf-8",
) -> ResponseStream:
    """A ``ResponseStream``: ``async def fn(response): await response.write(...)``."""
    return ResponseStream(streaming_fn, status, headers, content_type)


_AUTO: Any = object()  # "not given": the file's own modification time


def _disposition(filename: str) -> str:
    """``attachment; filename="..."`` with RFC 6266's ``filename*`` when the name is not ASCII."""
    plain = filename.replace("\\", "_").replace('"', "_")
    if plain.isascii() and plain.isprintable():
        return f'attachment; filename="{plain}"'
    fallback = plain.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=utf-8''{quote(filename, safe='')}"


class FileResponse(_Streaming):
    """A file sent from disk, never loaded whole into memory.

    The answer to a request (200, 206, 304, 412, 416; ``runtime.files.select``) is decided by
    :meth:`prepare` where the handler knows the request (``app.static`` does), else by vivace's
    server when it sends the response, from the file it opens. The server sends the body with
    ``sendfile`` (zero copy), or in reads of ``chunk_size`` where the connection cannot (TLS).
    Elsewhere (the ASGI adapter, the test client) ``stream_body`` streams the selected bytes.
    """

    __slots__ = (
        "_extra",
        "_stat",
        "asked_status",
        "chunk_size",
        "conditional",
        "etag",
        "last_modified",
        "length",
        "offset",
        "path",
        "prepared",
        "ranges",
    )

    is_file = True

    def __init__(
        self,
        path: str | PurePath,
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str | None = None,
        *,
        chunk_size: int = 65536,
        filename: str | None = None,
        last_modified: datetime | float | int | None = _AUTO,
        max_age: float | int | None = None,
        no_store: bool | None = None,
        ranges: bool = True,
        conditional: bool = True,
        etag: bool = True,
        stat: os.stat_result | None = None,
    ) -> None:
        """``stat``: the file's ``os.stat`` when the caller has it (``app.static`` does)."""
        if chunk_size.__class__ is not int or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive whole number, got {chunk_size!r}")
        location = os.fspath(path)
        if not isinstance(location, str):
            raise TypeError(f"A file path must be a str or a path, got {type(path).__name__}")
        if stat is None:
            stat = os.stat(location)  # FileNotFoundError now, in the handler, as Sanic raises it
        if not S_ISREG(stat.st_mode):
            raise IsADirectoryError(f"{location!r} is not a regular file")
        super().__init__(status, headers, content_type or content_type_for(location))
        self.path = location if location[:1] == "/" else os.path.abspath(location)
        self._stat: os.stat_result | None = stat
        self.asked_status = self.status  # prepare() may make it a 206
        self.chunk_size = chunk_size
        self.ranges = ranges
        self.conditional = conditional
        self.etag = etag
        #: the selected bytes (the whole file until ``prepare`` selects a range)
        self.offset = 0
        self.length = stat.st_size
        #: ``(size, mtime_ns)`` of the file ``prepare`` decided for, else ``None``
        self.prepared: tuple[int, int] | None = None
        self._extra: list[tuple[bytes, bytes]] = []
        if last_modified is _AUTO:
            self.last_modified: float | None = stat.st_mtime
        elif last_modified is None:
            self.last_modified = None
        elif isinstance(last_modified, datetime):
            self.last_modified = last_modified.timestamp()
        elif isinstance(last_modified, (int, float)) and not isinstance(last_modified, bool):
            self.last_modified = float(last_modified)
        else:
            raise TypeError(
                f"last_modified must be a datetime, a timestamp or None, got {last_modified!r}"
            )
        if filename is not None or no_store or max_age is not None:
            extra = self.headers
            if filename is not None:
                extra["content-disposition"] = _disposition(filename)
            if no_store:
                extra["cache-control"] = "no-store"
            elif max_age is not None:
                if (
                    isinstance(max_age, bool)
                    or not isinstance(max_age, (int, float))
                    or max_age < 0
                ):
                    raise ValueError(f"max_age must be a number of seconds >= 0, got {max_age!r}")
                extra["cache-control"] = f"public, max-age={int(max_age)}"

    def answer(
        self, method: str, request_headers: RequestHeaders, size: int, mtime_ns: int
    ) -> tuple[int, list[tuple[bytes, bytes]], int, int]:
        """``(status, added headers, offset, length)`` for a file of ``size`` and ``mtime_ns``
        and a request (``runtime.files.select``, plus ``Accept-Ranges`` and the validators)."""
        etag = etag_for(mtime_ns, size) if self.etag else None
        chosen = select(
            method=method,
            status=self.asked_status,
            request_headers=request_headers,
            size=size,
            etag=etag,
            last_modified=self.last_modified,
            ranges=self.ranges,
            conditional=self.conditional,
        )
        added: list[tuple[bytes, bytes]] = []
        if self.ranges and self.asked_status == 200:
            added.append((b"accept-ranges", b"bytes"))
        if etag is not None:
            added.append((b"etag", etag.encode("latin-1")))
        if self.last_modified is not None:
            added.append((b"last-modified", http_date(self.last_modified).encode("latin-1")))
        added.extend((n.encode("latin-1"), v.encode("latin-1")) for n, v in chosen.headers)
        return chosen.status, added, chosen.offset, chosen.length

    def prepare(self, method: str, request_headers: RequestHeaders) -> BaseHTTPResponse:
        """Decide the answer to this request now (``app.static`` does, with the request): this
        response for 200 and 206, a bodiless ``HTTPResponse`` for 304, 412 and 416."""
        stat = self._stat or os.stat(self.path)
        self._stat = None  # a second prepare() looks again
        status, added, offset, length = self.answer(
            method, request_headers, stat.st_size, stat.st_mtime_ns
        )
        if status in (304, 412, 416):
            other = HTTPResponse(b"", status, content_type=None)
            for name, value in self.header_items():
                if name != b"content-type" or status == 416:
                    other.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            for name, value in added:
                other.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            return other
        self.status = status
        self.offset, self.length = offset, length
        self._extra = [*added, (b"content-length", str(length).encode())]
        self.prepared = (stat.st_size, stat.st_mtime_ns)
        return self

    def header_items(self) -> list[tuple[bytes, bytes]]:
        items = super().header_items()
        if self._extra:
            items.extend(self._extra)
        return items

    async def stream_body(self, write: Write) -> None:
        """The selected bytes in chunks (for hosts other than vivace's server)."""
        import asyncio

        remaining, offset = self.length, self.offset
        fd = await asyncio.to_thread(os.open, self.path, os.O_RDONLY)
        try:
            while remaining > 0:
                size = min(self.chunk_size, remaining)
                chunk = await asyncio.to_thread(os.pread, fd, size, offset)
                if not chunk:
                    break
                remaining -= len(chunk)
                offset += len(chunk)
                await write(chunk)
        finally:
            os.close(fd)


async def file(
    location: str | PurePath,
    status: int = 200,
    request_headers: Any = None,
    validate_when_requested: bool = True,
    mime_type: str | None = None,
    headers: HeadersArg = None,
    filename: str | None = None,
    last_modified: datetime | float | int | None = _AUTO,
    max_age: float | int | None = None,
    no_store: bool | None = None,
    _range: Any = None,
) -> BaseHTTPResponse:
    """The file at ``location`` (Sanic's arguments): ``filename`` makes it a download
    (``Content-Disposition``), ``max_age`` / ``no_store`` set ``Cache-Control``,
    ``last_modified=None`` drops ``Last-Modified``. The server answers ``If-None-Match`` /
    ``If-Modified-Since`` with 304 (unless ``validate_when_requested=False``) and ``Range`` with
    206 / 416; ``request_headers`` and ``_range`` are accepted for Sanic code and not needed."""
    response = FileResponse(
        location,
        status,
        headers,
        mime_type,
        filename=filename,
        last_modified=last_modified,
        max_age=max_age,
        no_store=no_store,
        conditional=validate_when_requested,
    )
    if request_headers is not None:  # Sanic's way: the answer decided now (for a GET)
        return response.prepare("GET", request_headers)
    return response


async def file_stream(
    location: str | PurePath,
    status: int = 200,
    chunk_size: int = 4096,
    mime_type: str | None = None,
    headers: HeadersArg = None,
    filename: str | None = None,
    _range: Any = None,
) -> FileResponse:
    """The file at ``location``, streamed from disk (Sanic's arguments). vivace sends every file
    response from disk with ``sendfile``; ``chunk_size`` is the read size where it cannot."""
    return FileResponse(
        location, status, headers, mime_type, chunk_size=chunk_size, filename=filename
    )
