"""The live client against a real loopback server: sync and awaited calls, rendering, pending."""

from __future__ import annotations

import asyncio
import threading

import pytest

from repl.client import LiveClient, LiveResponse


def test_sync_call_returns_the_response(http_url: str) -> None:
    client = LiveClient(http_url)
    try:
        response = client.get("/hello")
        assert response.status_code == 200
        assert response.json() == {"ok": True, "path": "/hello"}
        text = repr(response)
        assert text.startswith("HTTP/1.1 200 OK\n")
        assert "content-type: application/json" in text
        assert '  "ok": true' in text  # pretty JSON
        assert text.rstrip().endswith("ms)")
        assert client.post("/echo", json={"a": 1}).json() == {"a": 1}
    finally:
        client.close()


async def test_await_works_and_the_loop_is_not_blocked(http_url: str) -> None:
    client = LiveClient(http_url)
    try:
        # called from a thread without a loop (the console thread): blocking is fine there
        result: list[LiveResponse] = []
        thread = threading.Thread(target=lambda: result.append(client.get("/t")))
        thread.start()
        await asyncio.to_thread(thread.join, 10)
        response = await result[0]
        assert response.status_code == 200
    finally:
        client.close()


async def test_protected_loop_gets_a_pending_response_that_is_awaited(http_url: str) -> None:
    loop = asyncio.get_running_loop()
    client = LiveClient(http_url, protected_loop=loop)
    try:
        pending = client.get("/p")
        if not pending.done:
            with pytest.raises(RuntimeError, match=r"await client\.get"):
                pending.json()
        response = await pending
        assert response.json()["path"] == "/p"
        later = client.get("/q")
        await client.settle()
        assert later.done and later.status_code == 200
    finally:
        client.close()


def test_long_and_binary_bodies_are_cut(http_url: str) -> None:
    client = LiveClient(http_url)
    try:
        text = repr(client.get("/big"))
        assert "(3000 more characters; .text has all of it)" in text
        assert "<256 bytes of application/octet-stream>" in repr(client.get("/bin"))
    finally:
        client.close()


def test_not_ready_is_a_bounded_clear_error(http_url: str) -> None:
    client = LiveClient(http_url, wait_ready=lambda timeout: False, ready_timeout=0.1)
    try:
        with pytest.raises(TimeoutError, match="no server worker became ready"):
            client.get("/")
    finally:
        client.close()
