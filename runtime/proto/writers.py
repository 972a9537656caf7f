"""The response side of HTTP/1.1 (RFC 9112): status lines, heads, bodies and chunks as bytes.

No I/O and no state beyond the once-a-second ``Date`` value: the server (``runtime.server``) asks
for the bytes of a head, a whole response or a chunk and writes them. The request side, the
connection's state machine, is ``runtime.proto.h1`` (which re-exports these names), as h11 keeps
its readers and writers apart.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Final

__all__ = [
    "CONTINUE",
    "LAST_CHUNK",
    "Header",
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

Header = tuple[bytes, bytes]


_STATUS_LINES: dict[int, bytes] = {
    int(s): f"HTTP/1.1 {int(s)} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} \r\n".encode("latin-1")
    return line


_date_value = b""
_date_second = -1


def http_date() -> bytes:
    """The ``Date`` header value, formatted at most once per second."""
    global _date_value, _date_second
    now = time.time()
    second = int(now)
    if second != _date_second:
        _date_second = second
        _date_value = imf_fixdate(second).encode("ascii")
    return _date_value


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imf_fixdate(seconds: float) -> str:
    """RFC 9110's ``IMF-fixdate`` (``Sun, 06 Nov 1994 08:49:37 GMT``), as
    ``email.utils.formatdate(seconds, usegmt=True)`` gives it; written out because ``email.utils``
    costs ~2 ms of import on every worker start, and this is its whole job here."""
    t = time.gmtime(seconds)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"

_NO_BODY_STATUSES = frozenset((204, 304))


def status_has_body(status: int) -> bool:
    return status >= 200 and status not in _NO_BODY_STATUSES


_TAIL_KEEP = b"connection: keep-alive\r\n\r\n"
_TAIL_CLOSE = b"connection: close\r\n\r\n"
_TAIL_IMPLIED = b"\r\n"  # HTTP/1.1 keep-alive, not announced


def response_head(
    status: int,
    headers: list[Header],
    *,
    content_length: int | None,
    keep_alive: bool,
    chunked: bool = True,
    announce_keep_alive: bool = True,
) -> bytes:
    """Serialise a response head. ``content_length=None`` means chunked (when the status has one),
    or, with ``chunked=False``, a body delimited by closing the connection (HTTP/1.0 streams).

    ``headers`` must not contain Content-Length, Transfer-Encoding, Date or Connection (the
    server owns those; callers filter them out). ``announce_keep_alive=False`` leaves out
    ``Connection: keep-alive``, which HTTP/1.1 implies (the ASGI host does, as uvicorn does, and
    announces it to HTTP/1.0 clients only).
    """
    fields = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
    return fields_head(
        status,
        fields,
        content_length=content_length,
        keep_alive=keep_alive,
        chunked=chunked,
        announce_keep_alive=announce_keep_alive,
    )


def fields_head(
    status: int,
    fields: bytes,
    *,
    content_length: int | None,
    keep_alive: bool,
    chunked: bool = True,
    announce_keep_alive: bool = True,
) -> bytes:
    """:func:`response_head` with the header lines already serialised (``fields``: ``b"name:
    value\r\n"`` each, as :func:`complete_response` takes them)."""
    line = _STATUS_LINES.get(status) or status_line(status)
    tail = (_TAIL_KEEP if announce_keep_alive else _TAIL_IMPLIED) if keep_alive else _TAIL_CLOSE
    if content_length is not None and status >= 200 and status != 204 and status != 304:
        return b"%s%scontent-length: %d\r\ndate: %s\r\n%s" % (
            line,
            fields,
            content_length,
            http_date(),
            tail,
        )
    framing = b""
    if content_length is None and chunked and status_has_body(status):
        framing = b"transfer-encoding: chunked\r\n"
    return b"%s%s%sdate: %s\r\n%s" % (line, fields, framing, http_date(), tail)


def complete_response(
    status: int, fields: bytes, body: bytes, *, keep_alive: bool, send_body: bool
) -> bytes:
    """A whole non-streaming response (head and body) as one bytes object, for one write.

    ``fields`` is the serialised header lines (``b"name: value\r\n"`` each) without
    Content-Length, Transfer-Encoding, Date or Connection; ``send_body=False`` for HEAD (the
    Content-Length is still that of ``body``). 1xx, 204 and 304 get neither length nor body.
    """
    line = _STATUS_LINES.get(status) or status_line(status)
    tail = _TAIL_KEEP if keep_alive else _TAIL_CLOSE
    if status >= 200 and status != 204 and status != 304:
        return b"%s%scontent-length: %d\r\ndate: %s\r\n%s%s" % (
            line,
            fields,
            len(body),
            http_date(),
            tail,
            body if send_body else b"",
        )
    return b"%s%sdate: %s\r\n%s" % (line, fields, http_date(), tail)


def chunk(data: bytes) -> bytes:
    """Frame one chunk of a chunked body (empty data gives nothing: use LAST_CHUNK to end)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def reject_response(status: int, reason: str) -> bytes:
    """A complete plain-text error response that closes the connection."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{status} {phrase}: {reason}\n".encode("utf-8", "replace")
    head = response_head(
        status,
        [(b"content-type", b"text/plain; charset=utf-8")],
        content_length=len(body),
        keep_alive=False,
    )
    return head + body
