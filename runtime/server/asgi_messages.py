"""What the two ASGI sides of the server share: response headers checked, and the disconnect error.

``runtime.server.asgi_http`` (the ``http`` scope) and ``runtime.server.asgi_ws`` (the
``websocket`` scope, whose denial response is an HTTP response) both use them.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

__all__ = ["ClientDisconnected", "response_fields", "response_headers"]


class ClientDisconnected(OSError):
    """``send()`` after the client went away (ASGI: an ``IOError`` subclass of the server's)."""


_SERVER_OWNED = frozenset((b"content-length", b"transfer-encoding", b"connection", b"date"))

# What a header name is, decided once per name (apps send the same few names again and again):
_PLAIN, _LENGTH, _CONNECTION, _DROPPED = 0, 1, 2, 3
_NAMES: dict[bytes, int] = {}
_NAMES_MAX = 512


# RFC 9110: a field name is a token; a value holds no control character but HTAB (CR, LF and NUL
# would let an app's value end the head or the header; uvicorn refuses the same characters)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _classify(name: bytes) -> int:
    if _TOKEN.fullmatch(name) is None:
        raise RuntimeError(f"ASGI response header name {name!r} holds a forbidden character")
    lower = name.lower()
    kind = (
        _LENGTH
        if lower == b"content-length"
        else _CONNECTION
        if lower == b"connection"
        else _DROPPED
        if lower in _SERVER_OWNED
        else _PLAIN
    )
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[name] = kind
    return kind


_BYTES_LIKE = (bytes, bytearray, memoryview)


def _as_bytes(name: object, value: object) -> tuple[bytes, bytes]:
    if not isinstance(name, _BYTES_LIKE) or not isinstance(value, _BYTES_LIKE):
        raise RuntimeError(f"ASGI response header {[name, value]!r} must be a pair of bytes")
    return bytes(name), bytes(value)


def _content_length(value: bytes) -> int:
    # RFC 9110: 1*DIGIT (no sign, no white space); bytes.isdigit() is ASCII only. 18 digits are
    # more than any body (and int() refuses over 4,300 with a ValueError of its own)
    if not value.isdigit() or len(value) > 18:
        raise RuntimeError(f"Invalid Content-Length header {value!r}")
    return int(value)


def response_headers(raw: Any) -> tuple[list[tuple[bytes, bytes]], int | None, bool]:
    """The app's headers without those the server owns; its Content-Length; ``Connection: close``.

    Protocol errors (not pairs of bytes, a forbidden character, a bad Content-Length) raise
    ``RuntimeError``.
    """
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    close = False
    try:
        for name, value in raw:
            if name.__class__ is not bytes or value.__class__ is not bytes:
                name, value = _as_bytes(name, value)
            kind = _NAMES.get(name)
            if kind is None:
                kind = _classify(name)
            if _BAD_VALUE.search(value) is not None:
                _forbidden(name, value)
            if kind == _PLAIN:
                headers.append((name, value))
            elif kind == _LENGTH:
                length = _content_length(value)
            elif kind == _CONNECTION:
                close = b"close" in value.lower()
    except (TypeError, ValueError):
        raise RuntimeError(
            f"ASGI response headers must be an iterable of [name, value] pairs, got {raw!r}"
        ) from None
    return headers, length, close


def response_fields(raw: Any) -> tuple[bytes, int | None, bool]:
    """:func:`response_headers` with the kept headers serialised (``b"name: value\r\n"`` each),
    for the head of an HTTP response; the same protocol errors raise ``RuntimeError``.

    The hot path of every ASGI response: a header an app sends again and again (the same
    ``(name, value)`` tuple of bytes) is checked once and then found in ``_PAIRS``.
    """
    parts: list[bytes] = []
    length: int | None = None
    close = False
    try:
        for pair in raw:
            known = None
            if pair.__class__ is tuple:
                try:
                    known = _PAIRS.get(pair)
                except (TypeError, ValueError):  # a bytearray or memoryview in it: not hashable
                    pass
            if known is None:
                known = _check_pair(pair)
            kind, data = known
            if kind == _PLAIN:
                parts.append(data)
            elif kind == _LENGTH:
                length = data
            elif kind == _CONNECTION:
                close = data
    except (TypeError, ValueError):
        raise RuntimeError(
            f"ASGI response headers must be an iterable of [name, value] pairs, got {raw!r}"
        ) from None
    return b"".join(parts), length, close


# A checked header -> (its kind, what it gives): the serialised line of a kept header, the
# number of a Content-Length, whether a Connection header says close. Bounded: cleared when full
# (an app whose values differ on every response, cookies say, gains nothing and loses little),
# and only short values are kept (the repeated ones are: types, lengths, cache rules).
_PAIRS: dict[tuple[bytes, bytes], tuple[int, Any]] = {}
_PAIRS_MAX = 1024
_PAIR_VALUE_MAX = 256


def _check_pair(pair: Any) -> tuple[int, Any]:
    name, value = pair  # TypeError, ValueError: not a pair
    if name.__class__ is not bytes or value.__class__ is not bytes:
        name, value = _as_bytes(name, value)
        pair = None  # only tuples of bytes are cached (others are unhashable or mutable)
    kind = _NAMES.get(name)
    if kind is None:
        kind = _classify(name)
    if _BAD_VALUE.search(value) is not None:
        _forbidden(name, value)
    data: Any = None
    if kind == _PLAIN:
        data = name + b": " + value + b"\r\n"
    elif kind == _LENGTH:
        data = _content_length(value)
    elif kind == _CONNECTION:
        data = b"close" in value.lower()
    known = (kind, data)
    if pair is not None and pair.__class__ is tuple and len(value) <= _PAIR_VALUE_MAX:
        if len(_PAIRS) >= _PAIRS_MAX:
            _PAIRS.clear()
        _PAIRS[pair] = known
    return known


def _forbidden(name: object, value: object) -> NoReturn:
    raise RuntimeError(f"ASGI response header {name!r}: {value!r} holds a forbidden character")
