"""A request already on its way when the server stops is answered, not reset (restarts, reloads)."""

from __future__ import annotations

import socket
import time

from runtime import App, text
from tests.server.helpers import TIMEOUT, serve


def test_request_arriving_just_after_shutdown_began_is_answered_with_connection_close() -> None:
    app = App("shutdown_grace")

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("still here")

    with serve(app) as running:
        client = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
        try:
            # the connection is accepted and idle; now the server begins its graceful stop
            deadline = time.monotonic() + TIMEOUT
            while running.server.state is None or not running.server.state.connections:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            running.stop()
            while not running.server.state.shutting_down:
                assert time.monotonic() < deadline
                time.sleep(0.001)
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            received = b""
            while True:
                chunk = client.recv(65536)  # a reset would raise ConnectionResetError here
                if not chunk:
                    break
                received += chunk
        finally:
            client.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    assert body == b"still here"
