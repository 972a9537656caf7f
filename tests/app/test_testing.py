"""runtime.testing: the in-process clients, their listeners, streaming both ways, the sync loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from runtime import App, Request, StreamingResponse, json, text
from runtime.testing import BASE_URL, AsyncTestClient, TestClient, reset_app_registry


def _app_with_listeners(name: str) -> tuple[App, list[str]]:
    app = App(name)
    events: list[str] = []

    @app.before_server_start
    async def open_pool(app: App) -> None:
        events.append("before_server_start")
        app.ctx.pool = "pool"

    @app.after_server_start
    def ready(app: App, loop: asyncio.AbstractEventLoop) -> None:
        assert loop.is_running()
        events.append("after_server_start")

    @app.before_server_stop
    def stopping(app: App) -> None:
        events.append("before_server_stop")

    @app.after_server_stop
    async def close_pool(app: App) -> None:
        events.append("after_server_stop")
        del app.ctx.pool

    @app.get("/")
    async def home(request: Request) -> Any:
        events.append("request")
        return json({"pool": request.app.ctx.pool})

    return app, events


async def test_async_client_runs_the_server_listeners_around_the_session() -> None:
    app, events = _app_with_listeners("async_session")
    async with AsyncTestClient(app) as client:
        assert str(client.base_url) == BASE_URL
        assert (await client.get("/")).json() == {"pool": "pool"}
    assert events == [
        "before_server_start",
        "after_server_start",
        "request",
        "before_server_stop",
        "after_server_stop",
    ]
    assert not hasattr(app.ctx, "pool")


def test_sync_client_runs_listeners_on_its_own_loop_thread() -> None:
    app, events = _app_with_listeners("sync_session")
    before = threading.active_count()
    with TestClient(app) as client:
        assert client.get("/").json() == {"pool": "pool"}
        loop_thread = client.run(_current_thread_name())
        assert loop_thread == "vivace-testclient"
    assert events[-2:] == ["before_server_stop", "after_server_stop"]
    assert threading.active_count() == before  # the loop thread is gone


async def _current_thread_name() -> str:
    return threading.current_thread().name


def test_sync_client_without_a_with_block_serves_but_runs_no_listeners() -> None:
    app, events = _app_with_listeners("no_with")
    app.ctx.pool = "set by hand"
    client = TestClient(app)
    try:
        assert client.get("/").json() == {"pool": "set by hand"}
    finally:
        client.close()
    assert events == ["request"]


async def test_a_failing_startup_listener_propagates() -> None:
    app = App("failing_start")

    @app.before_server_start
    def broken(app: App) -> None:
        raise RuntimeError("database is down")

    client = AsyncTestClient(app)
    with pytest.raises(RuntimeError, match="database is down"):
        async with client:
            pass
    assert client.is_closed


async def test_requests_carry_method_path_query_headers_cookies_and_client() -> None:
    app = App("request_details")

    @app.route("/echo/<name>", methods=["GET", "PUT"])
    async def echo(request: Request, name: str) -> Any:
        return json(
            {
                "name": name,
                "method": request.method,
                "path": request.path,
                "args": request.args.getlist("tag"),
                "header": request.headers.get("x-custom"),
                "cookie": request.cookies.get("session"),
                "ip": request.ip,
                "body": request.body.decode(),
                "url": request.url,
            }
        )

    async with AsyncTestClient(app, cookies={"session": "abc"}) as client:
        response = await client.put(
            "/echo/caf%C3%A9?tag=a&tag=b", headers={"X-Custom": "yes"}, content=b"payload"
        )
    assert response.json() == {
        "name": "café",
        "method": "PUT",
        "path": "/echo/café",
        "args": ["a", "b"],
        "header": "yes",
        "cookie": "abc",
        "ip": "127.0.0.1",
        "body": "payload",
        "url": "http://vivace.test/echo/caf%C3%A9?tag=a&tag=b",
    }
    vivace_request = response.extensions["vivace.request"]
    assert isinstance(vivace_request, Request) and vivace_request.match_info == {"name": "café"}
    assert response.extensions["vivace.response"].status == 200


async def test_response_cookies_and_content_length() -> None:
    app = App("cookies_out")

    @app.get("/")
    async def home(request: Request) -> Any:
        response = text("hi")
        response.add_cookie("theme", "dark", secure=False)
        return response

    async with AsyncTestClient(app) as client:
        response = await client.get("/")
        assert response.cookies["theme"] == "dark"
        assert response.headers["content-length"] == "2"
        assert client.cookies["theme"] == "dark"


async def test_streaming_responses_arrive_chunk_by_chunk() -> None:
    app = App("streaming_out")
    go_on = asyncio.Event()

    @app.get("/events")
    async def events(request: Request) -> Any:
        async def generate() -> Any:
            yield "first\n"
            await asyncio.wait_for(go_on.wait(), 5)  # only the client reading "first" sets it
            yield "second\n"

        return StreamingResponse(generate(), content_type="text/event-stream")

    async with AsyncTestClient(app) as client, client.stream("GET", "/events") as response:
        assert response.headers["content-type"] == "text/event-stream"
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"first\n"
        go_on.set()
        assert [chunk async for chunk in chunks] == [b"second\n"]


def test_sync_client_streams_too() -> None:
    app = App("streaming_sync")

    @app.get("/")
    async def numbers(request: Request) -> Any:
        async def generate() -> Any:
            for i in range(3):
                yield f"{i};"

        return StreamingResponse(generate())

    with TestClient(app) as client:
        assert client.get("/").text == "0;1;2;"
        with client.stream("GET", "/") as response:
            assert list(response.iter_bytes()) == [b"0;", b"1;", b"2;"]


async def test_a_failing_stream_raises_in_the_reader() -> None:
    app = App("stream_failure")

    @app.get("/")
    async def broken(request: Request) -> Any:
        async def generate() -> Any:
            yield "ok"
            raise RuntimeError("stream broke")

        return StreamingResponse(generate())

    async with AsyncTestClient(app) as client:
        with pytest.raises(RuntimeError, match="stream broke"):
            await client.get("/")


async def test_streamed_uploads_reach_stream_routes() -> None:
    app = App("streaming_in")
    received: list[int] = []

    @app.put("/upload", stream=True)
    async def upload(request: Request) -> Any:
        assert request.stream is not None
        async for chunk in request.stream:
            received.append(len(chunk))
        return text(str(sum(received)))

    async def body() -> Any:
        for _ in range(5):
            yield b"y" * 4096

    async with AsyncTestClient(app) as client:
        assert (await client.put("/upload", content=body())).text == str(5 * 4096)


async def test_head_requests_get_headers_and_no_body() -> None:
    app = App("head")

    @app.get("/")
    async def home(request: Request) -> Any:
        return text("body that HEAD must not return")

    async with AsyncTestClient(app) as client:
        response = await client.head("/")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_payload_limit_gives_413() -> None:
    app = App("limits", config={"REQUEST_MAX_SIZE": 10})

    @app.post("/")
    async def home(request: Request) -> Any:
        return text("ok")

    async with AsyncTestClient(app) as client:
        assert (await client.post("/", content=b"x" * 11)).status_code == 413
        assert (await client.post("/", content=b"x" * 10)).status_code == 200


def test_reset_app_registry_frees_names() -> None:
    App("reused")
    reset_app_registry()
    assert App("reused").name == "reused"


async def test_the_transport_is_a_plain_httpx_transport() -> None:
    from runtime.testing import AppTransport

    app = App("transport")

    @app.get("/")
    async def home(request: Request) -> Any:
        return text("raw transport")

    async with httpx.AsyncClient(transport=AppTransport(app), base_url=BASE_URL) as client:
        assert (await client.get("/")).text == "raw transport"


@pytest.mark.parametrize("streaming", [False, True])
async def test_the_client_fires_the_server_side_signals_like_a_server(streaming: bool) -> None:
    app = App(f"server_signals_{streaming}")
    seen: list[str] = []
    sent: list[bytes] = []

    @app.signal("http.lifecycle.begin")
    def begin(conn_info: Any) -> None:
        seen.append(f"begin {conn_info.client}")

    @app.signal("http.lifecycle.read_head")
    def read_head(head: bytes) -> None:
        seen.append(head.split(b"\r\n")[0].decode())

    @app.signal("http.lifecycle.request")
    def on_request(request: Request) -> None:
        seen.append("request")

    @app.signal("http.lifecycle.response")
    def on_response(request: Request, response: Any) -> None:
        seen.append("response")

    @app.signal("http.lifecycle.send")
    def send(data: bytes) -> None:
        seen.append("send")
        sent.append(data)

    @app.signal("http.lifecycle.complete")
    def complete(conn_info: Any) -> None:
        seen.append("complete")

    @app.get("/")
    async def home(request: Request) -> Any:
        if not streaming:
            return text("hello")

        async def chunks() -> Any:
            yield "hel"
            yield "lo"

        return StreamingResponse(chunks())

    async with AsyncTestClient(app) as client:
        assert (await client.get("/?x=1")).text == "hello"
    first = ["begin 127.0.0.1:51234", "GET /?x=1 HTTP/1.1", "request", "response"]
    if streaming:
        assert seen == [*first, "send", "send", "send", "complete"]
        assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n") and sent[1:] == [b"hel", b"lo"]
    else:
        assert seen == [*first, "send", "complete"]
        assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n") and sent[0].endswith(b"\r\n\r\nhello")
        assert b"content-length: 5" in sent[0]
