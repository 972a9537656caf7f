"""What a websocket handler sees as ``ws``.

``WebSocketProtocol`` is a typing ``Protocol``: the server implements it over the ``websockets``
sans-I/O ``ServerProtocol`` and ``runtime.asgi`` over ASGI messages. Handlers use it so::

    @app.websocket("/echo")
    async def echo(request, ws):
        async for message in ws:
            await ws.send(message)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

Data = str | bytes


@runtime_checkable
class WebSocketProtocol(Protocol):
    """The handler-facing side of one websocket connection."""

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol chosen during the handshake, if any."""
        ...

    async def send(self, data: Data) -> None:
        """Send one text (``str``) or binary (``bytes``) message."""
        ...

    async def recv(self, timeout: float | None = None) -> Data | None:
        """The next message; ``None`` when ``timeout`` expired or the connection closed."""
        ...

    def __aiter__(self) -> AsyncIterator[Data]:
        """Iterate over incoming messages until the connection closes."""
        ...

    async def ping(self, data: bytes = b"") -> None:
        """Send a ping frame."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason``."""
        ...


__all__ = ["Data", "WebSocketProtocol"]
