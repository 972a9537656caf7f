"""Hostile requests, each with the exact answer it must get: the status (or statuses, for
pipelined requests), and whether the server then closes the connection. After each, a good
request on a new connection is served and nothing was logged as an error. Then websocket
protocol violations with the close code each must get, and a few of both through a raw ASGI app
(the ASGI host parses with the same ``H1Connection``)."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import App, text
from runtime.config import Config
from runtime.foreign import ForeignApp
from runtime.hosting import Receive, Scope, Send
from runtime.request import Request
from tests.server.helpers import RawClient, Running, get, request, serve


class Case(NamedTuple):
    data: bytes
    statuses: list[int]  # the answers, in order, before the connection ends (or stays open)
    closes: bool = True  # the server closes the connection after them


H = b"Host: t\r\n"
POST = b"POST / HTTP/1.1\r\nHost: t\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
GET_OK = get("/")

CORPUS: dict[str, Case] = {
    # -- request smuggling: Content-Length and Transfer-Encoding ----------------------------------
    "CL + TE": Case(
        POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400]
    ),
    "TE + CL": Case(
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", [400]
    ),
    "TE + CL 0 with a smuggled GET": Case(
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
        b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
        [400],
    ),
    "duplicate CL": Case(POST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\na", [400]),
    "conflicting CL": Case(POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", [400]),
    "CL list": Case(POST + b"Content-Length: 1, 1\r\n\r\na", [400]),
    "negative CL": Case(POST + b"Content-Length: -1\r\n\r\n", [400]),
    "CL with plus": Case(POST + b"Content-Length: +1\r\n\r\na", [400]),
    "CL hex": Case(POST + b"Content-Length: 0x10\r\n\r\n", [400]),
    "CL with a space inside": Case(POST + b"Content-Length: 1 2\r\n\r\n", [400]),
    "CL empty": Case(POST + b"Content-Length:\r\n\r\n", [400]),
    "CL huge": Case(POST + b"Content-Length: 99999999999999999999999\r\n\r\n", [400]),
    "CL over the body limit": Case(POST + b"Content-Length: 200000000\r\n\r\n", [413]),
    "CL with OWS (valid)": Case(
        POST + b"Content-Length:   3  \r\n\r\nabc" + GET_OK, [200, 200], False
    ),
    "TE gzip": Case(POST + b"Transfer-Encoding: gzip\r\n\r\n", [501]),
    "TE identity": Case(POST + b"Transfer-Encoding: identity\r\n\r\n", [501]),
    "TE gzip, chunked": Case(POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", [501]),
    "TE chunked, identity": Case(POST + b"Transfer-Encoding: chunked, identity\r\n\r\n", [400]),
    "TE chunked,identity": Case(POST + b"Transfer-Encoding: chunked,identity\r\n\r\n", [400]),
    "TE twice": Case(
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400]
    ),
    "TE xchunked": Case(POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", [501]),
    "TE chunked with a parameter": Case(
        POST + b"Transfer-Encoding: chunked;a=b\r\n\r\n0\r\n\r\n", [501]
    ),
    "TE space before colon": Case(POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", [400]),
    "TE vertical tab": Case(POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", [400]),
    "TE folded": Case(POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", [400]),
    "TE tab (valid OWS)": Case(
        POST + b"Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + GET_OK,
        [200, 200],
        False,
    ),
    "TE CHUNKED (codings are case-insensitive)": Case(
        POST + b"Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", [200], False
    ),
    "TE in HTTP/1.0": Case(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400]
    ),
    # -- chunks ------------------------------------------------------------------------------------
    "chunk size junk": Case(CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n", [400]),
    "chunk size negative": Case(CHUNKED + b"-1\r\n\r\n", [400]),
    "chunk size overflow": Case(CHUNKED + b"ffffffffffffffffff\r\n", [400]),
    "chunk size 0x": Case(CHUNKED + b"0x3\r\nabc\r\n0\r\n\r\n", [400]),
    "chunk size with a space": Case(CHUNKED + b"3 \r\nabc\r\n0\r\n\r\n", [400]),
    "chunk size bare LF": Case(CHUNKED + b"3\nabc\r\n0\r\n\r\n", [400]),
    "chunk data without CRLF": Case(CHUNKED + b"3\r\nabcX0\r\n\r\n", [400]),
    "chunk extension control char": Case(CHUNKED + b"3;\x01\r\nabc\r\n0\r\n\r\n", [400]),
    "chunk extension open quote": Case(CHUNKED + b'3;a="b\r\nabc\r\n0\r\n\r\n', [400]),
    "chunk extension bare LF": Case(CHUNKED + b"3;a=b\nabc\r\n0\r\n\r\n", [400]),
    "chunk extensions (valid, ignored)": Case(
        CHUNKED + b'3;a=b;c="d e"\r\nabc\r\n0;x\r\n\r\n', [200], False
    ),
    "trailer with an invalid name": Case(CHUNKED + b"0\r\nX Y: z\r\n\r\n", [400]),
    "trailer (valid)": Case(CHUNKED + b"0\r\nX-T: z\r\n\r\n" + GET_OK, [200, 200], False),
    # -- the head: line endings, folding, names and values ----------------------------------------
    "bare LF": Case(b"GET / HTTP/1.1\nHost: t\n\n", [400]),
    "bare CR": Case(b"GET / HTTP/1.1\rHost: t\r\r", [400]),
    "bare LF after a header": Case(b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", [400]),
    "obs-fold": Case(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", [400]),
    "indented first header": Case(b"GET / HTTP/1.1\r\n Host: t\r\n\r\n", [400]),
    "header without colon": Case(b"GET / HTTP/1.1\r\nHost t\r\n\r\n", [400]),
    "space before colon": Case(b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", [400]),
    "empty header name": Case(b"GET / HTTP/1.1\r\nHost: t\r\n: t\r\n\r\n", [400]),
    "non-ascii header name": Case("GET / HTTP/1.1\r\nHost: t\r\nXö: t\r\n\r\n".encode(), [400]),
    "separator in header name": Case(b"GET / HTTP/1.1\r\nHost: t\r\nX(y): t\r\n\r\n", [400]),
    "control char in value": Case(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n", [400]),
    "NUL in value": Case(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", [400]),
    "CR in value": Case(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", [400]),
    "DEL in value": Case(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n", [400]),
    # -- the request line --------------------------------------------------------------------------
    "garbage": Case(b"\x00\x01\x02\x03\r\n\r\n", [400]),
    "lowercase method": Case(b"get / HTTP/1.1\r\nHost: t\r\n\r\n", [501]),
    "unknown method": Case(b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", [501]),
    "separator in method": Case(b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n", [400]),
    "space in target": Case(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", [400]),
    "NUL in target": Case(b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n", [400]),
    "non-ascii target": Case("GET /é HTTP/1.1\r\nHost: t\r\n\r\n".encode(), [400]),
    "http/0.9": Case(b"GET /\r\n\r\n", [400]),
    "no version": Case(b"GET /\r\nHost: t\r\n\r\n", [400]),
    "http/1.2": Case(b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", [505]),
    "http/3.1": Case(b"GET / HTTP/3.1\r\nHost: t\r\n\r\n", [505]),
    "http/2 preface": Case(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [505]),
    "TLS client hello": Case(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, [400]),
    "CONNECT": Case(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", [501]),
    "bad Expect": Case(POST + b"Content-Length: 1\r\nExpect: 200-ok\r\n\r\na", [417]),
    # -- Host (RFC 9112 section 3.2) --------------------------------------------------------------
    "no Host": Case(b"GET / HTTP/1.1\r\n\r\n", [400]),
    "two Host lines": Case(b"GET / HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n", [400]),
    "two Host lines, HTTP/1.0": Case(b"GET / HTTP/1.0\r\nHost: t\r\nHost: u\r\n\r\n", [400]),
    "Host a b/c": Case(b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", [400]),
    "Host with userinfo": Case(b"GET / HTTP/1.1\r\nHost: user@t\r\n\r\n", [400]),
    "Host with a bad port": Case(b"GET / HTTP/1.1\r\nHost: t:80x\r\n\r\n", [400]),
    "no Host, HTTP/1.0 (allowed)": Case(b"GET / HTTP/1.0\r\n\r\n", [200]),
    "empty Host (allowed)": Case(b"GET / HTTP/1.1\r\nHost:\r\n\r\n", [200], False),
    # -- sizes ------------------------------------------------------------------------------------
    "oversized header": Case(get("/", "X-Big: " + "a" * 20000 + "\r\n"), [431]),
    "oversized target": Case(get("/" + "a" * 20000), [431]),
    "too many headers": Case(get("/", "".join(f"X-{i}: v\r\n" for i in range(200))), [431]),
    "head that never ends": Case(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 4000, [431]),
    # -- pipelining around an error --------------------------------------------------------------
    "request then garbage": Case(
        GET_OK + b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", [200, 400]
    ),
    "pipelining after an error": Case(
        GET_OK + b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n" + GET_OK, [200, 400]
    ),
    "error first, then good requests": Case(b"GET / HTTP/1.1\r\n\r\n" + GET_OK + GET_OK, [400]),
    "unknown method pipelined": Case(
        GET_OK + b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n" + GET_OK, [200, 501]
    ),
    "smuggled request after a bad chunk": Case(
        CHUNKED + b"3\r\nabc\r\nzz\r\nGET /admin HTTP/1.1\r\nHost: t\r\n\r\n", [400]
    ),
}


def make_app() -> App:
    app = App("corpus")
    app.config.REQUEST_TIMEOUT = 0.5  # the slow cases below

    @app.route("/", methods=["GET", "POST"])
    async def index(request: Request) -> object:
        await request.receive_body()
        return text("ok")

    @app.websocket("/ws")
    async def echo(request: Request, ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    return app


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    from runtime.testing import reset_app_registry

    reset_app_registry()
    with serve(make_app()) as srv:
        yield srv
    reset_app_registry()


def test_corpus_has_at_least_60_cases() -> None:
    assert len(CORPUS) >= 60


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_request_gets_its_exact_answer(running: Running, name: str) -> None:
    case = CORPUS[name]
    statuses, closed = answers_of(running.port, case)
    assert (statuses, closed) == (case.statuses, case.closes)
    assert request(running.port, get("/")).status == 200  # the worker still serves
    assert not running.errors, running.errors


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_reason_is_ours_not_the_parsers(name: str) -> None:
    import httptools

    from runtime.proto.h1 import H1Connection, Reject

    class Quiet:
        pass

    data = CORPUS[name].data
    try:
        httptools.HttpRequestParser(Quiet()).feed_data(data)
        parser_text = None
    except httptools.HttpParserUpgrade:  # CONNECT: its "text" is an offset
        parser_text = None
    except httptools.HttpParserError as exc:
        parser_text = str(exc)
    events = H1Connection().receive_data(data)
    if not events or not isinstance(events[-1], Reject):
        return
    reason = events[-1].reason
    assert reason and reason[0].isupper() and len(reason) < 80, reason
    if parser_text:
        assert parser_text not in reason, (parser_text, reason)


def answers_of(port: int, case: Case) -> tuple[list[int], bool]:
    """The statuses answered to ``case.data`` and whether the server closed the connection.

    The client never half-closes: a server that must close has to do it on its own. A case that
    keeps the connection open is checked with a short wait (the answers are all in by then)."""
    statuses: list[int] = []
    with RawClient(port, timeout=5) as client:
        try:
            client.send(case.data)
        except OSError:
            pass  # closed before it read everything: what it answered is still there to read
        while len(statuses) < len(case.statuses):
            try:
                statuses.append(client.read_response().status)
            except (ConnectionError, OSError):
                return statuses, True
        closed = client.closed() if case.closes else client.closed_now()
        assert not client.buffer, f"bytes after the expected answers: {client.buffer[:80]!r}"
    return statuses, closed


def test_a_slow_head_gets_408_and_a_close(running: Running) -> None:
    with RawClient(running.port, timeout=5) as client:
        started = time.monotonic()
        for byte in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 40:
            try:
                client.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)  # 2 s in all: the head never completes within REQUEST_TIMEOUT
        assert client.read_response().status == 408
        assert client.closed()
        assert time.monotonic() - started < 4
    assert request(running.port, get("/")).status == 200


def test_a_slow_body_gets_408_and_a_close(running: Running) -> None:
    with RawClient(running.port, timeout=5) as client:
        client.send(POST + b"Content-Length: 100\r\n\r\n")
        for _ in range(40):
            try:
                client.send(b"a")
            except OSError:
                break
            time.sleep(0.05)
        assert client.read_response().status == 408
        assert client.closed()
    assert request(running.port, get("/")).status == 200
    assert not running.errors, running.errors


# -- websocket conformance -----------------------------------------------------------------------


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (payloads up to 125 bytes)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | len(payload)) + mask + masked


def opened(port: int, path: str) -> RawClient:
    client = RawClient(port, timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    client.send(
        get(
            path,
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\n",
        )
    )
    assert client.read_response(head_only=True).status == 101
    return client


def read_frame(client: RawClient) -> tuple[int, bytes]:
    head = client._read_exactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(client._read_exactly(2), "big")
    return head[0] & 0x0F, client._read_exactly(length)


def close_code_after(client: RawClient, data: bytes) -> int:
    """Send ``data``; the server's close code (echoed messages before it are skipped)."""
    client.send(data)
    while True:
        opcode, payload = read_frame(client)
        if opcode == 8:
            break
    assert client.closed(), "the server must close the TCP connection after its close frame"
    return int.from_bytes(payload[:2], "big")


WS_CASES: dict[str, tuple[bytes, int]] = {
    "invalid UTF-8 in one text frame": (frame(1, b"\xff\xfe"), 1007),
    "surrogate in one text frame": (frame(1, b"\xed\xa0\x80"), 1007),
    "invalid UTF-8 in the first fragment (fail fast)": (frame(1, b"\xce\xba\xff", fin=False), 1007),
    "invalid UTF-8 in a continuation": (frame(1, b"ok", fin=False) + frame(0, b"\xff"), 1007),
    "text fragments ending mid-sequence": (frame(1, b"a\xce", fin=False) + frame(0, b""), 1007),
    "ping of 126 bytes": (b"\x89\xfe\x00\x7e" + b"\x00" * 4 + b"p" * 126, 1002),
    "fragmented ping": (frame(9, b"p", fin=False), 1002),
    "close code 999": (frame(8, struct.pack("!H", 999)), 1002),
    "close code 1005": (frame(8, struct.pack("!H", 1005)), 1002),
    "close code 1016": (frame(8, struct.pack("!H", 1016)), 1002),
    "close with one byte": (frame(8, b"\x03"), 1002),
    "close reason not UTF-8": (frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
    "continuation without start": (frame(0, b"x"), 1002),
    "new message inside a fragmented one": (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
    "reserved opcode": (frame(3, b""), 1002),
    "RSV bit without an extension": (b"\xc1\x80" + b"\x00" * 4, 1002),
    "unmasked frame": (b"\x81\x02hi", 1002),
    "valid close": (frame(8, struct.pack("!H", 1000)), 1000),
    "fragmented text, then a valid close": (
        frame(1, "κό".encode()[:3], fin=False)
        + frame(9, b"")
        + frame(0, "κό".encode()[3:])
        + frame(8, struct.pack("!H", 4000)),
        4000,
    ),
}


@pytest.mark.parametrize("name", list(WS_CASES))
def test_websocket_violation_gets_its_close_code(running: Running, name: str) -> None:
    data, code = WS_CASES[name]
    with opened(running.port, "/ws") as client:
        assert close_code_after(client, data) == code
    assert request(running.port, get("/")).status == 200
    assert not running.errors, running.errors


def test_websocket_fragments_are_reassembled(running: Running) -> None:
    text_ = "κόσμε 𝄞"
    raw = text_.encode()
    with opened(running.port, "/ws") as client:
        client.send(
            frame(1, raw[:5], fin=False)
            + frame(9, b"hi")
            + frame(0, raw[5:9], fin=False)
            + frame(0, raw[9:])
            + frame(2, b"\x00\xff", fin=False)
            + frame(0, b"!")
        )
        assert read_frame(client) == (10, b"hi")  # the pong comes first: it is sent at once
        assert read_frame(client) == (1, raw)
        assert read_frame(client) == (2, b"\x00\xff!")


# -- the same rules for a raw ASGI app ------------------------------------------------------------


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send(
                {"type": "websocket.send", **{k: v for k, v in message.items() if k != "type"}}
            )


@pytest.fixture(scope="module")
def asgi_running() -> Iterator[Running]:
    with serve(ForeignApp(asgi_app, "asgi3", name="corpus", config=Config(env_prefix=None))) as srv:
        yield srv


ASGI_CASES = [
    "no Host",
    "two Host lines",
    "Host a b/c",
    "unknown method",
    "TE + CL",
    "chunk size junk",
    "pipelining after an error",
    "no Host, HTTP/1.0 (allowed)",
]


@pytest.mark.parametrize("name", ASGI_CASES)
def test_asgi_app_gets_the_same_answers(asgi_running: Running, name: str) -> None:
    case = CORPUS[name]
    assert answers_of(asgi_running.port, case) == (case.statuses, case.closes)
    assert request(asgi_running.port, get("/")).status == 200
    assert not asgi_running.errors, asgi_running.errors


@pytest.mark.parametrize(
    "name",
    [
        "invalid UTF-8 in one text frame",
        "invalid UTF-8 in the first fragment (fail fast)",
        "invalid UTF-8 in a continuation",
        "close code 999",
        "ping of 126 bytes",
    ],
)
def test_asgi_websocket_violation_gets_its_close_code(asgi_running: Running, name: str) -> None:
    data, code = WS_CASES[name]
    with opened(asgi_running.port, "/ws") as client:
        assert close_code_after(client, data) == code
    assert not asgi_running.errors, asgi_running.errors


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(
                [
                    b"GET / HTTP/1.1\r\n",
                    b"POST / HTTP/1.1\r\n",
                    b"Host: t\r\n",
                    b"Content-Length: 3\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    b"Connection: close\r\n",
                    b"Expect: 100-continue\r\n",
                    b"Upgrade: websocket\r\n",
                    b"\r\n",
                    b"3\r\nabc\r\n",
                    b"0\r\n\r\n",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_fuzz_random_byte_streams(running: Running, pieces: list[bytes]) -> None:
    with RawClient(running.port, timeout=5) as client:
        try:
            for piece in pieces:
                client.send(piece)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # the server must end the connection (answer + close, or just close) on its own
        assert client.closed(), "connection left open after the client finished sending"
    assert not running.errors, running.errors
