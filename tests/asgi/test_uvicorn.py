"""ASGI mode for real: the app served by uvicorn in a subprocess on 127.0.0.1 (lifecycle.md §9)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.asgi.servers import UVICORN, Served, free_port, serve

HERE = Path(__file__).resolve().parent


def _serve(tmp_path: Path) -> Served:
    return serve(tmp_path)


def test_lifespan_runs_server_listeners_in_order_and_never_main_process_ones(
    tmp_path: Path,
) -> None:
    server = _serve(tmp_path)
    try:
        response = httpx.get(server.url + "/", timeout=5)
        assert response.json()["token"] == "from-before-server-start"
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert server.trace.read_text().split() == [
        "before_server_start",
        "after_server_start",
        "before_server_stop",
        "after_server_stop",
    ]


def test_json_query_params_and_typed_path(served: Served) -> None:
    response = httpx.get(served.url + "/items/42?q=a&q=b", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"id": 42, "q": ["a", "b"]}
    assert response.headers["content-type"] == "application/json"


def test_not_found_and_method_not_allowed(served: Served) -> None:
    assert httpx.get(served.url + "/nope", timeout=5).status_code == 404
    assert httpx.get(served.url + "/items/abc", timeout=5).status_code == 404
    response = httpx.delete(served.url + "/echo", timeout=5)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


def test_request_body_and_chunked_upload(served: Served) -> None:
    response = httpx.post(served.url + "/echo", content=b"hello body", timeout=5)
    assert (response.text, response.headers["x-length"]) == ("hello body", "10")

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * 4096

    response = httpx.post(served.url + "/count", content=chunks(), timeout=10)
    assert response.json() == {"bytes": 64 * 4096}


def test_streaming_response_and_head(served: Served) -> None:
    with httpx.stream("GET", served.url + "/stream", timeout=5) as response:
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"part{i}\n".encode() for i in range(5))
    head = httpx.head(served.url + "/", timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0


def test_handler_exception_is_a_500_and_the_server_keeps_serving(served: Served) -> None:
    response = httpx.get(served.url + "/boom", timeout=5)
    assert response.status_code == 500
    assert "handler exploded" not in response.text  # no traceback outside debug
    assert httpx.get(served.url + "/", timeout=5).status_code == 200


def test_websocket_echo_subprotocol_and_close_codes(served: Served) -> None:
    async def scenario() -> None:
        uri = f"ws://127.0.0.1:{served.port}/ws"
        async with connect(uri, subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "chat.v1"
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
            await ws.send("close-me")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "asked to")
        async with connect(uri) as ws:
            await ws.send("raise")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{served.port}/no-such-socket"):
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(asyncio.wait_for(scenario(), 15))


def test_startup_listener_failure_reports_lifespan_failed(tmp_path: Path) -> None:
    module = tmp_path / "failing_app.py"
    module.write_text(
        "from runtime import App\n"
        "app = App('asgi_failing')\n"
        "@app.before_server_start\n"
        "def boom(app):\n"
        "    raise RuntimeError('database unreachable')\n"
    )
    proc = subprocess.run(
        [*UVICORN, "failing_app:app", "--app-dir", str(tmp_path), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode != 0
    assert "database unreachable" in proc.stdout + proc.stderr
