"""Response helpers, header rendering, cookies and streaming bodies."""

from __future__ import annotations

import json as stdlib_json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from typing import Any

import pytest

from runtime.cookies import Cookie
from runtime.datastructures import Headers
from runtime.response import (
    BaseHTTPResponse,
    HTTPResponse,
    ResponseStream,
    StreamingResponse,
    empty,
    html,
    json,
    raw,
    redirect,
    stream,
    text,
)


def head(response: BaseHTTPResponse) -> list[tuple[bytes, bytes]]:
    return response.header_items()


def test_text() -> None:
    r = text("héllo", status=201, headers={"X-A": "1"})
    assert (r.status, r.body, r.content_type) == (
        201,
        "héllo".encode(),
        "text/plain; charset=utf-8",
    )
    assert head(r) == [(b"X-A", b"1"), (b"content-type", b"text/plain; charset=utf-8")]
    assert not r.is_streaming
    with pytest.raises(TypeError, match="text\\(\\) takes a str body, got bytes; use raw\\(\\)"):
        text(b"x")  # type: ignore[arg-type]


def test_json_is_compact_utf8_and_configurable() -> None:
    r = json({"a": [1, 2], "é": None})
    assert r.body == '{"a":[1,2],"é":null}'.encode()
    assert r.content_type == "application/json"
    assert r.raw_body == {"a": [1, 2], "é": None}
    assert json([1], indent=1).body == b"[\n 1\n]"
    assert json({"b": 1, "a": 2}, sort_keys=True).body == b'{"a":2,"b":1}'
    assert json(1, dumps=lambda o: f"<{o}>").body == b"<1>"
    assert json({}, status=422, content_type="application/problem+json").status == 422
    with pytest.raises(TypeError):
        json(object())
    assert stdlib_json.loads(json({"x": "\u2028"}).body) == {"x": "\u2028"}


def test_html_raw_empty() -> None:
    class Page:
        def __html__(self) -> str:
            return "<p>hi</p>"

    class Notebook:
        def _repr_html_(self) -> str:
            return "<b>nb</b>"

    assert html("<h1>x</h1>").content_type == "text/html; charset=utf-8"
    assert html(Page()).body == b"<p>hi</p>"
    assert html(Notebook()).body == b"<b>nb</b>"
    assert html(b"<i>b</i>").body == b"<i>b</i>"
    with pytest.raises(TypeError, match="__html__"):
        html(3)
    r = raw(b"\x00\x01")
    assert r.body == b"\x00\x01" and r.content_type == "application/octet-stream"
    assert raw(bytearray(b"ab")).body == b"ab"
    with pytest.raises(TypeError, match="use text\\(\\) for str"):
        raw("x")  # type: ignore[arg-type]
    e = empty()
    assert (e.status, e.body, e.content_type, head(e)) == (204, b"", None, [])
    assert empty(304, headers={"ETag": '"x"'}).header_items() == [(b"ETag", b'"x"')]


def test_redirect() -> None:
    r = redirect("/new place?q=1")
    assert r.status == 302
    assert r.headers["location"] == "/new%20place?q=1"
    assert redirect("https://x.org/a", status=301).headers["Location"] == "https://x.org/a"
    assert redirect("/é").headers["location"] == "/%C3%A9"
    with pytest.raises(TypeError):
        redirect(None)  # type: ignore[arg-type]


def test_http_response_constructor() -> None:
    assert HTTPResponse().body == b""
    assert HTTPResponse("é").body == "é".encode()
    assert HTTPResponse(memoryview(b"ab")).body == b"ab"
    assert HTTPResponse(b"x").content_type is None
    with pytest.raises(TypeError, match="use json\\(\\)"):
        HTTPResponse({"a": 1})  # type: ignore[arg-type]
    for bad in (99, 1000, "200", True):
        with pytest.raises(ValueError, match="HTTP status must be an int"):
            HTTPResponse(b"", status=bad)  # type: ignore[arg-type]


def test_header_items_rules() -> None:
    r = text("x", headers=Headers([("Content-Type", "text/csv"), ("X", "1"), ("X", "2")]))
    assert head(r) == [(b"Content-Type", b"text/csv"), (b"X", b"1"), (b"X", b"2")]
    r = text("x", headers={"Content-Length": "99"})
    assert head(r) == [(b"content-type", b"text/plain; charset=utf-8")]
    r.headers.add("Vary", "Accept")
    assert (b"Vary", b"Accept") in head(r)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        text("x", headers={"X": "a\nb"})


def test_cookies_render_and_parse_back() -> None:
    r = text("x")
    r.add_cookie("session", "abc123", httponly=True, max_age=60)
    r.add_cookie("theme", "dark", path="/app", domain="example.com", secure=False, samesite=None)
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    r.add_cookie("exp", '"quoted"', expires=expires, samesite="strict", partitioned=True)
    lines = [v.decode() for n, v in head(r) if n == b"set-cookie"]
    assert lines == [
        "session=abc123; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax",
        "theme=dark; Path=/app; Domain=example.com",
        'exp="quoted"; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Secure; SameSite=Strict; '
        "Partitioned",
    ]
    parsed = SimpleCookie()
    parsed.load(lines[0])
    assert parsed["session"].value == "abc123"
    assert parsed["session"]["max-age"] == "60"
    assert parsed["session"]["httponly"] is True
    assert r.cookies["theme"].domain == "example.com"
    assert "session" in r.cookies and len(r.cookies) == 3


def test_cookie_replace_delete_and_naive_expiry() -> None:
    r = text("x")
    r.add_cookie("a", "1")
    r.add_cookie("a", "2")
    assert [c.value for c in r.cookies] == ["2"]
    r.delete_cookie("a")
    assert [c.encode() for c in r.cookies] == ["a=; Path=/; Max-Age=0; Secure"]
    r.delete_cookie("gone", path="/x")
    assert r.cookies.get_cookie("gone", "/x") is not None
    naive = datetime(2030, 1, 1) + timedelta(hours=1)
    assert "Expires=Tue, 01 Jan 2030 01:00:00 GMT" in Cookie("n", "v", expires=naive).encode()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key": "bad name", "value": "v"}, ValueError, "Invalid cookie name"),
        ({"key": "k", "value": "a b"}, ValueError, "encode it first"),
        ({"key": "k", "value": "a;b"}, ValueError, "encode it first"),
        ({"key": "k", "value": "é"}, ValueError, "encode it first"),
        ({"key": "k", "value": 1}, TypeError, "must be a str"),
        ({"key": "k", "value": "v", "samesite": "sometimes"}, ValueError, "samesite must be"),
        (
            {"key": "k", "value": "v", "samesite": "none", "secure": False},
            ValueError,
            "requires secure",
        ),
        (
            {"key": "k", "value": "v", "partitioned": True, "secure": False},
            ValueError,
            "requires secure",
        ),
        ({"key": "__Host-k", "value": "v", "path": "/a"}, ValueError, "__Host- prefix"),
        ({"key": "__Secure-k", "value": "v", "secure": False}, ValueError, "__Secure- prefix"),
        ({"key": "k", "value": "v", "path": "/a;b"}, ValueError, "contains ';'"),
        ({"key": "k", "value": "v", "max_age": 1.5}, TypeError, "max_age"),
        ({"key": "k", "value": "v", "expires": "tomorrow"}, TypeError, "expires"),
    ],
)
def test_cookie_validation(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        text("x").add_cookie(**kwargs)  # type: ignore[arg-type]


async def collect(response: BaseHTTPResponse) -> list[bytes]:
    chunks: list[bytes] = []

    async def write(data: bytes) -> None:
        assert isinstance(data, bytes) and data
        chunks.append(data)

    await response.stream_body(write)  # type: ignore[attr-defined]
    return chunks


async def test_streaming_response_from_async_generator() -> None:
    async def gen() -> AsyncIterator[bytes | str]:
        yield "a"
        yield b""  # skipped: an empty chunk would end a chunked body
        yield bytearray(b"b")  # type: ignore[misc]
        yield "ç"

    r = StreamingResponse(gen(), headers={"Content-Length": "4"})
    assert r.is_streaming
    assert (b"Content-Length", b"4") in head(r)  # a streamed length is kept
    assert await collect(r) == [b"a", b"b", "ç".encode()]
    with pytest.raises(TypeError, match="async iterable"):
        StreamingResponse([b"x"])  # type: ignore[arg-type]

    async def bad() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="bytes or str, got int"):
        await collect(StreamingResponse(bad()))  # type: ignore[arg-type]


async def test_response_stream_and_stream_helper() -> None:
    async def fn(response: ResponseStream) -> None:
        await response.write("one ")
        await response.write(b"")
        await response.write(b"two")

    r = stream(fn, content_type="text/csv", headers={"X": "y"})
    assert isinstance(r, ResponseStream) and r.is_streaming and r.status == 200
    assert head(r) == [(b"X", b"y"), (b"content-type", b"text/csv")]
    assert await collect(r) == [b"one ", b"two"]
    with pytest.raises(RuntimeError, match="inside the streaming function"):
        await r.write("late")
    with pytest.raises(TypeError, match="async function"):
        stream("nope")  # type: ignore[arg-type]


def test_cookie_jar_details() -> None:
    r = text("x")
    cookie = r.add_cookie("a", "1", comment="note", secure=False)
    assert cookie.encode() == "a=1; Path=/; SameSite=Lax; Comment=note"
    assert str(cookie) == cookie.encode() and "a=1" in repr(cookie)
    assert r.cookies.header_values() == [cookie.encode()]
    assert r.cookies.get_cookie("a", path="/other") is None
    with pytest.raises(KeyError):
        r.cookies["missing"]
    assert "CookieJar" in repr(r.cookies)
    assert repr(r) == "<HTTPResponse: 200 text/plain; charset=utf-8>"


def test_over_a_real_socket() -> None:
    """The same objects through the real server and an independent client (httpx)."""
    import httpx

    from runtime import App
    from tests.server.helpers import serve

    app = App("responses_wire")

    @app.get("/items/<item_id:int>")
    async def item(request: Any, item_id: int) -> BaseHTTPResponse:
        response = json({"id": item_id, "tags": request.args.getlist("tag")})
        response.add_cookie("seen", str(item_id), httponly=True)
        return response

    @app.post("/upload")
    async def upload(request: Any) -> BaseHTTPResponse:
        f = request.files.get("f")
        return json({"title": request.form.get("title"), "file": [f.name, len(f.body)]})

    @app.get("/stream")
    async def streamed(request: Any) -> BaseHTTPResponse:
        async def fn(response: ResponseStream) -> None:
            for i in range(3):
                await response.write(f"{i};")

        return stream(fn)

    with (
        serve(app) as running,
        httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=10) as client,
    ):
        got = client.get("/items/7?tag=a&tag=b")
        assert got.json() == {"id": 7, "tags": ["a", "b"]}
        assert got.headers["set-cookie"] == "seen=7; Path=/; Secure; HttpOnly; SameSite=Lax"
        assert got.headers["content-length"] == str(len(got.content))
        not_allowed = client.delete("/items/7")
        assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "GET, HEAD"
        assert client.get("/items/x").status_code == 404
        head = client.head("/items/7")
        assert head.status_code == 200 and head.content == b""
        up = client.post(
            "/upload", data={"title": "t"}, files={"f": ("a.bin", bytes(range(256)) * 100)}
        )
        assert up.json() == {"title": "t", "file": ["a.bin", 25600]}
        s = client.get("/stream")
        assert s.text == "0;1;2;" and s.headers["transfer-encoding"] == "chunked"
