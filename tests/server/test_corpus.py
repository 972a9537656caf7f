"""Malformed and hostile requests: each gets a 4xx/5xx answer or a clean close, never a crash,
and a good request on a new connection is served afterwards."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import App, text
from runtime.request import Request
from tests.server.helpers import RawClient, Running, get, request, serve

CORPUS: dict[str, bytes] = {
    "garbage": b"\x00\x01\x02\x03\r\n\r\n",
    "lowercase method": b"get / HTTP/1.1\r\nHost: t\r\n\r\n",
    "space in target": b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
    "no version": b"GET /\r\nHost: t\r\n\r\n",
    "http/0.9": b"GET /\r\n\r\n",
    "http/3.1": b"GET / HTTP/3.1\r\n\r\n",
    "http/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: t\n\n",
    "bare CR": b"GET / HTTP/1.1\rHost: t\r\r",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost t\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    "empty header name": b"GET / HTTP/1.1\r\n: t\r\n\r\n",
    "non-ascii header name": "GET / HTTP/1.1\r\nHöst: t\r\n\r\n".encode(),
    "control char in value": b"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
    "NUL in target": b"GET /\x00 HTTP/1.1\r\n\r\n",
    "CL + TE": (
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "TE + CL": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"
    ),
    "duplicate CL": b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
    "conflicting CL": b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "CL list": b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\na",
    "negative CL": b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "CL with plus": b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
    "CL hex": b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
    "huge CL": b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "TE gzip": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "TE gzip, chunked": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "TE chunked, identity": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    "TE twice": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n"
    ),
    "TE with junk": b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "TE in HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "invalid chunk size": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    ),
    "negative chunk size": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n",
    "chunk size overflow": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"
    ),
    "chunk without CRLF": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n"
    ),
    "oversized header": get("/", "X-Big: " + "a" * 20000 + "\r\n"),
    "oversized target": get("/" + "a" * 20000),
    "too many headers": get("/", "".join(f"X-{i}: v\r\n" for i in range(200))),
    "CONNECT": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "bad Expect": b"POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\na",
    "request then garbage": get("/") + b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    "TLS client hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,
}


def make_app() -> App:
    app = App("corpus")

    @app.route("/", methods=["GET", "POST"])
    async def index(request: Request) -> object:
        return text("ok")

    return app


@pytest.fixture(scope="module")
def running() -> object:
    from runtime.testing import reset_app_registry

    reset_app_registry()
    with serve(make_app()) as srv:
        yield srv
    reset_app_registry()


def _answer(port: int, data: bytes) -> list[int]:
    """Statuses answered before the server closed the connection."""
    statuses = []
    with RawClient(port, timeout=5) as client:
        try:
            client.send(data)
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                statuses.append(client.read_response().status)
            except (ConnectionError, OSError):
                break
    return statuses


def test_corpus_has_at_least_30_cases() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_request_is_refused_cleanly(running: Running, name: str) -> None:
    statuses = _answer(running.port, CORPUS[name])
    if name == "request then garbage":
        assert statuses == [200, 400]
    else:
        assert statuses, "expected an error answer before the close"
        assert all(400 <= s < 600 for s in statuses), statuses
    assert request(running.port, get("/")).status == 200
    assert not running.errors


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
