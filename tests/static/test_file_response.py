"""File responses over real sockets: validators, preconditions and ranges (RFC 9110), HEAD,
sendfile on uvloop and on asyncio's loop, downloads cut by the client, and the rules of
``runtime.files`` on their own."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import App, FileResponse, file, file_stream
from runtime.files import parse_range, select
from runtime.request import Request
from runtime.server import respond
from tests.server import helpers
from tests.server.helpers import RawClient, get, serve

BIG = 3 * 1024 * 1024 + 17  # past SMALL_FILE: sent with sendfile


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "small.txt").write_bytes(b"0123456789" * 10)
    (tmp_path / "big.bin").write_bytes(os.urandom(BIG))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "page.html").write_text("<h1>hi</h1>")
    return tmp_path


def make_app(root: Path) -> App:
    app = App("files")

    @app.route("/f/<name>", methods=["GET", "HEAD", "POST"])
    async def plain(request: Request, name: str) -> Any:
        return await file(root / name)

    @app.get("/download")
    async def download(request: Request) -> Any:
        return await file(root / "small.txt", filename="rapport été.txt", max_age=60)

    @app.get("/no-store")
    async def no_store(request: Request) -> Any:
        return await file(root / "small.txt", no_store=True, last_modified=None)

    @app.get("/stream/<name>")
    async def streamed(request: Request, name: str) -> Any:
        return await file_stream(root / name, chunk_size=1000, mime_type="application/x-test")

    @app.get("/validated")
    async def validated(request: Request) -> Any:
        return await file(root / "small.txt", request_headers=request.headers)

    @app.get("/created")
    async def created(request: Request) -> Any:
        return await file(root / "small.txt", status=201)

    @app.get("/missing")
    async def missing(request: Request) -> Any:
        return await file(root / "nope.txt")

    return app


@pytest.fixture
def server(files: Path) -> Iterator[helpers.Running]:
    with serve(make_app(files)) as running:
        yield running


def fetch(port: int, path: str, extra: str = "", method: str = "GET") -> helpers.Response:
    with RawClient(port) as client:
        client.send(f"{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
        return client.read_response(head_only=method == "HEAD")


def test_whole_files_with_type_length_and_validators(server: helpers.Running, files: Path) -> None:
    small = fetch(server.port, "/f/small.txt")
    assert small.status == 200 and small.body == (files / "small.txt").read_bytes()
    assert small.header("content-type") == "text/plain; charset=utf-8"
    assert small.header("content-length") == "100"
    assert small.header("accept-ranges") == "bytes"
    assert small.header(
        "etag",
    ).startswith('"') and small.header("last-modified").endswith("GMT")
    big = fetch(server.port, "/f/big.bin")
    assert big.status == 200 and len(big.body) == BIG
    assert (
        hashlib.sha256(big.body).digest()
        == hashlib.sha256((files / "big.bin").read_bytes()).digest()
    )
    assert fetch(server.port, "/f/page.html").header("content-type") == "text/html; charset=utf-8"
    empty = fetch(server.port, "/f/empty.txt")
    assert empty.status == 200 and empty.body == b"" and empty.header("content-length") == "0"
    assert fetch(server.port, "/missing").status == 500  # as in Sanic: file() raises


def test_head_has_the_get_head_and_no_body(server: helpers.Running) -> None:
    with RawClient(server.port) as client:
        client.send(b"HEAD /f/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        head = client.read_response(head_only=True)
        assert head.status == 200 and head.header("content-length") == str(BIG)
        client.send(get("/f/small.txt"))  # the same connection: nothing of a body came before
        assert client.read_response().body == b"0123456789" * 10


def test_if_none_match_and_if_modified_since_give_304(server: helpers.Running) -> None:
    first = fetch(server.port, "/f/small.txt")
    etag, modified = first.header("etag"), first.header("last-modified")
    for extra in (
        f"If-None-Match: {etag}\r\n",
        f'If-None-Match: "other", W/{etag}\r\n',  # weak comparison
        "If-None-Match: *\r\n",
        f"If-Modified-Since: {modified}\r\n",
    ):
        answer = fetch(server.port, "/f/small.txt", extra)
        assert answer.status == 304, extra
        assert answer.header("etag") == etag and answer.header("content-length") is None
        assert answer.header("content-type") is None
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    both = fetch(
        server.port, "/f/small.txt", f'If-None-Match: "x"\r\nIf-Modified-Since: {modified}\r\n'
    )
    assert both.status == 200
    old = "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
    assert fetch(server.port, "/f/small.txt", old).status == 200
    assert fetch(server.port, "/f/small.txt", "If-Modified-Since: yesterday\r\n").status == 200
    # HEAD too; not a POST (preconditions of GET/HEAD only)
    assert fetch(server.port, "/f/small.txt", f"If-None-Match: {etag}\r\n", "HEAD").status == 304
    post = fetch(
        server.port, "/f/small.txt", f"If-None-Match: {etag}\r\nContent-Length: 0\r\n", "POST"
    )
    assert post.status == 200
    # a status other than 200 is never turned into a 304
    assert fetch(server.port, "/created", f"If-None-Match: {etag}\r\n").status == 201


def test_if_match_and_if_unmodified_since_give_412(server: helpers.Running) -> None:
    first = fetch(server.port, "/f/small.txt")
    etag = first.header("etag")
    assert fetch(server.port, "/f/small.txt", f"If-Match: {etag}\r\n").status == 200
    assert fetch(server.port, "/f/small.txt", 'If-Match: "nope"\r\n').status == 412
    assert fetch(server.port, "/f/small.txt", f"If-Match: W/{etag}\r\n").status == 412  # strong
    past = "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
    assert fetch(server.port, "/f/small.txt", past).status == 412


def test_single_ranges_give_206(server: helpers.Running, files: Path) -> None:
    data = (files / "big.bin").read_bytes()
    for spec, first, last in (
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, BIG - 1),
        ("bytes=-500", BIG - 500, BIG - 1),
        (f"bytes=10-{BIG * 2}", 10, BIG - 1),  # clipped to the file
        ("bytes=0-9,5-19", 0, 19),  # overlapping ranges merge into one
        ("bytes = 0-0", 0, 0),
    ):
        answer = fetch(server.port, "/f/big.bin", f"Range: {spec}\r\n")
        assert answer.status == 206, spec
        assert answer.header("content-range") == f"bytes {first}-{last}/{BIG}", spec
        assert answer.header("content-length") == str(last - first + 1)
        assert answer.body == data[first : last + 1], spec


def test_ranges_that_cannot_or_need_not_be_served(server: helpers.Running) -> None:
    for spec in ("bytes=99999999-", "bytes=-0"):
        answer = fetch(server.port, "/f/small.txt", f"Range: {spec}\r\n")
        assert answer.status == 416 and answer.header("content-range") == "bytes */100", spec
    assert fetch(server.port, "/f/empty.txt", "Range: bytes=0-\r\n").status == 416
    # ignored: unparsable, another unit, an inverted range, several disjoint ranges
    for spec in ("bytes=a-b", "items=0-1", "bytes=5-1", "bytes=0-1,50-60", "bytes="):
        answer = fetch(server.port, "/f/small.txt", f"Range: {spec}\r\n")
        assert answer.status == 200 and len(answer.body) == 100, spec
    # HEAD ignores Range (only GET has range handling)
    head = fetch(server.port, "/f/small.txt", "Range: bytes=0-1\r\n", "HEAD")
    assert head.status == 200 and head.header("content-length") == "100"


def test_if_range(server: helpers.Running) -> None:
    first = fetch(server.port, "/f/small.txt")
    etag, modified = first.header("etag"), first.header("last-modified")
    assert (
        fetch(server.port, "/f/small.txt", f"Range: bytes=0-1\r\nIf-Range: {etag}\r\n").status
        == 206
    )
    assert (
        fetch(server.port, "/f/small.txt", f"Range: bytes=0-1\r\nIf-Range: {modified}\r\n").status
        == 206
    )
    stale = fetch(server.port, "/f/small.txt", 'Range: bytes=0-1\r\nIf-Range: "old"\r\n')
    assert stale.status == 200 and len(stale.body) == 100
    old = "Range: bytes=0-1\r\nIf-Range: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
    assert fetch(server.port, "/f/small.txt", old).status == 200


def test_validators_change_when_the_file_does(server: helpers.Running, files: Path) -> None:
    etag = fetch(server.port, "/f/small.txt").header("etag")
    (files / "small.txt").write_bytes(b"changed")
    answer = fetch(server.port, "/f/small.txt", f"If-None-Match: {etag}\r\n")
    assert answer.status == 200 and answer.body == b"changed" and answer.header("etag") != etag


def test_sanic_arguments(server: helpers.Running, files: Path) -> None:
    download = fetch(server.port, "/download")
    assert download.header("content-disposition") == (
        "attachment; filename=\"rapport _t_.txt\"; filename*=utf-8''rapport%20%C3%A9t%C3%A9.txt"
    )
    assert download.header("cache-control") == "public, max-age=60"
    stored = fetch(server.port, "/no-store")
    assert stored.header("cache-control") == "no-store" and stored.header("last-modified") is None
    streamed = fetch(server.port, "/stream/big.bin")
    assert streamed.status == 200 and len(streamed.body) == BIG
    assert streamed.header("content-type") == "application/x-test"
    assert streamed.header("content-length") == str(BIG)  # a length, not chunked
    etag = fetch(server.port, "/validated").header("etag")
    assert fetch(server.port, "/validated", f"If-None-Match: {etag}\r\n").status == 304


def test_keep_alive_after_files_and_pipelining(server: helpers.Running, files: Path) -> None:
    with RawClient(server.port) as client:
        client.send(
            get("/f/big.bin") + get("/f/small.txt", "Range: bytes=0-4\r\n") + get("/f/big.bin")
        )
        assert len(client.read_response().body) == BIG
        assert client.read_response().body == b"01234"
        assert len(client.read_response().body) == BIG


def test_a_client_that_leaves_mid_file_costs_nothing(server: helpers.Running) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(get("/f/big.bin"))
            sock.recv(1000)
    assert fetch(server.port, "/f/small.txt").status == 200
    time.sleep(0.2)
    assert server.errors == []


def test_sendfile_on_the_asyncio_loop(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helpers, "new_event_loop", asyncio.new_event_loop)
    with serve(make_app(files)) as running:
        assert not type(running.loop).__module__.startswith("uvloop")
        big = fetch(running.port, "/f/big.bin")
        assert big.body == (files / "big.bin").read_bytes()
        part = fetch(running.port, "/f/big.bin", "Range: bytes=1000000-1999999\r\n")
        assert part.body == (files / "big.bin").read_bytes()[1000000:2000000]


def test_without_a_socket_the_file_is_read(files: Path) -> None:
    """The fallback of rule 3 (TLS): chunks written with flow control."""

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def get_extra_info(self, name: str) -> Any:
            return None

        def is_closing(self) -> bool:
            return False

    from runtime.server.flow import FlowControl

    transport = Transport()
    fd = os.open(files / "big.bin", os.O_RDONLY)
    try:
        body = respond.FileBody(b"", fd, 5, BIG - 10, 206)
        asyncio.run(
            respond.send_file(
                transport,  # type: ignore[arg-type]
                FlowControl(transport),  # type: ignore[arg-type]
                body,
                chunk_size=1000,
                write=transport.written.append,
            )
        )
    finally:
        os.close(fd)
    assert b"".join(transport.written) == (files / "big.bin").read_bytes()[5 : BIG - 5]
    assert max(len(chunk) for chunk in transport.written) == 16384


async def test_the_test_client_gets_prepared_answers(files: Path) -> None:
    from runtime.testing import AsyncTestClient

    app = App("prepared")
    app.static("/s", files, use_content_range=True)
    async with AsyncTestClient(app) as client:
        whole = await client.get("/s/small.txt")
        assert whole.status_code == 200 and whole.content == b"0123456789" * 10
        part = await client.get("/s/small.txt", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == b"0123456789"
        cached = await client.get("/s/small.txt", headers={"If-None-Match": whole.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""


def test_file_response_arguments_are_checked(files: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileResponse(files / "nope")
    with pytest.raises(IsADirectoryError):
        FileResponse(files)
    with pytest.raises(ValueError, match="chunk_size"):
        FileResponse(files / "small.txt", chunk_size=0)
    with pytest.raises(ValueError, match="max_age"):
        FileResponse(files / "small.txt", max_age=-1)
    with pytest.raises(TypeError, match="last_modified"):
        FileResponse(files / "small.txt", last_modified="today")  # type: ignore[arg-type]


# --- runtime.files on its own ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", [(0, 0)]),
        ("bytes=0-", [(0, 9)]),
        ("bytes=-3", [(7, 9)]),
        ("bytes=-30", [(0, 9)]),
        ("bytes=8-20", [(8, 9)]),
        ("bytes=0-1, 3-4", [(0, 1), (3, 4)]),
        ("bytes=0-1,2-3", [(0, 3)]),  # adjacent: merged
        ("bytes=10-", []),
        ("bytes=-0", []),
        ("BYTES=1-1", [(1, 1)]),
        ("bytes=1-0", None),
        ("bytes=x-1", None),
        ("bytes=1", None),
        ("bytes=-", None),
        ("pages=1-2", None),
        ("bytes=" + ",".join(["0-0"] * 65), None),  # too many parts
    ],
)
def test_parse_range(header: str, expected: list[tuple[int, int]] | None) -> None:
    assert parse_range(header, 10) == expected


def test_select_only_answers_get_and_head_with_200() -> None:
    headers = {"range": "bytes=0-1", "if-none-match": "*"}
    common: dict[str, Any] = {"size": 10, "etag": '"e"', "last_modified": 0.0, "ranges": True}
    assert (
        select(method="PUT", status=200, request_headers=headers, conditional=True, **common).status
        == 200
    )
    assert (
        select(method="GET", status=404, request_headers=headers, conditional=True, **common).status
        == 404
    )
    assert (
        select(
            method="GET", status=200, request_headers=headers, conditional=False, **common
        ).status
        == 206
    )
    no_ranges = {**common, "ranges": False}
    assert (
        select(
            method="GET",
            status=200,
            request_headers={"range": "bytes=0-1"},
            conditional=True,
            **no_ranges,
        ).status
        == 200
    )


def test_a_client_that_stops_reading_a_file_is_dropped(tmp_path: Path) -> None:
    """Rule 4 of runtime.server.respond: the response timeout applies while sendfile waits."""
    big = tmp_path / "huge.bin"
    with big.open("wb") as out:
        out.truncate(64 * 1024 * 1024)
    app = App("stalled", config={"RESPONSE_TIMEOUT": 1})

    @app.get("/huge")
    async def huge(request: Request) -> Any:
        return await file(big)

    with serve(app) as running:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(("127.0.0.1", running.port))
        with sock:
            sock.sendall(get("/huge"))
            time.sleep(2.5)  # read nothing: the server's sends stall
            sock.settimeout(5)
            received = 0
            try:
                while chunk := sock.recv(1 << 20):
                    received += len(chunk)
            except ConnectionResetError:
                pass
            assert received < 64 * 1024 * 1024  # cut, not completed
        assert fetch(running.port, "/huge", "Range: bytes=0-9\r\n").status == 206
        assert running.errors == []


def test_over_tls_the_file_is_read_and_written(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS connection cannot sendfile: the server reads the file in chunks (rule 3)."""
    import functools
    import ssl

    import httpx
    import trustme

    from runtime.server import Server

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    monkeypatch.setattr(helpers, "Server", functools.partial(Server, ssl=context))
    calls: list[int] = []
    real_sendfile = os.sendfile

    def counting_sendfile(*args: Any) -> int:
        calls.append(1)
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    with (
        serve(make_app(files)) as running,
        ca.cert_pem.tempfile() as ca_file,
        httpx.Client(verify=ssl.create_default_context(cafile=ca_file)) as client,
    ):
        url = f"https://127.0.0.1:{running.port}/f/big.bin"
        whole = client.get(url)
        assert whole.content == (files / "big.bin").read_bytes()
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == (files / "big.bin").read_bytes()[100:200]
    assert calls == []  # never on the TLS socket
