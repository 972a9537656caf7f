"""``ws = await client.websocket("/ws")``: a websocket to the live server, typed at the prompt.

The connection lives on the loop the statement ran on (the console's loop, where statements that
await run), so ``await ws.send(...)`` and ``await ws.recv()`` in later statements use it there.
``ws.follow()`` prints every incoming message above the prompt (``<- ...``) until ``ws.close()``
or ``ws.follow(False)``. It works the same for every app vivace serves (vivace's own websocket
handlers and ASGI apps' ``websocket`` scopes alike): it is a real connection to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ConsoleWebSocket", "connect"]

#: a received message shown longer than this is cut (``await ws.recv()`` has all of it)
SHOWN = 500


def _shown(message: str | bytes) -> str:
    text = f"<{len(message)} bytes> {message[:64]!r}" if isinstance(message, bytes) else message
    return text if len(text) <= SHOWN else text[:SHOWN] + f"... ({len(text) - SHOWN} more)"


def _ws_url(base_url: str, path: str) -> str:
    if "://" in path:
        return path.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    if not path.startswith("/"):
        raise ValueError(f"client.websocket() takes a path starting with '/', not {path!r}")
    base = base_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return base + path


class ConsoleWebSocket:
    """A websocket connection to the live server: ``send``, ``recv``, ``follow``, ``close``."""

    def __init__(self, connection: Any, url: str) -> None:
        self._connection = connection
        self.url = url
        self._loop = asyncio.get_running_loop()
        self._follower: asyncio.Task[None] | None = None
        self.received = 0
        self.sent = 0

    def _check_loop(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise RuntimeError("this websocket belongs to the console's loop: write `await ws...`")

    @property
    def closed(self) -> bool:
        return self._connection.close_code is not None

    @property
    def following(self) -> bool:
        return self._follower is not None and not self._follower.done()

    async def send(self, message: str | bytes | Mapping[str, Any] | list[Any]) -> None:
        """Send a text or binary message; a dict or list is sent as JSON text."""
        self._check_loop()
        if isinstance(message, (Mapping, list)):
            message = jsonlib.dumps(message)
        await self._connection.send(message)
        self.sent += 1

    async def recv(self, timeout: float | None = 10.0) -> str | bytes:
        """The next incoming message (waits up to ``timeout`` seconds; None: no limit)."""
        self._check_loop()
        if self.following:
            raise RuntimeError(
                "incoming messages are printed (ws.follow()): call ws.follow(False) to recv()"
            )
        try:
            message: str | bytes = await asyncio.wait_for(self._connection.recv(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no message within {timeout} s") from None
        self.received += 1
        return message

    def follow(self, on: bool = True) -> str:
        """Print incoming messages above the prompt until the websocket closes (or ``False``)."""
        if not on:
            follower, self._follower = self._follower, None
            if follower is not None:
                self._loop.call_soon_threadsafe(follower.cancel)
            return "no longer printing incoming messages"
        if self.following:
            return "already printing incoming messages"
        if self.closed:
            raise RuntimeError(f"the websocket is closed (code {self._connection.close_code})")

        def begin() -> None:
            self._follower = self._loop.create_task(self._print_incoming())

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            begin()
        else:
            self._loop.call_soon_threadsafe(begin)
        return "printing incoming messages above the prompt until ws.close() or ws.follow(False)"

    async def _print_incoming(self) -> None:
        from websockets.exceptions import ConnectionClosed

        out: Callable[[str], None] = _say
        try:
            async for message in self._connection:
                out(f"<- {_shown(message)}")
                # counted once shown: a statement waiting on ``received`` (from another thread:
                # the websocket's loop is the client's) then finds the line already written
                self.received += 1
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            return
        code = self._connection.close_code
        reason = self._connection.close_reason or ""
        out(f"(websocket {self.url} closed: {code}{' ' + reason if reason else ''})")

    async def close(self, code: int = 1000, reason: str = "") -> str:
        """Close the connection (the follower, if any, stops)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(BaseException):
                await follower
        await self._connection.close(code, reason)
        return f"closed ({self._connection.close_code})"

    def close_from_outside(self, timeout: float) -> None:
        """``close()`` run on the websocket's loop from another thread (the console's end)."""
        loop = self._loop
        if self.closed or loop.is_closed() or not loop.is_running():
            return
        try:
            if asyncio.get_running_loop() is loop:
                return  # cannot wait for itself; its loop's end drops the connection
        except RuntimeError:
            pass
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.close(1001, "console closed"), loop).result(
                timeout
            )

    def __repr__(self) -> str:
        if self.closed:
            state = f"closed ({self._connection.close_code})"
        else:
            state = "open, printing incoming messages" if self.following else "open"
        return (
            f"<websocket {self.url} {state}; sent {self.sent}, received {self.received}: "
            "await ws.send(...), await ws.recv(), ws.follow(), await ws.close()>"
        )


def _say(text: str) -> None:
    """A line above the prompt (``sys.stdout`` is the console's output stream while it is open)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def connect(
    base_url: str,
    path: str,
    *,
    unix_socket: str | None = None,
    headers: Mapping[str, str] | None = None,
    subprotocols: list[str] | None = None,
    timeout: float = 10.0,
) -> tuple[ConsoleWebSocket, float]:
    """Open a websocket to ``path`` on the live server; (the websocket, the handshake's seconds)."""
    from websockets.asyncio.client import connect as ws_connect
    from websockets.asyncio.client import unix_connect

    url = _ws_url(base_url, path)
    options: dict[str, Any] = {
        "additional_headers": dict(headers or {}),
        "open_timeout": timeout,
        "compression": None,
    }
    if subprotocols:
        options["subprotocols"] = subprotocols
    if url.startswith("wss:"):  # the console trusts the --auto-tls CA too (issue 15)
        from runtime.tls import client_context

        options["ssl"] = client_context()
    started = time.perf_counter()
    if unix_socket:
        connection = await unix_connect(unix_socket, url, **options)
    else:
        connection = await ws_connect(url, proxy=None, **options)
    return ConsoleWebSocket(connection, url), time.perf_counter() - started
