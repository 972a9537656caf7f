"""Virtual hosts over real sockets: ``host=`` on routes and blueprints, one host or several,
matched against ``Host`` (without case, with or without the port), 404 for any other host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime import App, Blueprint, text
from runtime.request import Request
from tests.server.helpers import RawClient, serve


def make_app() -> App:
    app = App("vhosts")

    @app.get("/", host="example.com")
    async def example(request: Request) -> Any:
        return text("example")

    @app.get("/", host=["other.org", "alias.org:8080"])
    async def other(request: Request) -> Any:
        return text("other")

    @app.get("/any")
    async def anywhere(request: Request) -> Any:
        return text("any host")

    @app.post("/only-post", host="example.com")
    async def only_post(request: Request) -> Any:
        return text("posted")

    sub = Blueprint("sub", host="sub.example.com")

    @sub.get("/")
    async def sub_index(request: Request) -> Any:
        return text("sub")

    @sub.get("/item/<n:int>")
    async def sub_item(request: Request, n: int) -> Any:
        return text(f"sub item {n}")

    @sub.get("/pinned", host="example.com")  # a route's own host wins over its blueprint's
    async def pinned(request: Request) -> Any:
        return text("pinned")

    app.blueprint(sub)
    return app


def fetch(port: int, path: str, host: str | None, method: str = "GET") -> tuple[int, bytes]:
    # without a Host: HTTP/1.0 (an HTTP/1.1 request without one is a 400 before routing)
    head = f"HTTP/1.1\r\nHost: {host}" if host is not None else "HTTP/1.0"
    body = "Content-Length: 0\r\n" if method == "POST" else ""
    with RawClient(port) as client:
        client.send(f"{method} {path} {head}\r\n{body}\r\n".encode())
        answer = client.read_response()
        return answer.status, answer.body


@pytest.mark.parametrize(
    ("path", "host", "status", "body"),
    [
        ("/", "example.com", 200, b"example"),
        ("/", "EXAMPLE.COM", 200, b"example"),
        ("/", "example.com:8000", 200, b"example"),  # a host registered without port
        ("/", "other.org", 200, b"other"),
        ("/", "alias.org:8080", 200, b"other"),
        ("/", "alias.org", 404, None),  # registered with its port only
        ("/", "sub.example.com", 200, b"sub"),
        ("/item/3", "sub.example.com", 200, b"sub item 3"),
        ("/item/3", "example.com", 404, None),
        ("/pinned", "example.com", 200, b"pinned"),
        ("/pinned", "sub.example.com", 404, None),
        ("/", "unknown.net", 404, None),
        ("/", None, 404, None),
        ("/any", "example.com", 200, b"any host"),  # routes without a host answer every host
        ("/any", "unknown.net", 200, b"any host"),
        ("/only-post", "example.com", 405, None),
    ],
)
def test_hosts(path: str, host: str | None, status: int, body: bytes | None) -> None:
    with serve(make_app()) as srv:
        got_status, got_body = fetch(srv.port, path, host)
        assert got_status == status
        if body is not None:
            assert got_body == body


def test_the_same_path_on_the_same_host_twice_is_refused() -> None:
    app = App("twice")
    app.add_route(lambda r: text(""), "/", host="a.com", name="one")
    app.add_route(lambda r: text(""), "/", host="b.com", name="two")
    with pytest.raises(Exception, match="already handled"):
        app.add_route(lambda r: text(""), "/", host=["c.com", "A.com"], name="three")


@pytest.mark.parametrize("bad", ["", "a.com/x", "a b", [], [""], ["ok.com", 3]])
def test_bad_hosts_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="host"):
        App("bad").add_route(lambda r: text(""), "/", host=bad)


def test_static_files_on_a_host(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("for files.example.com")
    app = App("static_host")
    app.static("/s", tmp_path, host="files.example.com")
    assets = Blueprint("assets", host="assets.example.com")
    assets.static("/b", tmp_path)  # the blueprint's host
    app.blueprint(assets)
    with serve(app) as srv:
        assert fetch(srv.port, "/s/a.txt", "files.example.com") == (200, b"for files.example.com")
        assert fetch(srv.port, "/s/a.txt", "example.com")[0] == 404
        assert fetch(srv.port, "/b/a.txt", "assets.example.com")[0] == 200
        assert fetch(srv.port, "/b/a.txt", "files.example.com")[0] == 404
