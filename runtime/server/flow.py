"""Flow control for one connection: pause reading when we are behind, wait when the peer is.

Reading is paused for named reasons (a request body buffer is full, too many pipelined requests
are queued); it resumes only when every reason is gone. Writing follows the transport's
``pause_writing`` / ``resume_writing`` callbacks; :meth:`FlowControl.drain` waits until the
transport's buffer is below its low-water mark (or the connection is gone).
"""

from __future__ import annotations

import asyncio

__all__ = ["FlowControl"]


class FlowControl:
    __slots__ = ("_closed", "_read_reasons", "_transport", "_writable")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._read_reasons: set[str] = set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    # -- reading ---------------------------------------------------------------------------------

    @property
    def read_paused(self) -> bool:
        return bool(self._read_reasons)

    def pause_reading(self, reason: str) -> None:
        if not self._read_reasons and not self._closed:
            self._transport.pause_reading()
        self._read_reasons.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason not in self._read_reasons:
            return
        self._read_reasons.discard(reason)
        if not self._read_reasons and not self._closed:
            self._transport.resume_reading()

    # -- writing ---------------------------------------------------------------------------------

    @property
    def write_paused(self) -> bool:
        return not self._writable.is_set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def drain(self) -> None:
        """Wait until the peer has read enough of what we wrote (returns at once when closed)."""
        if not self._writable.is_set():
            await self._writable.wait()

    def connection_lost(self) -> None:
        self._closed = True
        self._writable.set()
