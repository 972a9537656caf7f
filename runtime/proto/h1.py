"""HTTP/1.1 server side, sans-I/O: bytes in, events out, over httptools (llhttp).

Rules of the connection (the state lives in :class:`H1Connection`):

1. ``receive_data(data)`` returns the events the bytes completed, in order: for each request a
   :class:`RequestHead`, zero or more :class:`Data`, then :data:`END`. Pipelined requests simply
   follow each other in the list; the caller answers them in order.
2. A request the peer got wrong ends the event list with a :class:`Reject` carrying the status to
   answer (400, 413, 431, 501, ...). After a ``Reject`` the connection is dead: every later
   ``receive_data`` returns ``[]`` and the caller must answer and close. Events before the
   ``Reject`` (earlier pipelined requests) are valid and are answered first.
3. A websocket upgrade ends the list with an :class:`Upgrade` holding the bytes that followed the
   head; the HTTP parser is finished with the connection.
4. Limits: ``max_header_size`` bytes of request line + headers and ``max_header_count`` fields
   (431), ``max_body_size`` bytes of body (413), declared or streamed.
5. Smuggling shapes are refused with 400 and the connection closed: Content-Length together with
   Transfer-Encoding, duplicate Content-Length, Transfer-Encoding on HTTP/1.0, a
   Transfer-Encoding whose last coding is not ``chunked``, obs-fold, bare LF, invalid chunk sizes,
   header names with spaces or non-token characters. Codings other than ``chunked`` get 501.
6. ``Host`` (RFC 9112 section 3.2): an HTTP/1.1 request without one, any request with more than
   one ``Host`` line, or a ``Host`` that is not ``host[:port]`` (a reg-name, an IPv4 address or a
   bracketed IP literal; empty is allowed) gets 400. HTTP/1.0 requests may leave it out. The
   check rides on the header walk the parser already does (one name length among the special
   ones) and a set of values seen valid, so a keep-alive client pays one lookup per request.
7. A method llhttp does not know (``FOO / HTTP/1.1``, and ``get``: methods are case-sensitive)
   gets 501, as RFC 9110 section 9.1 asks; a request line that is not ``token SP`` at all gets
   400. HTTP/2 (its preface) and versions other than 1.0 and 1.1 get 505.
8. ``Reject.reason`` is ours: each kind of parser error maps to a short sentence written here
   (``_PARSER_ERRORS``), never llhttp's internal text, so the answer does not depend on the
   version of the parser and does not describe its state machine to the peer.

The response side is plain functions (:func:`response_head`, :func:`chunk`, ...) in
``runtime.proto.writers``, re-exported here: the server serialises, they only know the wire format.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import httptools

from runtime.proto.writers import (
    CONTINUE,
    LAST_CHUNK,
    Header,
    chunk,
    complete_response,
    fields_head,
    http_date,
    imf_fixdate,
    reject_response,
    response_head,
    status_has_body,
    status_line,
)

__all__ = [
    "CONTINUE",
    "END",
    "LAST_CHUNK",
    "Data",
    "EndOfMessage",
    "H1Connection",
    "LowerNamesConnection",
    "Reject",
    "RequestHead",
    "Upgrade",
    "chunk",
    "complete_response",
    "fields_head",
    "http_date",
    "imf_fixdate",
    "reject_response",
    "response_head",
    "status_has_body",
    "status_line",
]


class RequestHead:
    """A parsed request line and header block."""

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "has_body",
        "headers",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: list[Header],
        version: str,
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        expect_continue: bool,
        upgrade: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.version = version
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.upgrade = upgrade  # a websocket upgrade request
        self.has_body = chunked or bool(content_length)

    def __repr__(self) -> str:
        return f"RequestHead({self.method} {self.target!r} HTTP/{self.version})"


class Data:
    """A piece of request body (chunk framing already removed)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data({self.data!r})"


class EndOfMessage:
    """The request body is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = EndOfMessage()


class Reject:
    """The peer broke the protocol or a limit: answer ``status`` and close."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"Reject({self.status}, {self.reason!r})"


class Upgrade:
    """The previous head is a websocket upgrade; ``trailing`` is what the client sent after it."""

    __slots__ = ("trailing",)

    def __init__(self, trailing: bytes) -> None:
        self.trailing = trailing

    def __repr__(self) -> str:
        return f"Upgrade({self.trailing!r})"


Event = RequestHead | Data | EndOfMessage | Reject | Upgrade


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing; the reason is in ``H1Connection``."""


_SUPPORTED_VERSIONS = frozenset(("1.0", "1.1"))


class H1Connection:
    """The server side of one HTTP/1.1 connection (see the module docstring for the rules)."""

    __slots__ = (
        "_body_size",
        "_content_length",
        "_events",
        "_expect",
        "_head_pending",
        "_head_size",
        "_headers",
        "_host",
        "_parser",
        "_reject",
        "_te",
        "_upgrade_header",
        "_url",
        "dead",
        "in_message",
        "keep_alive",
        "max_body_size",
        "max_header_count",
        "max_header_size",
    )

    def __init__(
        self,
        *,
        max_header_size: int = 8192,
        max_header_count: int = 100,
        max_body_size: int = 100 * 1024 * 1024,
        keep_alive: bool = True,
    ) -> None:
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_body_size = max_body_size
        self.keep_alive = keep_alive  # False once a request asked to close (or keep-alive is off)
        #: True while a request head has started arriving but is not complete
        self.in_message = False
        #: True once nothing more will be parsed (after a Reject, an Upgrade or "close")
        self.dead = False
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._reject: Reject | None = None
        self._reset_message()
        self._head_pending = 0

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: list[Header] = []
        self._head_size = 0
        self._body_size = 0
        self._content_length: int | None = None
        self._te: bytes | None = None
        self._expect: bytes | None = None
        self._upgrade_header = False
        self._host: bytes | None = None

    # -- input ------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they completed (see rule 1)."""
        if self.dead:
            return []
        events: list[Event] = []
        self._events = events
        began_before = self.in_message
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0]
            self._on_upgrade(data[offset:])
        except httptools.HttpParserError as exc:
            self._fail(exc, data)
            return events
        if self.in_message and not self.dead:
            # bound what httptools buffers for a head still in progress
            # (bytes of this feed count when they all belong to the head in progress)
            pending = self._head_pending if began_before else 0
            self._head_pending = pending + (0 if events else len(data))
            if self._head_pending > self.max_header_size:
                self._error(431, "Request header fields too large")
        return events

    def _on_upgrade(self, trailing: bytes) -> None:
        if self.dead:
            return
        if self._events and isinstance(self._events[-1], EndOfMessage):
            heads = [e for e in self._events if isinstance(e, RequestHead)]
            if heads and heads[-1].upgrade:
                self._events.append(Upgrade(trailing))
                self.dead = True
                return
            if heads and heads[-1].method == "CONNECT":
                self._events[:] = [e for e in self._events if e is not heads[-1]][:-1]
                self._error(501, "CONNECT is not supported")
                return
        # another Upgrade (h2c, ...) is ignored: carry on with a fresh parser on the rest
        self._parser = httptools.HttpRequestParser(self)
        if trailing:
            events = self._events
            events.extend(self.receive_data(trailing))
            self._events = events

    def _fail(self, exc: Exception, data: bytes = b"") -> None:
        if self.dead and self._reject is None:
            return  # stopped on purpose after a "Connection: close" request
        if self._reject is not None:
            reject = self._reject
            self._error(reject.status, reject.reason)
            return
        if self._te is not None and _has_unsupported_coding(self._te):
            self._error(501, f"Unsupported Transfer-Encoding: {self._te.decode('latin-1')}")
        elif isinstance(exc, httptools.HttpParserInvalidMethodError):
            method = _unknown_method(data)
            if method is None:
                self._error(400, "Malformed request line (no method)")
            else:
                self._error(501, f"Unknown method {method.decode('ascii')}")
        elif isinstance(exc, httptools.HttpParserInvalidURLError):
            self._error(400, "Invalid character in the request target")
        else:
            llhttp_reason = str(exc)
            if llhttp_reason in _VERSION_ERRORS:
                version = self._parser.get_http_version()
                self._error(505, f"HTTP/{version} is not supported (HTTP/1.1 and 1.0 are)")
                return
            for fragment, reason in _PARSER_ERRORS:
                if fragment in llhttp_reason:
                    self._error(400, reason)
                    return
            self._error(400, "Malformed request")

    def _error(self, status: int, reason: str) -> None:
        self._events.append(Reject(status, reason))
        self.dead = True
        self.keep_alive = False
        self.in_message = False

    def _stop(self, status: int, reason: str) -> None:
        self._reject = Reject(status, reason)
        raise _Stop

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self._head_pending = 0
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._body_size = 0
        self._content_length = None
        self._te = None
        self._expect = None
        self._upgrade_header = False
        self._host = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self.max_header_size:
            self._stop(431, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp drops the whitespace before a value, not after it (RFC 9112 5: OWS is no part
        # of the value); rstrip returns the same object when there is none
        value = value.rstrip(b" \t")
        headers = self._headers
        headers.append((name, value))
        size = self._head_size + len(name) + len(value) + 4
        self._head_size = size
        if size > self.max_header_size or len(headers) > self.max_header_count:
            self._over_limit(size)
        if len(name) in (4, 6, 7, 14, 17):  # Host, Expect, Upgrade, Content-Length, T-E
            lname = name.lower()
            if lname in _SPECIAL_NAMES:
                self._special_header(lname, value)

    def _over_limit(self, size: int) -> None:
        if size > self.max_header_size:
            self._stop(431, "Request header fields too large")
        self._stop(431, f"Too many header fields (more than {self.max_header_count})")

    def _special_header(self, lname: bytes, value: bytes) -> None:
        if lname == b"host":
            if self._host is not None:
                self._stop(400, "More than one Host header")
            if value not in _valid_hosts:
                if _host_pattern().fullmatch(value) is None:
                    self._stop(400, "Invalid Host header (expected host[:port])")
                if len(_valid_hosts) >= 64:
                    _valid_hosts.clear()
                _valid_hosts.add(value)
            self._host = value
        elif lname == b"content-length":
            self._content_length = int(value)
        elif lname == b"transfer-encoding":
            self._te = value if self._te is None else self._te + b", " + value
        elif lname == b"expect":
            self._expect = value.lower()
        elif lname == b"upgrade":
            self._upgrade_header = value.strip().lower() == b"websocket"

    def on_headers_complete(self) -> None:
        self.in_message = False
        parser = self._parser
        version = parser.get_http_version()
        if version not in _SUPPORTED_VERSIONS:
            if version == "0.9":
                self._stop(400, "Malformed request line (HTTP/0.9 is not supported)")
            self._stop(505, f"HTTP/{version} is not supported (HTTP/1.1 and 1.0 are)")
        if self._host is None and version == "1.1":
            self._stop(400, "Missing Host header (HTTP/1.1 requires one)")
        chunked = False
        if self._te is not None:
            if _has_unsupported_coding(self._te):
                self._stop(501, f"Unsupported Transfer-Encoding: {self._te.decode('latin-1')}")
            if version == "1.0":
                self._stop(400, "Transfer-Encoding is not allowed in HTTP/1.0 requests")
            chunked = True
        length = self._content_length
        if length is not None and length > self.max_body_size:
            self._stop(413, f"Request body of {length} bytes is over the limit")
        expect = self._expect
        if expect is not None and expect != b"100-continue":
            self._stop(417, "Unsupported Expect header")
        method = parser.get_method().decode("ascii")
        keep_alive = self.keep_alive and parser.should_keep_alive()
        self.keep_alive = keep_alive
        upgrade = self._upgrade_header and parser.should_upgrade()
        self._events.append(
            RequestHead(
                method,
                self._url,
                self._headers,
                version,
                keep_alive,
                length,
                chunked,
                expect is not None,
                upgrade,
            )
        )

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.max_body_size:
            self._stop(413, "Request body is over the limit")
        self._events.append(Data(body))

    def on_message_complete(self) -> None:
        self._events.append(END)
        if not self.keep_alive:
            # nothing after a "Connection: close" request is read
            self.dead = True
            raise _Stop


class LowerNamesConnection(H1Connection):
    """An :class:`H1Connection` whose request heads hold lowercased header names: the form of
    an ASGI scope's ``headers``, made as each header is parsed rather than by copying the list."""

    __slots__ = ()

    def on_header(self, name: bytes, value: bytes) -> None:
        # H1Connection.on_header with the name lowered first (inline: once per header)
        name = name.lower()
        value = value.rstrip(b" \t")
        headers = self._headers
        headers.append((name, value))
        size = self._head_size + len(name) + len(value) + 4
        self._head_size = size
        if size > self.max_header_size or len(headers) > self.max_header_count:
            self._over_limit(size)
        if name in _SPECIAL_NAMES:
            self._special_header(name, value)


#: the header names the parser itself reads (``H1Connection._special_header``)
_SPECIAL_NAMES = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"expect", b"upgrade")
)


def _has_unsupported_coding(te: bytes) -> bool:
    return any(token.strip().lower() != b"chunked" for token in te.split(b","))


# Host = uri-host [ ":" port ]; uri-host = IP-literal / IPv4address / reg-name (RFC 3986)
_valid_hosts: set[bytes] = set()  # values that passed _host_pattern() (bounded: cleared at 64)


# Compiled on first use, not at import: compiling both costs ~0.3 ms of every start-up, and a
# start serves before it sees a Host value or a rejected request line.
@functools.cache
def _host_pattern() -> re.Pattern[bytes]:
    return re.compile(rb"(?:\[[0-9A-Za-z:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


@functools.cache
def _request_line_pattern() -> re.Pattern[bytes]:
    """A request line whose method is a token: ``token SP target SP HTTP/``."""
    return re.compile(rb"(?:^|\n)([!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}) [^\x00-\x20\x7f]+ HTTP/")


def _unknown_method(data: bytes) -> bytes | None:
    """The method of the request line llhttp refused as an "invalid method", when that line is
    ``token SP target SP HTTP/...`` (an unknown method: 501); ``None`` for bytes that are no
    request line at all (400). The first such line whose method llhttp does not know is the one
    it stopped at: the lines before it are requests it already parsed."""
    known: set[bytes] = set()  # one probe per distinct method, however many lines repeat it
    for match in _request_line_pattern().finditer(data):
        method = match.group(1)
        if method in known:
            continue
        probe = httptools.HttpRequestParser(_Ignore())
        try:
            probe.feed_data(method + b" / HTTP/1.1\r\n")
        except httptools.HttpParserInvalidMethodError:
            return method
        except httptools.HttpParserError:
            pass
        known.add(method)
    return None


class _Ignore:
    """A parser callback object that wants no callbacks."""


_VERSION_ERRORS: Final = frozenset(("Invalid HTTP version", "Pause on PRI/Upgrade"))

# llhttp's error text (a fragment of it) -> what the 400 says, first match wins
_PARSER_ERRORS: Final = (
    (
        "Transfer-Encoding can't be present with Content-Length",
        "Both Content-Length and Transfer-Encoding",
    ),
    (
        "Content-Length can't be present with Transfer-Encoding",
        "Both Content-Length and Transfer-Encoding",
    ),
    ("Duplicate Content-Length", "More than one Content-Length"),
    ("Content-Length overflow", "Content-Length too large"),
    ("Chunk size overflow", "Chunk size too large"),
    ("Content-Length", "Invalid Content-Length (expected digits only)"),
    ("Transfer-Encoding", "Invalid Transfer-Encoding (chunked must be the last coding, once)"),
    ("chunk size", "Invalid chunk size (expected hexadecimal digits)"),
    ("chunk extension", "Invalid chunk extension"),
    ("chunk", "Malformed chunk (each chunk ends with CRLF)"),
    ("space after start line", "Folded or indented header line"),
    ("whitespace after header value", "Folded header line (obs-fold is not allowed)"),
    ("header value char", "Invalid character in a header value"),
    ("header field char", "Invalid header name (a token, no space before the colon)"),
    ("header token", "Invalid header name (a token followed by a colon)"),
    ("Expected HTTP/", "Malformed request line (expected METHOD target HTTP/1.1)"),
    ("Expected SOURCE", "Malformed request line (expected METHOD target HTTP/1.1)"),
    ("LF", "Lines must end with CRLF"),
    ("CR", "Lines must end with CRLF"),
)
