"""Request and BodyChannel, with a plain Config as the app (no App needed)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.config import Config
from runtime.datastructures import ConnInfo, File, Headers
from runtime.exceptions import BadRequest, InvalidJSON, PayloadTooLarge
from runtime.request import BodyChannel, Request, parse_multipart


def app(**config: Any) -> SimpleNamespace:
    return SimpleNamespace(
        config=Config(config, env_prefix=None), url_for=lambda name, **kw: f"/{name}?{kw}"
    )


def make(
    target: bytes = b"/",
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
    body: bytes | None = None,
    **config: Any,
) -> Request:
    raw = [(n.encode(), v.encode("latin-1")) for n, v in headers or []]
    request = Request(
        app(**config),
        method,
        target,
        Headers.from_raw(raw),
        conn_info=ConnInfo("10.0.0.1", 5555, "127.0.0.1", 8000),
    )
    if body is not None:
        request.body = body
    return request


# -- target, path, query ---------------------------------------------------------------------------


def test_path_and_query_are_parsed_lazily_and_decoded() -> None:
    r = make(b"/caf%C3%A9/a%20b?q=caf%C3%A9&x=1&x=2&blank=&flag")
    assert r.raw_url == r.target == b"/caf%C3%A9/a%20b?q=caf%C3%A9&x=1&x=2&blank=&flag"
    assert r.path == "/café/a b"
    assert r.raw_path == b"/caf%C3%A9/a%20b"
    assert r.query_string == "q=caf%C3%A9&x=1&x=2&blank=&flag"
    assert r.args["q"] == "café"
    assert r.args.getlist("x") == ["1", "2"]
    assert "blank" not in r.args
    assert r.get_args(keep_blank_values=True)["blank"] == ""
    assert r.query_args == [("q", "café"), ("x", "1"), ("x", "2")]


def test_plain_path_and_absolute_form() -> None:
    assert make(b"/").path == "/"
    assert make(b"/").query_string == ""
    r = make(b"http://example.com/a/b?x=1")
    assert r.path == "/a/b" and r.args["x"] == "1"


def test_a_fragment_is_no_part_of_the_path_or_the_query() -> None:
    # clients never send one (RFC 9110 4.2.4), but llhttp lets it through
    r = make(b"/a/b?x=1#part?y=2")
    assert (r.path, r.raw_path, r.query_string) == ("/a/b", b"/a/b", "x=1")
    r = make(b"/a#part")
    assert (r.path, r.query_string) == ("/a", "")
    r = make(b"//double/slash#x")  # origin form, never read as an authority
    assert r.path == "//double/slash"


def test_request_basics() -> None:
    r = make(b"/p?x=1", [("Host", "example.com:8000"), ("X-Request-ID", "abc")], "POST")
    assert r.method == "POST" and r.version == "1.1"
    assert r.headers["host"] == "example.com:8000"
    assert r.host == "example.com:8000"
    assert r.server_name == "example.com"
    assert r.url == "http://example.com:8000/p?x=1"
    assert r.id == "abc"
    assert r.ip == "10.0.0.1" and r.port == 5555
    assert r.scheme == "http"
    assert r.ctx is r.ctx
    r.ctx.user = "me"
    assert r.ctx.user == "me"
    assert r.route is None and r.match_info == {} and r.stream is None
    assert r.url_for("home", a=1) == "/home?{'a': 1}"
    assert "POST" in repr(r)
    with pytest.raises(AttributeError):
        r.anything = 1  # type: ignore[attr-defined]


def test_request_without_conn_info_or_host() -> None:
    r = Request(app(), "GET", b"/x", Headers())
    assert r.ip == "" and r.port == 0 and r.host == "" and r.scheme == "http"
    uuid.UUID(r.id)  # a fresh UUID4 when no X-Request-ID
    assert r.id == r.id


def test_scheme_for_tls_and_websocket() -> None:
    tls = Request(
        app(), "GET", b"/", Headers({"Upgrade": "websocket"}), conn_info=ConnInfo(ssl=True)
    )
    assert tls.scheme == "wss"
    plain = Request(app(), "GET", b"/", Headers({"Upgrade": "WebSocket"}), conn_info=ConnInfo())
    assert plain.scheme == "ws"
    assert (
        Request(app(), "GET", b"/", Headers(), conn_info=ConnInfo(scheme="https")).scheme == "https"
    )
    ipv6 = Request(app(), "GET", b"/", Headers({"Host": "[::1]:8000"}))
    assert ipv6.server_name == "[::1]"


def test_remote_addr_needs_proxy_configuration() -> None:
    headers = [("X-Forwarded-For", "1.1.1.1, 2.2.2.2"), ("X-Real-IP", "3.3.3.3")]
    assert make(headers=headers).remote_addr == ""
    assert make(headers=headers).client_ip == "10.0.0.1"
    assert make(headers=headers, PROXIES_COUNT=1).remote_addr == "2.2.2.2"
    assert make(headers=headers, PROXIES_COUNT=2).remote_addr == "1.1.1.1"
    assert make(headers=headers, PROXIES_COUNT=3).remote_addr == ""
    assert make(headers=headers, REAL_IP_HEADER="x-real-ip").remote_addr == "3.3.3.3"


# -- cookies ---------------------------------------------------------------------------------------


def test_cookies() -> None:
    r = make(headers=[("Cookie", 'a=1; b="two"; junk; a=ignored'), ("Cookie", "c=3")])
    assert r.cookies == {"a": "1", "b": "two", "c": "3"}
    assert make().cookies == {}


# -- json ------------------------------------------------------------------------------------------


def test_json() -> None:
    assert make(body=b'{"a": [1, 2]}').json == {"a": [1, 2]}
    assert make(body=b"").json is None
    assert make(body=b"null").json is None
    assert make(body=b'"x"').load_json(loads=lambda b: b.upper()) == b'"X"'


def test_malformed_json_is_400_saying_where() -> None:
    r = make(body=b'{"a": 1,\n "b": }')
    with pytest.raises(InvalidJSON) as info:
        _ = r.json
    assert info.value.status_code == 400
    assert "line 2 column 7" in str(info.value)
    with pytest.raises(InvalidJSON, match="not UTF-8"):
        _ = make(body=b'"\xff"').json
    with pytest.raises(InvalidJSON, match="Invalid JSON body"):
        make(body=b"x").load_json(loads=lambda b: int(b))
    with pytest.raises(InvalidJSON, match="nested too deeply"):
        _ = make(body=b"[" * 100_000).json
    with pytest.raises(InvalidJSON, match="digits"):
        _ = make(body=b"1" * 5000).json


# -- form and files --------------------------------------------------------------------------------


def encoded(**kwargs: Any) -> tuple[list[tuple[str, str]], bytes]:
    """Let httpx (an independent implementation) build the request body."""
    req = httpx.Request("POST", "http://test/", **kwargs)
    return [("Content-Type", req.headers["content-type"])], req.read()


def test_urlencoded_form() -> None:
    headers, body = encoded(data={"name": "Zoë", "tags": ["a", "b"], "empty": ""})
    r = make(headers=headers, body=body)
    assert r.form.get("name") == "Zoë"
    assert r.form.getlist("tags") == ["a", "b"]
    assert r.form.get("empty") == ""
    assert r.files == {}


def test_multipart_form_and_files() -> None:
    headers, body = encoded(
        data={"title": "Hello, wörld", "n": ["1", "2"]},
        files=[
            ("doc", ("ré sumé.txt", b"line1\r\n--not-a-boundary\r\n", "text/plain")),
            ("doc", ("b.bin", bytes(range(256)), "application/octet-stream")),
        ],
    )
    r = make(headers=headers, body=body)
    assert r.form.get("title") == "Hello, wörld"
    assert r.form.getlist("n") == ["1", "2"]
    first, second = r.files.getlist("doc")
    assert first == File("ré sumé.txt", "text/plain", b"line1\r\n--not-a-boundary\r\n")
    assert second.body == bytes(range(256)) and second.name == "b.bin"
    assert r.files.get("doc") is first


def test_multipart_edge_cases() -> None:
    body = (
        b"preamble\r\n--XX\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b"--XX\r\n"
        b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%E2%82%AC.txt\r\n\r\n"
        b"euro\r\n"
        b"--XX--\r\nepilogue"
    )
    form, files = parse_multipart(body, b"XX")
    assert form == {"a": ["1"]}
    assert files.get("f") == File("€.txt", "application/octet-stream", b"euro")
    form, files = parse_multipart(b"--XX--\r\n", b"XX")
    assert form == {} and files == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"no boundary here", "does not contain its boundary"),
        (b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1', "without its closing"),
        (b"--XX\r\nContent-Type: text/plain\r\n\r\n1\r\n--XX--", "without a Content-Disposition"),
        (b"--XX\r\nContent-Disposition: form-data\r\n\r\n1\r\n--XX--", "bad Content-Disposition"),
        (b"--XX\r\nbroken header\r\n\r\n1\r\n--XX--", "malformed header line"),
        (b"--XXjunk\r\n", "malformed boundary"),
    ],
)
def test_malformed_multipart_is_400(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_multipart(body, b"XX")


def test_multipart_limits_and_missing_boundary() -> None:
    part = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
    with pytest.raises(BadRequest, match="more than 3 parts"):
        parse_multipart(part * 4 + b"--XX--", b"XX", max_parts=3)
    r = make(headers=[("Content-Type", "multipart/form-data")], body=b"x")
    with pytest.raises(BadRequest, match="without a boundary"):
        _ = r.form
    other = make(headers=[("Content-Type", "application/json")], body=b"{}")
    assert other.form == {} and other.files == {}
    assert make().content_type == "application/octet-stream"


# -- body channel and receive_body -----------------------------------------------------------


async def test_receive_body_from_chunks() -> None:
    r = make(method="POST")
    channel = r.body_channel
    assert channel is r.body_channel

    async def feed() -> None:
        for chunk in (b"hel", b"", b"lo ", b"world"):
            channel.feed(chunk)
            await asyncio.sleep(0)
        channel.feed_eof()

    feeder = asyncio.create_task(feed())
    assert await asyncio.wait_for(r.receive_body(), 5) == b"hello world"
    await feeder
    assert r.body == b"hello world"
    assert await r.receive_body() == b"hello world"  # once only
    assert channel.received == 11


async def test_empty_body_allocates_no_future() -> None:
    r = make()
    r.body_channel.feed_eof()
    assert await r.receive_body() == b""
    assert r.body_channel._waiter is None and r.body_channel._chunks is None


async def test_body_size_limit() -> None:
    r = make(method="POST", REQUEST_MAX_SIZE=10)
    r.body_channel.feed(b"x" * 6)
    r.body_channel.feed(b"x" * 6)
    r.body_channel.feed_eof()
    with pytest.raises(PayloadTooLarge, match="REQUEST_MAX_SIZE \\(10 bytes\\)"):
        await r.receive_body()
    declared = make(headers=[("Content-Length", "11")], method="POST", REQUEST_MAX_SIZE=10)
    with pytest.raises(PayloadTooLarge, match="11 bytes"):
        await declared.receive_body()


async def test_channel_error_reaches_the_reader() -> None:
    r = make(method="POST")
    r.body_channel.feed(b"part")
    r.body_channel.feed_error(ConnectionResetError("client went away"))
    with pytest.raises(ConnectionResetError):
        await r.receive_body()


async def test_channel_pause_resume_and_iteration() -> None:
    events: list[str] = []
    channel = BodyChannel(high_water=10)
    channel.on_pause = lambda: events.append("pause")
    channel.on_resume = lambda: events.append("resume")
    channel.feed(b"x" * 8)
    assert events == []
    channel.feed(b"y" * 8)  # 16 buffered > 10
    channel.feed(b"z" * 8)
    assert events == ["pause"]
    assert channel.buffered == 24
    assert await channel.read() == b"x" * 8  # 16 left
    assert events == ["pause"]
    assert await channel.read() == b"y" * 8  # 8 left, above half of 10
    assert events == ["pause"]
    assert await channel.read() == b"z" * 8  # 0 left
    assert events == ["pause", "resume"]
    channel.feed(b"end")
    channel.feed_eof()
    assert [c async for c in channel] == [b"end"]
    assert await channel.read() is None
    assert channel.at_eof
    with pytest.raises(RuntimeError, match="after feed_eof"):
        channel.feed(b"late")


async def test_channel_reader_waits_for_data() -> None:
    channel = BodyChannel()
    reader = asyncio.create_task(channel.read())
    await asyncio.sleep(0)
    assert not reader.done()
    with pytest.raises(RuntimeError, match="another read"):
        await channel.read()
    channel.feed(b"data")
    assert await asyncio.wait_for(reader, 5) == b"data"
    eof_reader = asyncio.create_task(channel.read())
    await asyncio.sleep(0)
    channel.feed_eof()
    assert await asyncio.wait_for(eof_reader, 5) is None


def test_body_channel_uses_request_buffer_size() -> None:
    assert make(REQUEST_BUFFER_SIZE=123).body_channel.high_water == 123


# httpx (like browsers) percent-encodes quotes and control characters in names (not decoded)
FIELD = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters='"', exclude_categories=["Cc"]),
    min_size=1,
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(FIELD, st.text(max_size=30)), max_size=5),
    st.lists(st.tuples(FIELD, FIELD, st.binary(max_size=200)), max_size=4),
)
def test_multipart_round_trips_what_httpx_encodes(
    fields: list[tuple[str, str]], uploads: list[tuple[str, str, bytes]]
) -> None:
    if not fields and not uploads:
        return
    files = [(name, (filename, body, "application/x-test")) for name, filename, body in uploads]
    headers, body = encoded(data=dict(fields) or None, files=files or None)
    r = make(headers=headers, body=body)
    assert r.form == {k: [v] for k, v in dict(fields).items()}
    expected: dict[str, list[File]] = {}
    for name, filename, data in uploads:
        expected.setdefault(name, []).append(File(filename, "application/x-test", data))
    assert r.files == expected


def test_backslashes_in_filenames() -> None:
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="f"; filename="C:\\dir\\a \\"b\\".txt"\r\n'
        b"\r\nx\r\n--XX--"
    )
    assert parse_multipart(body, b"XX")[1].get("f").name == 'C:\\dir\\a "b".txt'


def test_more_multipart_and_form_rules() -> None:
    no_headers = b"--XX\r\n\r\nbody\r\n--XX--"
    with pytest.raises(BadRequest, match="without a Content-Disposition"):
        parse_multipart(no_headers, b"XX")
    no_blank = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n--XX--'
    with pytest.raises(BadRequest, match="without a blank line"):
        parse_multipart(no_blank, b"XX")
    huge = b"--XX\r\nX: " + b"a" * 20000 + b"\r\n\r\nv\r\n--XX--"
    with pytest.raises(BadRequest, match="headers are too large"):
        parse_multipart(huge, b"XX")
    with pytest.raises(BadRequest, match="boundary must be 1 to 200"):
        parse_multipart(b"", b"")
    latin = (
        b'--XX\r\nContent-Disposition: form-data; name="a"\r\n'
        b"Content-Type: text/plain; charset=latin-1\r\n\r\ncaf\xe9\r\n--XX--"
    )
    assert parse_multipart(latin, b"XX")[0] == {"a": ["café"]}
    bad_utf8 = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\r\n--XX--'
    with pytest.raises(BadRequest, match="Form field 'a' is not valid utf-8"):
        parse_multipart(bad_utf8, b"XX")
    bad_star = (
        b'--XX\r\nContent-Disposition: form-data; name="f"; filename="plain.txt"; '
        b"filename*=nope''%FF\r\n\r\nx\r\n--XX--"
    )
    assert parse_multipart(bad_star, b"XX")[1].get("f").name == "plain.txt"
    urlencoded = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
    with pytest.raises(BadRequest, match="not valid utf-8"):
        _ = make(headers=urlencoded, body=b"a=\xff").form
    files_first = make(headers=urlencoded, body=b"a=1")
    assert files_first.files == {} and files_first.form == {"a": ["1"]}


def test_route_details_and_host_fallback() -> None:
    r = Request(
        app(), "GET", b"/x?y=1", Headers(), conn_info=ConnInfo(server_ip="::1", server_port=80)
    )
    assert r.raw_path == b"/x" and r.host == "[::1]:80"
    assert r.uri_template is None and r.endpoint is None
    from runtime.routing import Router

    r.route = Router().add("/x", ["GET"], print, name="x")
    assert r.uri_template == "/x" and r.endpoint == "x"
    assert make(b"/a?b").raw_path == b"/a"
    assert Request(object(), "GET", b"/", Headers()).body_channel.high_water == 65536


def test_parse_content_type() -> None:
    from runtime.request import parse_content_type

    assert parse_content_type('Text/HTML; Charset= "utf-8" ; q=1;flag') == (
        "text/html",
        {"charset": "utf-8", "q": "1", "flag": ""},
    )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("token  xyz ", "xyz"),
        ("Basic dXNlcg==", None),
        ("Bearer", None),
    ],
)
def test_token(header: str, token: str | None) -> None:
    assert make(headers=[("Authorization", header)]).token == token
    assert make().token is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=30),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=4),
)
def test_channel_delivers_everything_with_alternating_flow_control(
    chunks: list[bytes], high_water: int, read_every: int
) -> None:
    async def scenario() -> bytes:
        channel = BodyChannel(high_water=high_water)
        events: list[str] = []
        channel.on_pause = lambda: events.append("pause")
        channel.on_resume = lambda: events.append("resume")
        received: list[bytes] = []

        async def reader() -> None:
            async for chunk in channel:
                received.append(chunk)

        task = asyncio.create_task(reader())
        for index, chunk in enumerate(chunks):
            channel.feed(chunk)
            if index % read_every == 0:
                await asyncio.sleep(0)
            if channel.buffered > high_water:
                assert events and events[-1] == "pause"
        channel.feed_eof()
        await asyncio.wait_for(task, 5)
        # pause and resume strictly alternate, starting with pause
        assert all(e == ("pause", "resume")[i % 2] for i, e in enumerate(events))
        assert channel.buffered == 0 and channel.at_eof
        return b"".join(received)

    assert asyncio.run(scenario()) == b"".join(chunks)


async def test_a_broken_body_is_never_handed_over_as_empty() -> None:
    # the server feeds an error (connection reset, limit hit) before any chunk: reading must raise,
    # and the channel must not claim it is complete, or the app would run the handler with b"".
    channel = BodyChannel()
    channel.feed_error(ConnectionResetError("peer went away"))
    assert not channel.at_eof
    with pytest.raises(ConnectionResetError):
        await channel.read()
