"""What to answer for a file and a request: validators, conditional requests, byte ranges.

Pure functions over a file's size and modification time and the request's method and headers; no
I/O, no asyncio. The server (``runtime.server.respond``) calls :func:`select` once it has opened
and ``fstat``-ed the file, so the answer describes the file it actually sends.

Rules (RFC 9110, sections 8.8, 13 and 14):

1. Validators: ``ETag`` is ``"<mtime_ns hex>-<size hex>"`` (strong; it changes when the file is
   rewritten or resized), ``Last-Modified`` is the modification time (or the one the handler gave).
2. Preconditions apply only to a ``200`` answer of ``GET``/``HEAD``, in RFC 9110's order:
   ``If-Match`` (else ``If-Unmodified-Since``) failing gives ``412``; ``If-None-Match`` matching
   (weak comparison), else ``If-Modified-Since`` not older than the file, gives ``304`` with the
   validators and no body.
3. ``Range`` applies only to ``GET`` (a ``HEAD`` gets the whole file's head) and only when the
   response accepts ranges; an ``If-Range`` that does not match (strong ETag or exact date) means
   the whole file. ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n``; a header that does not parse is
   ignored (``200``). One satisfiable range gives ``206`` with ``Content-Range``; none gives
   ``416`` with ``Content-Range: bytes */size``. Several ranges are merged when they overlap or
   touch; when they stay several, the answer is the whole file (``200``): RFC 9110 lets a server
   ignore ``Range``, and a ``multipart/byteranges`` body cannot be sent with ``sendfile`` and is
   served by almost no static server clients rely on.
"""

from __future__ import annotations

import time
from typing import NamedTuple, Protocol

__all__ = [
    "MAX_RANGES",
    "RequestHeaders",
    "Selection",
    "content_type_for",
    "etag_for",
    "http_date",
    "parse_range",
    "select",
]


class RequestHeaders(Protocol):
    """What ``select`` reads of the request's headers: ``get`` by lower-case name."""

    def get(self, name: str, /) -> str | None: ...


#: a Range header with more parts than this is ignored (each part costs work; no client needs it)
MAX_RANGES = 64


class Selection(NamedTuple):
    """The answer for one file: status, the headers it adds, and the bytes to send."""

    status: int
    headers: list[tuple[str, str]]
    offset: int
    length: int  # bytes of the body (0 for 304, 412 and 416)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: float) -> str:
    """RFC 9110's ``IMF-fixdate`` (``Sun, 06 Nov 1994 08:49:37 GMT``) of a UTC timestamp."""
    whole = int(seconds)
    text = _DATES.get(whole)
    if text is None:
        t = time.gmtime(whole)
        text = (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
        )
        if len(_DATES) >= 256:  # the modification times of the files being served
            _DATES.clear()
        _DATES[whole] = text
    return text


_DATES: dict[int, str] = {}


def etag_for(mtime_ns: int, size: int) -> str:
    return f'"{mtime_ns:x}-{size:x}"'


def content_type_for(name: str, default: str = "application/octet-stream") -> str:
    """The type of a file from its name; text types get ``charset=utf-8``."""
    suffix = name[name.rfind(".") :] if "." in name.rpartition("/")[2] else ""
    known = _TYPES.get((suffix, default))
    if known is None:
        known = _guess(name, default)
        if len(_TYPES) < 512:
            _TYPES[suffix, default] = known
    return known


_TYPES: dict[tuple[str, str], str] = {}


def _guess(name: str, default: str) -> str:
    import mimetypes  # here: ~0.5 ms of import, and its tables are read on first use

    guessed, encoding = mimetypes.guess_type(name)
    if guessed is None or encoding is not None:
        return default
    if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
        return f"{guessed}; charset=utf-8"
    return guessed


def _http_date(value: str) -> float | None:
    from email.utils import parsedate_to_datetime  # ~2 ms of import: only when a date comes

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _tags(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _weak_match(header: str, etag: str) -> bool:
    ours = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == ours for tag in _tags(header))


def _strong_match(header: str, etag: str) -> bool:
    return any(tag == "*" or (tag == etag and not tag.startswith("W/")) for tag in _tags(header))


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ``(first, last)`` byte ranges of ``header`` for a file of ``size`` bytes,
    merged and sorted; ``None`` when the header does not parse (it is then ignored); ``[]`` when it
    parses but nothing is satisfiable (416)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    parts = spec.split(",")
    if len(parts) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for part in parts:
        first_text, dash, last_text = part.strip().partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        if not dash or not (first_text.isdigit() or first_text == ""):
            return None
        if last_text and not last_text.isdigit():
            return None
        if not first_text:  # bytes=-n: the last n bytes
            if not last_text:
                return None
            count = int(last_text)
            if count > 0 and size > 0:
                ranges.append((max(0, size - count), size - 1))
            continue
        first = int(first_text)
        if last_text and int(last_text) < first:
            return None  # RFC 9110 14.1.1: invalid; the whole header is ignored
        last = int(last_text) if last_text else size - 1
        if first < size:
            ranges.append((first, min(last, size - 1)))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for first, last in ranges:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def select(
    *,
    method: str,
    status: int,
    request_headers: RequestHeaders,
    size: int,
    etag: str | None,
    last_modified: float | None,
    ranges: bool,
    conditional: bool,
) -> Selection:
    """What to send (see the module rules). ``last_modified`` is in seconds (UTC epoch)."""
    whole = Selection(status, [], 0, size)
    if status != 200 or method not in ("GET", "HEAD"):
        return whole
    get = request_headers.get
    if conditional:
        if_match = get("if-match")
        if if_match is not None:
            if etag is None or not _strong_match(if_match, etag):
                return Selection(412, [], 0, 0)
        else:
            since = get("if-unmodified-since")
            when = _http_date(since) if since else None
            if when is not None and last_modified is not None and int(last_modified) > when:
                return Selection(412, [], 0, 0)
        if_none_match = get("if-none-match")
        if if_none_match is not None:
            if etag is not None and _weak_match(if_none_match, etag):
                return Selection(304, [], 0, 0)
        else:
            since = get("if-modified-since")
            when = _http_date(since) if since else None
            if when is not None and last_modified is not None and int(last_modified) <= when:
                return Selection(304, [], 0, 0)
    if not ranges or method != "GET":
        return whole
    header = get("range")
    if header is None:
        return whole
    if_range = get("if-range")
    if if_range is not None:
        if_range = if_range.strip()
        if if_range.startswith(('"', "W/")):
            if etag is None or if_range != etag:
                return whole
        else:
            when = _http_date(if_range)
            if when is None or last_modified is None or int(last_modified) != int(when):
                return whole
    wanted = parse_range(header, size)
    if wanted is None or len(wanted) > 1:
        return whole
    if not wanted:
        return Selection(416, [("content-range", f"bytes */{size}")], 0, 0)
    first, last = wanted[0]
    return Selection(
        206, [("content-range", f"bytes {first}-{last}/{size}")], first, last - first + 1
    )
