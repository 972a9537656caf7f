"""``BodyChannel``: a request body in transit, fed by the server and read by the app.

The HTTP server (and the ASGI adapter, and the test client) feeds chunks as they arrive; the app
reads them through ``request.receive_body()`` or, for a streaming route, ``request.stream``. Flow
control is the channel's ``on_pause`` / ``on_resume`` callbacks, which the server sets.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["DEFAULT_BUFFER_SIZE", "BodyChannel"]

DEFAULT_BUFFER_SIZE = 65536


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
