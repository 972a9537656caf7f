"""The request object.

``Request`` is slotted and lazy: the target is split into path and query only when one of them is
read, headers are decoded on first use, and ``ctx``, ``args``, ``json``, ``form``, ``files`` and
``cookies`` are built the first time they are asked for.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from runtime.body import DEFAULT_BUFFER_SIZE, BodyChannel
from runtime.datastructures import ConnInfo, Headers, QueryArgs, RequestParameters, split_target
from runtime.exceptions import InvalidJSON, PayloadTooLarge
from runtime.forms import parse_content_type, parse_cookie_header, parse_form, parse_multipart

if TYPE_CHECKING:
    from runtime.routing import Route

# BodyChannel (runtime.body) and the parsers (runtime.forms) are importable from here as before
__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "BodyChannel",
    "Request",
    "parse_content_type",
    "parse_cookie_header",
    "parse_multipart",
]

DEFAULT_MAX_SIZE = 100 * 1024 * 1024


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
        target, query = split_target(self.target)
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
            if b"?" in target or b"%" in target or target[:1] != b"/" or 35 in target:  # "#"
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
        self._form, self._files = parse_form(self.body, self.content_type)

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

    def _forwarded(self) -> tuple[str | None, str | None]:
        """``(client, scheme)`` from the proxy headers (``--proxy-headers``, ``PROXY_HEADERS``)
        of a connection from a trusted proxy (``FORWARDED_ALLOW_IPS``); ``None`` each else."""
        if not _config_value(self.app, "PROXY_HEADERS", False) or self.conn_info is None:
            return None, None
        from runtime.proxy import forwarded, trusted_proxies  # only behind a proxy

        peer = self.conn_info.unix if self.conn_info.unix is not None else self.ip
        trusted = trusted_proxies(_config_value(self.app, "FORWARDED_ALLOW_IPS", "127.0.0.1"))
        return forwarded(peer or "", self.headers.getall, trusted)

    @property
    def remote_addr(self) -> str:
        """The client address reported by a trusted proxy, or ``""``.

        Used only when configured: ``--proxy-headers`` (``PROXY_HEADERS``) reads
        ``Forwarded`` / ``X-Forwarded-For`` from a peer of ``--forwarded-allow-ips``;
        ``REAL_IP_HEADER`` names a header to trust; ``PROXIES_COUNT`` (> 0) says how many
        proxies append to ``X-Forwarded-For``.
        """
        client, _ = self._forwarded()
        if client:
            return client
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
        """``http`` / ``https``, or ``ws`` / ``wss`` for a WebSocket upgrade; behind a trusted
        proxy (``--proxy-headers``) the scheme it reports."""
        base = self.conn_info.scheme if self.conn_info is not None else "http"
        if base == "http" and self.conn_info is not None and self.conn_info.ssl:
            base = "https"
        _, proto = self._forwarded()
        if proto:
            base = "https" if proto in ("https", "wss") else "http"
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
