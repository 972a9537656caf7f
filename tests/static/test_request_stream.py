"""Streamed request bodies over real sockets, as Sanic's ``request_stream`` examples use them:
``stream=True`` routes and views, ``await request.stream.read()`` until ``None``, backpressure
(the server stops reading while the handler does not), and the request size limit."""

from __future__ import annotations

import asyncio
import hashlib
import json as json_module
import threading
from typing import Any

from runtime import App, Blueprint, HTTPMethodView, json, text
from runtime import stream as response_stream
from runtime.body import DEFAULT_BUFFER_SIZE
from runtime.request import Request
from runtime.views import stream
from tests.server.helpers import TIMEOUT, RawClient, serve

SIZE = 8 * 1024 * 1024


def make_app(limit: int = 100 * 1024 * 1024) -> App:
    app = App("streaming", config={"REQUEST_MAX_SIZE": limit})
    app.ctx.buffered = []

    @app.post("/digest", stream=True)
    async def digest(request: Request) -> Any:
        await asyncio.sleep(0.5)  # the client keeps sending: the server must stop reading
        app.ctx.buffered.append(request.stream.buffered)
        sha, total, chunks = hashlib.sha256(), 0, 0
        while True:
            chunk = await request.stream.read()
            if chunk is None:
                break
            sha.update(chunk)
            total += len(chunk)
            chunks += 1
            app.ctx.buffered.append(request.stream.buffered)
        return json({"sha256": sha.hexdigest(), "total": total, "chunks": chunks})

    @app.route("/echo", methods=["POST", "PUT"], stream=True)
    async def echo(request: Request) -> Any:
        parts = []
        async for chunk in request.stream:
            parts.append(chunk)
        return text(b"".join(parts).decode())

    class Upload(HTTPMethodView):
        @stream
        async def put(self, request: Request) -> Any:
            total = 0
            while (chunk := await request.stream.read()) is not None:
                total += len(chunk)
            return text(str(total))

    app.add_route(Upload.as_view(), "/view")

    @app.post("/duplex", stream=True)
    async def duplex(request: Request) -> Any:
        # Sanic's request_stream example: the response streams while the body still arrives
        async def streaming(response: Any) -> None:
            while True:
                body = await request.stream.read()
                if body is None:
                    break
                await response.write(body.decode("utf-8").replace("1", "A"))

        return response_stream(streaming)

    bp = Blueprint("bp_stream", url_prefix="/bp")

    @bp.post("/stream", stream=True)
    async def bp_handler(request: Request) -> Any:
        result = ""
        while True:
            body = await request.stream.read()
            if body is None:
                break
            result += body.decode("utf-8").replace("1", "A")
        return text(result)

    app.blueprint(bp)
    return app


def test_a_large_body_is_streamed_with_backpressure() -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    app = make_app()
    with serve(app) as srv, RawClient(srv.port) as client:
        head = f"POST /digest HTTP/1.1\r\nHost: t\r\nContent-Length: {SIZE}\r\n\r\n".encode()
        sender = threading.Thread(target=client.send, args=(head + payload,))
        sender.start()
        answer = client.read_response()
        sender.join(TIMEOUT)
        assert answer.status == 200
        result = json_module.loads(answer.body)
        assert result["sha256"] == hashlib.sha256(payload).hexdigest()
        assert result["total"] == SIZE and result["chunks"] > 1
    # while the handler slept, the server buffered the high-water mark plus what the reads that
    # crossed it brought (uvloop reads up to 256 KiB at once), not the 8 MiB the client sent
    assert max(app.ctx.buffered) < DEFAULT_BUFFER_SIZE + 2 * 256 * 1024, max(app.ctx.buffered)


def test_chunked_bodies_and_views_stream_too() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for word in (b"stream", b"ed ", b"body"):
            client.send(b"%x\r\n%s\r\n" % (len(word), word))
        client.send(b"0\r\n\r\n")
        assert client.read_response().body == b"streamed body"
        client.send(
            b"PUT /view HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n" + b"v" * 70000
        )
        assert client.read_response().body == b"70000"
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        assert client.read_response().body == b""


def test_the_size_limit_applies_to_streamed_bodies() -> None:
    with serve(make_app(limit=10_000)) as srv:
        with RawClient(srv.port) as client:
            client.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n")
            assert client.read_response().status == 413
        with RawClient(srv.port) as client:  # chunked: refused once past the limit
            client.send(b"PUT /view HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(30):
                    client.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed while we were still sending
            assert client.read_response().status == 413


def test_a_response_streams_while_the_body_arrives() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(b"POST /duplex HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        client.send(b"4\r\n1234\r\n")
        head_and_first = b""
        while b"A234" not in head_and_first:  # answered before the rest of the body is sent
            chunk = client.sock.recv(65536)
            assert chunk, "closed early"
            head_and_first += chunk
        client.buffer = head_and_first
        client.send(b"3\r\n111\r\n0\r\n\r\n")
        answer = client.read_response()
        assert answer.status == 200 and answer.body == b"A234AAA"
        client.send(b"POST /bp/stream HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n101010")
        assert client.read_response().body == b"A0A0A0"
