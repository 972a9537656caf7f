"""The shortcuts of the request hot path give the same results as the general path.

* a request without a body gets no ``BodyChannel`` until someone asks for one, and then it is
  already at its end (``Request.no_body``);
* ``json()`` builds the C encoder itself: same text and same errors as ``json.JSONEncoder``;
* a response with only a content type is written without ``header_items()``: same bytes on the
  wire as a response that goes through it.
"""

from __future__ import annotations

import asyncio
import json as stdlib_json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import App, json, text
from runtime.datastructures import Headers
from runtime.request import Request
from runtime.response import HTTPResponse, _compact
from tests.server.helpers import TIMEOUT, RawClient, serve

_reference = stdlib_json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # nan and infinities included: both write NaN / Infinity
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(_json_values)
def test_compact_json_is_the_text_of_the_stdlib_encoder(value: Any) -> None:
    assert _compact(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    [{"a": object()}, {(1, 2): 3}, [b"bytes"], {"x": {1, 2}}],
    ids=["object", "tuple-key", "bytes", "set"],
)
def test_compact_json_raises_what_the_stdlib_encoder_raises(value: Any) -> None:
    with pytest.raises(TypeError) as ours:
        _compact(value)
    with pytest.raises(TypeError) as theirs:
        _reference(value)
    assert str(ours.value) == str(theirs.value)


def test_compact_json_detects_circular_references_every_time() -> None:
    loop: list[Any] = []
    loop.append(loop)
    for _ in range(2):  # a failed call leaves nothing behind that breaks the next one
        with pytest.raises(ValueError, match="Circular reference"):
            _compact({"a": loop})
    shared = {"k": 1}
    assert _compact([shared, shared]) == '[{"k":1},{"k":1}]'  # repeated, not circular


def _request(app: App) -> Request:
    return Request(app, "GET", b"/", Headers.from_raw([(b"host", b"x")]))


async def test_a_request_marked_bodyless_reads_as_an_empty_body() -> None:
    app = App("hot_path_no_body")
    request = _request(app)
    request.no_body()
    assert await request.receive_body() == b""
    channel = request.body_channel  # built on demand, already at its end
    assert channel.at_eof
    assert await asyncio.wait_for(channel.read(), TIMEOUT) is None


async def test_no_body_after_the_channel_exists_ends_that_channel() -> None:
    request = _request(App("hot_path_no_body_late"))
    channel = request.body_channel
    request.no_body()
    assert request.body_channel is channel
    assert await asyncio.wait_for(channel.read(), TIMEOUT) is None


def test_a_get_to_a_streaming_route_reads_the_end_at_once_over_a_socket() -> None:
    app = App("hot_path_stream_get")

    @app.route("/s", methods=["GET", "POST"], stream=True)
    async def streamed(request: Request) -> HTTPResponse:
        assert request.stream is not None
        chunks = [chunk async for chunk in request.stream]
        return text(f"{len(chunks)} chunks, {sum(map(len, chunks))} bytes")

    with serve(app) as running, RawClient(running.port) as client:
        client.send(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.read_response().body == b"0 chunks, 0 bytes"
        client.send(b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert client.read_response().body == b"1 chunks, 5 bytes"
        client.send(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.read_response().body == b"0 chunks, 0 bytes"


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Everything the server sends for one ``Connection: close`` request."""
    with RawClient(port) as client:
        client.send(request)
        while client._fill():
            pass
        return client.buffer


def _without_date(raw: bytes) -> list[bytes]:
    return [line for line in raw.split(b"\r\n") if not line.lower().startswith(b"date: ")]


def test_a_content_type_only_response_has_the_same_wire_bytes_as_the_general_path() -> None:
    app = App("hot_path_wire")

    @app.get("/fast")
    async def fast(request: Request) -> HTTPResponse:
        return json({"hello": "wörld"})

    @app.get("/general")
    async def general(request: Request) -> HTTPResponse:
        # a header (even an empty Headers) sends the response through header_items()
        return json({"hello": "wörld"}, headers={"Content-Length": "999", "Date": "never"})

    @app.get("/none")
    async def no_type(request: Request) -> HTTPResponse:
        return HTTPResponse(b"raw")

    with serve(app) as running:
        get = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        fast_raw = _raw_exchange(running.port, get % b"/fast")
        general_raw = _raw_exchange(running.port, get % b"/general")
        none_raw = _raw_exchange(running.port, get % b"/none")
        head_raw = _raw_exchange(running.port, get.replace(b"GET", b"HEAD") % b"/fast")
    body = '{"hello":"wörld"}'.encode()
    expected = [
        b"HTTP/1.1 200 OK",
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
        b"",
        body,
    ]
    assert _without_date(fast_raw) == expected
    assert _without_date(general_raw) == expected  # own headers dropped, same order
    assert _without_date(head_raw) == [*expected[:-1], b""]  # length kept, no body
    assert _without_date(none_raw) == [
        b"HTTP/1.1 200 OK",
        b"content-length: 3",
        b"connection: close",
        b"",
        b"raw",
    ]
    assert fast_raw.count(b"\r\ndate: ") == 1


def test_a_subclass_that_overrides_header_items_is_honoured() -> None:
    class Tagged(HTTPResponse):
        __slots__ = ()

        def header_items(self) -> list[tuple[bytes, bytes]]:
            return [*super().header_items(), (b"x-tag", b"1")]

    app = App("hot_path_subclass")

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        return Tagged(b"ok", content_type="text/plain")

    with serve(app) as running:
        raw = _raw_exchange(running.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nx-tag: 1\r\n" in raw
    assert b"\r\ncontent-type: text/plain\r\n" in raw
