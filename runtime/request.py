"""The request object and the body channel the server feeds.

``Request`` is slotted and lazy: the target is split into path and query only when one of them is
read, headers are decoded on first use, and ``ctx``, ``args``, ``json``, ``form``, ``files`` and
``cookies`` are built the first time they are asked for.
"""

from __future__ import annotations

import asyncio
import json as _json
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runtime.datastructures import ConnInfo, File, Headers, QueryArgs, RequestParameters
from runtime.exceptions import BadRequest, InvalidJSON, PayloadTooLarge

if TYPE_CHECKING:
    from runtime.routing import Route

__all__ = ["BodyChannel", "Request", "parse_multipart"]

DEFAULT_BUFFER_SIZE = 65536
DEFAULT_MAX_SIZE = 100 * 1024 * 1024
MULTIPART_MAX_PARTS = 1000
MULTIPART_MAX_PART_HEADER = 16384


class BodyChannel:
    """The request body in transit: the server feeds chunks, the app reads them.

    Server side: ``feed(chunk)``, ``feed_eof()``, ``feed_error(exc)``; it may set ``on_pause`` and
    ``on_resume``, which the channel calls when more than ``high_water`` bytes are buffered and when
    the buffer has drained to half of that. App side: ``await read()`` returns the next chunk, or
    ``None`` at the end of the body; ``async for chunk in channel`` does the same.
    """

    __slots__ = (
        "_chunks",
        "_eof",
        "_error",
        "_paused",
        "_size",
        "_waiter",
        "high_water",
        "on_pause",
        "on_resume",
        "received",
    )

    def __init__(self, high_water: int = DEFAULT_BUFFER_SIZE) -> None:
        self._chunks: deque[bytes] | None = None
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.high_water = high_water
        self.on_pause: Callable[[], object] | None = None
        self.on_resume: Callable[[], object] | None = None
        #: total bytes fed so far
        self.received = 0

    # -- server side ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self._eof:
            raise RuntimeError("BodyChannel.feed() after feed_eof()")
        if not chunk:
            return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(chunk)
        self._size += len(chunk)
        self.received += len(chunk)
        self._wake()
        if self._size > self.high_water and not self._paused:
            self._paused = True
            if self.on_pause is not None:
                self.on_pause()

    def feed_eof(self) -> None:
        self._eof = True
        if self._waiter is not None:
            self._wake()

    def feed_error(self, exc: BaseException) -> None:
        self._error = exc
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- app side ------------------------------------------------------------------------------

    @property
    def at_eof(self) -> bool:
        """True when the body is complete, every chunk has been read, and nothing went wrong."""
        return self._eof and not self._chunks and self._error is None

    @property
    def buffered(self) -> int:
        return self._size

    async def read(self) -> bytes | None:
        """The next chunk, or ``None`` at the end of the body; raises what ``feed_error`` got."""
        while True:
            chunks = self._chunks
            if chunks:
                chunk = chunks.popleft()
                self._size -= len(chunk)
                if self._paused and self._size <= self.high_water // 2:
                    self._paused = False
                    if self.on_resume is not None:
                        self.on_resume()
                return chunk
            if self._error is not None:
                raise self._error
            if self._eof:
                return None
            if self._waiter is not None:
                raise RuntimeError("BodyChannel.read() called while another read() is waiting")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> BodyChannel:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read()
        if chunk is None:
            raise StopAsyncIteration
        return chunk


def _config_value(app: Any, key: str, default: Any) -> Any:
    config = getattr(app, "config", None)
    if config is None:
        return default
    return config.get(key, default)


class Request:
    """One HTTP request, as the handler sees it.

    Built by the server (or the ASGI adapter, or the test client) as
    ``Request(app, method, target, headers, version="1.1", conn_info=...)``; ``route``,
    ``match_info`` and ``stream`` are set by the app after routing.
    """

    __slots__ = (
        "_args",
        "_body_received",
        "_channel",
        "_cookies",
        "_ctx",
        "_files",
        "_form",
        "_id",
        "_json",
        "_json_loaded",
        "_path",
        "_query_args",
        "_query_string",
        "_raw_path",
        "app",
        "body",
        "conn_info",
        "headers",
        "match_info",
        "method",
        "route",
        "stream",
        "target",
        "version",
    )

    def __init__(
        self,
        app: Any,
        method: str,
        target: bytes,
        headers: Headers,
        version: str = "1.1",
        *,
        conn_info: ConnInfo | None = None,
    ) -> None:
        self.app = app
        self.method = method
        self.target = target
        self.headers = headers
        self.version = version
        self.conn_info = conn_info
        self.body = b""
        self.route: Route | None = None
        self.match_info: dict[str, Any] = {}
        self.stream: BodyChannel | None = None
        self._channel: BodyChannel | None = None
        self._path: str | None = None
        self._raw_path: bytes | None = None
        self._query_string: str | None = None
        self._args: QueryArgs | None = None
        self._query_args: list[tuple[str, str]] | None = None
        self._ctx: SimpleNamespace | None = None
        self._json: Any = None
        self._json_loaded = False
        self._form: RequestParameters | None = None
        self._files: RequestParameters | None = None
        self._cookies: dict[str, str] | None = None
        self._id: str | None = None
        self._body_received = False

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target.decode('latin-1')!r}>"

    # -- target --------------------------------------------------------------------------------

    def _split_target(self) -> None:
        target = self.target
        if target[:1] != b"/" and b"://" in target[:10]:  # absolute-form: GET http://host/x
            parts = urlsplit(target)
            target, query = parts.path or b"/", parts.query
        else:
            target, _, query = target.partition(b"?")
        self._raw_path = target
        self._query_string = query.decode("latin-1")
        if b"%" in target:
            self._path = unquote(target.decode("utf-8", "replace"), errors="replace")
        else:
            self._path = target.decode("utf-8", "replace")

    @property
    def raw_url(self) -> bytes:
        """The request target exactly as received (``b"/path?x=1"``)."""
        return self.target

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query string."""
        path = self._path
        if path is None:
            target = self.target
            if b"?" in target or b"%" in target or target[:1] != b"/":
                self._split_target()
                path = self._path
                assert path is not None
            else:  # the common case: a plain path, no query
                path = self._path = target.decode("utf-8", "replace")
                self._raw_path = target
                self._query_string = ""
        return path

    @property
    def raw_path(self) -> bytes:
        if self._raw_path is None:
            self._split_target()
        assert self._raw_path is not None
        return self._raw_path

    @property
    def query_string(self) -> str:
        """The raw query string (after ``?``, still percent-encoded)."""
        if self._query_string is None:
            self._split_target()
        assert self._query_string is not None
        return self._query_string

    @property
    def args(self) -> QueryArgs:
        """Query arguments, blank values dropped; ``args.get`` first value, ``getlist`` all."""
        if self._args is None:
            self._args = QueryArgs(self.query_string)
        return self._args

    def get_args(
        self, *, keep_blank_values: bool = False, strict_parsing: bool = False
    ) -> QueryArgs:
        """Query arguments with explicit parsing options (``?a=`` kept with keep_blank_values)."""
        return QueryArgs(
            self.query_string, keep_blank_values=keep_blank_values, strict_parsing=strict_parsing
        )

    @property
    def query_args(self) -> list[tuple[str, str]]:
        """Every (name, value) pair of the query string in order, blank values dropped."""
        if self._query_args is None:
            self._query_args = self.args.items()
        return self._query_args

    # -- per-request state ---------------------------------------------------------------------

    @property
    def ctx(self) -> SimpleNamespace:
        """A namespace for your own per-request data."""
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = SimpleNamespace()
        return ctx

    @property
    def id(self) -> str:
        """The ``X-Request-ID`` header if the client sent one, otherwise a new UUID4."""
        if self._id is None:
            header = self.headers.get("x-request-id")
            if not header:
                from uuid import uuid4  # on first use: most requests never ask for an id

                header = str(uuid4())
            self._id = header
        return self._id

    @property
    def body_channel(self) -> BodyChannel:
        channel = self._channel
        if channel is None:
            channel = self._channel = BodyChannel(
                _config_value(self.app, "REQUEST_BUFFER_SIZE", DEFAULT_BUFFER_SIZE)
            )
            if self._body_received:  # marked bodyless by the server (no_body()): already over
                channel._eof = True
        return channel

    def no_body(self) -> None:
        """Server side: the request has no body (the same as ``body_channel.feed_eof()`` at once).

        Cheaper than the channel for a GET: no ``BodyChannel`` is built unless someone asks for
        it (a streaming route, ``receive_body()``), and then it is already at its end.
        """
        if self._channel is None:
            self._body_received = True
        else:
            self._channel.feed_eof()

    async def receive_body(self) -> bytes:
        """Read the whole body into ``request.body`` (once); 413 past REQUEST_MAX_SIZE."""
        if self._body_received:
            return self.body
        channel = self.body_channel
        if channel._eof and not channel._chunks and channel._error is None:
            self._body_received = True  # no body (or already set): no header or config lookups
            return self.body
        limit: int = _config_value(self.app, "REQUEST_MAX_SIZE", DEFAULT_MAX_SIZE)
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"Request body of {declared} bytes is over REQUEST_MAX_SIZE ({limit} bytes)"
            )
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await channel.read()
            if chunk is None:
                break
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"Request body is over REQUEST_MAX_SIZE ({limit} bytes); "
                    "raise the limit or stream the route (stream=True)"
                )
            parts.append(chunk)
        self._body_received = True
        if parts:
            self.body = parts[0] if len(parts) == 1 else b"".join(parts)
        return self.body

    # -- body views ----------------------------------------------------------------------------

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body); malformed JSON is a 400."""
        if not self._json_loaded:
            self._json = self.load_json()
            self._json_loaded = True
        return self._json

    def load_json(self, loads: Callable[[bytes], Any] | None = None) -> Any:
        body = self.body
        if not body:
            return None
        if loads is not None:
            try:
                return loads(body)
            except Exception as exc:
                raise InvalidJSON(f"Invalid JSON body: {exc}") from exc
        try:
            return _json.loads(body)
        except _json.JSONDecodeError as exc:
            raise InvalidJSON(
                f"Invalid JSON body: {exc.msg} at line {exc.lineno} column {exc.colno} "
                f"(char {exc.pos})"
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvalidJSON(
                f"Invalid JSON body: not UTF-8 text (byte {exc.start}: {exc.reason})"
            ) from exc
        except RecursionError as exc:
            raise InvalidJSON("Invalid JSON body: nested too deeply") from exc
        except ValueError as exc:  # e.g. an integer with more digits than Python allows
            raise InvalidJSON(f"Invalid JSON body: {exc}") from exc

    @property
    def token(self) -> str | None:
        """The credentials of an ``Authorization: Bearer <token>`` (or ``Token``) header."""
        header = self.headers.get("authorization")
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and credentials.strip():
            return credentials.strip()
        return None

    @property
    def content_type(self) -> str:
        """The Content-Type header, or ``application/octet-stream`` when absent."""
        return self.headers.get("content-type", "application/octet-stream")

    def _parse_form(self) -> None:
        form = RequestParameters()
        files = RequestParameters()
        mime, params = parse_content_type(self.content_type)
        if mime == "application/x-www-form-urlencoded":
            charset = params.get("charset", "utf-8")
            try:
                text = self.body.decode(charset)
            except (LookupError, UnicodeDecodeError) as exc:
                raise BadRequest(f"Form body is not valid {charset} text: {exc}") from exc
            for key, value in parse_qsl(text, keep_blank_values=True, encoding=charset):
                form.setdefault(key, []).append(value)
        elif mime == "multipart/form-data":
            boundary = params.get("boundary")
            if not boundary:
                raise BadRequest("multipart/form-data body without a boundary parameter")
            form, files = parse_multipart(self.body, boundary.encode("latin-1"))
        self._form, self._files = form, files

    @property
    def form(self) -> RequestParameters:
        """Fields of an urlencoded or multipart/form-data body (``form.get`` first value)."""
        if self._form is None:
            self._parse_form()
        assert self._form is not None
        return self._form

    @property
    def files(self) -> RequestParameters:
        """Uploaded files (``File(name, type, body)``) of a multipart/form-data body."""
        if self._files is None:
            self._parse_form()
        assert self._files is not None
        return self._files

    @property
    def cookies(self) -> dict[str, str]:
        """Request cookies by name (the first one wins when a name repeats)."""
        if self._cookies is None:
            self._cookies = parse_cookie_header(self.headers.getall("cookie"))
        return self._cookies

    # -- connection ----------------------------------------------------------------------------

    @property
    def ip(self) -> str:
        """The peer's IP address (the proxy's, when behind one)."""
        return self.conn_info.client_ip if self.conn_info is not None else ""

    @property
    def port(self) -> int:
        return self.conn_info.client_port if self.conn_info is not None else 0

    @property
    def remote_addr(self) -> str:
        """The client address reported by a trusted proxy, or ``""``.

        Used only when configured: ``REAL_IP_HEADER`` names a header to trust, or
        ``PROXIES_COUNT`` (> 0) says how many proxies append to ``X-Forwarded-For``.
        """
        header = _config_value(self.app, "REAL_IP_HEADER", None)
        if header:
            value = self.headers.get(header)
            if value:
                return value.strip()
        count = _config_value(self.app, "PROXIES_COUNT", 0) or 0
        if count > 0:
            hops = [h.strip() for v in self.headers.getall("x-forwarded-for") for h in v.split(",")]
            hops = [h for h in hops if h]
            if len(hops) >= count:
                return hops[-count]
        return ""

    @property
    def client_ip(self) -> str:
        """``remote_addr`` when a proxy is configured and reported one, else ``ip``."""
        return self.remote_addr or self.ip

    @property
    def scheme(self) -> str:
        """``http`` / ``https``, or ``ws`` / ``wss`` for a WebSocket upgrade."""
        base = self.conn_info.scheme if self.conn_info is not None else "http"
        if base == "http" and self.conn_info is not None and self.conn_info.ssl:
            base = "https"
        upgrade = self.headers.get("upgrade")
        if upgrade is not None and upgrade.lower() == "websocket":
            return "wss" if base == "https" else "ws"
        return base

    @property
    def host(self) -> str:
        """The Host header, or the server address when the client sent none."""
        host = self.headers.get("host")
        if host:
            return host
        if self.conn_info is not None:
            return self.conn_info.server
        return ""

    @property
    def server_name(self) -> str:
        """The host without its port."""
        host = self.host
        if host.startswith("["):
            return host[: host.find("]") + 1]
        return host.partition(":")[0]

    @property
    def url(self) -> str:
        """The full URL: ``scheme://host/path?query``."""
        query = self.query_string
        raw = self.raw_path.decode("latin-1")
        return f"{self.scheme}://{self.host}{raw}" + (f"?{query}" if query else "")

    def url_for(self, view_name: str, /, **kwargs: Any) -> str:
        """``app.url_for`` for the request's app."""
        url_for: Callable[..., str] = self.app.url_for
        return url_for(view_name, **kwargs)

    @property
    def uri_template(self) -> str | None:
        return self.route.path if self.route is not None else None

    @property
    def endpoint(self) -> str | None:
        return self.route.name if self.route is not None else None


# -- header and body parsers ---------------------------------------------------------------------


def _parse_params(text: str) -> dict[str, str]:
    """``a=1; b="x;y"; c*=UTF-8''%E2%82%AC`` -> dict (names lower case, quotes removed)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        start = i
        while i < n and text[i] not in "=;":
            i += 1
        name = text[start:i].strip().lower()
        value = ""
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                i += 1
                buf: list[str] = []
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        i += 1  # only \" and \\ are escapes; browsers send other backslashes raw
                    buf.append(text[i])
                    i += 1
                i += 1
                value = "".join(buf)
            else:
                start = i
                while i < n and text[i] != ";":
                    i += 1
                value = text[start:i].strip()
        if name:
            if name.endswith("*"):
                charset, _, rest = value.partition("'")
                _, _, encoded = rest.partition("'")
                try:
                    value = unquote(encoded, encoding=charset or "utf-8", errors="strict")
                except (LookupError, UnicodeDecodeError):
                    continue
                name = name[:-1]
                params[name] = value
            else:
                params.setdefault(name, value)
    return params


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``"text/html; charset=UTF-8"`` -> ``("text/html", {"charset": "UTF-8"})``."""
    mime, _, rest = value.partition(";")
    return mime.strip().lower(), _parse_params(rest)


def parse_cookie_header(values: list[str]) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in values:
        for item in header.split(";"):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


def parse_multipart(
    body: bytes,
    boundary: bytes,
    *,
    max_parts: int = MULTIPART_MAX_PARTS,
    charset: str = "utf-8",
) -> tuple[RequestParameters, RequestParameters]:
    """Split a multipart/form-data body into (fields, files); malformed input is a 400."""
    if not boundary or len(boundary) > 200:
        raise BadRequest("multipart/form-data boundary must be 1 to 200 characters")
    form = RequestParameters()
    files = RequestParameters()
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            raise BadRequest("multipart/form-data body does not contain its boundary")
        pos = found + 2 + len(delimiter)
    separator = b"\r\n" + delimiter
    count = 0
    while True:
        if body.startswith(b"--", pos):
            return form, files  # closing delimiter; the epilogue is ignored
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise BadRequest("multipart/form-data body is truncated or has a malformed boundary")
        start = line_end + 2
        end = body.find(separator, start)
        if end < 0:
            raise BadRequest("multipart/form-data body ends without its closing boundary")
        count += 1
        if count > max_parts:
            raise BadRequest(f"multipart/form-data body has more than {max_parts} parts")
        _add_part(body[start:end], form, files, charset)
        pos = end + len(separator)


def _add_part(part: bytes, form: RequestParameters, files: RequestParameters, charset: str) -> None:
    if part.startswith(b"\r\n"):
        head, content = b"", part[2:]
    else:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest("multipart/form-data part without a blank line after its headers")
    if len(head) > MULTIPART_MAX_PART_HEADER:
        raise BadRequest("multipart/form-data part headers are too large")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n") if head else ():
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest(f"multipart/form-data part has a malformed header line {line!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise BadRequest("multipart/form-data part without a Content-Disposition header")
    kind, params = parse_content_type(disposition)
    field = params.get("name")
    if kind != "form-data" or field is None:
        raise BadRequest(f"multipart/form-data part with a bad Content-Disposition: {disposition}")
    part_type = headers.get("content-type")
    filename = params.get("filename")
    if filename is not None:
        files.setdefault(field, []).append(
            File(filename, part_type or "application/octet-stream", content)
        )
        return
    encoding = charset
    if part_type:
        encoding = parse_content_type(part_type)[1].get("charset", charset)
    try:
        text = content.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Form field {field!r} is not valid {encoding} text: {exc}") from exc
    form.setdefault(field, []).append(text)
