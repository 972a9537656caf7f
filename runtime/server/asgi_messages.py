"""What the two ASGI sides of the server share: response headers checked, and the disconnect error.

``runtime.server.asgi_http`` (the ``http`` scope) and ``runtime.server.asgi_ws`` (the
``websocket`` scope, whose denial response is an HTTP response) both use them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClientDisconnected", "response_headers"]


class ClientDisconnected(OSError):
    """``send()`` after the client went away (ASGI: an ``IOError`` subclass of the server's)."""


_SERVER_OWNED = frozenset((b"content-length", b"transfer-encoding", b"connection", b"date"))

# What a header name is, decided once per name (apps send the same few names again and again):
_PLAIN, _LENGTH, _CONNECTION, _DROPPED = 0, 1, 2, 3
_NAMES: dict[bytes, int] = {}
_NAMES_MAX = 512


def _classify(name: bytes) -> int:
    if b"\n" in name or b"\r" in name or b":" in name or not name:
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


def _as_bytes(name: object, value: object) -> tuple[bytes, bytes]:
    if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
        raise RuntimeError(f"ASGI response header {[name, value]!r} must be a pair of bytes")
    return bytes(name), bytes(value)


def _content_length(value: bytes) -> int:
    try:
        length = int(value)
    except ValueError:
        raise RuntimeError(f"Invalid Content-Length header {value!r}") from None
    if length < 0:
        raise RuntimeError(f"Invalid Content-Length header {value!r}")
    return length


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
            if b"\n" in value or b"\r" in value:
                raise RuntimeError(
                    f"ASGI response header {name!r}: {value!r} holds a forbidden character"
                )
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
