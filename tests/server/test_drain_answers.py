"""A stopping server answers every request it accepted: no reset, no EOF instead of a response.

The drain stops listening and marks the shutdown. Connections the loop had already accepted (its
``connection_made`` comes a loop iteration after the accept), requests half-received, and the next
request on a connection whose last response promised keep-alive are all answered, with
``Connection: close``; a connection closes only between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from runtime import App, text
from runtime.response import ResponseStream
from runtime.server import Server, bind, new_event_loop
from tests.server.helpers import TIMEOUT, RawClient, Running, get, serve


def _read_to_eof(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):  # a reset raises ConnectionResetError here
        received += chunk
    return received


def _read_one(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length: (head, body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)  # a reset raises ConnectionResetError here
        assert chunk, f"closed without a response; got {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a body"
        body += chunk
    return head, body


def _wait_shutting_down(running: Running) -> None:
    deadline = time.monotonic() + TIMEOUT
    while running.server.state is None or not running.server.state.shutting_down:
        assert time.monotonic() < deadline, "the server did not begin its drain"
        time.sleep(0.001)


@contextlib.contextmanager
def _worker(app: App, listening: socket.socket, *, sole: bool = False) -> Iterator[Server]:
    """A server on its own descriptor of ``listening`` in a thread, as a worker process has
    (``sole``: on ``listening`` itself, as the one process of ``serve_single``)."""
    sockets = [listening] if sole else [listening.dup()]
    server = Server(app, sockets, install_signals=False, sole_listener=sole)
    loop = new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.run(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started.is_set():
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.002)
        yield server
    finally:
        server.stop()
        thread.join(TIMEOUT + 5)
        assert not thread.is_alive(), "the server did not stop"
        loop.close()


def test_a_worker_told_to_stop_answers_what_it_accepted_and_leaves_the_rest_queued() -> None:
    """The loop was busy when the stop came; clients connected meanwhile. The stopping worker
    answers the connections its loop accepted (connection_made comes after the drain began); the
    others stay in the shared listening socket, and the next worker answers them."""
    app = App("drain_accepted")
    in_listener = threading.Event()
    release = threading.Event()

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("answered")

    @app.before_server_stop
    def busy(app):  # type: ignore[no-untyped-def]
        in_listener.set()
        release.wait(TIMEOUT)  # blocks the loop, as a busy worker's is

    listening = bind("127.0.0.1", 0)  # held here, as the main process holds it
    port = listening.getsockname()[1]
    clients: list[socket.socket] = []
    try:
        with _worker(app, listening) as first:
            first.stop()
            assert in_listener.wait(TIMEOUT)
            for _ in range(12):
                client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                clients.append(client)
                client.sendall(get())  # keep-alive: the server decides when to close
            release.set()
        in_listener.clear()
        with _worker(app, listening) as second:  # the next worker
            answers = [(_read_one(c), c.getsockname()[1], c) for c in clients]
            assert second.state is not None
            next_worker = {c.conn_info.client_port for c in second.state.connections}
            closed_cleanly = {
                port: port in next_worker or _read_to_eof(c) == b"" for _, port, c in answers
            }
    finally:
        release.set()
        for client in clients:
            client.close()
        listening.close()
    answered = {"stopping": 0, "next": 0}
    for (head, _), port, _client in answers:
        assert head.startswith(b"HTTP/1.1 200"), head
        if port in next_worker:
            answered["next"] += 1
        else:  # the stopping worker's answer says that it closes, and it did (no reset)
            assert b"connection: close" in head.lower()
            assert closed_cleanly[port]
            answered["stopping"] += 1
    assert answered["stopping"] >= 1 and answered["next"] >= 1, answered  # both paths were seen


def test_a_single_process_told_to_stop_answers_every_connection_already_queued() -> None:
    """No other worker will take what is queued in the listening socket: the one process accepts
    and answers it before closing the socket (closing it would reset those connections)."""
    app = App("drain_sole")
    in_listener = threading.Event()
    release = threading.Event()

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("answered")

    @app.before_server_stop
    def busy(app):  # type: ignore[no-untyped-def]
        in_listener.set()
        release.wait(TIMEOUT)

    listening = bind("127.0.0.1", 0)
    port = listening.getsockname()[1]
    clients: list[socket.socket] = []
    try:
        with _worker(app, listening, sole=True) as server:
            server.stop()
            assert in_listener.wait(TIMEOUT)
            for _ in range(12):
                client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                clients.append(client)
                client.sendall(get())
            release.set()
            answers = [_read_to_eof(client) for client in clients]
    finally:
        release.set()
        for client in clients:
            client.close()
        listening.close()
    for received in answers:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), received
        assert b"connection: close" in head.lower() and body == b"answered"


def test_a_head_half_received_at_the_stop_is_answered() -> None:
    app = App("drain_half_head")

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("whole")

    with serve(app) as running, RawClient(running.port) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        deadline = time.monotonic() + TIMEOUT
        while not any(c.conn.in_message for c in running.server.state.connections):  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.002)
        running.stop()
        _wait_shutting_down(running)
        time.sleep(0.3)  # longer than SHUTDOWN_IDLE_GRACE: a request under way is not idle
        client.send(b"X-Rest: of the head\r\n\r\n")
        response = client.read_response()
        assert client.closed()
    assert response.status == 200 and response.body == b"whole"
    assert response.header("connection") == "close"


def test_the_request_after_a_keep_alive_response_that_spanned_the_stop_is_answered() -> None:
    app = App("drain_keep_alive")
    streaming = threading.Event()
    finish: asyncio.Event | None = None

    @app.get("/stream")
    async def stream(request):  # type: ignore[no-untyped-def]
        nonlocal finish
        finish = asyncio.Event()

        async def body(response):  # type: ignore[no-untyped-def]
            await response.write("first ")
            streaming.set()
            assert finish is not None
            await finish.wait()
            await response.write("last")

        return ResponseStream(body)

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("next")

    with serve(app) as running, RawClient(running.port) as client:
        client.send(get("/stream"))
        assert streaming.wait(TIMEOUT)
        running.stop()
        _wait_shutting_down(running)
        assert finish is not None
        running.loop.call_soon_threadsafe(finish.set)
        first = client.read_response()
        # the response began before the stop and promised keep-alive: the client may use it
        assert first.body == b"first last" and first.header("connection") != "close"
        client.send(get())
        second = client.read_response()
        assert client.closed()
    assert second.status == 200 and second.body == b"next"
    assert second.header("connection") == "close"
