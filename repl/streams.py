"""``client.stream(path)``: print a streamed response as it arrives, at the prompt.

A ``text/event-stream`` response (server-sent events) is parsed into events, one printed line
each (``event: tick  id: 3  data: {...}``); any other response is printed chunk by chunk as text
(binary chunks as their size). It runs until the response ends or Ctrl+C, which ends only the
stream: the console, the connection pool and the server go on. The value is a ``Stream`` summary
(status, events or chunks, bytes, time, how it ended) with the ``events`` that were parsed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["Event", "SSEParser", "Stream", "stream"]


@dataclass
class Event:
    """One server-sent event."""

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def line(self) -> str:
        parts = [f"event: {self.event}"]
        if self.id is not None:
            parts.append(f"id: {self.id}")
        if self.retry is not None:
            parts.append(f"retry: {self.retry}")
        parts.append(f"data: {self.data}")
        return "  ".join(parts)

    def json(self) -> Any:
        import json

        return json.loads(self.data)


class SSEParser:
    """The ``text/event-stream`` format (WHATWG HTML, section 9.2.6), fed text as it arrives."""

    def __init__(self) -> None:
        self._pending = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None

    def feed(self, text: str) -> Iterator[Event]:
        text = self._pending + text
        held = ""
        if text.endswith("\r"):  # maybe the first half of a CRLF split between two chunks
            text, held = text[:-1], "\r"
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop() + held
        for line in lines:
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._last_id = value
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        data, event, id_, retry = self._data, self._event, self._id, self._retry
        self._data, self._event, self._id, self._retry = [], "", None, None
        if not data:
            return None
        return Event("\n".join(data), event or "message", id_ or self._last_id, retry)


@dataclass
class Stream:
    """What ``client.stream()`` returns once the stream ended."""

    url: str
    status: int = 0
    content_type: str = ""
    chunks: int = 0
    size: int = 0
    elapsed_ms: float = 0.0
    ended: str = "the response ended"
    events: list[Event] = field(default_factory=list)

    def __repr__(self) -> str:
        what = f"{len(self.events)} events" if self.is_sse else f"{self.chunks} chunks"
        return (
            f"<stream {self.url}: {self.status} {self.content_type}, {what}, {self.size} bytes "
            f"in {self.elapsed_ms:.0f} ms; {self.ended}>"
        )

    @property
    def is_sse(self) -> bool:
        return self.content_type.startswith("text/event-stream")


def _say(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


async def stream(
    client: httpx.AsyncClient,
    path: str,
    *,
    method: str = "GET",
    timeout: float | None = None,
    **kwargs: Any,
) -> Stream:
    """Send the request with ``client`` and print its response as it arrives (see the module's
    docstring); ``timeout`` bounds the wait between two chunks (None: no limit)."""
    import httpx

    if "://" not in path and not path.startswith("/"):
        raise ValueError(f"client.stream() takes a path starting with '/', not {path!r}")
    summary = Stream(url=path)
    started = time.perf_counter()
    parser = SSEParser()
    limits = httpx.Timeout(10.0, read=timeout)
    try:
        async with client.stream(method.upper(), path, timeout=limits, **kwargs) as response:
            summary.status = response.status_code
            summary.content_type = response.headers.get("content-type", "")
            reason = response.reason_phrase or ""
            _say(f"{response.http_version} {response.status_code} {reason}".rstrip())
            if summary.is_sse:
                async for text in response.aiter_text():
                    summary.chunks += 1
                    summary.size += len(text.encode())
                    for event in parser.feed(text):
                        summary.events.append(event)
                        _say(event.line())
            else:
                binary = not _is_text(summary.content_type)
                async for chunk in response.aiter_raw():
                    summary.chunks += 1
                    summary.size += len(chunk)
                    if binary:
                        _say(f"<{len(chunk)} bytes>")
                    else:
                        _say(chunk.decode(response.encoding or "utf-8", "replace"))
    except asyncio.CancelledError:
        summary.ended = "ended by Ctrl+C"
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()  # the stream ends; the statement returns its summary
    summary.elapsed_ms = (time.perf_counter() - started) * 1000
    return summary


def _is_text(content_type: str) -> bool:
    return (
        content_type.startswith("text/")
        or "json" in content_type
        or "xml" in content_type
        or not content_type
    )
