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


def response_headers(raw: Any) -> tuple[list[tuple[bytes, bytes]], int | None, bool]:
    """The app's headers without those the server owns; its Content-Length; ``Connection: close``.

    Protocol errors (not pairs of bytes, a bad Content-Length) raise ``RuntimeError``.
    """
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    close = False
    try:
        pairs = list(raw)
    except TypeError:
        raise RuntimeError("ASGI response headers must be an iterable of [name, value]") from None
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise RuntimeError(
                f"ASGI response header {pair!r} is not a [name, value] pair"
            ) from None
        if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
            raise RuntimeError(f"ASGI response header {pair!r} must be a pair of bytes")
        if b"\n" in value or b"\r" in value or b"\n" in name or b"\r" in name or b":" in name:
            raise RuntimeError(f"ASGI response header {pair!r} holds a forbidden character")
        lower = bytes(name).lower()
        if lower in _SERVER_OWNED:
            if lower == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise RuntimeError(f"Invalid Content-Length header {value!r}") from None
                if length < 0:
                    raise RuntimeError(f"Invalid Content-Length header {value!r}")
            elif lower == b"connection":
                close = b"close" in bytes(value).lower()
            continue
        headers.append((bytes(name), bytes(value)))
    return headers, length, close
