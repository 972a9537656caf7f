"""A real server in a thread (port 0, readiness from ``Server.started``) and a raw HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.server import Server, bind, new_event_loop

TIMEOUT = 10.0


@dataclass
class Running:
    server: Server
    port: int
    loop: asyncio.AbstractEventLoop
    errors: list[Any] = field(default_factory=list)  # loop exceptions and logged errors

    def stop(self) -> None:
        self.server.stop()


@contextlib.contextmanager
def serve(app: Any, *, access_log: bool | None = None) -> Iterator[Running]:
    """Serve ``app`` on 127.0.0.1:<free port> in a thread; stop and join it afterwards."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(app, [sock], access_log=access_log, install_signals=False)
    loop = new_event_loop()
    running = Running(server, port, loop)
    ready = threading.Event()
    failure: list[BaseException] = []

    def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        running.errors.append(context)
        loop.default_exception_handler(context)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(server.run())
        started = asyncio.get_running_loop().create_task(server.started.wait())
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        ready.set()
        await task

    def target() -> None:
        loop.set_exception_handler(on_error)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test
            failure.append(exc)
            ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            running.errors.append(record)

    collector = Collect(logging.ERROR)
    logging.getLogger("vivace").addHandler(collector)
    thread = threading.Thread(target=target, name="vivace-test-server", daemon=True)
    thread.start()
    try:
        assert ready.wait(TIMEOUT), "server did not start"
        if failure:
            raise failure[0]
        yield running
    finally:
        server.stop()
        thread.join(TIMEOUT + 20)
        logging.getLogger("vivace").removeHandler(collector)
        sock.close()
        assert not thread.is_alive(), "server thread did not stop"
    if failure:
        raise failure[0]


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:60]!r}>"


class RawClient:
    """A blocking socket client that reads HTTP/1.1 responses one at a time."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before {marker!r}; got {self.buffer!r}")
        data, _, self.buffer = self.buffer.partition(marker)
        return data

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ConnectionError("closed in the middle of a body")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_response(self, *, head_only: bool = False) -> Response:
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
        response = Response(status, headers, b"")  # type: ignore[arg-type]
        if head_only or status < 200 or status in (204, 304):
            return response
        length = response.header("content-length")
        if length is not None:
            response.body = self._read_exactly(int(length))
        elif response.header("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n")
                    break
                parts.append(self._read_exactly(size))
                self._read_exactly(2)
            response.body = b"".join(parts)
        else:
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def closed_now(self) -> bool:
        """True when the server has already closed the connection (does not wait)."""
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0.05)
        try:
            return self.closed()
        finally:
            self.sock.settimeout(timeout)

    def closed(self) -> bool:
        """True when the server closed the connection (reads EOF, nothing pending)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def request(port: int, data: bytes) -> Response:
    with RawClient(port) as client:
        client.send(data)
        return client.read_response()


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()
